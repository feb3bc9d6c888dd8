"""The base message of the PAXLST tests and the helpers that read it (shared by the test modules here)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.paxlst.reader import parse_paxlst
from services.wire import manifest_pb2

M = manifest_pb2
TODAY = date(2026, 3, 1)

# FJ411 NAN -> SYD: a passenger with a passport and a visa, and a crew member. Segment positions: UNB #1,
# UNH #2, BGM #3, RFF #4, TDT #6, LOC/DTM #7-#10, NAD+FL #11 ... LOC+91 #26, NAD+FM #27, CNT #34/#35, UNT #36.
BASE = """UNB+UNOA:4+FJ+APIHUB+260301:0900+IC1'
UNH+1+PAXLST:D:05B:UN:IATA'
BGM+745'
RFF+TN:FJ411A:::2'
NAD+MS+++FIJI AIRWAYS'
TDT+20+FJ411+++FJ'
LOC+125+NAN'
DTM+189:2603021030:201'
LOC+87+SYD'
DTM+232:2603021330:201'
NAD+FL+++TAVOLA:JOSEFA:PENI'
ATT+2++M'
DTM+329:850412'
LOC+174+FJI'
LOC+178+NAN'
LOC+179+SYD'
NAT+2+FJI'
RFF+AVF:Q7ZK2M'
RFF+ABO:FJ411-001'
RFF+SEA:12C'
DOC+P+FJ1234567'
DTM+36:300115'
LOC+91+FJI'
DOC+V+AUV998877'
DTM+36:270301'
LOC+91+AUS'
NAD+FM+++HAVILI:MELE'
ATT+2++F'
DTM+329:900101'
NAT+2+TON'
DOC+AC+C55512'
DTM+36:290630'
LOC+91+TON'
CNT+42:150'
CNT+41:8'
UNT+35+1'
UNZ+1+IC1'
"""
# Personal values planted above: no violation description may echo them.
PERSONAL = ("TAVOLA", "JOSEFA", "HAVILI", "FJ1234567", "850412", "900101")


def read(text: str | bytes, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    return parse_paxlst(data, today=kwargs.pop("today", TODAY), **kwargs)


def message(text: str | bytes, **kwargs):
    """The only message of an interchange that must not be rejected as a whole."""
    ic = read(text, **kwargs)
    assert ic.errors == [], ic.errors
    assert len(ic.messages) == 1
    return ic.messages[0]


def accepted(text: str | bytes, **kwargs) -> M.Manifest:
    msg = message(text, **kwargs)
    assert msg.errors == [], msg.errors
    assert msg.manifest is not None
    return msg.manifest


def codes(violations) -> set[str]:
    return {v.code for v in violations}


def only(violations, code: str):
    found = [v for v in violations if v.code == code]
    assert len(found) == 1, violations
    return found[0]


def no_personal_data(violations) -> None:
    for v in violations:
        assert not any(p in v.description for p in PERSONAL), v.description


def utc(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())
