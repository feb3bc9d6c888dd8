"""UN/EDIFACT PAXLST reader: an interchange (UNA? UNB ... UNZ) in, one Manifest per message (UNH ... UNT) out.

Every problem is a FieldViolation naming the segment ("#14 DTM": 1-based position in the interchange, UNA
counted when present) and, where one exists, the Manifest field ("travellers[2].date_of_birth"). The reader
never raises: whatever the bytes, it answers with errors (reject) or warnings (accept). It does not check
country codes or ports against tables; validate_manifest does that later and finds the segment through
PaxlstMessage.locate.

Tokeniser choice (issue 3: a maintained tokeniser unless measured too slow). pydifact 0.2.3, the maintained
Python EDIFACT library, reads one character at a time through generators. Measured with
benchmarks/paxlst_parse.py (one pinned core, 50 interchanges of 300-passenger manifests, same run):

    split on the terminator only (baseline)   3,900,000 travellers/s
    pydifact Parser.parse (segments only)         6,400 travellers/s
    this module's tokenise                       75,000 travellers/s
    parse_paxlst (tokenise + map + locations)    32,000 travellers/s
    parse_paxlst + validate_manifest             28,000 travellers/s   (target: 20,000 parsed per core)

pydifact alone, before any mapping, is three times too slow for the target. It also stops at the first syntax
problem (a truncated interchange, or a release character before a newline, raises and loses every segment
after it) and keeps no offsets, which the raw bytes per message need. So the tokeniser here is our own, built
on str.split (C speed): escaped pairs are first replaced, length for length, by private-use sentinels, so
splitting on the service characters is exact and offsets into the received text stay valid. pydifact stays a
dev dependency: the benchmark re-measures it, and a property test checks that both tokenisers agree.

Dates: DTM 189/232 leg times are local times at the airport (WCO/IATA PAXLST guide); they are converted to UTC
with the airport's IANA zone (airportsdata), and taken as UTC, with a warning, for ports without a known zone.
Two-digit years get a century: birth dates are not in the future, expiry dates lie between 10 years before and
89 years after the message date, leg times within 50 years of it (the message date is the UNB date, else
today). Partial dates are only accepted with an explicit format (602 CCYY, 610 CCYYMM).

Not supported: multi-part messages (UNH ...+01:C ... nn:F) are read part by part, not joined (warning); BGM 266
CL and CF, master crew lists (336) and gate passes (655) are rejected as unsupported functions; segments the
Manifest has no field for (addresses, MEA bags, GEI, FTX bag tags, COM, EMP, LOC 22/180, DTM 182, other RFF
qualifiers) are read past; the UNA repetition separator is not used; character sets are UNOA/UNOB/UNOY/UNOW as
UTF-8 and UNOC-UNOK as ISO 8859; a carrier that renders the terminator differently without a UNA (the astra
harness's '"') needs its delimiters passed in (a per-carrier profile).
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import airportsdata

from services.wire import intake_pb2, manifest_pb2

Violation = intake_pb2.FieldViolation

# Larger inputs are refused before tokenising: a 300-passenger message is about 150 KiB.
MAX_BYTES = 16 * 1024 * 1024
MAX_SEGMENTS = 200_000
# PAXLST segments have at most ten data elements and components: splitting stops after this many, so a hostile
# segment of a million separators costs no list of a million strings (the rest stays in the last item).
_MAX_ELEMENTS = 40
DIRECTORIES = frozenset({"02B", "05B", "15B"})

# Escaped characters become these private-use sentinels while splitting, then turn back into text.
_MARK, _S_COMP, _S_ELEM, _S_TERM, _S_REL = "\ue000", "\ue001", "\ue002", "\ue003", "\ue004"
_SENTINELS = (_MARK, _S_COMP, _S_ELEM, _S_TERM, _S_REL)

# UNB syntax identifier -> codec. Anything else is read as UTF-8 (ASCII-compatible).
_CODECS = {
    "UNOC": "latin-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
}
_SYNTAX_ID = re.compile(rb"UNB.(UNO[A-Z])")
_ENVELOPE_LINE = re.compile(r"[\r\n][ \t]*(UNA|UNB)")


def _violation(field_: str, code: str, description: str, segment: Segment | str = "") -> Violation:
    label = segment.label if isinstance(segment, Segment) else segment
    return Violation(field=field_, code=code, description=description, segment=label)


# -- tokeniser ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delimiters:
    """The six service characters of a UNA segment, in UNA order."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    repetition: str = " "
    terminator: str = "'"

    @classmethod
    def from_una(cls, six: str) -> Delimiters | None:
        """The delimiters a UNA declares (the six characters after 'UNA'), or None when malformed."""
        if len(six) != 6:
            return None
        d = cls(*six)
        service = (d.component, d.element, d.terminator)
        if len(set(service)) != 3 or any(c.isalnum() or c == " " for c in service):
            return None
        if d.release != " " and (d.release in service or d.release.isalnum()):
            return None
        return d

    def una(self) -> str:
        chars = (self.component, self.element, self.decimal, self.release, self.repetition, self.terminator)
        return "UNA" + "".join(chars)


DEFAULT_DELIMITERS = Delimiters()


class _Syntax:
    """What a segment needs to read its values: the component separator and how to undo escapes."""

    __slots__ = ("component", "escaped", "table")

    def __init__(self, d: Delimiters, escaped: bool):
        self.component = d.component
        self.escaped = escaped
        self.table = {
            ord(_MARK): None,
            ord(_S_COMP): d.component,
            ord(_S_ELEM): d.element,
            ord(_S_TERM): d.terminator,
            ord(_S_REL): d.release,
        }


class Segment:
    """One segment: its position in the interchange, tag and data elements (components still joined)."""

    __slots__ = ("pos", "tag", "elements", "start", "end", "syntax", "label")

    def __init__(self, pos: int, tag: str, elements: list[str], start: int, end: int, syntax: _Syntax):
        self.pos = pos
        self.tag = tag
        self.elements = elements
        self.start = start  # offsets into the decoded text: the tag's first character ...
        self.end = end  # ... and just after the terminator
        self.syntax = syntax
        self.label = f"#{pos} {tag}"  # how violations name the segment

    def value(self, i: int, j: int = 0) -> str:
        """Component j of data element i (0-based, after the tag), unescaped and trimmed; '' when absent."""
        els = self.elements
        if i >= len(els):
            return ""
        e = els[i]
        syntax = self.syntax
        if syntax.component in e:
            parts = e.split(syntax.component, j + 1)
            if j >= len(parts):
                return ""
            e = parts[j]
        elif j:
            return ""
        if syntax.escaped and _MARK in e:
            e = e.translate(syntax.table)
        return e.strip()

    def parts(self, i: int) -> list[str]:
        """Every component of data element i, unescaped and trimmed (at least one, maybe '')."""
        els = self.elements
        if i >= len(els):
            return [""]
        e = els[i]
        syntax = self.syntax
        if syntax.escaped and _MARK in e:
            table = syntax.table
            return [p.translate(table).strip() for p in e.split(syntax.component, _MAX_ELEMENTS)]
        return [p.strip() for p in e.split(syntax.component, _MAX_ELEMENTS)]

    def __repr__(self) -> str:
        return f"Segment({self.label})"


@dataclass
class Tokens:
    delimiters: Delimiters
    segments: list[Segment]
    errors: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    # Whether the last segment ended without a terminator.
    unterminated: bool = False


def _content_start(text: str) -> tuple[int, int, bool]:
    """(start, end, skipped_text) of the EDIFACT content: skips a byte-order mark, whitespace, a teletype
    STX/ETX wrapper, and header lines before a line that starts with UNA or UNB."""
    start, end = 0, len(text)
    stx = text.find("\x02", 0, 4096)
    if stx >= 0 and "UNB" not in text[:stx] and "UNA" not in text[:stx]:
        start = stx + 1
        etx = text.find("\x03", start)
        if etx >= 0:
            end = etx
    while start < end and (text[start].isspace() or text[start] in "\ufeff\x01\x02"):
        start += 1
    if not text.startswith(("UNA", "UNB", "UNH"), start):
        # A teletype or e-mail header without STX: the interchange starts on a later line.
        found = _ENVELOPE_LINE.search(text, start, min(end, start + 4096))
        if found:
            return found.start(1), end, True
    return start, end, False


def tokenise(text: str, delimiters: Delimiters | None = None) -> Tokens:
    """Split an interchange into segments. `delimiters` applies when there is no UNA (a carrier profile)."""
    start, end, skipped = _content_start(text)
    warnings: list[Violation] = []
    if skipped:
        warnings.append(_violation("", "leading_text", "text before the interchange (UNA/UNB) ignored"))
    pos = 0
    d = delimiters or DEFAULT_DELIMITERS
    if text.startswith("UNA", start):
        pos = 1
        declared = Delimiters.from_una(text[start + 3 : start + 9])
        if declared is None:
            unb = text.find("UNB", start + 3, start + 16)
            warnings.append(
                _violation("", "malformed_una", "UNA is not 6 valid service characters; defaults used", "#1 UNA")
            )
            start = unb if unb >= 0 else start + 9
        else:
            d = declared
            start += 9
    body = text[start:end]
    escaped = False
    if d.release != " " and d.release in body:
        if any(s in body for s in _SENTINELS):
            body = body.translate({ord(s): "\ufffd" for s in _SENTINELS})
            warnings.append(_violation("", "invalid_character", "private-use characters replaced by U+FFFD"))
        rel = d.release
        # Length for length, so offsets into the received text stay right.
        body = (
            body.replace(rel + rel, _MARK + _S_REL)
            .replace(rel + d.terminator, _MARK + _S_TERM)
            .replace(rel + d.element, _MARK + _S_ELEM)
            .replace(rel + d.component, _MARK + _S_COMP)
            .replace(rel, _MARK)
        )
        escaped = True
    syntax = _Syntax(d, escaped)
    if body.count(d.terminator) > MAX_SEGMENTS:  # counted before splitting: no list of millions
        error = _violation("", "too_large", f"more than {MAX_SEGMENTS} segments: split the interchange")
        return Tokens(d, [], [error], warnings)
    pieces = body.split(d.terminator)
    segments: list[Segment] = []
    append = segments.append
    elem, comp = d.element, d.component
    off = start
    for piece in pieces:
        n = len(piece)
        s = piece.lstrip()
        if s:
            first = off + n - len(s)
            if "\n" in s or "\r" in s:
                s = s.replace("\r", "").replace("\n", "")
            pos += 1
            parts = s.split(elem, _MAX_ELEMENTS)
            tag = parts[0]
            if len(tag) != 3:
                tag = tag.split(comp)[0].strip()
            append(Segment(pos, tag, parts[1:], first, off + n + 1, syntax))
        off += n + 1
    # The text after the last terminator: a segment without one (truncation, sloppiness or junk).
    unterminated = bool(pieces[-1].strip())
    if unterminated:
        segments[-1].end -= 1
    if segments:
        _sloppy_spacing(body, start, d, segments, warnings)
    return Tokens(d, segments, [], warnings, unterminated)


def _first(body: str, patterns: tuple[str, ...]) -> int:
    found = [i for i in (body.find(p) for p in patterns) if i >= 0]
    return min(found) if found else -1


def _sloppy_spacing(body: str, base: int, d: Delimiters, segments: list[Segment], warnings: list) -> None:
    """One warning each for blanks before segment tags and blanks around values (both are read past)."""
    term, elem, comp = d.terminator, d.element, d.component
    at = _first(body, (term + " ", term + "\t", "\n ", "\n\t"))
    if at >= 0:
        seg = segments[min(bisect.bisect_left([s.start for s in segments], base + at + 1), len(segments) - 1)]
        warnings.append(_violation("", "leading_spaces", "blanks before segment tags ignored", seg))
    at = _first(body, (elem + " ", " " + elem, comp + " ", " " + comp, " " + term))
    if at >= 0:
        seg = segments[max(bisect.bisect_right([s.start for s in segments], base + at) - 1, 0)]
        warnings.append(_violation("", "blank_values", "blanks around values trimmed", seg))


# -- results ------------------------------------------------------------------------------------------------


@dataclass
class PaxlstMessage:
    """One message (UNH ... UNT) of an interchange."""

    manifest: manifest_pb2.Manifest | None  # None when the message is rejected
    errors: list[Violation]
    warnings: list[Violation]
    raw: bytes  # this message's own text (UNH..UNT) as received
    locations: dict[str, str]  # Manifest field path -> segment label; "" -> the UNH

    def locate(self, field: str) -> str:
        """Segment of a Manifest field path, else of its longest known prefix, else the message's UNH."""
        path = field
        while path:
            found = self.locations.get(path)
            if found:
                return found
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                break
            path = path[:cut]
        return self.locations.get("", "")


@dataclass
class PaxlstInterchange:
    messages: list[PaxlstMessage]
    errors: list[Violation]  # envelope problems: non-empty rejects the whole interchange
    warnings: list[Violation]
    interchange_ref: str
    sender: str


# -- dates --------------------------------------------------------------------------------------------------

# DTM 2379 format -> number of digits. Without a format the length decides.
_FORMAT_DIGITS = {"101": 6, "102": 8, "201": 10, "203": 12, "602": 4, "610": 6}
_DIGITS_FORMAT = {6: "101", 8: "102", 10: "201", 12: "203"}


def birth_year(yy: int, month: int, day: int, ref: date) -> int:
    """Century for a two-digit birth year: the latest year that does not put the date after `ref`."""
    year = ref.year // 100 * 100 + yy
    return year - 100 if (year, month, day) > (ref.year, ref.month, ref.day) else year


def expiry_year(yy: int, ref: date) -> int:
    """Century for a two-digit expiry year: from 10 years before the message to 89 years after."""
    low = ref.year - 10
    return low + (yy - low) % 100


def near_year(yy: int, ref: date) -> int:
    """Century for a two-digit year of a flight time: within 50 years of the message."""
    low = ref.year - 50
    return low + (yy - low) % 100


class _BadDate(ValueError):
    pass


def _dtm_fields(value: str, fmt: str) -> tuple[str, int, int, int, int, int]:
    """(format, year, month, day, hour, minute); 0 for parts the format does not carry. Years of formats 101
    and 201 have two digits."""
    if not fmt:
        fmt = _DIGITS_FORMAT.get(len(value), "")
    digits = _FORMAT_DIGITS.get(fmt)
    if digits is None:
        raise _BadDate(f"unsupported date format {fmt[:6]!r} or incomplete date")
    if len(value) != digits or not value.isdigit():
        raise _BadDate(f"date does not match format {fmt}")
    cut = 2 if fmt in ("101", "201") else 4
    year, rest = int(value[:cut]), value[cut:]
    month = int(rest[0:2]) if len(rest) >= 2 else 0
    day = int(rest[2:4]) if len(rest) >= 4 else 0
    hour = int(rest[4:6]) if len(rest) >= 6 else 0
    minute = int(rest[6:8]) if len(rest) >= 8 else 0
    if fmt != "602" and not 1 <= month <= 12:
        raise _BadDate("impossible date")
    if hour > 23 or minute > 59:
        raise _BadDate("impossible time")
    return fmt, year, month, day, hour, minute


def _possible_birth_parts(value: str, fmt: str, ref: date) -> tuple[int, int, int] | None:
    """The year, and the month when it is possible, of a birth date that is not a possible date as a whole
    (19740132, 19741305); None when not even the year can be read."""
    fmt = fmt or _DIGITS_FORMAT.get(len(value), "")
    if fmt not in ("101", "102") or len(value) != _FORMAT_DIGITS[fmt] or not value.isdigit():
        return None
    cut = 2 if fmt == "101" else 4
    month = int(value[cut : cut + 2])
    month = month if 1 <= month <= 12 else 0
    year = birth_year(int(value[:cut]), month, 0, ref) if fmt == "101" else int(value[:cut])
    return (year, month, 0) if year else None


def _check_day(year: int, month: int, day: int) -> None:
    if day:
        try:
            date(year, month, day)
        except ValueError:
            raise _BadDate("impossible date") from None


@functools.cache
def _zones() -> dict[str, str]:
    return {code: a["tz"] for code, a in airportsdata.load("IATA").items() if a.get("tz")}


# Bounded: port values come from carriers, and a cache keyed by them must not grow without limit.
@functools.lru_cache(maxsize=4096)
def port_zone(port: str) -> ZoneInfo | None:
    """IANA zone of an IATA airport, None when unknown (seaports, made-up codes)."""
    name = _zones().get(port.upper())
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return None


# -- the envelope -------------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> tuple[str, str, list[Violation]]:
    if isinstance(data, str):
        return data, "utf-8", []
    head = _SYNTAX_ID.search(data[:512])
    codec = _CODECS.get(head.group(1).decode()) if head else None
    if codec:
        try:
            return data.decode(codec), codec, []
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        warning = _violation("", "encoding", "not valid UTF-8 or the declared character set: read as Latin-1")
        return data.decode("latin-1"), "latin-1", [warning]


def _unb_sent_at(unb: Segment) -> datetime | None:
    d, t = unb.value(3, 0), unb.value(3, 1)
    if not d.isdigit() or len(d) not in (6, 8) or (t and (not t.isdigit() or len(t) != 4)):
        return None
    try:
        if len(d) == 6:
            year = near_year(int(d[:2]), datetime.now(UTC).date())
            md = d[2:]
        else:
            year, md = int(d[:4]), d[4:]
        return datetime(year, int(md[:2]), int(md[2:]), int(t[:2] or 0), int(t[2:] or 0), tzinfo=UTC)
    except ValueError:
        return None


def parse_paxlst(
    data: bytes | str, *, delimiters: Delimiters | None = None, today: date | None = None
) -> PaxlstInterchange:
    """Read a PAXLST interchange. Never raises.

    `delimiters` are a carrier profile's service characters for interchanges without UNA; `today` is the
    reference date for two-digit years when the UNB date is unusable (default: the current UTC date).
    """
    if len(data) > MAX_BYTES:
        error = _violation("", "too_large", f"interchange larger than {MAX_BYTES // (1024 * 1024)} MiB")
        return PaxlstInterchange([], [error], [], "", "")
    try:
        return _Envelope(data, delimiters, today).read()
    except Exception:  # a bug must cost one interchange, never the server; tests assert it never happens
        error = _violation("", "internal_error", "the PAXLST reader failed on this interchange")
        return PaxlstInterchange([], [error], [], "", "")


class _Envelope:
    def __init__(self, data: bytes | str, delimiters: Delimiters | None, today: date | None):
        self.text, self.codec, self.warnings = _decode(data)
        self.delimiters = delimiters
        self.today = today or datetime.now(UTC).date()
        self.errors: list[Violation] = []
        self.messages: list[PaxlstMessage] = []

    def read(self) -> PaxlstInterchange:
        tokens = tokenise(self.text, self.delimiters)
        self.warnings.extend(tokens.warnings)
        self.errors.extend(tokens.errors)
        out = PaxlstInterchange(self.messages, self.errors, self.warnings, "", "")
        segs = tokens.segments
        if tokens.errors:
            return out
        if not segs:
            self.errors.append(_violation("", "empty", "no EDIFACT segments found"))
            return out
        if segs[0].tag != "UNB":
            self.errors.append(_violation("", "missing_unb", f"expected UNB, found {segs[0].tag[:3]!r}", segs[0]))
            return out
        unb = segs[0]
        out.sender = unb.value(1)
        out.interchange_ref = unb.value(4)
        sent_at = _unb_sent_at(unb)
        if sent_at is None:
            self.warnings.append(_violation("sent_at", "invalid_date", "UNB date/time unreadable", unb))
        ref_date = sent_at.date() if sent_at else self.today
        message: list[Segment] | None = None
        stray: Segment | None = None
        groups = unz = None
        for seg in segs[1:]:
            tag = seg.tag
            if unz is not None:
                self._after_unz(seg, unz)
                break
            if tag == "UNH":
                if message is not None:
                    self._truncated(message, f"no UNT before the next UNH at {seg.label}")
                message, stray = [seg], None
            elif tag == "UNT":
                if message is None:
                    self._stray(seg, stray)
                    stray = seg
                    continue
                message.append(seg)
                self._message(message, sent_at, ref_date)
                message = None
            elif message is not None:
                message.append(seg)
            elif tag == "UNG":
                groups = (groups or 0) + 1
            elif tag == "UNE":
                pass
            elif tag == "UNZ":
                unz = seg
                self._check_unz(seg, out.interchange_ref, groups)
            else:
                if stray is None:
                    self._stray(seg, None)
                stray = seg
        if message is not None:
            self._truncated(message, "the interchange ends inside this message (no UNT)")
            self.errors.append(_violation("", "truncated", "interchange truncated: no UNT and no UNZ", message[-1]))
        elif unz is None:
            self.warnings.append(_violation("", "missing_unz", "no UNZ at the end of the interchange", segs[-1]))
        if tokens.unterminated and (unz is None or segs[-1] is unz):
            last = segs[-1]
            self.warnings.append(_violation("", "unterminated", f"{last.tag[:3]} has no segment terminator", last))
        if not self.messages and not self.errors:
            self.errors.append(_violation("", "missing_unh", "the interchange holds no message (UNH)", unb))
        return out

    def _stray(self, seg: Segment, previous: Segment | None) -> None:
        if previous is None:
            self.errors.append(
                _violation("", "missing_unh", f"{seg.tag[:3]!r} segment outside a message (missing UNH)", seg)
            )

    def _after_unz(self, seg: Segment, unz: Segment) -> None:
        if seg.tag in ("UNB", "UNA"):
            self.errors.append(
                _violation("", "several_interchanges", "a second interchange follows UNZ: send one at a time", seg)
            )
        else:
            self.warnings.append(_violation("", "trailing_data", "text after UNZ ignored", unz))

    def _check_unz(self, unz: Segment, ref: str, groups: int | None) -> None:
        count = unz.value(0)
        expected = groups if groups is not None else len(self.messages)
        if count != str(expected):
            self.warnings.append(
                _violation("", "control_count", f"UNZ counts {count!r}, the interchange has {expected}", unz)
            )
        if unz.value(1) != ref:
            self.warnings.append(_violation("", "control_reference", "UNZ reference differs from UNB", unz))

    def _raw(self, segs: list[Segment]) -> bytes:
        return self.text[segs[0].start : segs[-1].end].encode(self.codec, errors="replace")

    def _truncated(self, segs: list[Segment], why: str) -> None:
        error = _violation("", "truncated", f"message truncated: {why}", segs[-1])
        self.messages.append(PaxlstMessage(None, [error], [], self._raw(segs), {}))

    def _message(self, segs: list[Segment], sent_at: datetime | None, ref_date: date) -> None:
        reader = _MessageReader(segs, ref_date)
        manifest = reader.read()
        if manifest is not None and sent_at is not None:
            manifest.sent_at.FromDatetime(sent_at)
        self.messages.append(PaxlstMessage(manifest, reader.errors, reader.warnings, self._raw(segs), reader.locations))


# -- one message --------------------------------------------------------------------------------------------

_ROLES = {
    "FL": manifest_pb2.TRAVELLER_ROLE_PASSENGER,
    "FM": manifest_pb2.TRAVELLER_ROLE_CREW,
    "DDU": manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER,
    "DDT": manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW,
}
_SEXES = {"M": manifest_pb2.SEX_MALE, "F": manifest_pb2.SEX_FEMALE, "X": manifest_pb2.SEX_X, "U": 0, "": 0}
_DOC_TYPES = {
    "P": manifest_pb2.DOCUMENT_TYPE_PASSPORT,
    "I": manifest_pb2.DOCUMENT_TYPE_IDENTITY_CARD,
    "V": manifest_pb2.DOCUMENT_TYPE_VISA,
    "AC": manifest_pb2.DOCUMENT_TYPE_CREW_LICENCE,
}
_CHANGE = manifest_pb2.MESSAGE_FUNCTION_CHANGE
# BGM 1001 (document) and 1004 (function) -> (function, amendment, boarding).
_LIST_FUNCTIONS = {
    "": (manifest_pb2.MESSAGE_FUNCTION_ORIGINAL, 0, 0),
    "CP": (_CHANGE, manifest_pb2.AMENDMENT_CHANGED_DATA, 0),
    "XR": (_CHANGE, manifest_pb2.AMENDMENT_CANCELLED_RESERVATION, 0),
    "RP": (_CHANGE, manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY, 0),
}
# Crew-list variants of BGM 250 (regular crew, crew change, domestic continuance, ...): each a full list.
_CREW_VARIANTS = ("C", "CC", "B", "BC", "A", "D", "E", "EC", "F", "FC")
_STATUS_FUNCTIONS = {
    "CLOB": (manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT, 0, manifest_pb2.BOARDING_STATUS_BOARDED),
    "CLNB": (manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT, 0, manifest_pb2.BOARDING_STATUS_NOT_BOARDED),
    "XF": (manifest_pb2.MESSAGE_FUNCTION_CANCEL, 0, 0),
}
_TRAVELLER_PLACES = {"174": "residence", "178": "embarkation", "179": "debarkation"}
# Segments of the guide's subset the Manifest has no field for: read past without a warning.
_KNOWN_UNUSED = frozenset({"COM", "MEA", "GEI", "FTX", "EMP", "QTY", "GIS", "CTA", "ERP", "ERC"})


class _LegDraft:
    __slots__ = ("index", "tdt", "origin", "destination", "has_origin", "has_destination", "dep", "arr")

    def __init__(self, index: int, tdt: Segment):
        self.index, self.tdt = index, tdt
        self.origin = self.destination = ""
        self.has_origin = self.has_destination = False
        self.dep: Segment | None = None
        self.arr: Segment | None = None


class _MessageReader:
    """Maps one message's segments onto a Manifest, collecting violations and field locations."""

    def __init__(self, segs: list[Segment], ref_date: date):
        self.segs = segs
        self.ref = ref_date
        self.errors: list[Violation] = []
        self.warnings: list[Violation] = []
        self.locations: dict[str, str] = {}
        self.m = manifest_pb2.Manifest(source_format="paxlst")
        self.legs: list[_LegDraft] = []
        self.leg: _LegDraft | None = None
        self.tdt_seen = False
        self.tdt: Segment | None = None
        self.tdt_ident = ""
        self.traveller: manifest_pb2.Traveller | None = None
        self.tpath = ""
        self.doc: manifest_pb2.Document | None = None
        self.dpath = ""
        self.bgm: Segment | None = None
        self.boarding = 0
        self.counts = {"42": 0, "41": 0}
        self.control: dict[str, tuple[Segment, str]] = {}

    def error(self, field_: str, code: str, description: str, seg: Segment) -> None:
        self.errors.append(_violation(field_, code, description, seg))

    def warn(self, field_: str, code: str, description: str, seg: Segment) -> None:
        self.warnings.append(_violation(field_, code, description, seg))

    def read(self) -> manifest_pb2.Manifest | None:
        segs = self.segs
        unh, unt = segs[0], segs[-1]
        self.locations[""] = unh.label
        kind = unh.value(1, 0)
        if kind != "PAXLST":
            self.error("", "not_paxlst", f"not a PAXLST message: UNH names {kind[:12]!r}", unh)
            return None
        directory = unh.value(1, 2)
        if unh.value(1, 1) != "D" or directory not in DIRECTORIES:
            self.warn("", "directory", f"directory {unh.value(1, 1)}:{directory} is not D:02B/05B/15B", unh)
        if unh.value(3, 0).isdigit():
            self.m.part = int(unh.value(3, 0))
        if unh.value(3, 1) == "C":
            self.warn("", "multi_part", "part of a multi-part message: parts are read one by one", unh)
        if len(segs) < 3 or segs[1].tag != "BGM":
            found = next((s for s in segs[1:-1] if s.tag == "BGM"), None)
            if found is None:
                where = segs[1] if len(segs) > 2 else unh
                self.error("function", "missing_bgm", "no BGM segment: the message function is unknown", where)
        handlers = self.handlers
        for seg in segs[1:-1]:
            handler = handlers.get(seg.tag)
            if handler is not None:
                handler(self, seg)
            elif seg.tag not in _KNOWN_UNUSED:
                self.warn("", "unknown_segment", f"segment {seg.tag[:3]!r} ignored", seg)
        self.finish_legs()
        self.check_unt(unh, unt)
        self.check_counts()
        if self.boarding:
            for t in self.m.travellers:
                t.boarding = self.boarding
        if not self.tdt_seen:
            self.error("legs", "missing_tdt", "no TDT segment: carrier and flight are unknown", unh)
        return None if self.errors else self.m

    # -- header ---------------------------------------------------------------------------------------------
    def on_bgm(self, seg: Segment) -> None:
        if self.bgm is not None:
            self.warn("function", "repeated", "second BGM ignored", seg)
            return
        self.bgm = seg
        self.locations["function"] = self.locations["amendment"] = seg.label
        doc, fn = seg.value(0), seg.value(1)
        if doc in ("745", "250"):
            found = _LIST_FUNCTIONS.get(fn)
            if found is None and doc == "250" and fn in _CREW_VARIANTS:
                found = _LIST_FUNCTIONS[""]
        elif doc == "266":
            found = _STATUS_FUNCTIONS.get(fn)
        else:
            found = None
        if found is None:
            what = f"BGM {doc[:6]!r} with function {fn[:6]!r}" if fn else f"BGM {doc[:6]!r}"
            self.error("function", "unknown_function", f"{what} is not a supported message function", seg)
            return
        self.m.function, self.m.amendment, self.boarding = found

    def on_rff(self, seg: Segment) -> None:
        parts = seg.parts(0)
        qualifier, value = parts[0], parts[1] if len(parts) > 1 else ""
        t = self.traveller
        if t is None:
            if qualifier == "TN" and not self.tdt_seen:
                self.m.message_ref = value
                self.locations["message_ref"] = self.locations["revision"] = seg.label
                revision = parts[4] if len(parts) > 4 else ""
                if revision and not (revision.isdigit() and len(revision) <= 9):
                    self.error("revision", "invalid_revision", "RFF+TN revision must be a number", seg)
                elif revision:
                    self.m.revision = int(revision)
            return
        if qualifier == "AVF":
            t.reservation_locator = value
            self.locations[self.tpath + ".reservation_locator"] = seg.label
        elif qualifier == "ABO":
            t.passenger_ref = value
            self.locations[self.tpath + ".passenger_ref"] = seg.label
        elif qualifier == "SEA":
            t.seat = value
            self.locations[self.tpath + ".seat"] = seg.label

    # -- flight legs ----------------------------------------------------------------------------------------
    def on_tdt(self, seg: Segment) -> None:
        if self.traveller is not None:
            self.warn("legs", "out_of_order", "TDT after the travellers ignored", seg)
            return
        self.leg = None
        ident = seg.value(1).replace(" ", "")
        carrier = seg.value(4).upper()
        if not self.tdt_seen:
            self.tdt_seen = True
            m = self.m
            if not carrier:
                letters = re.match(r"[A-Z]{2,3}(?=\d)|[A-Z]\d(?=\d)|\d[A-Z](?=\d)", ident.upper())
                carrier = letters.group(0) if letters else ""
            m.carrier = carrier
            if carrier and ident.upper().startswith(carrier):
                m.flight_number = ident[len(carrier) :]
            else:
                designator = re.match(r"[A-Z]{2,3}(?=\d)", ident.upper())
                m.flight_number = ident[designator.end() :] if designator else ident
            mode = seg.value(2)
            m.transport_mode = manifest_pb2.TRANSPORT_MODE_SEA if mode == "1" else manifest_pb2.TRANSPORT_MODE_AIR
            for name in ("carrier", "flight_number", "transport_mode", "legs"):
                self.locations[name] = seg.label
            self.tdt_ident = ident
        elif ident != self.tdt_ident:
            self.warn("flight_number", "flight_differs", "a later TDT names another flight; the first is kept", seg)
        self.tdt = seg

    def new_leg(self) -> _LegDraft:
        leg = _LegDraft(len(self.legs), self.tdt)
        self.legs.append(leg)
        self.leg = leg
        return leg

    def on_loc(self, seg: Segment) -> None:
        qualifier = seg.value(0)
        if self.traveller is not None:
            self.traveller_loc(seg, qualifier)
            return
        if not self.tdt_seen:
            self.warn("", "out_of_order", "LOC before the first TDT ignored", seg)
            return
        port = seg.value(1)
        leg = self.leg
        if qualifier == "125" or (qualifier == "92" and (leg is None or leg.has_destination)):
            if qualifier == "92" and leg is not None and port != leg.destination:
                # A lone LOC+92 after a complete leg continues the route from its destination.
                previous = leg
                leg = self.new_leg()
                leg.origin, leg.has_origin = previous.destination, True
                self.set_destination(leg, port, seg)
                return
            if leg is None or leg.has_origin or leg.has_destination:
                leg = self.new_leg()
            leg.origin, leg.has_origin = port, True
            self.locations[f"legs[{leg.index}].origin"] = seg.label
        elif qualifier in ("87", "92"):
            if leg is None or leg.has_destination:
                leg = self.new_leg()
            self.set_destination(leg, port, seg)
        elif qualifier != "130":
            self.warn("legs", "unknown_qualifier", f"LOC qualifier {qualifier[:4]!r} in a flight leg ignored", seg)

    def set_destination(self, leg: _LegDraft, port: str, seg: Segment) -> None:
        leg.destination, leg.has_destination = port, True
        self.locations[f"legs[{leg.index}].destination"] = seg.label

    def finish_legs(self) -> None:
        for leg in self.legs:
            path = f"legs[{leg.index}]"
            self.locations[path] = leg.tdt.label
            out = self.m.legs.add(origin=leg.origin, destination=leg.destination)
            if leg.dep is not None:
                self.leg_time(out.scheduled_departure, leg.dep, leg.origin, path + ".scheduled_departure")
            if leg.arr is not None:
                self.leg_time(out.scheduled_arrival, leg.arr, leg.destination, path + ".scheduled_arrival")

    def leg_time(self, ts, seg: Segment, port: str, path: str) -> None:
        self.locations[path] = seg.label
        value, fmt = seg.value(0, 1).replace(" ", ""), seg.value(0, 2)
        try:
            fmt, year, month, day, hour, minute = _dtm_fields(value, fmt)
            if fmt in ("602", "610"):
                raise _BadDate("a flight time needs at least a full date")
            if fmt in ("101", "201"):
                year = near_year(year, self.ref)
            _check_day(year, month, day)
        except _BadDate as exc:
            self.error(path, "invalid_date", f"{exc}: {value[:14]!r}", seg)
            return
        if fmt in ("101", "102"):
            self.warn(path, "no_time", "flight date without a time of day: midnight assumed", seg)
        zone = port_zone(port) if port else None
        if zone is None:
            self.warn(path, "time_zone_unknown", f"no time zone known for port {port[:8]!r}: taken as UTC", seg)
        local = datetime(year, month, day, hour, minute, tzinfo=zone or UTC)
        ts.FromDatetime(local.astimezone(UTC))

    # -- travellers -----------------------------------------------------------------------------------------
    def on_nad(self, seg: Segment) -> None:
        qualifier = seg.value(0)
        if qualifier == "MS":
            return
        role = _ROLES.get(qualifier)
        index = len(self.m.travellers)
        path = f"travellers[{index}]"
        if not index:
            self.locations["travellers"] = seg.label
        if role is None:
            self.error(path + ".role", "unknown_role", f"NAD qualifier {qualifier[:4]!r} is not FL/FM/DDU/DDT", seg)
        self.leg = None
        t = self.m.travellers.add(role=role or 0)
        self.traveller, self.tpath, self.doc = t, path, None
        name = seg.parts(3)
        surname = name[0]
        given = name[1] if len(name) > 1 else ""
        second = name[2] if len(name) > 2 else ""
        t.surname = surname
        t.given_names = f"{given} {second}" if given and second else given or second
        label = seg.label
        loc = self.locations
        loc[path] = loc[path + ".role"] = loc[path + ".surname"] = loc[path + ".given_names"] = label
        if not surname:
            self.error(path + ".surname", "required", "traveller without a surname", seg)
        if qualifier in ("FM", "DDT"):
            self.counts["41"] += 1
        else:
            self.counts["42"] += 1

    def no_traveller(self, seg: Segment) -> bool:
        if self.traveller is None:
            self.warn("", "out_of_order", f"{seg.tag} outside a traveller group ignored", seg)
            return True
        return False

    def on_att(self, seg: Segment) -> None:
        if self.no_traveller(seg) or seg.value(0) != "2":
            return
        code = seg.value(2).upper()
        sex = _SEXES.get(code)
        if sex is None:
            self.warn(self.tpath + ".sex", "unknown_code", f"sex code {code[:3]!r} is not M/F/X/U", seg)
            return
        self.traveller.sex = sex
        self.locations[self.tpath + ".sex"] = seg.label

    def on_nat(self, seg: Segment) -> None:
        if self.no_traveller(seg):
            return
        self.traveller.nationality = seg.value(1)
        self.locations[self.tpath + ".nationality"] = seg.label

    def traveller_loc(self, seg: Segment, qualifier: str) -> None:
        port = seg.value(1)
        if qualifier == "91":
            if self.doc is None:
                self.warn("", "out_of_order", "LOC+91 outside a DOC group ignored", seg)
                return
            self.doc.issuing_state = port
            self.locations[self.dpath + ".issuing_state"] = seg.label
            return
        name = _TRAVELLER_PLACES.get(qualifier)
        if name is not None:
            setattr(self.traveller, name, port)
            self.locations[f"{self.tpath}.{name}"] = seg.label

    def on_doc(self, seg: Segment) -> None:
        if self.no_traveller(seg):
            return
        t = self.traveller
        self.dpath = f"{self.tpath}.documents[{len(t.documents)}]"
        code = seg.value(0, 0).upper()
        self.doc = t.documents.add(type=_DOC_TYPES.get(code, manifest_pb2.DOCUMENT_TYPE_OTHER), number=seg.value(1))
        label = seg.label
        loc = self.locations
        loc[self.dpath] = loc[self.dpath + ".type"] = loc[self.dpath + ".number"] = label

    def on_dtm(self, seg: Segment) -> None:
        parts = seg.parts(0)
        qualifier = parts[0]
        if self.traveller is None:
            if qualifier in ("189", "232") and self.tdt_seen:
                leg = self.leg
                if leg is None:
                    self.warn("legs", "out_of_order", "DTM before any LOC of the flight leg ignored", seg)
                elif qualifier == "189":
                    leg.dep = seg
                else:
                    leg.arr = seg
            return
        if qualifier == "329":
            self.person_date(self.traveller.date_of_birth, seg, parts, self.tpath + ".date_of_birth", True)
        elif qualifier == "36":
            if self.doc is None:
                self.warn("", "out_of_order", "DTM+36 outside a DOC group ignored", seg)
            else:
                self.person_date(self.doc.expiry, seg, parts, self.dpath + ".expiry", False)

    def person_date(
        self, out: manifest_pb2.PartialDate, seg: Segment, parts: list[str], path: str, birth: bool
    ) -> None:
        self.locations[path] = seg.label
        value = parts[1].replace(" ", "") if len(parts) > 1 else ""
        fmt = parts[2] if len(parts) > 2 else ""
        if not value:
            self.warn(path, "missing", "empty date ignored", seg)
            return
        try:
            fmt, year, month, day, _, _ = _dtm_fields(value, fmt)
            if fmt in ("101", "201"):
                year = birth_year(year, month, day, self.ref) if birth else expiry_year(year, self.ref)
            _check_day(year, month, day)
        except _BadDate as exc:
            possible = _possible_birth_parts(value, fmt, self.ref) if birth else None
            if possible is None:
                # No value in the description: birth dates are personal data.
                self.error(path, "invalid_date", str(exc), seg)
                return
            # A traveller is screened on what the date does say (a day 32 or a month 13 is a slip in one part):
            # rejecting the manifest would leave everyone on it unscreened.
            self.warn(path, "impossible_date", f"{exc}: date of birth kept to its possible parts", seg)
            year, month, day = possible
        if birth and (year, month or 1, day or 1) > (self.ref.year, self.ref.month, self.ref.day):
            self.error(path, "invalid_date", "date of birth after the message date", seg)
            return
        out.year, out.month, out.day = year, month, day

    # -- trailer --------------------------------------------------------------------------------------------
    def on_cnt(self, seg: Segment) -> None:
        qualifier, value = seg.value(0, 0), seg.value(0, 1)
        if not value and len(seg.elements) > 1:
            value = seg.value(1)
            self.warn("", "cnt_form", "CNT written as qualifier+count; expected qualifier:count", seg)
        self.control[qualifier] = (seg, value)

    def check_counts(self) -> None:
        # CNT is the total on the flight, not in this message: only a total below the message's own count is
        # certainly wrong.
        for qualifier, (seg, value) in self.control.items():
            if not value.isdigit():
                self.warn("", "control_total", f"CNT+{qualifier[:3]} value is not a number", seg)
            elif qualifier in self.counts and int(value) < self.counts[qualifier]:
                kind = "crew" if qualifier == "41" else "passengers"
                self.warn(
                    "travellers",
                    "control_total",
                    f"CNT+{qualifier} flight total {value} is below the {kind} in this message "
                    f"({self.counts[qualifier]})",
                    seg,
                )

    def check_unt(self, unh: Segment, unt: Segment) -> None:
        count = unt.value(0)
        actual = len(self.segs)
        if count != str(actual):
            self.warn("", "segment_count", f"UNT counts {count[:8]!r} segments, the message has {actual}", unt)
        if unt.value(1) != unh.value(0):
            self.warn("", "control_reference", "UNT reference differs from UNH", unt)

    handlers = {
        "BGM": on_bgm,
        "RFF": on_rff,
        "TDT": on_tdt,
        "LOC": on_loc,
        "DTM": on_dtm,
        "NAD": on_nad,
        "ATT": on_att,
        "NAT": on_nat,
        "DOC": on_doc,
        "CNT": on_cnt,
    }


# -- helpers for the CLI ------------------------------------------------------------------------------------


def looks_like_paxlst(data: bytes) -> bool:
    """Cheap sniff: an EDIFACT interchange or message starts here (after whitespace or a teletype STX)."""
    head = data[:4096]
    stx = head.find(b"\x02")
    if stx >= 0 and b"UNB" not in head[:stx] and b"UNA" not in head[:stx]:
        head = head[stx + 1 :]
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x01\x02")
    return head[:3] in (b"UNA", b"UNB", b"UNH") or re.search(rb"[\r\n][ \t]*UN[AB]", head) is not None


def split_interchanges(data: bytes) -> list[bytes]:
    """Cut concatenated interchanges (each UNA?/UNB ... UNZ) apart, e.g. for a file holding several."""
    out: list[bytes] = []
    rest = data
    while rest.strip():
        text, codec, _ = _decode(rest)
        tokens = tokenise(text)
        unz = next((s for s in tokens.segments if s.tag == "UNZ"), None)
        if unz is None:
            out.append(rest)
            break
        cut = len(text[: unz.end].encode(codec, errors="replace"))
        out.append(rest[:cut])
        rest = rest[cut:]
    return out
