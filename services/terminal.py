"""Text from outside (carriers' passenger references, names, receipts' descriptions, members' notes) made safe to
print on a terminal.

A terminal obeys what it prints: ESC ] 0 ; ... BEL sets its title, CSI sequences move the cursor and rewrite lines
already shown, bidi overrides (U+202E) reverse what follows, a newline forges a line of its own. ``printable``
removes all of that and keeps every letter of every script: whole escape sequences (ECMA-48: CSI, the string
commands OSC, DCS, SOS, PM and APC up to their terminator, two-character escapes, in their 7-bit and 8-bit forms),
then every remaining character of the Unicode categories Cc (C0, DEL, C1 controls), Cf (format: bidi embeddings,
overrides and isolates, zero-width characters, tags), Cs (lone surrogates) and the separators Zl and Zp.
Line breaks and tabs become a space, so the words they separated stay apart. JSON output (json.dumps escapes
control and non-ASCII characters) needs none of this.
"""

from __future__ import annotations

import re
import unicodedata

# ECMA-48 escape sequences: CSI (ESC [ or 0x9B, parameters, intermediates, a final byte); the string commands
# OSC, DCS, SOS, PM, APC (ESC ] P X ^ _ or 0x9D 0x90 0x98 0x9E 0x9F) up to BEL or ST (ESC \ or 0x9C) or the end of
# the text; any other escape (ESC, intermediates, a final byte: charset selection, ESC c reset, ...).
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# Categories never printed: controls, format characters (bidi, zero-width), surrogates, line/paragraph separators.
_REMOVED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")


def printable(text: str) -> str:
    """``text`` without escape sequences, control, format (bidi, zero-width) or separator characters; tabs and
    line breaks become a space."""
    if text.isprintable():
        return text  # the usual case, checked in C: no character of those categories
    text = _ESCAPE_SEQUENCE.sub("", text)
    return "".join(" " if c in _BREAKS else c for c in text if c in _BREAKS or unicodedata.category(c) not in _REMOVED)
