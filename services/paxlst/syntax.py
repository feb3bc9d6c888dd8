"""EDIFACT syntax of a PAXLST interchange: service characters (UNA), character sets (UNB), and the tokeniser
that cuts the text into segments. Shared by the reader (services.paxlst.reader) and the writer.

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

Character sets UNOA/UNOB/UNOY/UNOW are read as UTF-8 and UNOC-UNOK as ISO 8859; the UNA repetition separator
is not used; a carrier that renders the terminator differently without a UNA (the astra harness's '"') needs
its delimiters passed in (a per-carrier profile).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from services.wire import intake_pb2

Violation = intake_pb2.FieldViolation

# Larger inputs are refused before splitting (services.paxlst.reader.MAX_BYTES bounds the bytes).
MAX_SEGMENTS = 200_000
# PAXLST segments have at most ten data elements and components: splitting stops after this many, so a hostile
# segment of a million separators costs no list of a million strings (the rest stays in the last item).
_MAX_ELEMENTS = 40

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


def violation(field_: str, code: str, description: str, segment: Segment | str = "") -> Violation:
    """A problem found in the interchange, naming the segment ("#14 DTM") when there is one."""
    label = segment.label if isinstance(segment, Segment) else segment
    return Violation(field=field_, code=code, description=description, segment=label)


# -- character sets -----------------------------------------------------------------------------------------


def decode_interchange(data: bytes | str) -> tuple[str, str, list[Violation]]:
    """(text, codec, warnings): bytes decoded by the character set UNB declares, else UTF-8, else Latin-1."""
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
        warning = violation("", "encoding", "not valid UTF-8 or the declared character set: read as Latin-1")
        return data.decode("latin-1"), "latin-1", [warning]


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
        warnings.append(violation("", "leading_text", "text before the interchange (UNA/UNB) ignored"))
    pos = 0
    d = delimiters or DEFAULT_DELIMITERS
    if text.startswith("UNA", start):
        pos = 1
        declared = Delimiters.from_una(text[start + 3 : start + 9])
        if declared is None:
            unb = text.find("UNB", start + 3, start + 16)
            warnings.append(
                violation("", "malformed_una", "UNA is not 6 valid service characters; defaults used", "#1 UNA")
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
            warnings.append(violation("", "invalid_character", "private-use characters replaced by U+FFFD"))
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
        error = violation("", "too_large", f"more than {MAX_SEGMENTS} segments: split the interchange")
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
        warnings.append(violation("", "leading_spaces", "blanks before segment tags ignored", seg))
    at = _first(body, (elem + " ", " " + elem, comp + " ", " " + comp, " " + term))
    if at >= 0:
        seg = segments[max(bisect.bisect_right([s.start for s in segments], base + at) - 1, 0)]
        warnings.append(violation("", "blank_values", "blanks around values trimmed", seg))
