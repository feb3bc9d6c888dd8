"""Score a batch of manifests: watchlist matches and rule hits become one Hit per flagged traveller.

Versions of a flight's manifest: an original, a change with corrected data (CP) and a close-out are
screened in full; a hit keeps its id across versions (flight key + traveller key), so a later version is
an update of the same hit. Travellers that a version removes (XR cancelled reservation, RP reduction in
party, a cancelled flight) or that no longer match after a correction are listed in one clearance record
per manifest, which the router turns into withdrawals for the members that got the hit. On the hits topic a
manifest's hits come first, then its clearance, all under its flight key (order_by_manifest).

The risk model (optional, services.profiler.model) only ranks travellers for human review and never acts
alone: a probability at or above the review threshold adds a MODEL reason (category "review", id = model
version, score = probability, explanation = top feature contributions). The threshold of a flight is the
LOWEST among the members with jurisdiction over it (model.manifest_thresholds); the router then gives each
member the model reason only at that member's own threshold (router.recipients). A hit whose only reason is
the model scores at most MODEL_ONLY_CAP (see there); when other reasons exist, the model reason is kept as
evidence but does not raise the hit's score (hit_score).

Watchlist screening works the same way: the profiler keeps every match scoring at least `watchlist_threshold`,
which the worker sets to the LOWEST review band of all members (settings.lowest_screening_review: of all, not
only of the members with jurisdiction, because a regional entry's hit can also reach the entry's owner under
the sharing policy); the router then gives each member only the matches that reach its own review band, each
marked with its band (alert or review), and recomputes the score of a copy that lost a reason.

Pure: no Kafka, no clock (the caller passes now; `stages` only measures elapsed time), no logging of the people
scored.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl
from google.protobuf.timestamp_pb2 import Timestamp

from services import codec
from services.directory import Directory

# The hit score has one definition, in services.hits (the router recomputes it for members' copies that lose a
# reason); re-exported here, where the profiler's callers have always found it.
from services.hits import MODEL_ONLY_CAP as MODEL_ONLY_CAP
from services.hits import combined_score as combined_score
from services.hits import hit_score as hit_score
from services.profiler.frames import read_travellers
from services.profiler.rules import (
    DEFAULT_BREAKER,
    Breaker,
    match_rules,
    prepare_frame,
    reads_features,
    report_trips,
)
from services.profiler.watchlist import MATCH_THRESHOLD, WatchlistStore

# What a cancellation or an XR/RP change removes has one definition, in services.rules.evaluate (`apihub rules test`
# and the console's backtest skip such versions too); re-exported here, where the profiler's callers found it.
from services.rules.evaluate import removes_travellers as removes_travellers
from services.rules.rule import HUB_RULES, Rule
from services.wire import hit_pb2, manifest_pb2

if TYPE_CHECKING:  # the model pulls in scikit-learn: imported only when a model is given
    from services.profiler.model import ModelArtifact

MODEL_CATEGORY = "review"


def model_explanation(version: str, probability: float, threshold: float, contributions: str) -> str:
    # Feature contributions in plain words only (model.ModelArtifact.explain): no value of the traveller.
    return (
        f"risk model {version} ranks this traveller for human review (probability {probability:.2f}, "
        f"review threshold {threshold:.2f}); top contributions: {contributions}"
    )


def watchlist_explanation(entry_id: str, owner: str, category: str, scope: str, evidence: str) -> str:
    # The entry's coordinates and how each part compared (services.profiler.matching): never the matched values
    # themselves (names, date of birth, document number), which are personal data.
    return (
        f"match with {owner} watchlist entry {entry_id} (category: {category or 'unspecified'}, scope: {scope}): "
        f"{evidence}"
    )


# Stages of score_batch, in order, as keys of its `stages` argument (seconds spent in each).
STAGES = ("frame", "watchlist", "features", "rules", "model", "hits")


class _Laps:
    """Adds the time since the previous lap to stages[name]; does nothing without a stages mapping."""

    def __init__(self, stages: MutableMapping[str, float] | None) -> None:
        self._stages = stages
        self._last = time.perf_counter() if stages is not None else 0.0

    def __call__(self, name: str) -> None:
        if self._stages is not None:
            now = time.perf_counter()
            self._stages[name] = self._stages.get(name, 0.0) + now - self._last
            self._last = now


def score_batch(
    manifests: Sequence[manifest_pb2.Manifest],
    store: WatchlistStore,
    directory: Directory,
    now: datetime,
    rules: Sequence[Rule] = HUB_RULES,
    breaker: Breaker | None = DEFAULT_BREAKER,
    model: ModelArtifact | None = None,
    thresholds: Mapping[str, float] | None = None,
    stages: MutableMapping[str, float] | None = None,
    watchlist_threshold: float = MATCH_THRESHOLD,
) -> list[hit_pb2.Hit]:
    """One Hit per traveller that at least one watchlist entry or rule flags, with all its reasons.

    `watchlist_threshold` is the lowest score a watchlist match needs to become a reason: the profiler worker
    passes the lowest screening review band of all members (settings.lowest_screening_review); the default
    keeps the matcher's own threshold for callers that know no members' bands.

    With a model, travellers whose probability reaches the review threshold of their flight also get a MODEL
    reason; `thresholds` maps member code -> threshold (members not named: model.DEFAULT_THRESHOLD).

    Versions that remove travellers are not screened (see clearances()). Hits come out in manifest order,
    then traveller order; recipient is left empty for the router.

    `stages`, when given, accumulates the seconds spent in each of STAGES (the benchmark's breakdown):
    frame (the one pass over the travellers: traveller frame, document numbers and, when a rule or the model
    reads derived features, their inputs; jurisdiction), watchlist, features (the derived features computed
    from those inputs), rules (evaluation, breaker, reasons), model, hits (the Hit messages).
    """
    laps = _Laps(stages)
    batch = [m for m in manifests if not removes_travellers(m)]
    # One pass over the travellers reads the frame, the document numbers and, when a rule or the model reads
    # derived features, their inputs.
    travellers = read_travellers(batch, features=model is not None or reads_features(rules))
    frame = travellers.frame
    if frame.is_empty():
        return []
    reasons: _Reasons = {}
    jurisdiction = {m: directory.jurisdiction(codec.route_of(manifest)) for m, manifest in enumerate(batch)}
    # Manifest ids once per manifest (a manifest without one costs a digest of its content each time).
    manifest_ids = [manifest.manifest_id or codec.manifest_id(manifest) for manifest in batch]
    laps("frame")
    # Watchlists: fuzzy screening through the store's index; documents travel beside the frame's name keys.
    screened = frame.with_columns(documents=travellers.documents)
    _watchlist_reasons(store.matches(screened, jurisdiction, threshold=watchlist_threshold), reasons)
    laps("watchlist")
    # Derived features once per batch, when a rule or the model reads them.
    if travellers.inputs is not None:
        frame = travellers.with_features()
    laps("features")
    # Rules: the hub's and every member's, one pass over the batch; a member rule only on flights in its
    # owner's jurisdiction; a rule flagging too much of one flight is suspended for the batch (breaker).
    prepared = prepare_frame(frame, batch, rules, jurisdiction)
    matched, trips = match_rules(prepared, rules, breaker)
    report_trips(trips, {trip.manifest_index: manifest_ids[trip.manifest_index] for trip in trips})
    _rule_reasons(matched, rules, reasons)
    laps("rules")
    if model is not None:
        _model_reasons(model, prepared, jurisdiction, thresholds, reasons)
    laps("model")
    hits = _hits(batch, manifest_ids, reasons, now)
    laps("hits")
    return hits


# Reasons found so far, per (manifest index, traveller index) of the batch.
_Reasons = dict[tuple[int, int], list[hit_pb2.Reason]]


def _watchlist_reasons(matches: pl.DataFrame, reasons: _Reasons) -> None:
    """A WATCHLIST reason per match (watchlist.MATCH_SCHEMA rows)."""
    for row in matches.iter_rows(named=True):
        reasons.setdefault((row["manifest_index"], row["traveller_index"]), []).append(
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_WATCHLIST,
                id=row["entry_id"],
                score=row["score"],
                explanation=watchlist_explanation(
                    row["entry_id"], row["owner"], row["category"], row["scope"], row["explanation"]
                ),
                owner=row["owner"],
                category=row["category"],
                document_match=bool(row["document_match"]),
            )
        )


def _rule_reasons(matched: pl.DataFrame, rules: Sequence[Rule], reasons: _Reasons) -> None:
    """A RULE reason per flag of match_rules' rows, row by row and rules in order within a row."""
    if not matched.height:
        return
    rows, which = np.nonzero(matched.select(rule.column for rule in rules).to_numpy())
    ms, ts = matched["manifest_index"].to_list(), matched["traveller_index"].to_list()
    for i, j in zip(rows.tolist(), which.tolist(), strict=True):
        rule = rules[j]
        reasons.setdefault((ms[i], ts[i]), []).append(
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_RULE,
                id=rule.id,
                score=rule.score,
                explanation=rule.explanation,
                owner=rule.owner,
                category=rule.category,
            )
        )


def _model_reasons(
    model: ModelArtifact,
    prepared: pl.DataFrame,
    jurisdiction: Mapping[int, Collection[str]],
    thresholds: Mapping[str, float] | None,
    reasons: _Reasons,
) -> None:
    """MODEL reasons: one predict_proba over the batch's derived features, explanations only for the travellers
    that reach their flight's review threshold."""
    from services.profiler.model import manifest_thresholds, review_candidates

    limits = manifest_thresholds(jurisdiction, thresholds)
    for row in review_candidates(model, prepared, limits).iter_rows(named=True):
        reasons.setdefault((row["manifest_index"], row["traveller_index"]), []).append(
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_MODEL,
                id=model.version,
                score=row["probability"],
                explanation=model_explanation(model.version, row["probability"], row["threshold"], row["explanation"]),
                category=MODEL_CATEGORY,
            )
        )


def _hits(
    batch: Sequence[manifest_pb2.Manifest], manifest_ids: Sequence[str], reasons: _Reasons, now: datetime
) -> list[hit_pb2.Hit]:
    """One Hit per traveller with reasons, in manifest order, then traveller order."""
    hits: list[hit_pb2.Hit] = []
    flights: dict[int, tuple[str, hit_pb2.FlightRef]] = {}
    raised_at = Timestamp()
    raised_at.FromDatetime(now)
    for (m, t), found in sorted(reasons.items()):
        manifest = batch[m]
        traveller = manifest.travellers[t]
        if m not in flights:
            flights[m] = (codec.flight_key(manifest), codec.flight_ref(manifest))
        flight_key, flight = flights[m]
        hit = hit_pb2.Hit(
            hit_id=codec.hit_id(flight_key, codec.traveller_key(traveller)),
            manifest_id=manifest_ids[m],
            flight=flight,
            traveller=traveller,
            score=hit_score(found),
            reasons=found,
            state=hit_pb2.HIT_STATE_ACTIVE,
            raised_at=raised_at,
        )
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


class KeyedHit(NamedTuple):
    """A hit or clearance record and the key it is produced under on the hits topic."""

    # The flight key: every version of one flight's manifest, and what it raised, stays in one partition, in order.
    flight_key: bytes
    hit: hit_pb2.Hit


def order_by_manifest(manifests: Sequence[manifest_pb2.Manifest], hits: Sequence[hit_pb2.Hit]) -> list[KeyedHit]:
    """The hits of scored manifests and their clearances, keyed by flight, in manifest order: per manifest its
    hits, then its clearance. The router applies them in partition order, so a later version of a flight updates
    or withdraws what an earlier version raised only after it was raised."""
    by_manifest: dict[str, list[hit_pb2.Hit]] = {}
    for hit in hits:
        by_manifest.setdefault(hit.manifest_id, []).append(hit)
    cleared = {c.manifest_id: c for c in clearances(manifests, hits)}
    ordered = []
    for manifest in manifests:
        manifest_id = manifest.manifest_id or codec.manifest_id(manifest)
        key = codec.flight_key(manifest).encode()
        ordered.extend(KeyedHit(key, hit) for hit in by_manifest.pop(manifest_id, []))
        if manifest_id in cleared:
            ordered.append(KeyedHit(key, cleared.pop(manifest_id)))
    return ordered
