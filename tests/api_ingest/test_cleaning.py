"""Intake cleaning: bounded, printable text; limits; bad values dropped; nameless travellers left out; only what
cannot be screened rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.config import HubSettings
from services.edge.cleaning import (
    DEFAULT_SIZE,
    FIELD_SIZES,
    LISTED_PER_CODE,
    IntakeLimits,
    clean_manifest,
    clean_text,
    listed_warnings,
)
from services.wire import intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic

M = manifest_pb2
PD = manifest_pb2.PartialDate
DEPARTURE = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LIMITS = IntakeLimits(travellers=20_000, legs=250, documents=20)
SURNAME = "QWERTYCLEANING"


def _manifest() -> manifest_pb2.Manifest:
    """NAN -> SYD, 3 passengers (travellers[0..2]) and 4 crew (travellers[3..6]); valid, no warnings."""
    m = DemoTraffic(seed=3, start=DEPARTURE).next_manifest(passengers=3)
    for t in m.travellers:
        t.documents[0].expiry.CopyFrom(PD(year=2031, month=4, day=23))
    return m


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def _codes(violations) -> set[tuple[str, str]]:
    return {(v.field, v.code) for v in violations}


def _clean(m: manifest_pb2.Manifest):
    done = clean_manifest(m, LIMITS)
    for v in done.errors + done.warnings:  # never a value of a personal field in a description
        assert SURNAME not in v.description and "\x1b" not in v.description
    return done


# -- legitimate data passes untouched -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 11])
def test_demo_traffic_is_stored_exactly_as_sent(seed):
    traffic = DemoTraffic(seed=seed)
    for _ in range(6):
        m = traffic.next_manifest(passengers=200)
        done = _clean(m)
        assert done.errors == []
        assert {v.code for v in done.warnings} <= {"document_expired"}
        assert done.manifest == m


@pytest.mark.parametrize(
    "name",
    [
        "محمد عبد الله",  # Arabic
        "王小明",  # Chinese
        "देवनागरी",  # Devanagari: letters and combining marks
        "Ελένη Παπαδοπούλου",
        "ʻOkusitino Māhina",  # Tongan ʻokina (a modifier letter) and a macron
        "O'Brien-Smith",
        "Nguyễn Thị Minh Khai",
        "Ṭūfuga",
    ],
)
def test_letters_of_every_script_are_kept(name):
    m = _manifest()
    m.travellers[0].surname = m.travellers[0].given_names = name
    done = _clean(m)
    assert (done.errors, done.warnings) == ([], [])
    assert done.manifest.travellers[0].surname == name


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("SMI\x00TH", "SMITH"),  # NUL
        ("\x1bSMITH", "SMITH"),  # ESC
        ("SMITH\nJONES", "SMITH JONES"),  # newline
        ("\u202eHTIMS", "HTIMS"),  # right-to-left override
        ("SMI\u200bTH\u200d", "SMITH"),  # zero-width space and joiner
        ("\ufeffSMITH\u2066", "SMITH"),  # byte-order mark, left-to-right isolate
        ("SMITH\u2028JONES", "SMITH JONES"),  # line separator
        ("SMITH\ue000", "SMITH"),  # private use
    ],
)
def test_control_bidi_and_zero_width_characters_are_stripped_from_names(sent, stored):
    m = _manifest()
    m.travellers[1].surname = sent
    m.travellers[1].given_names = sent
    done = _clean(m)
    assert done.errors == []
    assert _codes(done.warnings) == {
        ("travellers[1].surname", "control_characters"),
        ("travellers[1].given_names", "control_characters"),
    }
    assert done.manifest.travellers[1].surname == stored == done.manifest.travellers[1].given_names


def test_other_text_fields_are_cleaned_too_and_an_mrz_keeps_its_line_break():
    m = _manifest()
    m.flight_number = "41\x001"
    m.travellers[0].passenger_ref = "FJ411-\x1b[2J001"
    m.travellers[0].documents[0].number = "Q\u200bX12345"
    m.travellers[0].documents[0].mrz = "P<FJI\r\nLINE2"
    done = _clean(m)
    assert ("flight_number", "control_characters") in _codes(done.warnings)
    stored = done.manifest
    assert stored.flight_number == "411"
    assert stored.travellers[0].passenger_ref == "FJ411-[2J001"
    assert stored.travellers[0].documents[0].number == "QX12345"
    assert ("travellers[0].documents[0].mrz", "control_characters") not in _codes(done.warnings)


def test_a_megabyte_surname_or_document_number_is_cut_to_its_size():
    m = _manifest()
    m.travellers[0].surname = SURNAME + "A" * 1_000_000
    m.travellers[1].surname = SURNAME + "\u200b" * 1_000_000 + "B" * 10
    m.travellers[2].documents[0].number = "9" * 1_000_000
    done = _clean(m)
    stored = done.manifest.travellers
    assert len(stored[0].surname) == FIELD_SIZES["Traveller", "surname"] == 70
    assert stored[1].surname == SURNAME  # the invisible characters removed, what lay beyond them cut
    assert stored[2].documents[0].number == "9" * FIELD_SIZES["Document", "number"]
    assert _codes(done.warnings) == {
        ("travellers[0].surname", "truncated"),
        ("travellers[1].surname", "truncated"),
        ("travellers[1].surname", "control_characters"),
        ("travellers[2].documents[0].number", "truncated"),
    }
    assert "70 characters" in next(v.description for v in done.warnings if v.field == "travellers[0].surname")


def test_a_country_code_is_never_cut_into_another_one():
    m = _manifest()
    m.travellers[0].nationality = "SWEDEN"  # cut to 3 it would be SWE, a different claim
    done = _clean(m)
    assert _codes(done.warnings) == {("travellers[0].nationality", "invalid_country")}
    assert done.manifest.travellers[0].nationality == ""


def test_sizes_name_real_fields_and_never_cut_a_legitimate_value():
    for (message, name), size in FIELD_SIZES.items():
        assert name in getattr(manifest_pb2, message).DESCRIPTOR.fields_by_name, (message, name)
        assert size >= 17
    assert FIELD_SIZES["Traveller", "surname"] >= 35  # PAXLST NAD 3036 an..35
    assert FIELD_SIZES["Document", "number"] >= 35  # PAXLST DOC 1004 an..35 (the TD3 MRZ holds 9)
    assert FIELD_SIZES["Document", "mrz"] >= 3 * 30 + 2  # ICAO 9303 TD1 with its line breaks
    assert DEFAULT_SIZE >= 35


def test_clean_text_reads_a_bounded_prefix_of_what_it_cannot_use():
    value, changed, cut = clean_text("\u200b" * 5_000_000 + "A", 10)
    assert (value, changed, cut) == ("", True, True)
    assert clean_text("PLAIN", 10) == ("PLAIN", False, False)


# -- limits -------------------------------------------------------------------------------------------------
def test_default_limits_fit_the_largest_cruise_ships():
    settings = HubSettings()
    assert settings.max_manifest_travellers >= 10_000
    assert IntakeLimits.from_settings(settings).travellers == settings.max_manifest_travellers


def test_too_many_travellers_is_rejected_naming_the_field_and_the_limit():
    m = _manifest()
    template = m.travellers[0]
    m.travellers.extend([template] * (100_000 - len(m.travellers)))
    done = _clean(m)
    [error] = done.errors
    assert (error.field, error.code) == ("travellers", "too_many")
    assert "20,000" in error.description and "100,000" in error.description
    assert "APIHUB_MAX_MANIFEST_TRAVELLERS" in error.description
    assert done.manifest.message_ref == m.message_ref and not done.manifest.travellers


def test_too_many_legs_is_rejected():
    m = _manifest()
    leg = m.legs[0]
    m.legs.extend([leg] * 5_000)
    [error] = _clean(m).errors
    assert (error.field, error.code) == ("legs", "too_many") and "250" in error.description


def test_too_many_documents_keeps_the_first_ones_with_a_warning():
    m = _manifest()
    doc = m.travellers[1].documents[0]
    m.travellers[1].documents.extend([doc] * 50_000)
    done = _clean(m)
    assert done.errors == []
    assert _codes(done.warnings) == {("travellers[1].documents", "too_many")}
    assert "50,001" in done.warnings[0].description
    assert len(done.manifest.travellers[1].documents) == LIMITS.documents


# -- bad values are dropped, doubtful ones kept -------------------------------------------------------------
def test_values_that_would_mislead_screening_are_dropped_and_the_rest_kept():
    m = _manifest()
    t = m.travellers[1]
    t.nationality, t.residence, t.embarkation = "ZZZ", "FJI", "QQQ"
    t.date_of_birth.CopyFrom(PD(year=2087, month=4, day=23))  # a 2-digit year in the wrong century
    t.role, t.sex = 42, 8
    t.documents[0].type = 99
    t.documents[0].expiry.CopyFrom(PD(year=2030, month=2, day=30))
    t.documents[0].mrz = "NOT AN MRZ"
    m.travellers[5].passenger_ref = m.travellers[4].passenger_ref
    m.legs[0].scheduled_arrival.CopyFrom(_ts(DEPARTURE - timedelta(hours=13)))  # local time sent as UTC
    done = _clean(m)
    assert done.errors == []
    stored = done.manifest
    s = stored.travellers[1]
    assert (s.nationality, s.residence, s.embarkation) == ("", "FJI", "")
    assert not s.HasField("date_of_birth")
    assert (s.role, s.sex, s.documents[0].type) == (0, 0, 0)
    assert not s.documents[0].HasField("expiry") and s.documents[0].mrz == ""
    assert s.surname == t.surname and s.documents[0].number == t.documents[0].number
    assert stored.travellers[5].passenger_ref == "" and stored.travellers[4].passenger_ref
    assert stored.legs[0].scheduled_arrival == m.legs[0].scheduled_arrival  # kept: which time is wrong is unknown
    assert ("legs[0].scheduled_arrival", "arrival_before_departure") in _codes(done.warnings)


def test_a_later_legs_unknown_port_is_dropped_and_the_flight_screened():
    m = _manifest()
    leg = m.legs.add(origin="SYD", destination="QQQ")
    leg.scheduled_departure.CopyFrom(_ts(DEPARTURE + timedelta(hours=6)))
    done = _clean(m)
    assert done.errors == [] and _codes(done.warnings) == {("legs[1].destination", "unknown_port")}
    assert done.manifest.legs[1].destination == ""


def test_missing_function_and_mode_are_filled_in_as_the_manifest_shows():
    m = _manifest()
    m.function = M.MESSAGE_FUNCTION_UNSPECIFIED
    m.transport_mode = 7
    done = _clean(m)
    assert done.errors == []
    assert (done.manifest.function, done.manifest.transport_mode) == (
        M.MESSAGE_FUNCTION_ORIGINAL,
        M.TRANSPORT_MODE_AIR,
    )
    m.transport_mode = M.TRANSPORT_MODE_UNSPECIFIED
    m.legs[0].origin, m.legs[0].destination = "FJSUV", "TOTBU"
    assert _clean(m).manifest.transport_mode == M.TRANSPORT_MODE_SEA


# -- travellers ---------------------------------------------------------------------------------------------
def test_a_traveller_without_a_usable_name_is_left_out_and_the_others_screened():
    m = _manifest()
    m.travellers[1].surname, m.travellers[1].given_names = "\u200b\x00", "  "
    m.travellers[2].nationality = "ZZZ"
    done = _clean(m)
    assert done.errors == []
    assert ("travellers[1]", "no_usable_name") in _codes(done.warnings)
    # Warnings name positions in the manifest as sent, also after a traveller was left out.
    assert ("travellers[2].nationality", "invalid_country") in _codes(done.warnings)
    kept = [t.passenger_ref for t in done.manifest.travellers]
    assert kept == [t.passenger_ref for i, t in enumerate(m.travellers) if i != 1]
    assert done.manifest.travellers[1].nationality == ""


def test_nobody_with_a_usable_name_rejects():
    m = _manifest()
    for t in m.travellers:
        t.surname, t.given_names = "\u202e", "\x00"
    assert _codes(_clean(m).errors) == {("travellers", "no_usable_name")}


def test_the_request_is_left_as_received_and_hub_fields_are_the_hubs():
    m = _manifest()
    m.travellers[0].surname = "SMI\x00TH"
    m.manifest_id = "m-forged"
    m.intake_warnings.add(code="forged", field="carrier")
    sent = m.SerializeToString()
    done = _clean(m)
    assert m.SerializeToString() == sent
    assert done.manifest.manifest_id == "" and not done.manifest.intake_warnings


# -- what the receipt lists ---------------------------------------------------------------------------------
def test_a_receipt_lists_a_bounded_number_of_warnings_per_code_and_counts_the_rest():
    many = [intake_pb2.FieldViolation(field=f"travellers[{i}].surname", code="truncated") for i in range(120)]
    few = [intake_pb2.FieldViolation(field="legs[0].destination", code="same_port")]
    listed, kept = listed_warnings(many + few)
    assert len(listed) == LISTED_PER_CODE + 1 + 1
    summary = listed[-1]
    assert (summary.field, summary.code) == ("", "truncated") and "70 more" in summary.description
    assert sum(w.more or 1 for w in kept if w.code == "truncated") == 120
    assert [(w.code, w.field) for w in kept if w.code == "same_port"] == [("same_port", "legs[0].destination")]
