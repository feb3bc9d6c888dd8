"""PAXLST robustness (issue 12): what real carrier files hold besides the interchange (a junk line, NUL padding,
Ctrl-Z after UNZ), oversized segments, and the syntax-level slips that are answered with warnings, never with a
rejection, while the message can still be screened. All personal data here is invented."""

from __future__ import annotations

import pytest
from paxlst_cases import BASE, accepted, codes, message, no_personal_data, only, read

from services.paxlst.reader import MAX_BYTES, MAX_MESSAGES, parse_paxlst, split_interchanges
from services.paxlst.syntax import MAX_SEGMENT_CHARS, MAX_VALUE_CHARS
from services.paxlst.violations import MAX_WARNINGS_PER_CODE
from services.wire import manifest_pb2

M = manifest_pb2
UNB = BASE[: BASE.index("UNH")]
MESSAGE = BASE[BASE.index("UNH") : BASE.index("UNZ")]  # UNH ... UNT, one segment a line

# What carrier files were seen to hold after UNZ, and how the warning describes it (None: nothing to warn about).
TRAILING = {
    "junk-line": ("13Nov09\n", "7 characters of text that is not EDIFACT"),
    "second-partial-line": ("NAD+FL+++TAVOLA:JO", "18 characters (1 segment: NAD)"),
    "partial-interchange-header": ("UNB+UNOA:4+FJ+APIHUB+2603", "(1 segment: UNB)"),
    "repeated-unz": ("UNZ+1+IC1'\n", "(1 segment: UNZ)"),
    "ctrl-z": ("\x1a", "1 character with an end-of-file mark (Ctrl-Z)"),
    "ctrl-z-after-newline": ("\r\n\x1a", "with an end-of-file mark (Ctrl-Z)"),
    "nul-padding": ("\x00" * 512, "512 characters of NUL padding"),
    "crlf": ("\r\n", None),
    "spaces": ("   \n \t ", None),
}


@pytest.mark.parametrize(("tail", "what"), TRAILING.values(), ids=TRAILING.keys())
def test_trailing_data_after_unz_is_one_accepted_message_with_a_warning_naming_it(tail, what):
    data = (BASE + tail).encode()
    # What `apihub submit` sends: one interchange, the trailing data with it (never a second, rejected one).
    [part] = split_interchanges(data)
    ic = read(part)
    assert ic.errors == []
    [msg] = ic.messages
    assert msg.errors == [] and msg.manifest == accepted(BASE)
    if what is None:
        assert ic.warnings == []
        return
    warning = only(ic.warnings, "trailing_data")
    line = 38 + tail[: len(tail) - len(tail.lstrip())].count("\n")  # BASE is 37 lines
    assert warning.segment.startswith("#38 ")
    assert what in warning.description and f"after UNZ ignored (line {line}, column 1)" in warning.description
    no_personal_data(ic.warnings)


def test_trailing_data_after_a_one_line_interchange_is_named_by_its_character():
    one_line = BASE.replace("\n", "")
    ic = read(one_line + "\x00\x00")
    assert "(character " + str(len(one_line) + 1) + ")" in only(ic.warnings, "trailing_data").description
    assert ic.messages[0].manifest is not None


def test_junk_between_two_interchanges_stays_with_the_first():
    second = BASE.replace("IC1", "IC2").replace("FJ411A", "FJ411B")
    data = (BASE + "\x1a\x00\r\n" + second).encode()
    first, last = split_interchanges(data)
    assert first.endswith(b"\x1a\x00\r\n") and last.startswith(b"UNB") and first + last == data.rstrip()
    assert codes(read(first).warnings) == {"trailing_data"} and read(last).warnings == []
    assert [read(p).messages[0].manifest.message_ref for p in (first, last)] == ["FJ411A", "FJ411B"]


def test_interchanges_with_their_own_delimiters_are_cut_apart():
    custom = "UNA:*.? $\n" + BASE.replace("+", "*").replace("'", "$")
    data = (custom + BASE + custom + "\x1a").encode()
    parts = split_interchanges(data)
    assert len(parts) == 3 and b"".join(parts) == data
    for part in parts:
        ic = read(part)
        assert ic.errors == [] and ic.messages[0].manifest.travellers[0].surname == "TAVOLA"
    assert codes(read(parts[2]).warnings) == {"trailing_data"}


def test_a_second_interchange_in_one_request_is_still_refused_whole():
    """The carrier sent two flights' interchanges in one call: say so (the CLI cuts them apart first)."""
    assert only(read(BASE + BASE).errors, "several_interchanges").segment == "#38 UNB"
    # Ctrl-Z ran into the second interchange's UNB: one junk segment (#38), the UNB still found in it.
    assert only(read(BASE + "\x1a\n" + BASE).errors, "several_interchanges").segment == "#38 \\x1aUN"


def test_segments_between_messages_are_ignored_with_a_warning():
    text = BASE.replace("UNZ+1+IC1", "13Nov09'\nXYZ+1'\n" + MESSAGE.replace("FJ411A", "FJ411B") + "UNZ+2+IC1")
    ic = read(text)
    assert ic.errors == [] and only(ic.warnings, "outside_message").segment == "#37 13N"
    assert "2 segments" in only(ic.warnings, "outside_message").description
    assert [m.manifest.message_ref for m in ic.messages] == ["FJ411A", "FJ411B"]


def test_a_message_after_unz_is_read_with_a_warning():
    ic = read(BASE + MESSAGE.replace("FJ411A", "FJ411B"))
    assert ic.errors == [] and only(ic.warnings, "message_after_unz").segment == "#38 UNH"
    assert [m.manifest.message_ref for m in ic.messages] == ["FJ411A", "FJ411B"]


def test_a_message_that_lost_its_unh_is_rejected_alone():
    lost = MESSAGE.replace("UNH+1+PAXLST:D:05B:UN:IATA'\n", "")
    ic = read(BASE.replace("UNZ+1+IC1", lost + "UNZ+2+IC1"))
    assert ic.errors == []
    kept, orphan = ic.messages
    assert kept.manifest is not None
    assert orphan.manifest is None and only(orphan.errors, "missing_unh").segment == "#37 BGM"


def test_segments_before_the_interchange_are_ignored_with_a_warning():
    ic = read("XYZ+1'" + BASE)
    warning = only(ic.warnings, "leading_text")
    assert warning.segment == "#1 XYZ" and "1 segment before UNB" in warning.description
    assert ic.messages[0].manifest is not None


# -- sizes ------------------------------------------------------------------------------------------------------

FIVE_MIB = 5 * 1024 * 1024


def _with_free_text(text: str) -> str:
    """BASE with one more segment (an FTX, #34) before the CNTs, and UNT counting it."""
    return BASE.replace("CNT+42:150'\n", text + "'\nCNT+42:150'\n").replace("UNT+35+1", "UNT+36+1")


def test_a_5_mib_free_text_segment_is_cut_with_a_warning_naming_it():
    msg = message(_with_free_text("FTX+AAI+++" + "LOREM IPSUM " * (FIVE_MIB // 12)))
    warning = only(msg.warnings, "segment_too_long")
    assert warning.segment == "#34 FTX"
    assert "5,242,8" in warning.description and "(line 34, column 1)" in warning.description
    assert msg.errors == [] and msg.manifest == accepted(BASE)
    # What the hub keeps (the raw topic) is the cut segment, and still reads as the same message.
    assert len(msg.raw) < len(MESSAGE) + MAX_SEGMENT_CHARS
    assert f"+{'LOREM IPSUM ' * 42}LOREM IP'".encode() in msg.raw  # 512 characters
    again = read(UNB.encode() + msg.raw + b"\nUNZ+1+IC1'").messages[0]
    assert again.manifest == msg.manifest and "segment_too_long" not in codes(again.warnings)


def test_a_huge_name_is_cut_to_the_longest_paxlst_value_and_the_other_names_are_kept():
    text = BASE.replace("NAD+FL+++TAVOLA:JOSEFA:PENI", "NAD+FL+++" + "TAVOLA" * 200_000 + ":JOSEFA:PENI")
    msg = message(text)
    assert only(msg.warnings, "segment_too_long").segment == "#11 NAD"
    pax = msg.manifest.travellers[0]
    assert pax.surname == ("TAVOLA" * 100)[:MAX_VALUE_CHARS] and pax.given_names == "JOSEFA PENI"
    no_personal_data(msg.warnings)


def test_a_cut_never_leaves_half_an_escape():
    # "X" then escaped terminators: the 512th character is a release character, dropped with its pair.
    text = BASE.replace("NAD+FL+++TAVOLA:JOSEFA", "NAD+FL+++X" + "?'" * 100_000 + ":JOSEFA")
    msg = message(text)
    surname = msg.manifest.travellers[0].surname
    assert surname == "X" + "'" * 255
    again = read(UNB.encode() + msg.raw + b"\nUNZ+1+IC1'").messages[0]
    assert again.manifest.travellers[0].surname == surname and again.manifest.travellers[0].given_names == "JOSEFA PENI"


def test_a_segment_of_a_million_separators_is_cut():
    msg = message(_with_free_text("FTX+AAI+++" + ":+" * 1_000_000))
    assert only(msg.warnings, "segment_too_long").segment == "#34 FTX"
    assert msg.manifest == accepted(BASE) and len(msg.raw) < len(MESSAGE) + MAX_SEGMENT_CHARS


def test_warnings_of_one_kind_are_listed_up_to_a_cap_then_counted():
    text = BASE.replace("CNT+42:150'\n", "XYZ+1'\n" * 5000 + "CNT+42:150'\n").replace("UNT+35", "UNT+5035")
    msg = message(text)
    unknown = [w for w in msg.warnings if w.code == "unknown_segment"]
    assert len(unknown) == MAX_WARNINGS_PER_CODE + 1
    assert [w.segment for w in unknown[:2]] == ["#34 XYZ", "#35 XYZ"]
    assert "4980 more" in unknown[-1].description
    assert msg.manifest == accepted(BASE)


def test_many_oversized_segments_get_a_bounded_answer():
    text = _with_free_text("\n".join(["FTX+AAI+++" + "X" * 20_000 + "'"] * 300)[:-1])
    msg = message(text.replace("UNT+36+1", "UNT+335+1"))
    cut = [w for w in msg.warnings if w.code == "segment_too_long"]
    assert len(cut) == MAX_WARNINGS_PER_CODE + 1 and "280 more" in cut[-1].description
    assert len(msg.raw) < len(MESSAGE) + 300 * MAX_SEGMENT_CHARS


def _nearly_16_mib_in_the_message(junk: str) -> bytes:
    repeat = (MAX_BYTES - 4096) // len(junk)
    return BASE.replace("CNT+42:150'\n", junk * repeat + "CNT+42:150'\n").encode()


@pytest.mark.parametrize(
    ("build", "screened"),
    [
        pytest.param(
            lambda: _nearly_16_mib_in_the_message("FTX+AAI+++" + "A" * (MAX_BYTES - 8192) + "'\n"),
            True,
            id="one-segment",
        ),
        pytest.param(lambda: _nearly_16_mib_in_the_message("XYZ+" + "?" * 120 + "'\n"), True, id="many-segments"),
        pytest.param(lambda: b"\xff" * MAX_BYTES, False, id="no-segments"),
        pytest.param(lambda: b"'" * MAX_BYTES, False, id="empty-segments"),
    ],
)
def test_an_interchange_of_16_mib_of_junk_gets_a_short_answer(build, screened):
    data = build()  # built here: four 16 MiB inputs kept for the whole session would cost 64 MB
    assert MAX_BYTES - 8192 <= len(data) <= MAX_BYTES
    ic = parse_paxlst(data)
    messages = [m for m in ic.messages if m.manifest is not None]
    if screened:
        assert ic.errors == [] and [m.manifest.travellers for m in messages] == [accepted(BASE).travellers]
    else:
        assert ic.errors and not messages
    answer = sum(v.ByteSize() for v in (*ic.errors, *ic.warnings, *(v for m in ic.messages for v in m.warnings)))
    assert answer < 8 * 1024


# -- control counts and codes: warnings naming the segment, never a rejection ----------------------------------


def test_wrong_une_count_and_reference_are_warnings():
    text = BASE.replace("UNH+1", "UNG+PAXLST+FJ+APIHUB+260301:0900+7+UN+D:05B'\nUNH+1").replace(
        "UNZ+1+IC1", "UNE+3+8'\nUNZ+1+IC1"
    )
    ic = read(text)
    assert ic.errors == [] and codes(ic.warnings) == {"control_count", "control_reference"}
    assert only(ic.warnings, "control_count").segment == "#38 UNE"
    assert "UNE counts '3' messages, the group has 1" in only(ic.warnings, "control_count").description
    assert ic.messages[0].manifest is not None


def test_wrong_counts_everywhere_are_warnings_and_the_travellers_are_screened():
    text = (
        BASE.replace("UNT+35+1", "UNT+99+7")
        .replace("UNZ+1+IC1", "UNZ+5+IC9")
        .replace("CNT+41:8", "CNT+41:0")
        .replace("CNT+42:150", "CNT+42:many")
    )
    ic = read(text)
    [msg] = ic.messages
    assert ic.errors == [] and msg.errors == []
    assert codes(ic.warnings) == {"control_count", "control_reference"}
    assert codes(msg.warnings) == {"segment_count", "control_reference", "control_total"}
    assert msg.manifest.travellers == accepted(BASE).travellers


def test_a_binary_tag_is_named_escaped():
    msg = message(BASE.replace("ATT+2++F'", "ATT+2++F'\n\x00\x07\x1b+1'").replace("UNT+35", "UNT+36"))
    warning = only(msg.warnings, "unknown_segment")
    assert warning.segment == "#29 \\x00\\x07\\x1b"


def test_an_interchange_of_too_many_messages_is_refused():
    text = UNB + MESSAGE * (MAX_MESSAGES + 1) + "UNZ+1001+IC1'\n"
    ic = read(text)
    assert codes(ic.errors) == {"too_many_messages"} and len(ic.messages) == MAX_MESSAGES
