"""What a hit's reasons add up to: its score and, per member, the screening band of each watchlist match.

Shared by the profiler, which raises hits, and the router, which tailors each member's copy of one (and, when it
drops reasons a member did not ask for, recomputes the copy's score with the same hit_score). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.wire import hit_pb2

# Highest score of a hit raised by the model alone: a ranking for human review that never outranks a hit with
# a watchlist or rule reason. Watchlist matches score at least the lowest screening review band
# (config.DEFAULT_SCREENING_REVIEW unless members set lower), the hub's rule 0.5 and the starter templates
# 0.1-0.3; a member rule scored below this cap can still sort under a model-only hit, which is why the model's
# reasons carry category "review" for queues to sort on.
MODEL_ONLY_CAP = 0.1


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


def screening_band(score: float, alert: float, review: float) -> hit_pb2.ScreeningBand:
    """The band a watchlist match's score falls in for a member with these bands; UNSPECIFIED below review."""
    if score >= alert:
        return hit_pb2.SCREENING_BAND_ALERT
    if score >= review:
        return hit_pb2.SCREENING_BAND_REVIEW
    return hit_pb2.SCREENING_BAND_UNSPECIFIED


def for_review(reasons: Sequence[hit_pb2.Reason]) -> bool:
    """True when no reason calls for action: no rule and no alert-band watchlist match, only review-band
    watchlist matches and/or the risk model's ranking (which is only ever for review)."""
    return bool(reasons) and all(
        r.source == hit_pb2.REASON_SOURCE_MODEL
        or (r.source == hit_pb2.REASON_SOURCE_WATCHLIST and r.band == hit_pb2.SCREENING_BAND_REVIEW)
        for r in reasons
    )
