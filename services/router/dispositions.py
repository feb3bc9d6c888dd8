"""Precision of rules and watchlist entries, from what members found when they acted on hits.

A disposition is credited to every reason of the hit as delivered (rule, watchlist entry, model version). Only a
member's latest disposition of a hit counts, so a revised outcome replaces the first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.wire import delivery_pb2

POSITIVE = frozenset(
    {
        delivery_pb2.OUTCOME_TRUE_MATCH,
        delivery_pb2.OUTCOME_DENIED_BOARDING,
        delivery_pb2.OUTCOME_REFUSED_ENTRY,
        delivery_pb2.OUTCOME_SECONDARY_POSITIVE,
    }
)
NEGATIVE = frozenset({delivery_pb2.OUTCOME_FALSE_POSITIVE, delivery_pb2.OUTCOME_SECONDARY_NEGATIVE})


@dataclass(frozen=True)
class ReasonPrecision:
    reason: str  # "source:owner:id"
    confirmed: int
    refuted: int

    @property
    def disposed(self) -> int:
        return self.confirmed + self.refuted

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.disposed if self.disposed else None


def precision_by_reason(dispositions: Iterable[delivery_pb2.Disposition]) -> list[ReasonPrecision]:
    """Per reason: hits members confirmed and refuted; most disposed first."""
    latest: dict[tuple[str, str], delivery_pb2.Disposition] = {}
    for d in dispositions:
        key = (d.hit_id, d.member)
        if key not in latest or (d.at.seconds, d.at.nanos) >= (latest[key].at.seconds, latest[key].at.nanos):
            latest[key] = d
    counts: dict[str, list[int]] = {}
    for d in latest.values():
        column = 0 if d.outcome in POSITIVE else 1 if d.outcome in NEGATIVE else None
        if column is None:
            continue
        for reason in d.reason_keys:
            counts.setdefault(reason, [0, 0])[column] += 1
    rows = [ReasonPrecision(reason, c, r) for reason, (c, r) in counts.items()]
    return sorted(rows, key=lambda row: (-row.disposed, row.reason))
