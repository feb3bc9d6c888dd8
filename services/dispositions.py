"""Members' dispositions of hits: what each outcome means, which disposition counts, and the precision of rules
and watchlist entries that follows from them.

A member records what its profiling unit found for a hit it received (HitDelivery.Dispose, the dispositions
topic). The router records them, the profiler learns from them (services.profiler.labels) and `apihub
dispositions` reports precision from them; the outcome sets and "which disposition counts" are defined here
once for all three. Only a member's latest disposition of a hit counts (by its time; a tie goes to the one read
last), so a revised outcome replaces the first one.

Precision: a disposition is credited to every reason of the hit as delivered (rule, watchlist entry, model
version).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.wire import delivery_pb2

# Outcome -> its name as members and reports write it ("true_match"); OUTCOME_UNSPECIFIED is not an outcome.
OUTCOME_NAMES: dict[int, str] = {
    value: name.removeprefix("OUTCOME_").lower()
    for name, value in delivery_pb2.Outcome.items()
    if value != delivery_pb2.OUTCOME_UNSPECIFIED
}
# Outcomes that confirm the hit (the traveller was of interest) and outcomes that refute it.
POSITIVE = frozenset(
    {
        delivery_pb2.OUTCOME_TRUE_MATCH,
        delivery_pb2.OUTCOME_DENIED_BOARDING,
        delivery_pb2.OUTCOME_REFUSED_ENTRY,
        delivery_pb2.OUTCOME_SECONDARY_POSITIVE,
    }
)
NEGATIVE = frozenset({delivery_pb2.OUTCOME_FALSE_POSITIVE, delivery_pb2.OUTCOME_SECONDARY_NEGATIVE})


def latest_per_member(
    dispositions: Iterable[delivery_pb2.Disposition],
) -> dict[tuple[str, str], delivery_pb2.Disposition]:
    """(hit id, member) -> that member's latest disposition of the hit (the later one read wins a tie)."""
    latest: dict[tuple[str, str], delivery_pb2.Disposition] = {}
    for d in dispositions:
        key = (d.hit_id, d.member)
        if key not in latest or (d.at.seconds, d.at.nanos) >= (latest[key].at.seconds, latest[key].at.nanos):
            latest[key] = d
    return latest


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
    counts: dict[str, list[int]] = {}
    for d in latest_per_member(dispositions).values():
        column = 0 if d.outcome in POSITIVE else 1 if d.outcome in NEGATIVE else None
        if column is None:
            continue
        for reason in d.reason_keys:
            counts.setdefault(reason, [0, 0])[column] += 1
    rows = [ReasonPrecision(reason, c, r) for reason, (c, r) in counts.items()]
    return sorted(rows, key=lambda row: (-row.disposed, row.reason))
