"""Score a batch of manifests: watchlist matches and rule hits become one Hit per flagged traveller.

Pure: no Kafka, no clock (the caller passes now), no logging of the people scored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime

from services import codec
from services.directory import Directory
from services.profiler.frames import manifests_to_frame
from services.profiler.rules import HUB_RULES, Rule, flagged
from services.profiler.watchlist import WatchlistStore
from services.wire import hit_pb2, manifest_pb2


def combined_score(scores: Sequence[float]) -> float:
    """1 - prod(1 - s): independent reasons reinforce each other; one certain reason makes the hit certain."""
    return 1.0 - math.prod(1.0 - s for s in scores)


def reason_key(reason: hit_pb2.Reason) -> str:
    """How a reason enters the hit id: source, owner and id (two members may both have an entry WL-0001)."""
    return f"{hit_pb2.ReasonSource.Name(reason.source)}:{reason.owner}:{reason.id}"


def hit_id(manifest_id: str, passenger_key: str, reasons: Sequence[hit_pb2.Reason]) -> str:
    """Deterministic hit id: the same manifest version, traveller and reasons always give the same id."""
    parts = [manifest_id, passenger_key, *sorted(reason_key(r) for r in reasons)]
    return "h-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def watchlist_explanation(entry_id: str, owner: str, category: str, scope: str) -> str:
    # Only the entry's coordinates: the matched values themselves (names, date of birth) are personal data.
    return (
        f"exact match on surname, given names and date of birth with {owner} watchlist entry {entry_id} "
        f"(category: {category or 'unspecified'}, scope: {scope})"
    )


def score_batch(
    manifests: Sequence[manifest_pb2.Manifest],
    store: WatchlistStore,
    directory: Directory,
    now: datetime,
    rules: Sequence[Rule] = HUB_RULES,
) -> list[hit_pb2.Hit]:
    """One Hit per traveller that at least one watchlist entry or rule flags, with all its reasons.

    Cancellations carry no travellers to screen and are skipped. Hits come out in manifest order, then
    traveller order; recipient is left empty for the router.
    """
    batch = [m for m in manifests if m.function != manifest_pb2.MESSAGE_FUNCTION_CANCEL]
    frame = manifests_to_frame(batch)
    if frame.is_empty():
        return []

    reasons: dict[tuple[int, int], list[hit_pb2.Reason]] = {}
    jurisdiction = {m: directory.jurisdiction(codec.route_of(manifest)) for m, manifest in enumerate(batch)}
    for row in store.exact_matches(frame, jurisdiction).iter_rows(named=True):
        reasons.setdefault((row["m"], row["t"]), []).append(
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_WATCHLIST,
                id=row["entry_id"],
                score=1.0,
                explanation=watchlist_explanation(
                    row["entry_id"], row["owner"], row["category"], row["scope"]
                ),
                owner=row["owner"],
                category=row["category"],
            )
        )
    for row in flagged(frame, rules).iter_rows(named=True):
        for rule in rules:
            if row[rule.column]:
                reasons.setdefault((row["m"], row["t"]), []).append(
                    hit_pb2.Reason(
                        source=hit_pb2.REASON_SOURCE_RULE,
                        id=rule.id,
                        score=rule.score,
                        explanation=rule.explanation,
                        owner=rule.owner,
                        category=rule.category,
                    )
                )

    hits: list[hit_pb2.Hit] = []
    flights: dict[int, hit_pb2.FlightRef] = {}
    for (m, t), found in sorted(reasons.items()):
        manifest = batch[m]
        traveller = manifest.travellers[t]
        mid = manifest.manifest_id or codec.manifest_id(manifest)
        if m not in flights:
            flights[m] = codec.flight_ref(manifest)
        hit = hit_pb2.Hit(
            hit_id=hit_id(mid, codec.passenger_ref(traveller, t), found),
            manifest_id=mid,
            flight=flights[m],
            traveller=traveller,
            score=combined_score([r.score for r in found]),
            reasons=found,
            state=hit_pb2.HIT_STATE_ACTIVE,
        )
        hit.raised_at.FromDatetime(now)
        if manifest.HasField("received_at"):
            hit.manifest_received_at.CopyFrom(manifest.received_at)
        hits.append(hit)
    return hits
