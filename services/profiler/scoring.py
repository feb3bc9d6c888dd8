"""Score a batch of manifests: watchlist matches and rule hits become one Hit per flagged traveller.

Versions of a flight's manifest: an original, a change with corrected data (CP) and a close-out are
screened in full; a hit keeps its id across versions (flight key + traveller key), so a later version is
an update of the same hit. Travellers that a version removes (XR cancelled reservation, RP reduction in
party, a cancelled flight) or that no longer match after a correction are listed in one clearance record
per manifest, which the router turns into withdrawals for the members that got the hit.

The risk model (optional, services.profiler.model) only ranks travellers for human review and never acts
alone: a probability at or above the review threshold adds a MODEL reason (category "review", id = model
version, score = probability, explanation = top feature contributions). The threshold of a flight is the
LOWEST among the members with jurisdiction over it (model.manifest_thresholds); filtering model reasons
per recipient against each member's own threshold is the router's future work. A hit whose only reason is
the model scores at most MODEL_ONLY_CAP (see there); when other reasons exist, the model reason is kept as
evidence but does not raise the hit's score (hit_score).

Pure: no Kafka, no clock (the caller passes now), no logging of the people scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from services import codec
from services.directory import Directory
from services.profiler.frames import FEATURE_SCHEMA, add_features, manifests_to_frame
from services.profiler.rules import DEFAULT_BREAKER, HUB_RULES, Breaker, Rule, match_rules, prepare_frame, report_trips
from services.profiler.watchlist import WatchlistStore, document_numbers
from services.wire import hit_pb2, manifest_pb2

if TYPE_CHECKING:  # the model pulls in scikit-learn: imported only when a model is given
    from services.profiler.model import ModelArtifact

# Highest score of a hit raised by the model alone: a ranking for human review that never outranks a hit with
# a watchlist or rule reason. Watchlist matches score at least watchlist.MATCH_THRESHOLD (0.85), the hub's rule
# 0.5 and the starter templates 0.1-0.3; a member rule scored below this cap can still sort under a model-only
# hit, which is why the model's reasons carry category "review" for queues to sort on.
MODEL_ONLY_CAP = 0.1
MODEL_CATEGORY = "review"


def combined_score(scores: Sequence[float]) -> float:
    """1 - prod(1 - s): independent reasons reinforce each other; one certain reason makes the hit certain."""
    return 1.0 - math.prod(1.0 - s for s in scores)


def hit_score(reasons: Sequence[hit_pb2.Reason]) -> float:
    """combined_score of the watchlist and rule reasons; the model's only when it is the sole reason, capped
    at MODEL_ONLY_CAP. The model ranks for review: it neither raises a hit others raised nor acts alone."""
    others = [r.score for r in reasons if r.source != hit_pb2.REASON_SOURCE_MODEL]
    if others:
        return combined_score(others)
    return min(MODEL_ONLY_CAP, max((r.score for r in reasons), default=0.0))


def model_explanation(version: str, probability: float, threshold: float, contributions: str) -> str:
    # Feature contributions in plain words only (model.ModelArtifact.explain): no value of the traveller.
    return (
        f"risk model {version} ranks this traveller for human review (probability {probability:.2f}, "
        f"review threshold {threshold:.2f}); top contributions: {contributions}"
    )


_REMOVING = (manifest_pb2.AMENDMENT_CANCELLED_RESERVATION, manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY)


def removes_travellers(manifest: manifest_pb2.Manifest) -> bool:
    """A cancellation, or a change that takes the travellers it names off the flight."""
    return manifest.function == manifest_pb2.MESSAGE_FUNCTION_CANCEL or (
        manifest.function == manifest_pb2.MESSAGE_FUNCTION_CHANGE and manifest.amendment in _REMOVING
    )


def watchlist_explanation(entry_id: str, owner: str, category: str, scope: str, evidence: str) -> str:
    # The entry's coordinates and how each part compared (matching.py): never the matched values themselves
    # (names, date of birth, document number), which are personal data.
    return (
        f"match with {owner} watchlist entry {entry_id} (category: {category or 'unspecified'}, scope: {scope}): "
        f"{evidence}"
    )


def score_batch(
    manifests: Sequence[manifest_pb2.Manifest],
    store: WatchlistStore,
    directory: Directory,
    now: datetime,
    rules: Sequence[Rule] = HUB_RULES,
    breaker: Breaker | None = DEFAULT_BREAKER,
    model: ModelArtifact | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> list[hit_pb2.Hit]:
    """One Hit per traveller that at least one watchlist entry or rule flags, with all its reasons.

    With a model, travellers whose probability reaches the review threshold of their flight also get a MODEL
    reason; `thresholds` maps member code -> threshold (members not named: model.DEFAULT_THRESHOLD).

    Versions that remove travellers are not screened (see clearances()). Hits come out in manifest order,
    then traveller order; recipient is left empty for the router.
    """
    batch = [m for m in manifests if not removes_travellers(m)]
    frame = manifests_to_frame(batch)
    if frame.is_empty():
        return []

    reasons: dict[tuple[int, int], list[hit_pb2.Reason]] = {}
    jurisdiction = {m: directory.jurisdiction(codec.route_of(manifest)) for m, manifest in enumerate(batch)}
    # Watchlists: fuzzy screening through the store's index; documents travel beside the frame's name keys.
    screened = frame.with_columns(documents=document_numbers(batch))
    for row in store.matches(screened, jurisdiction).iter_rows(named=True):
        reasons.setdefault((row["m"], row["t"]), []).append(
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_WATCHLIST,
                id=row["entry_id"],
                score=row["score"],
                explanation=watchlist_explanation(
                    row["entry_id"], row["owner"], row["category"], row["scope"], row["explanation"]
                ),
                owner=row["owner"],
                category=row["category"],
            )
        )
    # Rules: the hub's and every member's, one with_columns over the batch; a member rule only on flights in
    # its owner's jurisdiction; a rule flagging too much of one flight is suspended for the batch (breaker).
    prepared = prepare_frame(frame, batch, rules, jurisdiction)
    matched, trips = match_rules(prepared, rules, breaker)
    report_trips(trips, {t.m: batch[t.m].manifest_id or codec.manifest_id(batch[t.m]) for t in trips})
    for row in matched.iter_rows(named=True):
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
    # Model: one predict_proba over the batch's derived features (reused when the rules already derived
    # them), explanations only for the travellers that reach their flight's review threshold.
    if model is not None:
        from services.profiler.model import manifest_thresholds, review_candidates

        features = prepared if FEATURE_SCHEMA.keys() <= set(prepared.columns) else add_features(frame, batch)
        limits = manifest_thresholds(jurisdiction, thresholds)
        for row in review_candidates(model, features, limits).iter_rows(named=True):
            reasons.setdefault((row["m"], row["t"]), []).append(
                hit_pb2.Reason(
                    source=hit_pb2.REASON_SOURCE_MODEL,
                    id=model.version,
                    score=row["probability"],
                    explanation=model_explanation(
                        model.version, row["probability"], row["threshold"], row["explanation"]
                    ),
                    category=MODEL_CATEGORY,
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
            hit_id=codec.hit_id(codec.flight_key(manifest), codec.traveller_key(traveller)),
            manifest_id=mid,
            flight=flights[m],
            traveller=traveller,
            score=hit_score(found),
            reasons=found,
            state=hit_pb2.HIT_STATE_ACTIVE,
        )
        hit.raised_at.FromDatetime(now)
        if manifest.HasField("received_at"):
            hit.manifest_received_at.CopyFrom(manifest.received_at)
        hits.append(hit)
    return hits


def clearances(manifests: Sequence[manifest_pb2.Manifest], hits: Sequence[hit_pb2.Hit]) -> list[hit_pb2.Hit]:
    """One clearance record per manifest version: the hit ids of that flight that no longer stand.

    A screened version clears its travellers that raised no hit (a correction may have removed the match);
    a removing version clears every traveller it names, or the whole flight when a cancellation names none.
    Ids that never had a hit cost the router one look-up each.
    """
    flagged = {h.hit_id for h in hits}
    records = []
    for manifest in manifests:
        flight = codec.flight_key(manifest)
        ids = [codec.hit_id(flight, codec.traveller_key(t)) for t in manifest.travellers]
        record = hit_pb2.Hit(
            manifest_id=manifest.manifest_id or codec.manifest_id(manifest),
            flight=codec.flight_ref(manifest),
            state=hit_pb2.HIT_STATE_WITHDRAWN,
        )
        if removes_travellers(manifest):
            record.withdrawn_hit_ids.extend(ids)
            record.whole_flight = manifest.function == manifest_pb2.MESSAGE_FUNCTION_CANCEL and not ids
        else:
            record.withdrawn_hit_ids.extend(i for i in dict.fromkeys(ids) if i not in flagged)
        if record.withdrawn_hit_ids or record.whole_flight:
            if manifest.HasField("received_at"):
                record.manifest_received_at.CopyFrom(manifest.received_at)
            records.append(record)
    return records
