"""The public PAXLST samples (copies of ../shared/samples/paxlst; origins in tests/data/paxlst/SOURCES.md)."""

from __future__ import annotations

import re
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "data" / "paxlst"
GUIDE = "wco_iata_guide_examples_5_1_5_2_5_3.edi"
ASTRA = "astra_iapi_china_paxlst_cusres.txt"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def astra_interchanges() -> list[bytes]:
    """The astra test script's interchanges, with its macros expanded and its '"' terminators restored."""
    macros = [
        (r"\$\(get ediref_paxlst\)", "ASTRA"),
        (r"xxxxxx:xxxx", "250601:0900"),
        (r"\$\(yymmdd\)", "250601"),
        (r"\$\(hhmi\)", "0900"),
        (r"\$\(date_format %y \+1y\)", "26"),
        (r"\$\(date_format %y \+2y\)", "27"),
        (r"\$\(get (pax_id\d?)\)", lambda m: m.group(1).upper()),
    ]
    out, current = [], None
    for line in sample(ASTRA).decode().splitlines():
        if line.startswith("UNB"):
            current = []
        if current is None:
            continue
        for pattern, repl in macros:
            line = re.sub(pattern, repl, line)
        current.append(line.removesuffix('"') + "'")
        if line.startswith("UNZ"):
            out.append("\n".join(current).encode())
            current = None
    return out
