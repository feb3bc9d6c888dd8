"""Who receives a hit: pure functions of the hit and the member directory (no Kafka, no I/O)."""

from __future__ import annotations

from services.directory import Directory
from services.sharing import NO_SHARING, SharingPolicy
from services.wire import hit_pb2


def itinerary(hit: hit_pb2.Hit) -> list[str]:
    """Every port of the hit's flight; origin and destination when an older producer left route empty."""
    flight = hit.flight
    if flight.route:
        return list(flight.route)
    return [port for port in (flight.origin, flight.destination) if port]


def jurisdiction_recipients(hit: hit_pb2.Hit, directory: Directory) -> set[str]:
    """Members with jurisdiction over any port of the itinerary (departure, transit, arrival)."""
    return directory.jurisdiction(itinerary(hit))


def recipients(hit: hit_pb2.Hit, directory: Directory, policy: SharingPolicy = NO_SHARING) -> set[str]:
    """Member codes (ISO alpha-3) that receive a copy of this hit; empty when nobody may.

    The members with jurisdiction over the itinerary, plus the owners of matched entries or rules that the
    sharing policy lets see it. Nobody else.
    """
    jurisdiction = jurisdiction_recipients(hit, directory)
    return jurisdiction | policy.owner_recipients(hit, jurisdiction)
