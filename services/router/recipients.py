"""Who receives a hit: pure functions of the hit and the member directory (no Kafka, no I/O)."""

from __future__ import annotations

from services.directory import Directory
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


def owner_recipients(hit: hit_pb2.Hit, directory: Directory, jurisdiction: set[str]) -> set[str]:
    """Owners of the matched watchlist entries or rules that the sharing policy lets see this hit.

    Seam for the sharing-policy issue: ``hit.reasons[].owner`` names the owners, and the policy between
    each owner and the members in ``jurisdiction`` decides. Until that policy exists nobody outside the
    itinerary's jurisdiction receives a hit, which is the safe default for personal data.
    """
    return set()


def recipients(hit: hit_pb2.Hit, directory: Directory) -> set[str]:
    """Member codes (ISO alpha-3) that receive a copy of this hit; empty when nobody may."""
    jurisdiction = jurisdiction_recipients(hit, directory)
    return jurisdiction | owner_recipients(hit, directory, jurisdiction)
