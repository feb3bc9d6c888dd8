"""UN/EDIFACT PAXLST reader: an interchange (UNA? UNB ... UNZ) in, one Manifest per message (UNH ... UNT) out.

Every problem is a FieldViolation naming the segment ("#14 DTM": 1-based position in the interchange, UNA
counted when present) and, where one exists, the Manifest field ("travellers[2].date_of_birth"). The reader
never raises: whatever the bytes, it answers with errors (reject) or warnings (accept). It does not check
country codes or ports against tables; validate_manifest does that later and finds the segment through
PaxlstMessage.locate.

The reader is in three layers: services.paxlst.syntax (character sets, service characters, the tokeniser and
why it is our own), this module (the envelope: UNB, UNH ... UNT, UNZ and their control counts) and
services.paxlst.message (one message's segments onto a Manifest; dates in services.paxlst.dates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.paxlst.dates import near_year
from services.paxlst.message import MessageReader
from services.paxlst.syntax import Delimiters, Segment, Violation, decode_interchange, tokenise, violation
from services.wire import manifest_pb2

# Larger inputs are refused before tokenising: a 300-passenger message is about 150 KiB.
MAX_BYTES = 16 * 1024 * 1024


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


class _Envelope:
    def __init__(self, data: bytes | str, delimiters: Delimiters | None, today: date | None):
        self.text, self.codec, self.warnings = decode_interchange(data)
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
            self.errors.append(violation("", "empty", "no EDIFACT segments found"))
            return out
        if segs[0].tag != "UNB":
            self.errors.append(violation("", "missing_unb", f"expected UNB, found {segs[0].tag[:3]!r}", segs[0]))
            return out
        unb = segs[0]
        out.sender = unb.value(1)
        out.interchange_ref = unb.value(4)
        sent_at = _unb_sent_at(unb)
        if sent_at is None:
            self.warnings.append(violation("sent_at", "invalid_date", "UNB date/time unreadable", unb))
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
            self.errors.append(violation("", "truncated", "interchange truncated: no UNT and no UNZ", message[-1]))
        elif unz is None:
            self.warnings.append(violation("", "missing_unz", "no UNZ at the end of the interchange", segs[-1]))
        if tokens.unterminated and (unz is None or segs[-1] is unz):
            last = segs[-1]
            self.warnings.append(violation("", "unterminated", f"{last.tag[:3]} has no segment terminator", last))
        if not self.messages and not self.errors:
            self.errors.append(violation("", "missing_unh", "the interchange holds no message (UNH)", unb))
        return out

    def _stray(self, seg: Segment, previous: Segment | None) -> None:
        if previous is None:
            self.errors.append(
                violation("", "missing_unh", f"{seg.tag[:3]!r} segment outside a message (missing UNH)", seg)
            )

    def _after_unz(self, seg: Segment, unz: Segment) -> None:
        if seg.tag in ("UNB", "UNA"):
            self.errors.append(
                violation("", "several_interchanges", "a second interchange follows UNZ: send one at a time", seg)
            )
        else:
            self.warnings.append(violation("", "trailing_data", "text after UNZ ignored", unz))

    def _check_unz(self, unz: Segment, ref: str, groups: int | None) -> None:
        count = unz.value(0)
        expected = groups if groups is not None else len(self.messages)
        if count != str(expected):
            self.warnings.append(
                violation("", "control_count", f"UNZ counts {count!r}, the interchange has {expected}", unz)
            )
        if unz.value(1) != ref:
            self.warnings.append(violation("", "control_reference", "UNZ reference differs from UNB", unz))

    def _raw(self, segs: list[Segment]) -> bytes:
        return self.text[segs[0].start : segs[-1].end].encode(self.codec, errors="replace")

    def _truncated(self, segs: list[Segment], why: str) -> None:
        error = violation("", "truncated", f"message truncated: {why}", segs[-1])
        self.messages.append(PaxlstMessage(None, [error], [], self._raw(segs), {}))

    def _message(self, segs: list[Segment], sent_at: datetime | None, ref_date: date) -> None:
        reader = MessageReader(segs, ref_date)
        manifest = reader.read()
        if manifest is not None and sent_at is not None:
            manifest.sent_at.FromDatetime(sent_at)
        self.messages.append(PaxlstMessage(manifest, reader.errors, reader.warnings, self._raw(segs), reader.locations))


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
        text, codec, _ = decode_interchange(rest)
        tokens = tokenise(text)
        unz = next((s for s in tokens.segments if s.tag == "UNZ"), None)
        if unz is None:
            out.append(rest)
            break
        cut = len(text[: unz.end].encode(codec, errors="replace"))
        out.append(rest[:cut])
        rest = rest[cut:]
    return out
