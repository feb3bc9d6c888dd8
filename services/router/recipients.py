"""Who receives a hit: pure functions of the hit and the member directory (no Kafka, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.config import DEFAULT_MODEL_THRESHOLD
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


Tailor = Callable[[hit_pb2.Hit, str], "hit_pb2.Hit | None"]


def review_threshold_tailor(thresholds: Mapping[str, float], default: float = DEFAULT_MODEL_THRESHOLD) -> Tailor:
    """Each member's copy of a hit holds the model's reason only when its probability reaches that member's
    own review threshold; a hit the model alone raised reaches only the members whose threshold it reaches.

    The profiler raises the model reason at the lowest threshold among the members with jurisdiction, so
    the strictest member would otherwise see travellers it chose not to review. The hit's score needs no
    recomputing: the model never raises a hit that has other reasons, and its one reason is kept or dropped.
    """

    def tailor(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit | None:  # the hit itself, a copy, or None
        limit = thresholds.get(member, default)
        kept = [r for r in hit.reasons if r.source != hit_pb2.REASON_SOURCE_MODEL or r.score >= limit]
        if len(kept) == len(hit.reasons):
            return hit  # all of it is for this member
        if not kept:
            return None  # raised by the model alone, under this member's threshold
        copy = hit_pb2.Hit()
        copy.CopyFrom(hit)
        del copy.reasons[:]
        copy.reasons.extend(kept)
        return copy

    return tailor
