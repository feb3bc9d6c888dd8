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

from services.paxlst.violations import Violation, Violations, position, violation

# Larger inputs are refused before splitting (services.paxlst.reader.MAX_BYTES bounds the bytes). A 10,000-berth
# cruise ship's list is about 120,000 segments.
MAX_SEGMENTS = 200_000
# PAXLST segments have at most ten data elements and components: splitting stops after this many, so a hostile
# segment of a million separators costs no list of a million strings (the rest stays in the last item).
_MAX_ELEMENTS = 40
# The longest value of the PAXLST message (free text, 4440 an..512), and twice its longest segment (FTX: five
# free-text values and qualifiers, about 2,600 characters). A longer segment is cut: every value to
# MAX_VALUE_CHARS, the whole to MAX_SEGMENT_CHARS, with a warning; what the hub stores of it is the cut text.
# Field sizes below these (an..35 names) are intake's to enforce (services.api_ingest), not the syntax's.
MAX_VALUE_CHARS = 512
MAX_SEGMENT_CHARS = 8192

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
# An interchange header (UNA, UNB) at the start of a line, or after control characters (Ctrl-Z, NUL padding)
# that ran into it; and a message header (UNH) as a word of its own (not the middle of MUNHOZ).
_ENVELOPE_LINE = re.compile(r"[\r\n][\s\x00-\x1f\x7f]*(UNA|UNB)")
_ENVELOPE_AFTER_CONTROLS = re.compile(r"[\s\x00-\x1f\x7f]+(UNA|UNB)")
_UNH = re.compile(r"(?<![0-9A-Za-z])UNH(?![0-9A-Za-z])")
# Read past before the interchange: white space, a byte-order mark, teletype SOH/STX.
_LEADING = re.compile(r"[\s\ufeff\x01\x02]*")


# -- character sets -----------------------------------------------------------------------------------------


def codec_of(syntax_id: str) -> str:
    """The codec the hub reads (and writes) an interchange of this UNB syntax identifier in: ISO 8859 for
    UNOC-UNOK, UTF-8 otherwise (ASCII-compatible: UNOA, UNOB, UNOW, UNOY and unknown identifiers)."""
    return _CODECS.get(syntax_id, "utf-8")


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

    __slots__ = ("component", "escaped", "table", "text_table")

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
        # Back to the text as received (still escaped): each sentinel stood for one character.
        self.text_table = {**self.table, ord(_MARK): d.release}


class Segment:
    """One segment: its position in the interchange, tag and data elements (components still joined)."""

    __slots__ = ("pos", "tag", "elements", "start", "end", "syntax", "label")
    # An oversized segment's text as the hub keeps it and its size (CutSegment); None for all others.
    cut: str | None = None
    size = 0

    def __init__(self, pos: int, tag: str, elements: list[str], start: int, end: int, syntax: _Syntax):
        self.pos = pos
        self.tag = tag
        self.elements = elements
        self.start = start  # offsets into the decoded text: the tag's first character ...
        self.end = end  # ... and just after the terminator
        self.syntax = syntax
        # How locations and violations name the segment (violation() shortens a junk tag).
        self.label = f"#{pos} {tag}"

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


class CutSegment(Segment):
    """A segment longer than MAX_SEGMENT_CHARS, cut by the tokeniser (a class of its own: the others pay
    nothing for it)."""

    __slots__ = ("cut", "size")

    def __init__(self, *args, cut: str, size: int):
        super().__init__(*args)
        self.cut = cut
        self.size = size


@dataclass
class Tokens:
    delimiters: Delimiters
    segments: list[Segment]
    errors: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    # Whether the last segment ended without a terminator.
    unterminated: bool = False
    # The segments cut for size (Segment.cut), in order.
    cut: list[Segment] = field(default_factory=list)


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
    start = _LEADING.match(text, start, end).end()  # type: ignore[union-attr]  # matches the empty string
    if not text.startswith(("UNA", "UNB", "UNH"), start):
        # A teletype or e-mail header without STX: the interchange starts on a later line (or after Ctrl-Z).
        found = envelope_line(text, start, min(end, start + 4096))
        if found >= 0:
            return interchange_start(text, found), end, True
    return start, end, False


def envelope_line(text: str, start: int, end: int) -> int:
    """Offset of an interchange header (UNA or UNB) inside the text of a junk segment, [start, end): after the
    control characters it starts with, or at the start of a line; else -1."""
    found = _ENVELOPE_AFTER_CONTROLS.match(text, start, end) or _ENVELOPE_LINE.search(text, start, end)
    return found.start(1) if found else -1


def interchange_start(text: str, at: int) -> int:
    """Where the interchange of the UNB at `at` begins: at its UNA when one comes just before (blanks between),
    else at the UNB."""
    j = at
    while j > 0 and text[j - 1] in " \t\r\n":
        j -= 1
    return j - 9 if j >= 9 and text.startswith("UNA", j - 9) else at


def last_message_start(text: str) -> int:
    """Offset of the last UNH in the text (-1 when none): a UNA or UNB before it starts an interchange."""
    end = len(text)
    while True:
        at = text.rfind("UNH", 0, end)  # the last one is almost always it: no regex over the whole text
        if at < 0 or _UNH.match(text, at):
            return at
        end = at + 2


def holds_message(text: str, start: int, end: int) -> bool:
    """Whether a UNH appears in [start, end) of the text."""
    return _UNH.search(text, start, end) is not None


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
    cut: list[Segment] = []
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
                tag = tag.split(comp, 1)[0].strip()[:MAX_VALUE_CHARS]
            if n > MAX_SEGMENT_CHARS and len(s) > MAX_SEGMENT_CHARS:
                parts = _bounded(parts, comp)
                text_cut = (elem.join(parts) + d.terminator).translate(syntax.text_table)
                seg = CutSegment(pos, tag, parts[1:], first, off + n + 1, syntax, cut=text_cut, size=len(s))
                cut.append(seg)
            else:
                seg = Segment(pos, tag, parts[1:], first, off + n + 1, syntax)
            append(seg)
        off += n + 1
    # The text after the last terminator: a segment without one (truncation, sloppiness or junk).
    unterminated = bool(pieces[-1].strip())
    if unterminated:
        segments[-1].end -= 1
    if segments:
        _sloppy_spacing(body, start, d, segments, warnings)
    return Tokens(d, segments, [], warnings, unterminated, cut)


def warn_cut(found: Violations, text: str, seg: Segment) -> None:
    """The warning for an oversized segment the tokeniser cut (seg.cut), naming it and where it is."""
    code = "segment_too_long"
    if not found.listed(code):
        found.tally(code)  # not worded: finding the line of each of thousands would read the text thousands of times
        return
    cut = len(seg.cut or "")
    description = (
        f"{seg.size:,} characters ({position(text, seg.start)}): cut to {cut:,}, each value to at most "
        f"{MAX_VALUE_CHARS} characters (no PAXLST segment is longer than {MAX_SEGMENT_CHARS // 2:,})"
    )
    found.add(violation("", code, description, seg))


def _bounded(parts: list[str], comp: str) -> list[str]:
    """The tag and data elements of an oversized segment, cut to what PAXLST can hold: at most _MAX_ELEMENTS
    elements of _MAX_ELEMENTS components, each at most MAX_VALUE_CHARS, all at most MAX_SEGMENT_CHARS."""
    budget = MAX_SEGMENT_CHARS
    out: list[str] = []
    for element in parts[:_MAX_ELEMENTS]:
        kept: list[str] = []
        for value in element.split(comp, _MAX_ELEMENTS)[:_MAX_ELEMENTS]:
            value = value[:MAX_VALUE_CHARS].removesuffix(_MARK)  # never half an escaped pair
            budget -= len(value) + 1
            if budget < 0:
                break
            kept.append(value)
        out.append(comp.join(kept))
        if budget < 0:
            break
    return out


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
