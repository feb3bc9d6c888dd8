"""Ports' time zones: one lookup (services.geo.port_zone) for PAXLST leg times and the profiler's departure dates."""

from zoneinfo import ZoneInfo

from services.geo import port_zone


def test_an_airport_has_its_iana_zone_whatever_the_case_and_blanks():
    assert port_zone("NAN") == ZoneInfo("Pacific/Fiji")
    assert port_zone(" rar ") == ZoneInfo("Pacific/Rarotonga")


def test_seaports_and_unknown_codes_have_no_zone():
    assert port_zone("FJSUV") is None  # UN/LOCODE: no zones in our tables
    assert port_zone("QQQ") is None
    assert port_zone("") is None
