"""CUSRES D:05B for the interactive API: the observed China NIA answers read back, the hub's answer to the
observed requests rendered segment for segment like the observed answers, the round trip (values holding
EDIFACT service characters, long free text, groups, custom delimiters), the free-text rules, the reader's
tolerance, and what the PAXLST reader gives an iAPI server to echo. All personal data here is invented."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import astra_interchanges

from services.paxlst.cusres import (
    FTX_COMPONENT_CHARS,
    FTX_COMPONENTS,
    CusresMessage,
    CusresTraveller,
    ftx_components,
    ftx_text,
    parse_cusres,
    render_cusres,
)
from services.paxlst.reader import parse_paxlst
from services.paxlst.syntax import Delimiters, tokenise
from services.wire import manifest_pb2

M = manifest_pb2
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MODEST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _astra() -> tuple[list[bytes], list[bytes]]:
    """The sample's PAXLST requests and CUSRES answers, in order, harness artefacts substituted."""
    interchanges = astra_interchanges()
    requests = [d for d in interchanges if b"PAXLST:D:05B" in d]
    answers = [d for d in interchanges if b"CUSRES:D:05B" in d]
    assert len(requests) == len(answers) == 3
    return requests, answers


def _segments(data: bytes) -> list[str]:
    return [line.strip() for line in data.decode().split("'") if line.strip()]


def _message(*travellers: CusresTraveller, **fields) -> CusresMessage:
    base = dict(
        message_ref="1",
        transaction_ref="FJ411A",
        flight="FJ411",
        departure=datetime(2026, 3, 1, 22, 30, tzinfo=UTC),
        arrival=datetime(2026, 3, 2, 2, 30, tzinfo=UTC),
        origin="NAN",
        destination="SYD",
        travellers=list(travellers),
        common_access_ref="",
    )
    base.update(fields)
    return CusresMessage(**base)


OK = CusresTraveller("FJ411-001", "Q7ZK2M", "0Z", "OK TO BOARD")
NO = CusresTraveller("FJ411-002", "", "1Z", "NO BOARD")


# -- the observed sample ------------------------------------------------------------------------------------


def test_sample_answers_are_read_with_codes_and_echoed_references():
    _, answers = _astra()
    read = [parse_cusres(data) for data in answers]
    for ic in read:
        assert ic.errors == [] and ic.warnings == []
        assert (ic.sender, ic.application_ref, ic.interchange_ref, ic.group) == ("NIAC", "IAPI", "ASTRA0001", True)
    assert [ic.recipient for ic in read] == ["CA", "ZH", "ZH"]
    messages = [m for ic in read for m in ic.messages]
    assert [[t.code for t in m.travellers] for m in messages] == [["0Z", "0Z"], ["1Z"], ["0Z"]]
    assert [[t.passenger_ref for t in m.travellers] for m in messages] == [
        ["PAX_ID1", "PAX_ID2"],
        ["PAX_ID"],
        ["PAX_ID"],
    ]
    locators = [[t.reservation_locator for t in m.travellers] for m in messages]
    assert locators == [["MWZRDQ", "MWZRCY"], ["MXRLBK"], ["MXRLBK"]]
    assert [m.transaction_ref for m in messages] == ["0000100", "0000100", "0000103"]  # RFF+TN echoed
    first, refused, corrected = messages
    assert (first.message_ref, first.common_access_ref, first.flight) == ("11085B94E1F8FA", "ASTRA", "CA339")
    assert (first.origin, first.destination) == ("ICN", "CAN")
    # Local times: Seoul UTC+9 16:20, Guangzhou UTC+8 20:35.
    assert first.departure == datetime(2025, 6, 1, 7, 20, tzinfo=UTC)
    assert first.arrival == datetime(2025, 6, 1, 12, 35, tzinfo=UTC)
    assert refused.travellers[0].text.startswith("NO BOARD, if there is a question, please contact with NIA")
    assert corrected.travellers[0].text == "OK TO BOARD"


def test_sample_requests_give_what_the_answer_echoes():
    requests, _ = _astra()
    read = [parse_paxlst(data) for data in requests]
    for ic in read:
        assert ic.errors == []
        assert (ic.recipient, ic.application_ref, ic.group) == ("NIAC", "IAPI", True)
        assert (ic.syntax_id, ic.syntax_version, ic.interchange_ref) == ("SIRE", "4", "ASTRA0001")
        [msg] = ic.messages
        assert (msg.unh_ref, msg.common_access_ref) == ("11085B94E1F8FA", "ASTRA")
    assert [ic.sender for ic in read] == ["CA", "ZH", "ZH"]
    original, corrected = read[1].messages[0].manifest, read[2].messages[0].manifest
    assert (original.function, original.message_ref) == (M.MESSAGE_FUNCTION_ORIGINAL, "0000100")
    # Test 3's re-send, BGM+745+CP: a change with changed data, under a new RFF+TN.
    assert (corrected.function, corrected.amendment) == (M.MESSAGE_FUNCTION_CHANGE, M.AMENDMENT_CHANGED_DATA)
    assert corrected.message_ref == "0000103"


def test_request_without_group_or_unb_application_reference():
    data = b"UNB+UNOA:4+FJ+APIHUB+260301:0900+IC1'UNH+7+PAXLST:D:05B:UN:IATA'BGM+745'TDT+20+FJ411'UNT+4+7'UNZ+1+IC1'"
    ic = parse_paxlst(data)
    assert ic.errors == []
    assert (ic.group, ic.application_ref, ic.recipient) == (False, "", "APIHUB")
    assert (ic.messages[0].unh_ref, ic.messages[0].common_access_ref) == ("7", "")


def test_answer_to_each_sample_request_is_the_observed_answer():
    """What an iAPI server renders from a parsed request (and the directives of the sample) is, segment for
    segment, what China NIA answered; the sample's syntax identifier and lower-case text are kept."""
    requests, answers = _astra()
    no_board = "NO BOARD, if there is a question, please contact with NIA of China, tel861056095288."
    directives = [[("0Z", "OK TO BOARD")] * 2, [("1Z", no_board)], [("0Z", "OK TO BOARD")]]
    for request, answer, said in zip(requests, answers, directives, strict=True):
        ic = parse_paxlst(request)
        [msg] = ic.messages
        m = msg.manifest
        [leg] = m.legs
        travellers = [
            CusresTraveller(t.passenger_ref, t.reservation_locator, code, text)
            for t, (code, text) in zip(m.travellers, said, strict=True)
        ]
        out = [
            CusresMessage(
                msg.unh_ref,
                m.message_ref,
                m.carrier + m.flight_number,
                leg.scheduled_departure.ToDatetime(tzinfo=UTC),
                leg.scheduled_arrival.ToDatetime(tzinfo=UTC),
                leg.origin,
                leg.destination,
                travellers,
                common_access_ref=msg.common_access_ref,
            )
        ]
        rendered = render_cusres(
            out,
            sender=ic.recipient,
            recipient=ic.sender,
            interchange_ref=ic.interchange_ref,
            now=datetime(2025, 6, 1, 9, 0, tzinfo=UTC),
            syntax=ic.syntax_id,
            group=ic.group,
        )
        expected = _segments(answer)
        if said[0][0] == "1Z":
            # NIA wrote its 87 characters in one component (an..512 allowed); the hub cuts at 70, at a space.
            [at] = [i for i, seg in enumerate(expected) if seg.startswith("FTX")]
            expected[at] = expected[at].replace("China, tel", "China,:tel")
        assert _segments(rendered) == expected


# -- rendering ----------------------------------------------------------------------------------------------


def test_layout_of_one_message():
    data = render_cusres([_message(OK, NO)], sender="APIHUB", recipient="FJ", interchange_ref="42", now=NOW)
    assert not data.startswith(b"UNA")  # default delimiters: no UNA unless asked
    assert _segments(data) == [
        "UNB+UNOA:4+APIHUB+FJ+260301:0900+42++IAPI",
        "UNH+1+CUSRES:D:05B:UN:IATA++01:F",
        "BGM+962",
        "RFF+TN:FJ411A",
        "RFF+AF:FJ411",
        "DTM+189:2603021030:201",  # Fiji UTC+12
        "DTM+232:2603021330:201",  # Sydney UTC+11 (daylight saving)
        "LOC+125+NAN",
        "LOC+87+SYD",
        "ERP+2",
        "RFF+AVF:Q7ZK2M",
        "RFF+ABO:FJ411-001",
        "ERC+0Z",
        "FTX+AAP+++OK TO BOARD",
        "ERP+2",
        "RFF+ABO:FJ411-002",  # no locator: no RFF+AVF
        "ERC+1Z",
        "FTX+AAP+++NO BOARD",
        "UNT+18+1",
        "UNZ+1+42",
    ]


def test_group_una_and_counts_of_several_messages():
    two = [_message(OK, message_ref="A1"), _message(NO, message_ref="A2", common_access_ref="REQ9")]
    data = render_cusres(two, sender="APIHUB", recipient="FJ", interchange_ref="9", now=NOW, group=True, una=True)
    assert data.startswith(b"UNA:+.? '\nUNB+UNOA:4+APIHUB+FJ+260301:0900+9++IAPI'\n")
    segs = _segments(data)
    assert segs[2] == "UNG+CUSRES+APIHUB+FJ+260301:0900+1+UN+D:05B"
    assert "UNH+A2+CUSRES:D:05B:UN:IATA+REQ9+01:F" in segs
    assert segs[-2:] == ["UNE+2+1", "UNZ+1+9"]  # UNZ counts the group
    assert [s for s in segs if s.startswith("UNT")] == ["UNT+14+A1", "UNT+13+A2"]  # NO has no locator
    ic = parse_cusres(data)
    assert ic.errors == [] and ic.warnings == [] and ic.group
    assert [m.message_ref for m in ic.messages] == ["A1", "A2"]
    plain = render_cusres(two, sender="APIHUB", recipient="FJ", interchange_ref="9", now=NOW)
    assert _segments(plain)[-1] == "UNZ+2+9"  # no group: UNZ counts the messages


def test_service_characters_are_released_and_come_back():
    odd = CusresTraveller("P+1:2'3?4", "AB?C'D", "0Z", "CALL +679 (330) 1234: ASK? DON'T WAIT")
    m = _message(odd, transaction_ref="TN'1+2", flight="FJ:411", common_access_ref="X+Y", message_ref="M?1")
    data = render_cusres([m], sender="API+HUB", recipient="F:J", interchange_ref="R'1", now=NOW)
    text = data.decode()
    assert "RFF+ABO:P?+1?:2?'3??4'" in text
    assert "FTX+AAP+++CALL ?+679 (330) 1234?: ASK?? DON?'T WAIT'" in text
    ic = parse_cusres(data)
    assert ic.errors == [] and ic.warnings == []
    assert (ic.sender, ic.recipient, ic.interchange_ref) == ("API+HUB", "F:J", "R'1")
    assert ic.messages == [m]


def test_custom_delimiters_write_a_una_and_are_read_from_it():
    m = _message(CusresTraveller("A*B|C", "", "2Z", "CONTACT: BORDER OFFICE"))
    data = render_cusres([m], sender="APIHUB", recipient="FJ", interchange_ref="1", now=NOW, delimiters="|*.\\ ~")
    assert data.startswith(b"UNA|*.\\ ~")
    assert b"RFF*ABO|A\\*B\\|C~" in data
    assert parse_cusres(data).messages == [m]
    # The same without a UNA needs the carrier profile's delimiters.
    bare = render_cusres(
        [m], sender="APIHUB", recipient="FJ", interchange_ref="1", now=NOW, delimiters="|*.\\ ~", una=False
    )
    assert parse_cusres(bare, delimiters=Delimiters("|", "*", ".", "\\", " ", "~")).messages == [m]


def test_missing_times_ports_and_references_are_left_out():
    m = _message(
        CusresTraveller("", "", "4Z", ""),
        departure=None,
        arrival=None,
        origin="",
        destination="",
        transaction_ref="",
        flight="",
    )
    data = render_cusres([m], sender="APIHUB", recipient="FJ", interchange_ref="1", now=NOW)
    segs = _segments(data)
    assert segs[1:-1] == ["UNH+1+CUSRES:D:05B:UN:IATA++01:F", "BGM+962", "ERP+2", "ERC+4Z", "UNT+5+1"]
    assert parse_cusres(data).messages == [m]


def test_naive_times_are_written_as_local_time_and_far_years_with_the_century():
    m = _message(OK, departure=datetime(2026, 3, 2, 10, 30), arrival=datetime(2090, 1, 1, 0, 5, tzinfo=UTC))
    segs = _segments(render_cusres([m], sender="H", recipient="FJ", interchange_ref="1", now=NOW))
    assert "DTM+189:2603021030:201" in segs
    assert "DTM+232:209001011105:203" in segs  # Sydney UTC+11 in January


def test_what_cannot_be_rendered_is_refused():
    with pytest.raises(ValueError, match="ERC"):
        render_cusres(
            [_message(CusresTraveller("P1", "", "", "X"))], sender="H", recipient="C", interchange_ref="1", now=NOW
        )
    with pytest.raises(ValueError, match="at least one"):
        render_cusres([], sender="H", recipient="C", interchange_ref="1", now=NOW)
    no_release = Delimiters(":", "+", ".", " ", " ", "'")
    with pytest.raises(ValueError, match="release"):
        render_cusres(
            [_message(CusresTraveller("P+1", "", "0Z", ""))],
            sender="H",
            recipient="C",
            interchange_ref="1",
            now=NOW,
            delimiters=no_release,
        )
    # Free text is the hub's own: what cannot be escaped is dropped, not refused.
    said = CusresTraveller("P1", "", "0Z", "OK: BOARD + GO")
    data = render_cusres(
        [_message(said)], sender="H", recipient="C", interchange_ref="1", now=NOW, delimiters=no_release
    )
    assert parse_cusres(data, delimiters=no_release).messages[0].travellers[0].text == "OK BOARD GO"


# -- free text ----------------------------------------------------------------------------------------------


def test_free_text_is_kept_within_unoa():
    assert ftx_text("Ok to board") == "OK TO BOARD"
    assert ftx_text("  Café\tØrsted —\nStraße  ") == "CAFE ORSTED - STRASSE"
    assert ftx_text('Call 24/7 @ ops#1: 50% off! ;<>*&"') == "CALL 24/7 OPS1: 50 OFF"
    assert ftx_text("Ñandú: ¿qué?") == "NANDU: QUE?"
    assert ftx_text("漢字") == ""
    assert ftx_text("Café; 50%", "UNOB") == "Cafe; 50%"
    assert ftx_text("Café 漢字", "UNOW") == "Café 漢字"
    assert ftx_text("Café 漢字", "UNOC") == "Café"


def test_long_free_text_is_cut_into_components_at_spaces():
    words = " ".join(f"WORD{i:03d}" for i in range(80))  # 639 characters
    parts = ftx_components(words)
    assert len(parts) == FTX_COMPONENTS
    assert all(0 < len(p) <= FTX_COMPONENT_CHARS for p in parts)
    assert " ".join(parts) == words[: len(" ".join(parts))]
    assert ftx_components("X" * 150) == ["X" * 70, "X" * 70, "X" * 10]  # a word longer than a component is cut
    assert ftx_components("") == []
    long = CusresTraveller("P1", "", "1Z", "DO NOT BOARD. " + "PLEASE CONTACT THE BORDER AGENCY DUTY OFFICER. " * 4)
    data = render_cusres([_message(long)], sender="H", recipient="FJ", interchange_ref="1", now=NOW)
    [ftx] = [s for s in tokenise(data.decode()).segments if s.tag == "FTX"]
    components = ftx.parts(3)
    assert len(components) == 3 and all(len(c) <= FTX_COMPONENT_CHARS for c in components)
    [back] = parse_cusres(data).messages[0].travellers
    assert back.text == ftx_text(long.text)


# -- reading ------------------------------------------------------------------------------------------------


def test_control_counts_and_references_that_differ_are_warnings():
    data = render_cusres([_message(OK)], sender="H", recipient="FJ", interchange_ref="1", now=NOW, group=True)
    data = data.replace(b"UNT+14+1", b"UNT+15+2").replace(b"UNE+1+1", b"UNE+3+1").replace(b"UNZ+1+1", b"UNZ+5+9")
    ic = parse_cusres(data)
    assert ic.errors == []
    assert [m.travellers for m in ic.messages] == [[OK]]
    found = {(w.code, w.segment.split(" ")[1]) for w in ic.warnings}
    assert found == {
        ("segment_count", "UNT"),
        ("control_reference", "UNT"),
        ("control_count", "UNE"),
        ("control_count", "UNZ"),
        ("control_reference", "UNZ"),
    }


def test_a_message_that_is_not_cusres_is_an_error_and_left_out():
    requests, _ = _astra()
    ic = parse_cusres(requests[0])
    assert ic.messages == []
    assert [(e.code, e.segment) for e in ic.errors] == [("not_cusres", "#3 UNH")]


def test_odd_segments_are_read_past_with_warnings():
    data = (
        b"UNB+UNOA:4+NIAC+CA+250601:0900+1++IAPI'UNH+1+CUSRES:D:05B:UN:IATA'BGM+132'RFF+TN:7'XYZ+1'ERC+0Z'"
        b"ERP+2'RFF+ABO:P1'FTX+AAP+++PART ONE:PART TWO'FTX+AAP+++MORE'FTX+ZZZ+++OTHER'"
        b"ERP+2'RFF+ABO:P2'UNT+13+1'UNZ+1+1'"
    )
    ic = parse_cusres(data)
    assert ic.errors == []
    [m] = ic.messages
    assert m.travellers == [
        CusresTraveller("P1", "", "", "PART ONE PART TWO MORE"),
        CusresTraveller("P2", "", "", ""),
    ]
    assert [(w.code, w.segment) for w in ic.warnings] == [
        ("unknown_function", "#3 BGM"),
        ("unknown_segment", "#5 XYZ"),
        ("unknown_segment", "#6 ERC"),  # outside a traveller group
        ("missing_erc", "#7 ERP"),
        ("missing_erc", "#12 ERP"),
    ]


def test_garbage_and_truncation_never_raise():
    assert parse_cusres(b"").errors[0].code == "empty"
    assert parse_cusres(b"\x00\xff garbage").errors[0].code == "missing_unb"
    data = render_cusres([_message(OK)], sender="H", recipient="FJ", interchange_ref="1", now=NOW)
    cut = parse_cusres(data[: data.index(b"UNT")])
    assert cut.messages == [] and [e.code for e in cut.errors] == ["truncated"]


# -- the round trip (property) ------------------------------------------------------------------------------

_REF = st.text(string.ascii_letters + string.digits + "'+:?*-./ ", min_size=1, max_size=20).map(str.strip).filter(bool)
_TEXT = st.text(string.printable + "éØß漢—", max_size=400)
# Ports whose zones had no daylight saving since 2000 (a local time names one instant), and one unknown (UTC).
_PORTS = st.sampled_from(["POM", "HIR", "VLI", "RAR", "TRW", "INU", "HNL", "BNE", "GUM", "ZZQ"])
_TIMES = st.datetimes(datetime(2000, 1, 1), datetime(2050, 12, 31)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=UTC)
)


@st.composite
def _messages(draw) -> CusresMessage:
    travellers = [
        CusresTraveller(
            draw(_REF), draw(st.one_of(st.just(""), _REF)), draw(st.sampled_from(["0Z", "1Z", "2Z", "4Z"])), draw(_TEXT)
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    return CusresMessage(
        draw(_REF),
        draw(_REF),
        draw(_REF),
        draw(st.one_of(st.none(), _TIMES)),
        draw(st.one_of(st.none(), _TIMES)),
        draw(_PORTS),
        draw(_PORTS),
        travellers,
        common_access_ref=draw(st.one_of(st.just(""), _REF)),
    )


def _as_written(m: CusresMessage) -> CusresMessage:
    """The message as it reads back: free text as written (ftx_text, components joined by one space)."""
    travellers = [
        CusresTraveller(t.passenger_ref, t.reservation_locator, t.code, " ".join(ftx_components(ftx_text(t.text))))
        for t in m.travellers
    ]
    return CusresMessage(
        m.message_ref,
        m.transaction_ref,
        m.flight,
        m.departure,
        m.arrival,
        m.origin,
        m.destination,
        travellers,
        m.common_access_ref,
    )


@MODEST
@given(st.lists(_messages(), min_size=1, max_size=3), st.booleans(), st.booleans())
def test_round_trip(messages, group, one_line):
    data = render_cusres(
        messages, sender="APIHUB", recipient="FJ", interchange_ref="IC1", now=NOW, group=group, one_line=one_line
    )
    ic = parse_cusres(data)
    assert ic.errors == []
    assert [w for w in ic.warnings if w.code != "time_zone_unknown"] == []  # UNT, UNE, UNZ counts right
    assert (ic.sender, ic.recipient, ic.interchange_ref, ic.application_ref, ic.group) == (
        "APIHUB",
        "FJ",
        "IC1",
        "IAPI",
        group,
    )
    assert ic.messages == [_as_written(m) for m in messages]
    for segment in tokenise(data.decode()).segments:
        if segment.tag == "FTX":
            assert all(
                len(c) <= FTX_COMPONENT_CHARS and set(c) <= set(string.ascii_uppercase + string.digits + " .,-()/='+:?")
                for c in segment.parts(3)
            )


@MODEST
@given(st.data())
def test_the_reader_never_fails_on_damaged_answers(data):
    text = render_cusres([_message(OK, NO)], sender="H", recipient="FJ", interchange_ref="1", now=NOW).decode()
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        text = text[:at] + data.draw(st.text("'+:?UNHTERCFX0Z \n\x00é", max_size=6)) + text[at + cut :]
    ic = parse_cusres(text.encode())
    assert "internal_error" not in {v.code for v in ic.errors}
    assert all(isinstance(t, CusresTraveller) for m in ic.messages for t in m.travellers)
