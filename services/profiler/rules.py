"""Targeting rules over a batch, in the profiler: evaluation is the platform's (services.rules.evaluate, the one
implementation that `apihub rules test` and the member console's backtest use too), re-exported here where the
profiler's modules and their callers have always found it; reporting the breaker's trips (log lines and a metric) is
the profiler's own.

The hub ships services.rules.rule.HUB_RULES; member-written rules are YAML files compiled by
services.rules.language into the same Rule shape. A member's rule applies only to flights in that member's
jurisdiction, and only to flights departing within its validity dates. A breaker suspends, for one batch, a rule
that suddenly flags a large share of one flight, so a mistaken rule cannot flood members.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from prometheus_client import Counter

from services.rules.evaluate import (
    DEFAULT_BREAKER,
    Breaker,
    BreakerTrip,
    apply_breaker,
    evaluate_rules,
    flagged,
    match_rules,
    prepare_frame,
    reads_features,
    with_jurisdiction,
)

__all__ = [
    "BREAKER_TRIPS",
    "DEFAULT_BREAKER",
    "Breaker",
    "BreakerTrip",
    "apply_breaker",
    "evaluate_rules",
    "flagged",
    "match_rules",
    "prepare_frame",
    "reads_features",
    "report_trips",
    "with_jurisdiction",
]

log = logging.getLogger(__name__)

BREAKER_TRIPS = Counter(
    "apihub_profiler_rule_breaker_trips",
    "Rules suspended for a batch because they flagged too large a share of one flight",
    ["owner", "rule_id"],
)


def report_trips(trips: Sequence[BreakerTrip], manifest_ids: Mapping[int, str] | None = None) -> None:
    """Log and count breaker trips: rule ids, manifest ids and counts, never the people flagged."""
    for trip in trips:
        BREAKER_TRIPS.labels(owner=trip.owner, rule_id=trip.rule_id).inc()
        log.warning(
            "rule breaker: rule %s (owner %s) suspended for this batch: it flagged %d of %d travellers of manifest %s",
            trip.rule_id,
            trip.owner or "hub",
            trip.flagged,
            trip.travellers,
            (manifest_ids or {}).get(trip.manifest_index, f"#{trip.manifest_index}"),
        )
