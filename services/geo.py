"""Ports to countries and time zones: IATA airports through the maintained airportsdata table, seaports
through UN/LOCODE.

Country codes are ISO 3166-1 alpha-3 throughout the hub (as in PAXLST and on travel documents).
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

import airportsdata
import pycountry


@functools.cache
def _airports() -> dict[str, dict]:
    return airportsdata.load("IATA")


@functools.cache
def alpha3(alpha2: str) -> str | None:
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    return country.alpha_3 if country else None


def is_country(code: str) -> bool:
    """ISO 3166-1 alpha-3 code of a country or territory."""
    return len(code) == 3 and pycountry.countries.get(alpha_3=code.upper()) is not None


def port_country(port: str) -> str | None:
    """Alpha-3 country of an IATA airport (3 letters) or UN/LOCODE seaport (5 characters), None if unknown."""
    port = port.strip().upper()
    if len(port) == 3:
        airport = _airports().get(port)
        return alpha3(airport["country"]) if airport else None
    if len(port) == 5 and port[:2].isalpha():
        # UN/LOCODE: the first two letters are the ISO 3166-1 alpha-2 country.
        return alpha3(port[:2])
    return None


# Bounded: port values come from carriers, and a cache keyed by them must not grow without limit.
@functools.lru_cache(maxsize=4096)
def port_zone(port: str) -> ZoneInfo | None:
    """IANA zone of an IATA airport, None when unknown (seaports: UN/LOCODE has no zones; made-up codes)."""
    airport = _airports().get(port.strip().upper())
    if not airport or not airport.get("tz"):
        return None
    try:
        return ZoneInfo(airport["tz"])
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def is_port(port: str) -> bool:
    return port_country(port) is not None


def countries_of_route(ports: list[str]) -> set[str]:
    """Every country an itinerary touches (departure, transits, arrival); unknown ports are skipped."""
    found = (port_country(p) for p in ports)
    return {c for c in found if c}
