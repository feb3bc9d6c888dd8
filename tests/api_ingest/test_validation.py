from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.edge.validation import DROPPED_CODES, ICAO_SPECIAL_CODES, SKIPPED_TRAVELLER, validate_manifest
from services.paxlst.mrz import check_digit
from services.wire import manifest_pb2
from synthetic.traffic import DemoTraffic

# First leg departs 2026-03-10 09:00Z: every "now" in these tests is that day.
DEPARTURE = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# Invented personal data planted in the tests; no description may ever contain any of it.
SURNAME, GIVEN, DOC_NUMBER = "QWERTYVALIDATION", "ZXCVB", "QX9876543"
BIRTH = manifest_pb2.PartialDate(year=1987, month=4, day=23)

PD = manifest_pb2.PartialDate
M = manifest_pb2


def _manifest() -> manifest_pb2.Manifest:
    """NAN -> SYD, 3 passengers (travellers[0..2]) and 4 crew (travellers[3..6]); valid, no warnings."""
    m = DemoTraffic(seed=3, start=DEPARTURE).next_manifest(passengers=3)
    t = m.travellers[0]
    t.surname, t.given_names = SURNAME, GIVEN
    t.date_of_birth.CopyFrom(BIRTH)
    t.nationality = t.residence = t.documents[0].issuing_state = "FJI"
    t.documents[0].number = DOC_NUMBER
    t.documents[0].expiry.CopyFrom(PD(year=2031, month=4, day=23))
    return m


def _fields(violations) -> set[str]:
    return {v.field for v in violations}


def _codes(violations) -> set[tuple[str, str]]:
    return {(v.field, v.code) for v in violations}


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


_PATH = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


def _resolves(m: manifest_pb2.Manifest, path: str) -> bool:
    """Whether a violation's field is a real path in the Manifest ("travellers[3].documents[0].expiry")."""
    node = m
    for part in path.split("."):
        match = _PATH.fullmatch(part)
        if not match or match.group(1) not in node.DESCRIPTOR.fields_by_name:
            return False
        value = getattr(node, match.group(1))
        if match.group(2) is not None:
            if int(match.group(2)) >= len(value):
                return False
            value = value[int(match.group(2))]
        node = value
    return True


def _check(m: manifest_pb2.Manifest):
    """validate_manifest, asserting what holds for every violation: a real path, a code, no personal data."""
    errors, warnings = validate_manifest(m)
    for v in errors + warnings:
        assert _resolves(m, v.field), v.field
        assert re.fullmatch(r"[a-z_]+", v.code), v.code
        assert v.description
        for t in m.travellers:
            secrets = [t.surname.strip(), t.given_names.strip(), *(d.number.strip() for d in t.documents)]
            secrets += [d.mrz.strip() for d in t.documents] + [line for d in t.documents for line in d.mrz.split()]
            for secret in secrets:
                if len(secret) >= 4:
                    assert secret not in v.description, (v.field, v.code)
    return errors, warnings


# -- the demo stays valid ------------------------------------------------------------------------------------
def test_demo_manifest_is_valid_without_warnings():
    assert _check(_manifest()) == ([], [])


@pytest.mark.parametrize("seed", [1, 11, 99])
def test_demo_traffic_has_no_errors(seed):
    traffic = DemoTraffic(seed=seed)
    for _ in range(12):
        m = traffic.next_manifest(passengers=300)
        errors, warnings = _check(m)
        assert errors == []
        assert {v.code for v in warnings} <= {"document_expired"}  # the demo's rare expired passport


# -- the skeleton's checks -----------------------------------------------------------------------------------
def test_missing_surname_and_bad_country_are_warnings_named_by_field():
    m = _manifest()
    m.travellers[1].surname = " "
    m.travellers[2].nationality = "ZZZ"
    m.travellers[2].documents[0].issuing_state = "XXA"  # ICAO: stateless person, valid
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {
        ("travellers[1].surname", "required"),  # the given names are screened as a single name
        ("travellers[2].nationality", "invalid_country"),
    }
    assert "'ZZZ'" in next(v.description for v in warnings if v.code == "invalid_country")


def test_unknown_port_of_the_first_leg_is_an_error_and_a_slip_in_a_birth_date_a_warning():
    m = _manifest()
    m.legs[0].destination = "QQQ"
    m.travellers[0].date_of_birth.CopyFrom(PD(year=1990, month=2, day=30))
    errors, warnings = _check(m)
    assert _codes(errors) == {("legs[0].destination", "unknown_port")}
    assert ("travellers[0].date_of_birth", "impossible_date") in _codes(warnings)


def test_seaport_locode_is_a_port_and_empty_manifest_is_rejected():
    m = _manifest()
    m.transport_mode = M.TRANSPORT_MODE_SEA
    m.legs[0].origin, m.legs[0].destination = "FJSUV", "TOTBU"
    assert _check(m) == ([], [])
    del m.travellers[:]
    assert _fields(_check(m)[0]) == {"travellers"}


# -- country codes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(ICAO_SPECIAL_CODES) + ["FJI", "WSM", "DEU", "GBR", "fji", "D<<"])
def test_iso_and_icao_codes_are_valid_for_nationality_residence_and_issuer(code):
    m = _manifest()
    t = m.travellers[1]
    t.nationality = t.residence = t.documents[0].issuing_state = code
    errors, warnings = _check(m)
    assert errors == [] and "invalid_country" not in {v.code for v in warnings}


def test_icao_special_codes_are_those_of_doc_9303_part_3():
    required = {"UNO", "UNA", "UNK", "XXA", "XXB", "XXC", "XXX", "XOM", "XPO", "XES", "XCC", "XBA", "XIM"}
    required |= {"EUE", "GBD", "GBN", "GBO", "GBP", "GBS", "D", "RKS", "XCO", "XEC"}
    assert required <= ICAO_SPECIAL_CODES
    assert "UTO" not in ICAO_SPECIAL_CODES  # the Doc 9303 specimen state: not a real issuer


@pytest.mark.parametrize("code", ["ZZZ", "UTO", "FJ", "DE", "DD", "FIJI", "D<", "123"])
def test_unknown_codes_are_invalid_for_each_country_field(code):
    m = _manifest()
    t = m.travellers[1]
    t.nationality = t.residence = t.documents[0].issuing_state = code
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {
        ("travellers[1].nationality", "invalid_country"),
        ("travellers[1].residence", "invalid_country"),
        ("travellers[1].documents[0].issuing_state", "invalid_country"),
    }


def test_a_name_in_a_country_field_is_not_echoed():
    m = _manifest()
    m.travellers[0].nationality = SURNAME
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("travellers[0].nationality", "invalid_country")}


# -- birth dates ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dob",
    [
        PD(year=1990),
        PD(year=1990, month=7),
        PD(year=2026, month=3, day=10),  # born on the day of departure
        PD(year=2026, month=3),  # partial: may be before the 10th
        PD(year=2026),
        PD(year=1896, month=3, day=10),  # exactly 130 years
        PD(year=1896),  # may be December 1896: within 130 years
        PD(year=2000, month=2, day=29),
    ],
)
def test_possible_birth_dates_pass(dob):
    m = _manifest()
    m.travellers[1].date_of_birth.CopyFrom(dob)
    assert _check(m) == ([], [])


@pytest.mark.parametrize(
    ("dob", "code"),
    [
        (PD(year=2026, month=3, day=11), "birth_date_in_future"),
        (PD(year=2026, month=4), "birth_date_in_future"),
        (PD(year=2027), "birth_date_in_future"),
        (PD(year=2087, month=4, day=23), "birth_date_in_future"),  # a 2-digit year put in the wrong century
        (PD(year=1896, month=3, day=9), "birth_date_too_old"),
        (PD(year=1895), "birth_date_too_old"),
        (PD(year=1, month=1, day=1), "birth_date_too_old"),
        (PD(year=1990, day=5), "invalid_date"),  # a day without a month
        (PD(month=5), "invalid_date"),
        (PD(year=-5), "invalid_date"),
        (PD(year=10000), "invalid_date"),
    ],
)
def test_impossible_future_and_too_old_birth_dates_are_warnings(dob, code):
    """Screened without the birth date (cleaning drops it): a wrong one would mislead matching."""
    m = _manifest()
    m.travellers[1].date_of_birth.CopyFrom(dob)
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("travellers[1].date_of_birth", code)}
    assert code in DROPPED_CODES


@pytest.mark.parametrize(
    "dob", [PD(year=1990, month=2, day=29), PD(year=1990, month=13), PD(year=1974, month=1, day=32)]
)
def test_a_slip_in_one_part_of_a_birth_date_is_screened_with_a_warning(dob):
    """Reject only what cannot be screened: a day 32 or a month 13 still has a year (and a month) to compare."""
    m = _manifest()
    m.travellers[1].date_of_birth.CopyFrom(dob)
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) >= {("travellers[1].date_of_birth", "impossible_date")}


def test_birth_date_may_be_the_local_date_of_departure_east_of_utc():
    m = _manifest()
    m.legs[0].scheduled_departure.CopyFrom(_ts(datetime(2026, 3, 10, 20, 0, tzinfo=UTC)))  # 11th in Fiji
    m.legs[0].scheduled_arrival.CopyFrom(_ts(datetime(2026, 3, 11, 0, 0, tzinfo=UTC)))
    m.travellers[1].date_of_birth.CopyFrom(PD(year=2026, month=3, day=11))
    assert _check(m) == ([], [])
    m.travellers[1].date_of_birth.CopyFrom(PD(year=2026, month=3, day=12))
    assert _codes(_check(m)[1]) == {("travellers[1].date_of_birth", "birth_date_in_future")}


def test_birth_date_without_departure_is_judged_against_today():
    m = _manifest()
    tomorrow = datetime.now(UTC).date() + timedelta(days=2)
    m.legs[0].ClearField("scheduled_departure")
    m.travellers[1].date_of_birth.CopyFrom(PD(year=tomorrow.year, month=tomorrow.month, day=tomorrow.day))
    errors, warnings = _check(m)
    assert _codes(errors) == {("legs[0].scheduled_departure", "required")}  # the first departure keys the flight
    assert _codes(warnings) == {("travellers[1].date_of_birth", "birth_date_in_future")}


def test_missing_birth_date_warns():
    m = _manifest()
    m.travellers[1].ClearField("date_of_birth")
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("travellers[1].date_of_birth", "missing")}


# -- document expiry -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expiry", [PD(year=2026, month=3, day=10), PD(year=2026, month=3), PD(year=2026), PD(year=2036), PD()]
)
def test_expiry_on_or_after_departure_passes(expiry):
    m = _manifest()
    m.travellers[1].documents[0].expiry.CopyFrom(expiry)
    assert _check(m) == ([], [])


@pytest.mark.parametrize("expiry", [PD(year=2026, month=3, day=9), PD(year=2026, month=2), PD(year=2025)])
def test_expired_document_is_a_warning_not_an_error(expiry):
    m = _manifest()
    m.travellers[1].documents[0].expiry.CopyFrom(expiry)
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("travellers[1].documents[0].expiry", "document_expired")}


@pytest.mark.parametrize("expiry", [PD(year=2030, month=2, day=30), PD(year=2030, month=0, day=4), PD(month=1)])
def test_impossible_expiry_is_a_warning(expiry):
    m = _manifest()
    m.travellers[1].documents[0].expiry.CopyFrom(expiry)
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("travellers[1].documents[0].expiry", "invalid_date")}


def test_a_document_without_number_warns():
    m = _manifest()
    m.travellers[2].documents[0].number = "  "
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("travellers[2].documents[0].number", "required")}


# -- MRZ -----------------------------------------------------------------------------------------------------
def _td3(number=DOC_NUMBER, state="FJI", nationality="FJI", birth="870423", sex="M", expiry="310423") -> str:
    l1 = f"P<{state:<<3}{SURNAME}<<{GIVEN}".ljust(44, "<")
    num = f"{number:<<9}"
    l2 = f"{num}{check_digit(num)}{nationality:<<3}{birth}{check_digit(birth)}{sex}"
    l2 += f"{expiry}{check_digit(expiry)}" + "<" * 14 + "0"
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:43])
    return f"{l1}\n{l2}"


def _with_mrz(mrz: str) -> manifest_pb2.Manifest:
    m = _manifest()
    m.travellers[0].documents[0].mrz = mrz
    return m


def test_mrz_that_agrees_with_the_structured_fields_passes():
    assert _check(_with_mrz(_td3())) == ([], [])
    assert _check(_with_mrz(_td3().replace("\n", ""))) == ([], [])


def test_mrz_check_digit_failure_is_a_warning_naming_the_digit():
    lines = _td3().split("\n")
    bad = lines[1][:19] + str((int(lines[1][19]) + 1) % 10) + lines[1][20:]  # birth date check digit
    errors, warnings = _check(_with_mrz(lines[0] + "\n" + bad))
    assert errors == []
    assert _codes(warnings) == {("travellers[0].documents[0].mrz", "mrz_check_digit")}
    assert len(warnings) == 2
    assert "date of birth check digit" in warnings[0].description and "(birth_date)" in warnings[0].description
    assert "composite check digit" in warnings[1].description


def test_mrz_that_is_not_a_zone_is_a_warning():
    errors, warnings = _check(_with_mrz(_td3()[:-3]))
    assert errors == [] and _codes(warnings) == {("travellers[0].documents[0].mrz", "invalid_mrz")}


@pytest.mark.parametrize(
    ("mrz", "field"),
    [
        (_td3(number="QX9876544"), "travellers[0].documents[0].number"),
        (_td3(birth="870424"), "travellers[0].date_of_birth"),
        (_td3(birth="880423"), "travellers[0].date_of_birth"),
        (_td3(expiry="310424"), "travellers[0].documents[0].expiry"),
        (_td3(nationality="TON"), "travellers[0].nationality"),
        (_td3(state="NZL"), "travellers[0].documents[0].issuing_state"),
    ],
)
def test_mrz_disagreeing_with_structured_fields_warns(mrz, field):
    errors, warnings = _check(_with_mrz(mrz))
    assert errors == []
    assert _codes(warnings) == {(field, "mrz_mismatch")}


def test_mrz_comparison_tolerates_partial_dates_punctuation_and_the_german_d():
    m = _with_mrz(_td3(nationality="D", state="D"))
    t = m.travellers[0]
    t.nationality = t.residence = t.documents[0].issuing_state = "DEU"
    t.date_of_birth.CopyFrom(PD(year=1987))
    t.documents[0].number = "qx-987 6543"
    assert _check(m) == ([], [])
    # an MRZ with an unknown birth month and day
    assert _check(_with_mrz(_td3(birth="87<<<<"))) == ([], [])


# -- required fields per message function --------------------------------------------------------------------
@pytest.mark.parametrize(
    "function", [M.MESSAGE_FUNCTION_ORIGINAL, M.MESSAGE_FUNCTION_CLOSE_OUT, M.MESSAGE_FUNCTION_CHANGE]
)
def test_original_close_out_and_change_need_travellers(function):
    m = _manifest()
    m.function = function
    assert _check(m)[0] == []
    del m.travellers[:]
    assert _codes(_check(m)[0]) == {("travellers", "required")}


def test_cancel_may_have_no_travellers():
    m = _manifest()
    m.function = M.MESSAGE_FUNCTION_CANCEL
    del m.travellers[:]
    assert _check(m) == ([], [])


def test_change_needs_a_passenger_ref_on_every_traveller():
    m = _manifest()
    m.function, m.amendment = M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CHANGED_DATA
    assert _check(m)[0] == []
    m.travellers[2].passenger_ref = ""
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("travellers[2].passenger_ref", "required")}
    m.function = M.MESSAGE_FUNCTION_ORIGINAL  # an original may leave it out
    assert _check(m) == ([], [])


def test_unset_and_unknown_enum_values_are_warnings():
    m = _manifest()
    m.function = M.MESSAGE_FUNCTION_UNSPECIFIED
    m.transport_mode = 9
    m.amendment = 7
    m.travellers[1].role = 42
    m.travellers[1].sex = 8
    m.travellers[1].documents[0].type = 99
    errors, warnings = _check(m)
    assert errors == []
    assert "screened as an ORIGINAL" in next(v.description for v in warnings if v.field == "function")
    assert "screened as AIR" in next(v.description for v in warnings if v.field == "transport_mode")
    assert _codes(warnings) == {
        ("function", "required"),
        ("transport_mode", "invalid_value"),
        ("amendment", "invalid_value"),
        ("travellers[1].role", "invalid_value"),
        ("travellers[1].sex", "invalid_value"),
        ("travellers[1].documents[0].type", "invalid_value"),
    }


# -- passengers and crew alike -------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [1, 4])  # a passenger and a crew member
def test_passengers_and_crew_without_surname_or_role_are_screened_with_warnings(index):
    m = _manifest()
    m.travellers[index].surname = ""
    m.travellers[index].role = M.TRAVELLER_ROLE_UNSPECIFIED
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {
        (f"travellers[{index}].surname", "required"),
        (f"travellers[{index}].role", "required"),
    }


@pytest.mark.parametrize(("surname", "given"), [("", ""), ("  ", "-"), ("123", "<<"), ("\u200b", "")])
def test_a_traveller_without_a_letter_in_its_names_is_skipped_by_index_and_reference(surname, given):
    m = _manifest()
    t = m.travellers[2]
    t.surname, t.given_names, t.passenger_ref = surname, given, "FJ411-P3"
    t.nationality = "ZZZ"  # not reported: the traveller is not stored
    errors, warnings = _check(m)
    assert errors == []
    [skipped] = warnings
    assert (skipped.field, skipped.code) == ("travellers[2]", SKIPPED_TRAVELLER)
    assert "travellers[2]" in skipped.description and "'FJ411-P3'" in skipped.description


def test_a_reference_that_is_not_a_plain_code_is_not_echoed():
    m = _manifest()
    t = m.travellers[2]
    t.surname = t.given_names = ""
    t.passenger_ref = f"{SURNAME} \x1b]0;pwned\x07"
    [skipped] = _check(m)[1]
    assert SURNAME not in skipped.description and "\x1b" not in skipped.description


def test_a_manifest_where_nobody_has_a_usable_name_is_rejected():
    m = _manifest()
    for t in m.travellers:
        t.surname, t.given_names = "", "?"
    errors, warnings = _check(m)
    assert _codes(errors) == {("travellers", "no_usable_name")}
    assert len(warnings) == len(m.travellers)


def test_a_removal_names_travellers_by_reference_alone():
    m = _manifest()
    m.function, m.amendment = M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CANCELLED_RESERVATION
    t = m.travellers[1]
    t.surname = t.given_names = ""
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("travellers[1].surname", "required")}


@pytest.mark.parametrize("role", [M.TRAVELLER_ROLE_TRANSIT_CREW, M.TRAVELLER_ROLE_TRANSIT_PASSENGER])
def test_transit_roles_are_valid(role):
    m = _manifest()
    m.travellers[4].role = role
    assert _check(m) == ([], [])


@pytest.mark.parametrize("index", [1, 4])
def test_traveller_without_a_document_warns(index):
    m = _manifest()
    del m.travellers[index].documents[:]
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {(f"travellers[{index}].documents", "missing")}


def test_removal_amendment_does_not_ask_for_documents():
    m = _manifest()
    m.function, m.amendment = M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CANCELLED_RESERVATION
    del m.travellers[1].documents[:]
    assert _check(m) == ([], [])


def test_sex_unspecified_and_x_are_fine():
    m = _manifest()
    m.travellers[1].sex = M.SEX_UNSPECIFIED
    m.travellers[2].sex = M.SEX_X
    assert _check(m) == ([], [])


def test_duplicate_passenger_ref_is_a_warning_on_the_repeat():
    m = _manifest()
    m.travellers[5].passenger_ref = m.travellers[1].passenger_ref
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("travellers[5].passenger_ref", "duplicate_passenger_ref")}
    assert "travellers[1]" in warnings[0].description
    m.travellers[1].passenger_ref = m.travellers[2].passenger_ref = ""  # no reference is no duplicate
    m.travellers[5].passenger_ref = "FJ411-X99"
    assert _check(m)[0] == []


def test_embarkation_and_debarkation_must_be_ports():
    m = _manifest()
    m.travellers[1].embarkation, m.travellers[1].debarkation = "NAN", "SYD"
    assert _check(m)[0] == []
    m.travellers[1].embarkation, m.travellers[1].debarkation = "QQQ", "XX1"
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {
        ("travellers[1].embarkation", "unknown_port"),
        ("travellers[1].debarkation", "unknown_port"),
    }


# -- legs ----------------------------------------------------------------------------------------------------
def _two_legs(second_origin: str = "SYD") -> manifest_pb2.Manifest:
    m = _manifest()
    leg = m.legs.add(origin=second_origin, destination="TBU")
    leg.scheduled_departure.CopyFrom(_ts(DEPARTURE + timedelta(hours=5)))
    leg.scheduled_arrival.CopyFrom(_ts(DEPARTURE + timedelta(hours=9)))
    return m


def test_connected_legs_pass_and_a_gap_warns():
    assert _check(_two_legs()) == ([], [])
    errors, warnings = _check(_two_legs("NAN"))
    assert errors == []
    assert _codes(warnings) == {("legs[1].origin", "legs_not_connected")}
    assert "'NAN'" in warnings[0].description and "'SYD'" in warnings[0].description


def test_origin_equal_to_destination_warns():
    m = _manifest()
    m.legs[0].destination = "nan"
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("legs[0].destination", "same_port")}


@pytest.mark.parametrize("hours", [0, -2, -13])  # -13: a carrier's local time sent as UTC across the date line
def test_arrival_before_departure_warns_and_the_travellers_are_screened(hours):
    m = _manifest()
    m.legs[0].scheduled_arrival.CopyFrom(_ts(DEPARTURE + timedelta(hours=hours)))
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("legs[0].scheduled_arrival", "arrival_before_departure")}
    assert "arrival_before_departure" not in DROPPED_CODES  # which of the two times is wrong is unknown


def test_a_leg_departing_before_the_previous_one_warns():
    m = _two_legs()
    m.legs[1].scheduled_departure.CopyFrom(_ts(DEPARTURE - timedelta(hours=20)))
    m.legs[1].scheduled_arrival.CopyFrom(_ts(DEPARTURE - timedelta(hours=16)))
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("legs[1].scheduled_departure", "departure_before_previous_leg")}


def test_only_the_first_leg_keys_the_flight():
    m = _two_legs()
    m.legs[1].destination = "QQQ"
    m.legs[1].ClearField("scheduled_departure")
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("legs[1].destination", "unknown_port"), ("legs[1].scheduled_departure", "required")}
    m.legs[0].origin = ""
    assert _codes(_check(m)[0]) == {("legs[0].origin", "required")}


def test_arrival_is_optional():
    m = _manifest()
    m.legs[0].ClearField("scheduled_arrival")
    assert _check(m) == ([], [])


def test_timestamps_out_of_range_are_invalid_dates():
    m = _manifest()
    m.legs[0].scheduled_arrival.nanos = -1
    errors, warnings = _check(m)
    assert errors == [] and _codes(warnings) == {("legs[0].scheduled_arrival", "invalid_date")}
    m.legs[0].scheduled_departure.seconds = 10**15
    assert _codes(_check(m)[0]) == {("legs[0].scheduled_departure", "invalid_date")}


def test_sea_voyage_with_an_airport_code_warns():
    m = _manifest()
    m.transport_mode = M.TRANSPORT_MODE_SEA
    m.legs[0].origin = "FJSUV"  # destination stays SYD, an airport
    errors, warnings = _check(m)
    assert errors == []
    assert _codes(warnings) == {("legs[0].destination", "not_a_locode")}
    m.transport_mode = M.TRANSPORT_MODE_AIR
    assert _check(m) == ([], [])


def _no_flight_number(m):
    m.flight_number = " "


def _bad_carrier(m):
    m.carrier = "F\u200bJ"


def _first_origin_unknown(m):
    m.legs[0].origin = "QQQ"


def _first_destination_missing(m):
    m.legs[0].destination = ""


def _first_departure_missing(m):
    m.legs[0].ClearField("scheduled_departure")


def _no_legs(m):
    del m.legs[:]


def _no_travellers(m):
    del m.travellers[:]


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (_no_flight_number, "flight_number"),
        (_bad_carrier, "carrier"),
        (_first_origin_unknown, "legs[0].origin"),
        (_first_destination_missing, "legs[0].destination"),
        (_first_departure_missing, "legs[0].scheduled_departure"),
        (_no_legs, "legs"),
        (_no_travellers, "travellers"),
    ],
)
def test_only_a_manifest_without_a_flight_or_anybody_to_screen_is_rejected(spoil, field):
    m = _manifest()
    spoil(m)
    assert _fields(_check(m)[0]) == {field}


def test_legs_are_required():
    m = _manifest()
    del m.legs[:]
    assert _codes(_check(m)[0]) == {("legs", "required")}


# -- personal data stays out of every description ------------------------------------------------------------
def test_no_personal_data_in_any_description_when_everything_is_wrong():
    m = _with_mrz(_td3(number="QX9876544", birth="870424"))
    lines = m.travellers[0].documents[0].mrz.split("\n")
    m.travellers[0].documents[0].mrz = lines[0] + "\n" + lines[1][:5] + "7" + lines[1][6:]
    t = m.travellers[0]
    t.nationality = GIVEN
    t.residence = DOC_NUMBER
    t.embarkation = SURNAME
    t.documents[0].issuing_state = f"{SURNAME} {GIVEN}"
    t.documents[0].expiry.CopyFrom(PD(year=2020))
    t.date_of_birth.CopyFrom(PD(year=2087, month=4, day=23))
    m.travellers[1].passenger_ref = t.passenger_ref
    errors, warnings = _check(m)  # _check asserts no surname, given name, number or MRZ in descriptions
    assert errors == [] and len(warnings) >= 10
    for v in errors + warnings:
        for secret in (SURNAME, GIVEN, DOC_NUMBER, "QX9876544", "870423", "870424", "1987", "2087"):
            assert secret not in v.description, (v.field, v.code)
