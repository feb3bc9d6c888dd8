"""Properties of the PAXLST reader and writer (hypothesis): the reader never raises and never hits its safety
net, whatever the input (random bytes, huge elements, deep repetition, random release characters); a truncated
message is always rejected; a valid message followed by any trailing bytes is still accepted, alone;
parse(render(m)) == m for every manifest PAXLST can carry; the tokeniser agrees with pydifact, the maintained
reference tokeniser."""

from __future__ import annotations

import string
import warnings
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paxlst_cases import BASE
from pydifact.parser import Parser

from services.paxlst.reader import parse_paxlst, split_interchanges
from services.paxlst.syntax import tokenise
from services.paxlst.writer import render_paxlst
from services.wire import manifest_pb2

M = manifest_pb2
# No example database: nothing is written into the work tree.
MODEST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Airports whose zones had no daylight saving since 2000: a local time names one instant (see the writer).
PORTS = ["POM", "HIR", "VLI", "RAR", "TRW", "INU", "HNL", "BNE", "GUM", "ZZQ"]
NAME_CHARS = string.ascii_uppercase + " '-+:?*$.,"
TAGS = ["UNA", "UNB", "UNG", "UNH", "BGM", "RFF", "NAD", "TDT", "LOC", "DTM", "ATT", "NAT", "DOC", "CNT", "UNT"]
TAGS += ["UNE", "UNZ", "XYZ", "una", "123"]


def _never_fails(data) -> None:
    ic = parse_paxlst(data)
    found = {v.code for v in ic.errors} | {v.code for m in ic.messages for v in m.errors}
    assert "internal_error" not in found
    for msg in ic.messages:
        assert isinstance(msg.raw, bytes)
        assert (msg.manifest is None) == bool(msg.errors)
        for v in msg.errors:
            msg.locate(v.field)


# -- never raises -------------------------------------------------------------------------------------------


@MODEST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data):
    _never_fails(data)


@MODEST
@given(st.text(max_size=2000))
def test_arbitrary_text(text):
    _never_fails(text)


_segment_text = st.builds(
    lambda tag, elements, end: tag + "".join("+" + e for e in elements) + end,
    st.sampled_from(TAGS),
    st.lists(st.text(alphabet="0123456789ABCFLMPXZ:? +'\n", max_size=8), max_size=5),
    st.sampled_from(["'", "'\n", "", "\r\n'"]),
)


@MODEST
@given(st.lists(_segment_text, max_size=60))
def test_edifact_shaped_noise(segments):
    _never_fails("".join(segments))


# -- manifests PAXLST can carry -----------------------------------------------------------------------------

_minute = st.integers(min_value=0, max_value=(datetime(2099, 12, 31) - datetime(2000, 1, 1)).days * 1440).map(
    lambda n: datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
)
_name = st.text(alphabet=NAME_CHARS, min_size=1, max_size=20).map(str.strip).filter(bool)
_given = st.one_of(st.just(""), _name)
_ref = st.text(alphabet=string.ascii_uppercase + string.digits + "-/?'+:", max_size=12)
_code = st.one_of(st.just(""), st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3))


def _partial(low: date, high: date):
    """A PartialDate between low and high: complete, year-month, year only, or unknown."""
    days = st.integers(min_value=0, max_value=(high - low).days).map(lambda n: low + timedelta(days=n))
    return st.one_of(
        days.map(lambda d: M.PartialDate(year=d.year, month=d.month, day=d.day)),
        days.map(lambda d: M.PartialDate(year=d.year, month=d.month)),
        days.map(lambda d: M.PartialDate(year=d.year)),
        st.just(M.PartialDate()),
    )


@st.composite
def manifests(draw, max_travellers: int = 50) -> M.Manifest:
    sent = draw(_minute)
    m = M.Manifest(
        carrier=draw(st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)),
        flight_number=draw(st.from_regex(r"[1-9][0-9]{0,3}[A-Z]?", fullmatch=True)),
        transport_mode=draw(st.sampled_from([M.TRANSPORT_MODE_AIR, M.TRANSPORT_MODE_SEA])),
        message_ref=draw(_ref),
        revision=draw(st.integers(min_value=0, max_value=999_999)),
        source_format="paxlst",
    )
    m.sent_at.FromDatetime(sent)
    function = draw(st.sampled_from([1, 2, 3, 4]))
    m.function = function
    boarding = 0
    if function == M.MESSAGE_FUNCTION_CHANGE:
        m.amendment = draw(st.sampled_from([1, 2, 3]))
    elif function == M.MESSAGE_FUNCTION_CLOSE_OUT:
        boarding = draw(st.sampled_from([M.BOARDING_STATUS_BOARDED, M.BOARDING_STATUS_NOT_BOARDED]))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        leg = m.legs.add(origin=draw(st.sampled_from(PORTS)), destination=draw(st.sampled_from(PORTS)))
        if draw(st.booleans()):
            leg.scheduled_departure.FromDatetime(draw(_minute))
        if draw(st.booleans()):
            leg.scheduled_arrival.FromDatetime(draw(_minute))
    born = _partial(date(1890, 1, 1), sent.date())
    expires = _partial(date(1990, 1, 1), date(2120, 12, 31))
    for _ in range(draw(st.integers(min_value=1, max_value=max_travellers))):
        t = m.travellers.add(
            role=draw(st.sampled_from([1, 2, 3, 4])),
            surname=draw(_name),
            given_names=draw(_given),
            sex=draw(st.sampled_from([0, 1, 2, 3])),
            nationality=draw(_code),
            residence=draw(_code),
            reservation_locator=draw(_ref),
            passenger_ref=draw(_ref),
            seat=draw(st.sampled_from(["", "1A", "32K"])),
            embarkation=draw(st.sampled_from(["", *PORTS])),
            debarkation=draw(st.sampled_from(["", *PORTS])),
            boarding=boarding,
        )
        dob = draw(born)
        if dob.year:  # an empty PartialDate is absent in PAXLST, not present and empty
            t.date_of_birth.CopyFrom(dob)
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            d = t.documents.add(
                type=draw(st.sampled_from([1, 2, 3, 6, 7])),
                number=draw(_ref),
                issuing_state=draw(_code),
            )
            expiry = draw(expires)
            if expiry.year:
                d.expiry.CopyFrom(expiry)
    return m


_delimiters = st.sampled_from([None, ":*.? $", ":+,?*'", "|^.\\ ~"])


@MODEST
@given(manifests(), _delimiters, st.booleans())
def test_round_trip(manifest, delimiters, one_line):
    data = render_paxlst(manifest, delimiters=delimiters, one_line=one_line)
    ic = parse_paxlst(data)
    assert ic.errors == []
    [msg] = ic.messages
    assert msg.errors == []
    assert msg.manifest == manifest


# -- mutated valid interchanges -----------------------------------------------------------------------------


@MODEST
@given(manifests(max_travellers=5), st.data())
def test_truncated_anywhere(manifest, data):
    raw = render_paxlst(manifest, one_line=data.draw(st.booleans()))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    ic = parse_paxlst(raw[:cut])
    _never_fails(raw[:cut])
    if cut <= raw.rindex(b"UNT+"):
        # The message is incomplete: the interchange or the message is rejected, never accepted.
        assert ic.errors or all(m.manifest is None for m in ic.messages)


@MODEST
@given(manifests(max_travellers=5), st.data())
def test_segments_deleted_or_duplicated(manifest, data):
    segments = render_paxlst(manifest, una=False).split(b"'\n")
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        i = data.draw(st.integers(min_value=0, max_value=len(segments) - 1))
        if data.draw(st.booleans()):
            del segments[i]
        else:
            segments.insert(i, segments[i])
        if not segments:
            break
    _never_fails(b"'\n".join(segments))


# -- the tokeniser against pydifact ---------------------------------------------------------------------------


def _trimmed(components: list[str]) -> list[str]:
    while len(components) > 1 and components[-1] == "":
        components.pop()
    return components


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(max_travellers=10), st.sampled_from([None, ":*.? $", ":+,?*'"]))
def test_tokeniser_agrees_with_pydifact(manifest, delimiters):
    text = render_paxlst(manifest, delimiters=delimiters).decode()
    ours = [(s.tag, [_trimmed(s.parts(i)) for i in range(len(s.elements))]) for s in tokenise(text).segments]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = [
            (s.tag, [_trimmed(e if isinstance(e, list) else [e]) for e in s.elements])
            for s in Parser().parse(text)
            if s.tag != "UNA"
        ]
    assert ours == reference


# -- hostile and sloppy input (issue 12) --------------------------------------------------------------------------

_SAMPLE = BASE.encode()
_SEGMENT_STARTS = [0] + [i + 2 for i in range(len(_SAMPLE)) if _SAMPLE[i : i + 2] == b"'\n"][:-1]


def _insert(data, at: bytes) -> bytes:
    """The sample with `at` inserted at the start of one of its segments (drawn)."""
    where = data.draw(st.sampled_from(_SEGMENT_STARTS))
    return _SAMPLE[:where] + at + _SAMPLE[where:]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.sampled_from(["FTX+AAI+++", "NAD+FL+++", "DOC+P+", "XYZ+", "UNH+", "UNT+", "", "+", ":"]),
    st.sampled_from(["A", "?", "'", "+", ":", "?'", "\x00", "é", "\n", " "]),
    st.one_of(st.integers(min_value=1, max_value=100), st.sampled_from([4_097, 8_193, 65_536, 200_000])),
)
def test_huge_elements_and_deep_repetition(data, prefix, unit, times):
    """A segment (or a run of separators, terminators, release characters) of up to a megabyte anywhere."""
    _never_fails(_insert(data, (prefix + unit * times).encode() + b"'\n"))


@MODEST
@given(st.data(), st.lists(st.integers(min_value=0, max_value=len(BASE)), min_size=1, max_size=20))
def test_random_release_characters(data, where):
    text = BASE
    for at in sorted(where, reverse=True):
        text = text[:at] + data.draw(st.sampled_from(["?", "??", "?'", "?+", "?:"])) + text[at:]
    _never_fails(text)


def _accepted_alone(data: bytes) -> None:
    """What `apihub submit` does: the file is one interchange, and its message is accepted."""
    [part] = split_interchanges(data)
    ic = parse_paxlst(part)
    assert ic.errors == [], ic.errors
    assert ic.messages and ic.messages[0].errors == [] and ic.messages[0].manifest is not None


def _no_second_interchange(tail: bytes) -> bool:
    """A tail holding a UNA/UNB and then a UNH is a second interchange, refused as such (tested elsewhere)."""
    starts = [i for i in (tail.find(b"UNA"), tail.find(b"UNB")) if i >= 0]
    return not starts or tail.find(b"UNH", min(starts)) < 0


@MODEST
@given(st.binary(max_size=300).filter(_no_second_interchange))
def test_a_valid_sample_plus_random_trailing_bytes_is_still_accepted(tail):
    _accepted_alone(_SAMPLE + tail)


@MODEST
@given(
    st.text(alphabet="UNZAHT+:'? \r\n\x00\x1a\x02\x03ABC123", max_size=80).filter(
        lambda t: _no_second_interchange(t.encode())
    )
)
def test_a_valid_sample_plus_edifact_like_trailing_text_is_still_accepted(tail):
    _accepted_alone(_SAMPLE + tail.encode())


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(manifests(max_travellers=3), _delimiters), min_size=1, max_size=4),
    st.lists(
        st.sampled_from(["", "\n", "\r\n", "\x1a", "\x00\x00", "13Nov09\n", "NAD+FL+++X:Y"]), min_size=4, max_size=4
    ),
)
def test_concatenated_interchanges_with_junk_between_are_cut_apart(items, junk):
    """Each interchange of a file (any delimiters) comes out alone and accepted, the junk after it with it."""
    rendered = [render_paxlst(m, delimiters=d) for m, d in items]
    data = b"".join(r + j.encode() for r, j in zip(rendered, junk, strict=False))
    parts = split_interchanges(data)
    assert len(parts) == len(rendered)
    for part, (manifest, _) in zip(parts, items, strict=True):
        ic = parse_paxlst(part)
        assert ic.errors == []
        [msg] = ic.messages
        assert msg.manifest == manifest
