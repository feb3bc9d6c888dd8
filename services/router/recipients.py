"""Who receives a hit: pure functions of the hit and the member directory (no Kafka, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.config import DEFAULT_MODEL_THRESHOLD, HubSettings, member_screening_band
from services.directory import Directory
from services.hits import for_review, hit_score, screening_band
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


def screening_band_tailor(bands: Mapping[str, Mapping[str, float]]) -> Tailor:
    """Each member's copy of a hit holds a watchlist match only when its score reaches that member's own review
    band (settings screening_bands; config.member_screening_band fills in the defaults), marked with its band
    (alert or review); the copy is marked for_review when no reason calls for action (no rule, no alert-band
    match: services.hits.for_review). A hit left with no reason is not for that member.

    The profiler screens at the lowest review band of all members, so a stricter member would otherwise see
    matches it chose not to. A copy that loses a reason gets its score recomputed (services.hits.hit_score).
    Members with the same bands get the same copy object, so the ledger fingerprints it once.
    """
    last: list[hit_pb2.Hit] = []  # the hit the cache below is for (held, so its id is not reused meanwhile)
    cache: dict[tuple[float, float], hit_pb2.Hit | None] = {}

    def tailor(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit | None:  # the hit itself, a copy, or None
        alert, review = member_screening_band(bands, member)
        if not last or last[0] is not hit:
            last[:] = [hit]
            cache.clear()
        if (alert, review) not in cache:
            cache[alert, review] = _banded(hit, alert, review)
        return cache[alert, review]

    return tailor


def _banded(hit: hit_pb2.Hit, alert: float, review: float) -> hit_pb2.Hit | None:
    """The version of ``hit`` for a member with these bands (see screening_band_tailor)."""
    kept: list[hit_pb2.Reason] = []
    changed = False
    for reason in hit.reasons:
        if reason.source != hit_pb2.REASON_SOURCE_WATCHLIST:
            kept.append(reason)
            continue
        band = screening_band(reason.score, alert, review)
        if band == hit_pb2.SCREENING_BAND_UNSPECIFIED:
            changed = True  # under this member's review band: not for it
            continue
        if band != reason.band:
            marked = hit_pb2.Reason()
            marked.CopyFrom(reason)
            marked.band = band
            reason, changed = marked, True
        kept.append(reason)
    if hit.reasons and not kept:
        return None  # every reason was a match under this member's review band
    review_only = for_review(kept)
    if not changed and review_only == hit.for_review:
        return hit  # all of it is for this member, already marked as it should be
    copy = hit_pb2.Hit()
    copy.CopyFrom(hit)
    del copy.reasons[:]
    copy.reasons.extend(kept)
    copy.for_review = review_only
    if len(kept) != len(hit.reasons):
        copy.score = hit_score(kept)
    return copy


def own_directive_tailor(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit:
    """A member's copy of an interactive hit carries its own board directive only (Hit.directives: on the hits topic
    every member's); ``interactive`` stays. A hit without directives, or with the member's alone, is kept as is."""
    directives = hit.directives
    if not directives or (len(directives) == 1 and member in directives):
        return hit
    copy = hit_pb2.Hit()
    copy.CopyFrom(hit)
    copy.directives.clear()
    if member in directives:
        copy.directives[member] = directives[member]
    return copy


def compose_tailors(*tailors: Tailor) -> Tailor:
    """One tailor applying each in turn to what the previous left; None as soon as one says not for the member."""

    def tailor(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit | None:
        version: hit_pb2.Hit | None = hit
        for step in tailors:
            if version is None:
                break
            version = step(version, member)
        return version

    return tailor


def member_tailor(settings: HubSettings) -> Tailor:
    """The tailoring of every member's copy, as the settings say: the model's reason at the member's own review
    threshold (model_thresholds), then watchlist matches at its own screening bands (screening_bands), and last
    only the member's own board directive of an interactive hit (never another member's)."""
    return compose_tailors(
        review_threshold_tailor(settings.model_thresholds),
        screening_band_tailor(settings.screening_bands),
        own_directive_tailor,
    )
