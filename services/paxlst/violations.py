"""Violations the PAXLST reader answers with: each names the segment ("#14 DTM") and, for what lies outside
messages or is oversized, its line and column; at most MAX_WARNINGS_PER_CODE of one kind are listed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.wire import intake_pb2

if TYPE_CHECKING:
    from services.paxlst.syntax import Segment

Violation = intake_pb2.FieldViolation

# Warnings of one kind listed one by one; further ones are counted in a last warning of that kind.
MAX_WARNINGS_PER_CODE = 20


def violation(field_: str, code: str, description: str, segment: Segment | str = "") -> Violation:
    """A problem found in the interchange, naming the segment ("#14 DTM") when there is one."""
    label = segment if isinstance(segment, str) else segment.label
    pos, _, tag = label.partition(" ")
    if len(tag) != 3 or not tag.isalnum():
        # Three characters at most (a line of junk may hold personal data), escaped when not text.
        tag = tag[:3] if tag[:3].isascii() and tag[:3].isprintable() else ascii(tag[:3])[1:-1]
        label = f"{pos} {tag}" if pos else ""
    return Violation(field=field_, code=code, description=description, segment=label)


class Violations(list[Violation]):
    """Violations of one interchange or message, at most MAX_WARNINGS_PER_CODE of each code: a hostile input
    (a million unknown segments) gets a bounded answer. `close` adds one line per code saying how many more."""

    def __init__(self, *args):
        super().__init__(*args)
        self.counts: dict[str, int] = {}

    def add(self, v: Violation) -> None:
        n = self.counts.get(v.code, 0) + 1
        self.counts[v.code] = n
        if n <= MAX_WARNINGS_PER_CODE:
            self.append(v)

    def listed(self, code: str) -> bool:
        """Whether another violation of this code would still be listed (else `tally` it: no need to word it)."""
        return self.counts.get(code, 0) < MAX_WARNINGS_PER_CODE

    def tally(self, code: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1

    def close(self) -> None:
        for code, n in self.counts.items():
            if n > MAX_WARNINGS_PER_CODE:
                more = n - MAX_WARNINGS_PER_CODE
                self.append(Violation(code=code, description=f"... and {more} more {code} warnings not listed"))
        self.counts = {}


def position(text: str, offset: int) -> str:
    """Where an offset of the decoded text is, for a person with an editor: line and column, or the character
    of a one-line interchange."""
    line = text.count("\n", 0, offset)
    if not line and "\n" not in text:
        return f"character {offset + 1}"
    column = offset - text.rfind("\n", 0, offset)
    return f"line {line + 1}, column {column}"
