"""PAXLST files as carriers keep them: telling one from a JSON manifest, and cutting a file of several
interchanges (one after the other, each with its own delimiters, junk between) into one interchange each, the
way `apihub submit` and `apihub rules test` send and read them.
"""

from __future__ import annotations

import re

from services.paxlst.syntax import (
    DEFAULT_DELIMITERS,
    Delimiters,
    decode_interchange,
    envelope_line,
    interchange_start,
    last_message_start,
    tokenise,
)


def looks_like_paxlst(data: bytes) -> bool:
    """Cheap sniff: an EDIFACT interchange or message starts here (after whitespace or a teletype STX)."""
    head = data[:4096]
    stx = head.find(b"\x02")
    if stx >= 0 and b"UNB" not in head[:stx] and b"UNA" not in head[:stx]:
        head = head[stx + 1 :]
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x01\x02")
    return head[:3] in (b"UNA", b"UNB", b"UNH") or re.search(rb"[\r\n][ \t]*UN[AB]", head) is not None


def split_interchanges(data: bytes) -> list[bytes]:
    """Cut concatenated interchanges apart, e.g. for a file holding several: before each UNA or UNB that is
    followed by a message (UNH), as the reader judges a second interchange. Whatever else follows an
    interchange (a junk line, a partial line, Ctrl-Z, NUL padding) stays with it, for the reader to warn about;
    trailing white space is dropped.
    """
    text, codec, _ = decode_interchange(data)
    out: list[bytes] = []
    offset = previous = 0
    for cut in _interchange_starts(text):
        size = len(text[previous:cut].encode(codec, errors="replace"))
        out.append(data[offset : offset + size])
        offset, previous = offset + size, cut
    last = data[offset:].rstrip(b" \t\r\n")
    if last:
        out.append(last)
    return out


def _interchange_starts(text: str) -> list[int]:
    """Offsets of the second and later interchanges. One pass over the segments; the rest is tokenised again
    only where the delimiters may change (a UNA declaring others, the end of an interchange that had its own)
    or where a junk line without a terminator ran into the next interchange's first line."""
    last_unh = last_message_start(text)
    cuts: list[int] = []
    base, tokens = 0, tokenise(text)
    segs, i = tokens.segments, 0
    started = after_una = after_unz = False
    while i < len(segs):
        seg = segs[i]
        i += 1
        at = base + seg.start
        restart = -1  # where to tokenise again from
        if seg.tag == "UNZ":
            after_unz = True
            if tokens.delimiters != DEFAULT_DELIMITERS:
                restart = base + seg.end  # what follows may be written in the default delimiters
        elif seg.tag in ("UNA", "UNB") and at < last_unh:
            if started and not (after_una and seg.tag == "UNB"):
                cuts.append(interchange_start(text, at) if seg.tag == "UNB" else at)
            started, after_una, after_unz = True, seg.tag == "UNA", False
            declared = Delimiters.from_una(text[at + 3 : at + 9]) if seg.tag == "UNA" else None
            if declared is not None and declared != tokens.delimiters:
                restart = at
        else:
            line = envelope_line(text, at, base + seg.end) if after_unz else -1
            if 0 <= line < last_unh:
                line = interchange_start(text, line)
                cuts.append(line)
                restart, after_unz = line, False
            started = started or seg.tag == "UNH"
            after_una = False
        if restart >= 0:
            # From a UNA or UNB, the new tokens begin with that interchange's UNB: not a cut again.
            after_una = restart != base + seg.end
            base, tokens = restart, tokenise(text[restart:])
            segs, i = tokens.segments, 0
    return cuts
