"""PAXLST reader and writer: the public samples, every tolerance and rejection case, amendments and close-out,
custom delimiters, and the writer's round trip. All personal data here is invented."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from paxlst_cases import BASE, accepted, codes, message, no_personal_data, only, read, utc
from samples import astra_interchanges, sample

from services.paxlst.reader import MAX_BYTES, looks_like_paxlst, parse_paxlst, split_interchanges
from services.paxlst.syntax import MAX_SEGMENTS, Delimiters, tokenise
from services.paxlst.writer import render_interchange, render_paxlst
from services.wire import manifest_pb2
from synthetic.traffic import DemoTraffic

M = manifest_pb2


# -- the base message ---------------------------------------------------------------------------------------


def test_base_message_maps_every_field():
    msg = message(BASE)
    assert msg.errors == [] and msg.warnings == []
    m = msg.manifest
    assert (m.carrier, m.flight_number, m.transport_mode) == ("FJ", "411", M.TRANSPORT_MODE_AIR)
    assert (m.function, m.amendment) == (M.MESSAGE_FUNCTION_ORIGINAL, M.AMENDMENT_UNSPECIFIED)
    assert (m.message_ref, m.revision, m.source_format) == ("FJ411A", 2, "paxlst")
    assert m.sent_at.seconds == utc(2026, 3, 1, 9, 0)
    [leg] = m.legs
    assert (leg.origin, leg.destination) == ("NAN", "SYD")
    # Local times: Fiji UTC+12, Sydney UTC+11 (daylight saving) in March.
    assert leg.scheduled_departure.seconds == utc(2026, 3, 1, 22, 30)
    assert leg.scheduled_arrival.seconds == utc(2026, 3, 2, 2, 30)
    pax, crew = m.travellers
    assert pax.role == M.TRAVELLER_ROLE_PASSENGER and crew.role == M.TRAVELLER_ROLE_CREW
    assert (pax.surname, pax.given_names, pax.sex) == ("TAVOLA", "JOSEFA PENI", M.SEX_MALE)
    assert (pax.date_of_birth.year, pax.date_of_birth.month, pax.date_of_birth.day) == (1985, 4, 12)
    assert (pax.nationality, pax.residence, pax.embarkation, pax.debarkation) == ("FJI", "FJI", "NAN", "SYD")
    assert (pax.reservation_locator, pax.passenger_ref, pax.seat) == ("Q7ZK2M", "FJ411-001", "12C")
    passport, visa = pax.documents
    assert (passport.type, passport.number, passport.issuing_state) == (M.DOCUMENT_TYPE_PASSPORT, "FJ1234567", "FJI")
    assert (passport.expiry.year, passport.expiry.month, passport.expiry.day) == (2030, 1, 15)
    assert (visa.type, visa.issuing_state, visa.expiry.year) == (M.DOCUMENT_TYPE_VISA, "AUS", 2027)
    assert crew.documents[0].type == M.DOCUMENT_TYPE_CREW_LICENCE
    assert (crew.surname, crew.given_names, crew.sex) == ("HAVILI", "MELE", M.SEX_FEMALE)
    assert all(t.boarding == M.BOARDING_STATUS_UNSPECIFIED for t in m.travellers)


def test_locations_name_the_segment_of_each_field_with_prefix_fallback():
    msg = message(BASE)
    assert msg.locations["travellers[0].nationality"] == "#17 NAT"
    assert msg.locate("travellers[0].documents[1].expiry") == "#25 DTM"
    assert msg.locate("travellers[0].documents[1].issuing_state") == "#26 LOC"
    assert msg.locate("travellers[1].date_of_birth") == "#29 DTM"
    # Not carried by PAXLST: the document's segment, then the traveller's NAD, then the message's UNH.
    assert msg.locate("travellers[0].documents[0].mrz") == "#21 DOC"
    assert msg.locate("travellers[1].booking.payment_form") == "#27 NAD"
    assert msg.locate("legs[0].scheduled_departure") == "#8 DTM"
    assert msg.locate("legs[0].origin") == "#7 LOC"
    assert msg.locate("carrier") == "#6 TDT"
    assert msg.locate("function") == "#3 BGM"
    assert msg.locate("revision") == "#4 RFF"
    assert msg.locate("received_at") == "#2 UNH"


def test_raw_is_the_message_text_as_received():
    msg = message(BASE)
    assert msg.raw.startswith(b"UNH+1+PAXLST") and msg.raw.endswith(b"UNT+35+1'")
    assert msg.raw in BASE.encode()


def test_cnt_is_a_flight_total_not_compared_with_the_message():
    # CNT+42:150 with one passenger in the message is normal (guide example 5.1).
    assert message(BASE).warnings == []


def test_cnt_below_the_travellers_of_the_message_is_a_warning():
    msg = message(BASE.replace("CNT+41:8'", "CNT+41:0'"))
    assert msg.errors == []
    assert only(msg.warnings, "control_total").segment == "#35 CNT"


# -- the public samples ---------------------------------------------------------------------------------------


def _sample(name: str) -> bytes:
    return sample(name)


def test_guide_examples_5_1_5_2_5_3_are_accepted():
    parts = split_interchanges(_sample("wco_iata_guide_examples_5_1_5_2_5_3.edi"))
    assert len(parts) == 3
    ex51, ex52, ex53 = (read(p) for p in parts)
    for ic in (ex51, ex52, ex53):
        assert ic.errors == []
        assert len(ic.messages) == 1 and ic.messages[0].errors == []

    m = ex51.messages[0].manifest
    assert [t.role for t in m.travellers] == [M.TRAVELLER_ROLE_PASSENGER]
    assert (m.carrier, m.flight_number, m.legs[0].origin, m.legs[0].destination) == ("ZZ", "123", "SYD", "HNL")
    assert m.legs[0].scheduled_departure.seconds == utc(2013, 6, 20, 23, 0)  # 09:00 in Sydney (UTC+10)
    assert m.legs[0].scheduled_arrival.seconds == utc(2013, 6, 22, 8, 0)  # 22:00 in Honolulu (UTC-10)
    t = m.travellers[0]
    assert (t.surname, t.given_names, t.passenger_ref, t.reservation_locator) == (
        "WILLIAMS",
        "JOHN DONALD",
        "ABC123",
        "TYR123",
    )
    assert (t.documents[0].expiry.year, t.date_of_birth.year) == (2015, 1972)
    # "DTM+232: 1306212200:201" is trimmed, with a warning; CNT+42:160 is the flight total: no warning.
    assert only(ex51.warnings, "blank_values").segment == "#12 DTM"
    assert ex51.messages[0].warnings == []

    assert [t.role for t in ex52.messages[0].manifest.travellers] == [M.TRAVELLER_ROLE_CREW]
    # The guide's UNT+20 for 21 segments.
    assert only(ex52.messages[0].warnings, "segment_count").segment == "#23 UNT"

    m = ex53.messages[0].manifest
    assert [t.role for t in m.travellers] == [M.TRAVELLER_ROLE_PASSENGER] * 2
    assert [(leg.origin, leg.destination) for leg in m.legs] == [("BCN", "IAD"), ("IAD", "SFO")]
    assert (m.message_ref, m.revision) == ("BART34567890", 1)
    assert all(leg.HasField("scheduled_departure") and leg.HasField("scheduled_arrival") for leg in m.legs)


def test_astra_iapi_sample_paxlst_accepted_and_cusres_named_as_not_paxlst():
    interchanges = [read(data, today=date(2025, 6, 1)) for data in astra_interchanges()]
    assert len(interchanges) == 6
    paxlst, cusres = [], []
    for ic in interchanges:
        assert ic.errors == []
        for msg in ic.messages:
            (cusres if codes(msg.errors) == {"not_paxlst"} else paxlst).append(msg)
    assert len(paxlst) == 3 and len(cusres) == 3
    for msg in cusres:
        assert msg.manifest is None
        assert "not a PAXLST message" in msg.errors[0].description and msg.errors[0].segment == "#3 UNH"
    for msg in paxlst:
        assert msg.errors == [], msg.errors
    counts = [len(msg.manifest.travellers) for msg in paxlst]
    assert counts == [2, 1, 1] and sum(counts) == 4
    first, original, corrected = (msg.manifest for msg in paxlst)
    assert (first.carrier, first.flight_number) == ("CA", "339")
    assert [t.passenger_ref for t in first.travellers] == ["PAX_ID1", "PAX_ID2"]
    assert first.travellers[0].documents[0].type == M.DOCUMENT_TYPE_PASSPORT
    assert original.travellers[0].documents[0].type == M.DOCUMENT_TYPE_OTHER  # DOC+T:110:ZZZ
    assert (original.function, corrected.function) == (M.MESSAGE_FUNCTION_ORIGINAL, M.MESSAGE_FUNCTION_CHANGE)
    assert corrected.amendment == M.AMENDMENT_CHANGED_DATA and corrected.message_ref == "0000103"
    assert (original.travellers[0].documents[0].expiry.year, corrected.travellers[0].documents[0].expiry.year) == (
        2026,
        2027,
    )


# -- tolerance: accepted, with a warning where the text deviates from the syntax -------------------------------


def _same_people(m: M.Manifest) -> None:
    expected = accepted(BASE)
    assert m.travellers == expected.travellers and m.legs == expected.legs
    assert (m.carrier, m.flight_number, m.message_ref, m.revision) == ("FJ", "411", "FJ411A", 2)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(BASE.replace("\n", ""), id="one-line"),
        pytest.param(BASE.replace("\n", "\r\n"), id="crlf"),
        pytest.param("UNA:+.? '\n" + BASE, id="default-una"),
        pytest.param("\x01QU SYDAPXH\r\n.FJNANXH 010900\r\n\x02" + BASE + "\x03", id="teletype-stx-etx"),
        pytest.param("\ufeff\n\n  " + BASE, id="bom-and-blank-lines"),
    ],
)
def test_layout_variants_read_the_same(variant):
    msg = message(variant)
    assert msg.errors == [] and msg.warnings == []
    _same_people(msg.manifest)


def test_leading_spaces_before_tags_warn_and_read_the_same():
    text = BASE.replace("\nNAT+2+FJI", "\n   NAT+2+FJI").replace("\nATT", "\n\tATT")
    ic = read(text)
    assert only(ic.warnings, "leading_spaces").segment == "#12 ATT"
    _same_people(accepted(text))


def test_spaces_inside_values_are_trimmed_with_a_warning():
    text = BASE.replace("DTM+189:2603021030:201", "DTM+189: 2603021030 :201").replace("NAT+2+FJI'", "NAT+2+ FJI '")
    ic = read(text)
    assert only(ic.warnings, "blank_values").segment == "#8 DTM"
    _same_people(accepted(text))


def test_header_lines_before_unb_are_skipped_with_a_warning():
    ic = read("From: carrier gateway\nSubject: APIS\n\n" + BASE)
    assert codes(ic.warnings) == {"leading_text"} and ic.messages[0].errors == []


def test_cnt_with_plus_instead_of_colon():
    text = BASE.replace("CNT+41:8", "CNT+41+8")
    msg = message(text)
    assert only(msg.warnings, "cnt_form").segment == "#35 CNT"
    _same_people(msg.manifest)


def test_wrong_unt_count_is_a_warning():
    msg = message(BASE.replace("UNT+35+1", "UNT+152+1"))
    assert msg.errors == []
    warning = only(msg.warnings, "segment_count")
    assert warning.segment == "#36 UNT" and "35" in warning.description


def test_trailing_junk_after_unz_is_a_warning():
    ic = read(BASE + "13Nov09\n")
    warning = only(ic.warnings, "trailing_data")
    assert warning.segment == "#38 13N" and "after UNZ" in warning.description and "line 38" in warning.description
    assert ic.messages[0].errors == []


def test_missing_unz_after_a_complete_message_is_a_warning():
    ic = read(BASE.replace("UNZ+1+IC1'\n", ""))
    assert ic.errors == [] and codes(ic.warnings) == {"missing_unz"}
    assert ic.messages[0].manifest is not None


def test_wrong_unz_count_is_a_warning():
    ic = read(BASE.replace("UNZ+1+IC1", "UNZ+4+IC1"))
    assert ic.errors == [] and only(ic.warnings, "control_count").segment == "#37 UNZ"


def test_ung_une_groups_are_read_through():
    text = BASE.replace("UNH+1", "UNG+PAXLST+FJ+APIHUB+260301:0900+7+UN+D:05B'\nUNH+1").replace(
        "UNZ+1+IC1", "UNE+1+7'\nUNZ+1+IC1"
    )
    ic = read(text)
    assert ic.errors == [] and ic.warnings == []
    assert ic.messages[0].manifest is not None and ic.messages[0].warnings == []


def test_unknown_directory_is_a_warning():
    msg = message(BASE.replace("PAXLST:D:05B", "PAXLST:D:99A"))
    assert msg.errors == [] and only(msg.warnings, "directory").segment == "#2 UNH"


@pytest.mark.parametrize("directory", ["02B", "05B", "15B"])
def test_supported_directories(directory):
    msg = message(BASE.replace("PAXLST:D:05B", f"PAXLST:D:{directory}"))
    assert msg.errors == [] and msg.warnings == []


def test_unknown_segment_inside_a_message_is_ignored_with_a_warning():
    msg = message(BASE.replace("ATT+2++F'", "ATT+2++F'\nXYZ+1+2'"))
    assert msg.errors == [] and only(msg.warnings, "unknown_segment").segment == "#29 XYZ"


def test_unknown_sex_code_is_a_warning_and_u_is_unspecified():
    msg = message(BASE.replace("ATT+2++M", "ATT+2++Q").replace("ATT+2++F", "ATT+2++U"))
    assert msg.errors == [] and only(msg.warnings, "unknown_code").field == "travellers[0].sex"
    assert [t.sex for t in msg.manifest.travellers] == [M.SEX_UNSPECIFIED, M.SEX_UNSPECIFIED]


def test_missing_unb_terminator_is_tolerated():
    ic = read(BASE.rstrip().removesuffix("'"))
    assert ic.errors == [] and codes(ic.warnings) == {"unterminated"}


# -- rejection: errors name the segment (position and tag) and the Manifest field -----------------------------


def test_truncated_message_is_rejected():
    cut = BASE.index("NAT+2+TON")
    ic = read(BASE[:cut])
    assert only(ic.warnings, "truncated").segment == "#29 DTM"
    [msg] = ic.messages
    assert msg.manifest is None and only(msg.errors, "truncated").segment == "#29 DTM"


def test_a_complete_message_before_a_truncated_one_is_read():
    second = BASE[BASE.index("UNH") : BASE.index("NAT+2+TON")]
    ic = read(BASE.replace("UNZ+1+IC1'\n", second))
    assert ic.errors == [] and codes(ic.warnings) == {"truncated"}
    first, cut = ic.messages
    assert first.manifest is not None and cut.manifest is None and codes(cut.errors) == {"truncated"}


def test_message_without_unt_before_the_next_unh_is_rejected():
    text = BASE.replace("UNT+35+1'\n", "").replace("UNZ+1+IC1'", BASE[BASE.index("UNH") :].strip())
    ic = read(text)
    assert [m.manifest is None for m in ic.messages] == [True, False]
    assert codes(ic.messages[0].errors) == {"truncated"}


def test_message_without_unh_is_rejected_naming_its_first_segment():
    ic = read(BASE.replace("UNH+1+PAXLST:D:05B:UN:IATA'\n", ""))
    assert ic.errors == []
    [msg] = ic.messages
    assert msg.manifest is None and only(msg.errors, "missing_unh").segment == "#2 BGM"


def test_message_without_unb_is_read_with_a_warning():
    ic = read(BASE[BASE.index("UNH") :])
    assert only(ic.warnings, "missing_unb").segment == "#1 UNH"
    assert ic.messages[0].manifest.travellers[0].surname == "TAVOLA"


def test_missing_bgm_is_read_as_an_original_list_with_a_warning():
    msg = message(BASE.replace("BGM+745'\n", ""))
    warning = only(msg.warnings, "missing_bgm")
    assert (warning.field, warning.segment) == ("function", "#3 RFF")
    assert msg.errors == [] and msg.manifest.function == M.MESSAGE_FUNCTION_ORIGINAL
    assert len(msg.manifest.travellers) == 2


@pytest.mark.parametrize("bgm", ["BGM+745+ZZ", "BGM+999", "BGM+266", "BGM+266+CF", "BGM+336+G"])
def test_unknown_message_function_is_read_as_an_original_list_with_a_warning(bgm):
    """Screened, and nothing removed: an unknown function might be a cancellation the hub cannot tell."""
    msg = message(BASE.replace("BGM+745", bgm))
    warning = only(msg.warnings, "unknown_function")
    assert (warning.field, warning.segment) == ("function", "#3 BGM")
    assert msg.errors == []
    m = msg.manifest
    assert (m.function, m.amendment, len(m.travellers)) == (M.MESSAGE_FUNCTION_ORIGINAL, 0, 2)
    assert all(t.boarding == M.BOARDING_STATUS_UNSPECIFIED for t in m.travellers)


@pytest.mark.parametrize(
    ("old", "new", "field", "segment"),
    [
        ("DTM+329:850412", "DTM+329:8504", "travellers[0].date_of_birth", "#13 DTM"),
        ("DTM+329:850412", "DTM+329:85O412", "travellers[0].date_of_birth", "#13 DTM"),
        ("DTM+329:850412", "DTM+329:20990412:102", "travellers[0].date_of_birth", "#13 DTM"),
        ("DTM+329:900101", "DTM+329:900101:999", "travellers[1].date_of_birth", "#29 DTM"),
        ("DTM+36:270301", "DTM+36:270229", "travellers[0].documents[1].expiry", "#25 DTM"),
        ("DTM+189:2603021030:201", "DTM+189:2603021060:201", "legs[0].scheduled_departure", "#8 DTM"),
        ("DTM+232:2603021330:201", "DTM+232:26030213:201", "legs[0].scheduled_arrival", "#10 DTM"),
    ],
)
def test_impossible_or_partial_dates_are_left_out_with_a_warning(old, new, field, segment):
    msg = message(BASE.replace(old, new))
    warning = only(msg.warnings, "invalid_date")
    assert (warning.field, warning.segment) == (field, segment)
    assert msg.errors == [] and msg.manifest is not None
    owner, _, name = field.rpartition(".")
    holder = msg.manifest
    for step in owner.replace("]", "").split("."):
        attr, _, index = step.partition("[")
        holder = getattr(holder, attr)[int(index)]
    assert not holder.HasField(name)
    no_personal_data(msg.warnings)


@pytest.mark.parametrize(("new", "kept"), [("DTM+329:851332", (1985, 0, 0)), ("DTM+329:850230", (1985, 2, 0))])
def test_a_slip_in_one_part_of_a_birth_date_keeps_its_possible_parts(new, kept):
    """Reject only what cannot be screened: month 13 or 30 February keep the year (and the month)."""
    msg = message(BASE.replace("DTM+329:850412", new))
    assert msg.errors == [] and msg.manifest is not None
    warning = only(msg.warnings, "impossible_date")
    assert (warning.field, warning.segment) == ("travellers[0].date_of_birth", "#13 DTM")
    dob = msg.manifest.travellers[0].date_of_birth
    assert (dob.year, dob.month, dob.day) == kept
    no_personal_data(msg.warnings)


def test_traveller_without_surname_is_kept_for_intake_to_judge():
    msg = message(BASE.replace("NAD+FM+++HAVILI:MELE", "NAD+FM+++:MELE"))
    assert msg.errors == []
    crew = msg.manifest.travellers[1]
    assert (crew.surname, crew.given_names) == ("", "MELE")
    assert msg.locate("travellers[1].surname") == "#27 NAD"


def test_unknown_party_qualifier_is_read_as_a_passenger_with_a_warning():
    msg = message(BASE.replace("NAD+FM+++", "NAD+ZZ+++"))
    warning = only(msg.warnings, "unknown_role")
    assert (warning.field, warning.segment) == ("travellers[1].role", "#27 NAD")
    assert msg.errors == [] and msg.manifest.travellers[1].role == M.TRAVELLER_ROLE_PASSENGER


def test_non_numeric_revision_is_left_out_with_a_warning():
    msg = message(BASE.replace("RFF+TN:FJ411A:::2", "RFF+TN:FJ411A:::B"))
    warning = only(msg.warnings, "invalid_revision")
    assert (warning.field, warning.segment) == ("revision", "#4 RFF")
    assert msg.errors == [] and (msg.manifest.message_ref, msg.manifest.revision) == ("FJ411A", 0)


def test_message_without_tdt_is_rejected():
    msg = message(BASE.replace("TDT+20+FJ411+++FJ'\n", ""))
    assert only(msg.errors, "missing_tdt").field == "legs"


def test_all_errors_of_a_message_are_reported_without_personal_data():
    text = BASE.replace("DTM+329:850412", "DTM+329:85O412").replace("TDT+20+FJ411+++FJ'\n", "")
    msg = message(text)
    assert codes(msg.errors) == {"missing_tdt"} and "invalid_date" in codes(msg.warnings)
    no_personal_data([*msg.errors, *msg.warnings])


def test_second_interchange_after_unz_is_rejected():
    ic = read(BASE + BASE)
    assert only(ic.errors, "several_interchanges").segment == "#38 UNB"
    parts = split_interchanges((BASE + BASE).encode())
    assert len(parts) == 2 and b"".join(parts) == (BASE + BASE).encode().rstrip()
    assert all(read(part).errors == [] for part in parts)


def test_oversized_input_is_rejected_not_parsed():
    ic = parse_paxlst(b"A" * (MAX_BYTES + 1))
    assert codes(ic.errors) == {"too_large"} and ic.messages == []
    ic = parse_paxlst(BASE.encode() + b"FTX'" * (MAX_SEGMENTS + 1))
    assert codes(ic.errors) == {"too_large"}


@pytest.mark.parametrize("data", [b"", b"   \n", b"hello world", b'{"carrier": "FJ"}', b"\x00\xff\xfe" * 10])
def test_non_edifact_input_is_rejected(data):
    ic = parse_paxlst(data)
    assert ic.errors and ic.messages == []
    assert "internal_error" not in codes(ic.errors)


# -- message functions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bgm", "function", "amendment"),
    [
        ("BGM+745", M.MESSAGE_FUNCTION_ORIGINAL, M.AMENDMENT_UNSPECIFIED),
        ("BGM+250", M.MESSAGE_FUNCTION_ORIGINAL, M.AMENDMENT_UNSPECIFIED),
        ("BGM+250+C", M.MESSAGE_FUNCTION_ORIGINAL, M.AMENDMENT_UNSPECIFIED),
        ("BGM+745+CP", M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CHANGED_DATA),
        ("BGM+745+XR", M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CANCELLED_RESERVATION),
        ("BGM+745+RP", M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_REDUCTION_IN_PARTY),
        ("BGM+266+XF", M.MESSAGE_FUNCTION_CANCEL, M.AMENDMENT_UNSPECIFIED),
    ],
)
def test_message_functions(bgm, function, amendment):
    m = accepted(BASE.replace("BGM+745", bgm))
    assert (m.function, m.amendment) == (function, amendment)
    assert all(t.boarding == M.BOARDING_STATUS_UNSPECIFIED for t in m.travellers)


@pytest.mark.parametrize(
    ("code", "boarding"), [("CLOB", M.BOARDING_STATUS_BOARDED), ("CLNB", M.BOARDING_STATUS_NOT_BOARDED)]
)
def test_close_out_marks_every_traveller(code, boarding):
    m = accepted(BASE.replace("BGM+745", f"BGM+266+{code}"))
    assert m.function == M.MESSAGE_FUNCTION_CLOSE_OUT
    assert [t.boarding for t in m.travellers] == [boarding, boarding]


def test_transit_travellers():
    m = accepted(BASE.replace("NAD+FL+++", "NAD+DDU+++").replace("NAD+FM+++", "NAD+DDT+++"))
    assert [t.role for t in m.travellers] == [M.TRAVELLER_ROLE_TRANSIT_PASSENGER, M.TRAVELLER_ROLE_TRANSIT_CREW]


# -- flights ----------------------------------------------------------------------------------------------------


def test_progressive_flight_in_one_tdt_group():
    legs = (
        "TDT+20+FJ911+++FJ'LOC+125+SYD'DTM+189:2603020800:201'LOC+87+NAN'DTM+232:2603021400:201'"
        "LOC+92+NAN'DTM+189:2603021500:201'LOC+92+TBU'DTM+232:2603021700:201'"
    )
    text = BASE.replace(BASE[BASE.index("TDT") : BASE.index("NAD+FL")], legs)
    m = accepted(text)
    assert (m.carrier, m.flight_number) == ("FJ", "911")
    assert [(leg.origin, leg.destination) for leg in m.legs] == [("SYD", "NAN"), ("NAN", "TBU")]
    assert m.legs[1].scheduled_arrival.seconds == utc(2026, 3, 2, 4, 0)  # Tonga is UTC+13


def test_carrier_from_the_flight_id_and_sea_mode():
    m = accepted(BASE.replace("TDT+20+FJ411+++FJ", "TDT+20+FJ411"))
    assert (m.carrier, m.flight_number) == ("FJ", "411")
    m = accepted(BASE.replace("TDT+20+FJ411+++FJ", "TDT+20+PO77+1++PO"))
    assert (m.carrier, m.flight_number, m.transport_mode) == ("PO", "77", M.TRANSPORT_MODE_SEA)


def test_port_without_known_time_zone_is_read_as_utc_with_a_warning():
    msg = message(BASE.replace("LOC+125+NAN", "LOC+125+FJSUV"))
    assert msg.manifest.legs[0].origin == "FJSUV"
    assert msg.manifest.legs[0].scheduled_departure.seconds == utc(2026, 3, 2, 10, 30)
    assert only(msg.warnings, "time_zone_unknown").segment == "#8 DTM"


def test_raw_codes_are_kept_for_validation_to_judge():
    m = accepted(BASE.replace("NAT+2+FJI", "NAT+2+XXA").replace("LOC+91+FJI", "LOC+91+UTO"))
    assert m.travellers[0].nationality == "XXA" and m.travellers[0].documents[0].issuing_state == "UTO"


def test_two_digit_years_get_a_century():
    # Message dated 2026-03-01: a birth date is never later; an expiry may be up to 10 years past.
    text = BASE.replace("DTM+329:850412", "DTM+329:260302").replace("DTM+36:300115", "DTM+36:160302")
    t = accepted(text).travellers[0]
    assert t.date_of_birth.year == 1926 and t.documents[0].expiry.year == 2016
    t = accepted(BASE.replace("DTM+36:300115", "DTM+36:150302")).travellers[0]
    assert t.documents[0].expiry.year == 2115


def test_partial_dates_with_explicit_formats():
    text = BASE.replace("DTM+329:850412", "DTM+329:1985:602").replace("DTM+329:900101", "DTM+329:199007:610")
    pax, crew = accepted(text).travellers
    assert (pax.date_of_birth.year, pax.date_of_birth.month, pax.date_of_birth.day) == (1985, 0, 0)
    assert (crew.date_of_birth.year, crew.date_of_birth.month, crew.date_of_birth.day) == (1990, 7, 0)


# -- delimiters and the release character ----------------------------------------------------------------------


def test_custom_una_delimiters_and_release():
    # UNA:*.? $ (US-CBP/GTAS airline2.edi): '*' separates elements, '$' ends segments, '?' releases.
    custom = "UNA:*.? $\n" + BASE.replace("+", "*").replace("'", "$").replace(
        "NAD*FL***TAVOLA:JOSEFA:PENI", "NAD*FL***O'NEIL?*SMITH?$:JO:ANN??"
    )
    m = accepted(custom)
    assert (m.travellers[0].surname, m.travellers[0].given_names) == ("O'NEIL*SMITH$", "JO ANN?")
    base = accepted(BASE)
    assert m.travellers[1] == base.travellers[1] and m.legs == base.legs


def test_release_character_in_default_delimiters():
    text = BASE.replace("NAD+FL+++TAVOLA:JOSEFA:PENI", "NAD+FL+++O?'NEIL?+SMITH:JO?:ANN")
    m = accepted(text)
    assert (m.travellers[0].surname, m.travellers[0].given_names) == ("O'NEIL+SMITH", "JO:ANN")
    assert m.travellers[1].surname == "HAVILI"


def test_malformed_una_falls_back_to_defaults_with_a_warning():
    ic = read("UNA:+\\*'" + BASE)
    assert only(ic.warnings, "malformed_una").segment == "#1 UNA"
    assert ic.messages[0].errors == [] and ic.messages[0].manifest.travellers[0].surname == "TAVOLA"


def test_carrier_profile_delimiters_without_una():
    text = BASE.replace("'", '"')
    assert read(text).errors  # one giant segment without the profile
    m = accepted(text, delimiters=Delimiters(terminator='"'))
    assert m.travellers[0].surname == "TAVOLA"


def test_tokeniser_positions_count_una_as_the_first_segment():
    tokens = tokenise("UNA:+.? 'UNB+UNOA:4'UNH+1'")
    assert [s.label for s in tokens.segments] == ["#2 UNB", "#3 UNH"]


# -- sniffing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BASE.encode(), True),
        (b"UNA:+.? 'UNB+UNOA:4", True),
        (b"  \r\n\x02UNH+1+PAXLST", True),
        (b"\x01QU SYD\r\n\x02UNB+UNOA:4", True),
        (b'{"carrier": "FJ"}', False),
        (b"\x0a\x02FJ\x18\x01", False),
        (b"", False),
    ],
)
def test_looks_like_paxlst(data, expected):
    assert looks_like_paxlst(data) is expected


# -- the writer ------------------------------------------------------------------------------------------------


def _demo(passengers: int = 4, seed: int = 5) -> M.Manifest:
    m = DemoTraffic(seed=seed, start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC)).next_manifest(passengers=passengers)
    m.sent_at.FromDatetime(datetime(2026, 3, 1, 21, 7, tzinfo=UTC))
    return m


def _expected(m: M.Manifest) -> M.Manifest:
    out = M.Manifest()
    out.CopyFrom(m)
    out.source_format = "paxlst"
    return out


@pytest.mark.parametrize(
    "options",
    [{}, {"una": False}, {"one_line": True}, {"delimiters": ":*.? $"}, {"delimiters": ":+,?*'", "one_line": True}],
)
def test_writer_round_trip(options):
    m = _demo()
    data = render_paxlst(m, **options)
    assert (b"\n" not in data) is bool(options.get("one_line"))
    assert data.startswith(b"UNA") is options.get("una", True)
    ic = parse_paxlst(data)
    assert ic.errors == [] and ic.warnings == []
    [msg] = ic.messages
    assert msg.errors == [] and msg.warnings == []
    assert msg.manifest == _expected(m)


def test_writer_interchange_with_several_messages():
    manifests = [_demo(seed=s) for s in (1, 2, 3)]
    manifests[1].function, manifests[1].amendment = M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_REDUCTION_IN_PARTY
    manifests[2].function = M.MESSAGE_FUNCTION_CLOSE_OUT
    for t in manifests[2].travellers:
        t.boarding = M.BOARDING_STATUS_NOT_BOARDED
    ic = parse_paxlst(render_interchange(manifests, interchange_ref="X9"))
    assert (ic.errors, ic.warnings, ic.interchange_ref) == ([], [], "X9")
    assert [msg.manifest for msg in ic.messages] == [_expected(m) for m in manifests]


def test_writer_refuses_what_paxlst_cannot_say():
    m = _demo()
    m.function = M.MESSAGE_FUNCTION_CLOSE_OUT
    m.travellers[0].boarding = M.BOARDING_STATUS_BOARDED
    m.travellers[1].boarding = M.BOARDING_STATUS_NOT_BOARDED
    with pytest.raises(ValueError, match="boarding"):
        render_paxlst(m)
    with pytest.raises(ValueError, match="function"):
        render_paxlst(M.Manifest(carrier="FJ"))
    with pytest.raises(ValueError, match="delimiters"):
        render_paxlst(_demo(), delimiters="::::::")


def test_writer_escapes_service_characters_in_names():
    m = _demo()
    m.travellers[0].surname, m.travellers[0].given_names = "O'NEIL+?:", "A:B"
    data = render_paxlst(m)
    assert b"O?'NEIL?+???:" in data
    assert parse_paxlst(data).messages[0].manifest == _expected(m)


def test_writer_non_ascii_names_declare_utf8():
    m = _demo()
    m.travellers[0].surname = "NÚÑEZ"
    data = render_paxlst(m)
    assert b"UNB+UNOW:4" in data
    assert parse_paxlst(data).messages[0].manifest.travellers[0].surname == "NÚÑEZ"


def test_latin1_interchange_declared_unoc():
    text = BASE.replace("UNOA", "UNOC").replace("TAVOLA", "TAVÖLA")
    m = accepted(text.encode("latin-1"))
    assert m.travellers[0].surname == "TAVÖLA"
    assert message(text.encode("latin-1")).raw == text[text.index("UNH") : text.index("UNZ") - 1].encode("latin-1")
