"""Precision statistics from dispositions: credited to every reason, latest outcome per member counts."""

from services.dispositions import precision_by_reason
from services.wire import delivery_pb2


def _d(hit_id, member, outcome, *reasons, at=1):
    d = delivery_pb2.Disposition(hit_id=hit_id, member=member, outcome=outcome, reason_keys=reasons)
    d.at.seconds = at
    return d


def test_each_reason_gets_the_outcomes_of_its_hits_and_revisions_replace_earlier_ones():
    rows = precision_by_reason(
        [
            _d("h1", "FJI", delivery_pb2.OUTCOME_FALSE_POSITIVE, "watchlist:FJI:E1", "rule:FJI:R1", at=1),
            _d("h1", "FJI", delivery_pb2.OUTCOME_TRUE_MATCH, "watchlist:FJI:E1", "rule:FJI:R1", at=2),  # revised
            _d("h1", "TON", delivery_pb2.OUTCOME_SECONDARY_NEGATIVE, "watchlist:FJI:E1", "rule:FJI:R1"),
            _d("h2", "FJI", delivery_pb2.OUTCOME_DENIED_BOARDING, "rule:FJI:R1"),
        ]
    )
    by_reason = {r.reason: r for r in rows}
    assert (by_reason["rule:FJI:R1"].confirmed, by_reason["rule:FJI:R1"].refuted) == (2, 1)
    assert by_reason["watchlist:FJI:E1"].precision == 0.5
    assert rows[0].reason == "rule:FJI:R1"  # most disposed first
    assert precision_by_reason([]) == []
