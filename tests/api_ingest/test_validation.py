from __future__ import annotations

from services.api_ingest.validation import validate_manifest
from services.demo import DemoTraffic
from services.wire import manifest_pb2


def _manifest() -> manifest_pb2.Manifest:
    return DemoTraffic(seed=3).next_manifest(passengers=3)


def _fields(violations) -> set[str]:
    return {v.field for v in violations}


def test_demo_manifest_is_valid():
    errors, _ = validate_manifest(_manifest())
    assert errors == []


def test_missing_surname_and_bad_country_are_named_by_field():
    m = _manifest()
    m.travellers[1].surname = " "
    m.travellers[2].nationality = "ZZZ"
    m.travellers[2].documents[0].issuing_state = "XXA"  # ICAO: stateless person, valid
    errors, _ = validate_manifest(m)
    assert _fields(errors) == {"travellers[1].surname", "travellers[2].nationality"}
    assert {v.code for v in errors} == {"required", "invalid_country"}


def test_unknown_port_and_impossible_date_are_errors():
    m = _manifest()
    m.legs[0].destination = "QQQ"
    m.travellers[0].date_of_birth.CopyFrom(manifest_pb2.PartialDate(year=1990, month=2, day=30))
    errors, _ = validate_manifest(m)
    assert _fields(errors) == {"legs[0].destination", "travellers[0].date_of_birth"}


def test_partial_birth_date_is_accepted_and_missing_one_warns():
    m = _manifest()
    m.travellers[0].date_of_birth.CopyFrom(manifest_pb2.PartialDate(year=1990))
    m.travellers[1].ClearField("date_of_birth")
    errors, warnings = validate_manifest(m)
    assert errors == []
    assert _fields(warnings) == {"travellers[1].date_of_birth"}


def test_seaport_locode_is_a_port_and_empty_manifest_is_rejected():
    m = _manifest()
    m.transport_mode = manifest_pb2.TRANSPORT_MODE_SEA
    m.legs[0].origin, m.legs[0].destination = "FJSUV", "TOTBU"
    del m.legs[1:]
    assert validate_manifest(m)[0] == []
    del m.travellers[:]
    assert _fields(validate_manifest(m)[0]) == {"travellers"}
