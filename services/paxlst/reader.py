"""UN/EDIFACT PAXLST reader: an interchange (UNA? UNB ... UNZ) in, one Manifest per message (UNH ... UNT) out.

Every problem is a FieldViolation naming the segment ("#14 DTM": 1-based position in the interchange, UNA
counted when present) and, where one exists, the Manifest field ("travellers[2].date_of_birth"). The reader
never raises: whatever the bytes, it answers with errors (reject) or warnings (accept). It does not check
country codes or ports against tables; validate_manifest does that later and finds the segment through
PaxlstMessage.locate.

Reject only what cannot be screened. An interchange is refused whole only when nothing in it can be read (no
UNB nor UNH, too large, more than MAX_MESSAGES messages) or when a second interchange follows in the same
request (split_interchanges cuts a file's interchanges apart first); a message is refused alone when it is cut
short (no UNT), lost its UNH, is not PAXLST or names no flight. What real carrier files hold besides (a junk line,
Ctrl-Z or NUL padding after UNZ, segments between messages, a message without UNB, wrong control counts and
references in UNT, UNE, UNZ, oversized segments) is read past with a warning naming the segment and its line.
A warning never repeats junk text: it may hold personal data. At most MAX_WARNINGS_PER_CODE warnings of one kind
are listed; the rest are counted.

The reader is in layers: services.paxlst.syntax (character sets, service characters, the tokeniser and
why it is our own, the size bounds), this module (the envelope: UNB, UNG/UNE, UNH ... UNT, UNZ and their
control counts, and what lies around them) and services.paxlst.message (one message's segments onto a
Manifest; its flight part in services.paxlst.legs, dates in services.paxlst.dates).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.paxlst.dates import near_year
from services.paxlst.files import looks_like_paxlst as looks_like_paxlst  # the CLI's, kept importable here
from services.paxlst.files import split_interchanges as split_interchanges
from services.paxlst.message import MessageReader
from services.paxlst.syntax import (
    Delimiters,
    Segment,
    decode_interchange,
    envelope_line,
    holds_message,
    last_message_start,
    tokenise,
    warn_cut,
)
from services.paxlst.violations import Violation, Violations, position, violation
from services.wire import manifest_pb2

# Larger inputs are refused before tokenising: a 300-passenger message is about 150 KiB. gRPC's largest message
# is 16 MiB too, and the reader's time and memory grow in proportion (segments are cut to MAX_SEGMENT_CHARS).
MAX_BYTES = 16 * 1024 * 1024
# A flight's list is one message or a few parts: more than this in one interchange is refused.
MAX_MESSAGES = 1000
# Segments that end an open message: without its UNT, the message is truncated.
_CLOSING = frozenset({"UNH", "UNE", "UNZ", "UNA", "UNB"})


# -- results ------------------------------------------------------------------------------------------------


@dataclass
class PaxlstMessage:
    """One message (UNH ... UNT) of an interchange."""

    manifest: manifest_pb2.Manifest | None  # None when the message is rejected
    errors: list[Violation]
    warnings: list[Violation]
    raw: bytes  # this message's own text (UNH..UNT) as received, oversized segments as cut
    locations: dict[str, str]  # Manifest field path -> segment label; "" -> the UNH
    # UNH 0062 message reference number and 0068 common access reference, as sent ("" without a UNH): an
    # answer (CUSRES, services.paxlst.cusres) echoes them.
    unh_ref: str = ""
    common_access_ref: str = ""

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
    # UNB recipient (0010), application reference (0026: "IAPI" for an interactive request) and syntax
    # identifier and version (0001, 0002: "UNOA", "4"), as sent; "" without a UNB. An answer echoes them.
    recipient: str = ""
    application_ref: str = ""
    syntax_id: str = ""
    syntax_version: str = ""
    # Whether the messages came in a functional group (UNG ... UNE): an answer then uses one too.
    group: bool = False


# -- the envelope -------------------------------------------------------------------------------------------


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
        error = violation("", "too_large", f"interchange larger than {MAX_BYTES // (1024 * 1024)} MiB")
        return PaxlstInterchange([], [error], [], "", "")
    try:
        return _Envelope(data, delimiters, today).read()
    except Exception:  # a bug must cost one interchange, never the server; tests assert it never happens
        error = violation("", "internal_error", "the PAXLST reader failed on this interchange")
        return PaxlstInterchange([], [error], [], "", "")


class _Run:
    """Consecutive segments outside any message: junk, strays, or a message that lost its UNH."""

    __slots__ = ("first", "last", "count", "tags")

    def __init__(self, seg: Segment):
        self.first = self.last = seg
        self.count = 0
        self.tags: dict[str, None] = {}
        self.add(seg)

    def add(self, seg: Segment) -> None:
        self.last = seg
        self.count += 1
        if len(self.tags) < 6 and len(seg.tag) == 3 and seg.tag.isalnum() and seg.tag.isupper():
            self.tags[seg.tag] = None  # EDIFACT tags only: a line of junk may hold a name


class _Envelope:
    """One walk through the segments: the envelope (UNB, UNG/UNE, UNZ), its messages, and what lies between.
    services.paxlst.cusres walks CUSRES interchanges with it, overriding _message."""

    def __init__(self, data: bytes | str, delimiters: Delimiters | None, today: date | None):
        self.text, self.codec, warnings = decode_interchange(data)
        self.warnings = Violations(warnings)
        self.delimiters = delimiters
        self.ref_date = today or datetime.now(UTC).date()
        self.sent_at: datetime | None = None
        self.unb_ref: str | None = None  # None without a UNB
        self.errors: list[Violation] = []
        self.messages: list[PaxlstMessage] = []
        self.message: list[Segment] | None = None  # the open message (UNH ...)
        self.outside: _Run | None = None
        self.unz: Segment | None = None
        self.groups: int | None = None  # UNG segments seen, None without functional groups
        self.group: tuple[Segment, int] | None = None  # the open UNG and the messages before it
        self.cut: list[Segment] = []  # segments the tokeniser cut for size

    def read(self) -> PaxlstInterchange:
        tokens = tokenise(self.text, self.delimiters)
        self.cut = tokens.cut
        self.warnings.extend(tokens.warnings)
        self.errors.extend(tokens.errors)
        out = PaxlstInterchange(self.messages, self.errors, self.warnings, "", "")
        segs = tokens.segments
        if not tokens.errors:
            begin = self._envelope(segs, out)
            if begin is not None:
                self._walk(segs[begin:])
                self._finish(segs, tokens.unterminated)
        out.group = self.groups is not None
        self.warnings.close()
        return out

    def _envelope(self, segs: list[Segment], out: PaxlstInterchange) -> int | None:
        """Index of the first segment after the UNB (of the UNH when there is no UNB), None when unreadable."""
        if not segs:
            self.errors.append(violation("", "empty", "no EDIFACT segments found"))
            return None
        first = next((i for i, s in enumerate(segs) if s.tag in ("UNB", "UNH")), None)
        if first is None:
            description = f"expected UNB, found {segs[0].tag[:3]!r}: no interchange (UNB) nor message (UNH)"
            self.errors.append(violation("", "missing_unb", description, segs[0]))
            return None
        if first:
            where = position(self.text, segs[0].start)
            self.warnings.add(
                violation(
                    "",
                    "leading_text",
                    f"{_plural(first, 'segment')} before {segs[first].tag} ignored ({where})",
                    segs[0],
                )
            )
        if segs[first].tag == "UNH":
            self.warnings.add(
                violation("", "missing_unb", "no UNB: the message is read without an interchange header", segs[first])
            )
            return first
        unb = segs[first]
        out.sender = unb.value(1)
        out.recipient, out.application_ref = unb.value(2), unb.value(6)
        out.syntax_id, out.syntax_version = unb.value(0, 0), unb.value(0, 1)
        out.interchange_ref = self.unb_ref = unb.value(4)
        self.sent_at = _unb_sent_at(unb)
        if self.sent_at is None:
            self.warnings.add(violation("sent_at", "invalid_date", "UNB date/time unreadable", unb))
        else:
            self.ref_date = self.sent_at.date()
        if unb.cut is not None:
            warn_cut(self.warnings, self.text, unb)
        return first + 1

    def _walk(self, segs: list[Segment]) -> None:
        last_unh = last_message_start(self.text)
        for seg in segs:
            tag = seg.tag
            if self.message is not None:
                if tag not in _CLOSING:
                    self.message.append(seg)
                    if tag == "UNT":
                        self._message(self.message)
                        self.message = None
                    continue
                self._truncated(self.message, f"no UNT before {seg.label}")
                self.message = None
            if seg.cut is not None:
                warn_cut(self.warnings, self.text, seg)
            if self._second_interchange(seg, last_unh):
                description = "a second interchange begins here: send one at a time"
                self.errors.append(violation("", "several_interchanges", description, seg))
                return
            if len(self.messages) >= MAX_MESSAGES:
                description = f"more than {MAX_MESSAGES} messages in one interchange: split it"
                self.errors.append(violation("", "too_many_messages", description, seg))
                return
            if tag in ("UNH", "UNG", "UNE") or (tag == "UNZ" and self.unz is None):
                self._end_outside()
                self._envelope_segment(seg)
            elif self.outside is None:
                self.outside = _Run(seg)
            else:
                self.outside.add(seg)
        self._end_outside()

    def _second_interchange(self, seg: Segment, last_unh: int) -> bool:
        """A UNA or UNB followed by a message (split_interchanges cuts there too), also when junk after UNZ ran
        into it (Ctrl-Z, a line without a terminator)."""
        if seg.tag in ("UNA", "UNB"):
            return seg.start < last_unh
        if self.unz is None:
            return False
        return 0 <= envelope_line(self.text, seg.start, seg.end) < last_unh

    def _envelope_segment(self, seg: Segment) -> None:
        tag = seg.tag
        if tag == "UNH":
            if self.unz is not None and "message_after_unz" not in self.warnings.counts:
                description = "a message after UNZ: read as part of the interchange"
                self.warnings.add(violation("", "message_after_unz", description, seg))
            self.message = [seg]
        elif tag == "UNG":
            self.groups = (self.groups or 0) + 1
            self.group = (seg, len(self.messages))
        elif tag == "UNE":
            self._check_une(seg)
        else:
            self.unz = seg
            self._check_unz(seg)

    def _end_outside(self) -> None:
        """Judge a finished run of segments outside any message."""
        run, self.outside = self.outside, None
        if run is None:
            return
        first, last = run.first, run.last
        what = _describe(self.text[first.start : last.end], run)
        where = position(self.text, first.start)
        if self.unz is not None and holds_message(self.text, first.start, last.end):
            # A message in a form the reader cannot cut out (other delimiters, no header): never drop it quietly.
            description = f"{what} after UNZ holds a message (UNH) that cannot be read: send it on its own ({where})"
            self.errors.append(violation("", "several_interchanges", description, first))
        elif self.unz is not None:
            description = f"{what} after UNZ ignored ({where})"
            self.warnings.add(violation("", "trailing_data", description, first))
        elif last.tag == "UNT" and run.count > 1:
            error = violation(
                "", "missing_unh", f"a message without UNH ({where}): {_plural(run.count, 'segment')}", first
            )
            self.messages.append(PaxlstMessage(None, [error], [], self._raw([first, last]), {}))
        else:
            self.warnings.add(violation("", "outside_message", f"{what} outside any message ignored ({where})", first))

    def _finish(self, segs: list[Segment], unterminated: bool) -> None:
        if self.message is not None:
            self._truncated(self.message, "the interchange ends inside this message (no UNT)")
            last = self.message[-1]
            self.warnings.add(violation("", "truncated", "interchange truncated: no UNT and no UNZ", last))
        elif self.unz is None:
            self.warnings.add(violation("", "missing_unz", "no UNZ at the end of the interchange", segs[-1]))
        if unterminated and (self.unz is None or segs[-1] is self.unz):
            last = segs[-1]
            self.warnings.add(violation("", "unterminated", f"{last.tag[:3]} has no segment terminator", last))
        if not self.messages and not self.errors:
            self.errors.append(violation("", "missing_unh", "the interchange holds no message (UNH)", segs[0]))

    def _check_une(self, une: Segment) -> None:
        if self.group is None:
            self.warnings.add(violation("", "outside_message", "UNE without UNG ignored", une))
            return
        ung, before = self.group
        self.group = None
        count, expected = une.value(0), len(self.messages) - before
        if count != str(expected):
            description = f"UNE counts {count[:8]!r} messages, the group has {expected}"
            self.warnings.add(violation("", "control_count", description, une))
        if une.value(1) != ung.value(4):
            self.warnings.add(violation("", "control_reference", "UNE reference differs from UNG", une))

    def _check_unz(self, unz: Segment) -> None:
        count = unz.value(0)
        expected = self.groups if self.groups is not None else len(self.messages)
        if count != str(expected):
            description = f"UNZ counts {count[:8]!r}, the interchange has {expected}"
            self.warnings.add(violation("", "control_count", description, unz))
        if self.unb_ref is not None and unz.value(1) != self.unb_ref:
            self.warnings.add(violation("", "control_reference", "UNZ reference differs from UNB", unz))

    def _raw(self, segs: list[Segment]) -> bytes:
        """The message's text as received, but for oversized segments, which are kept as cut."""
        first, last = segs[0], segs[-1]
        pieces, at = [], first.start
        for seg in self._cut_within(first, last):
            pieces += [self.text[at : seg.start], seg.cut or ""]
            at = seg.end
        pieces.append(self.text[at : last.end])
        return "".join(pieces).encode(self.codec, errors="replace")

    def _cut_within(self, first: Segment, last: Segment) -> list[Segment]:
        """The segments from first to last that the tokeniser cut for size."""
        if not self.cut:
            return []
        low = bisect.bisect_left(self.cut, first.pos, key=lambda s: s.pos)
        high = bisect.bisect_right(self.cut, last.pos, key=lambda s: s.pos)
        return self.cut[low:high]

    def _truncated(self, segs: list[Segment], why: str) -> None:
        error = violation("", "truncated", f"message truncated: {why}", segs[-1])
        unh = segs[0]
        self.messages.append(PaxlstMessage(None, [error], [], self._raw(segs), {}, unh.value(0), unh.value(2)))

    def _message(self, segs: list[Segment]) -> None:
        reader = MessageReader(segs, self.ref_date, self.text, self._cut_within(segs[0], segs[-1]))
        manifest = reader.read()
        if manifest is not None and self.sent_at is not None:
            manifest.sent_at.FromDatetime(self.sent_at)
        unh = segs[0]
        self.messages.append(
            PaxlstMessage(
                manifest,
                reader.errors,
                reader.warnings,
                self._raw(segs),
                reader.locations,
                unh.value(0),
                unh.value(2),
            )
        )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _describe(text: str, run: _Run) -> str:
    """What a run of junk is, in words that never repeat its content (it may hold personal data)."""
    size = _plural(len(text), "character")
    body = text.strip()
    if not body.strip("\x00"):
        return f"{size} of NUL padding"
    if not body.strip("\x00\x1a"):
        return f"{size} with an end-of-file mark (Ctrl-Z)"
    if run.tags:
        return f"{size} ({_plural(run.count, 'segment')}: {', '.join(run.tags)})"
    return f"{size} of text that is not EDIFACT"
