"""`apihub hits follow`: the text form of a member's hit shows the review marker and each match's band."""

from __future__ import annotations

from services.cli import REVIEW_MARKER, follow_lines
from services.codec import hit_to_json
from services.wire import hit_pb2


def _hit(band, for_review):
    hit = hit_pb2.Hit(hit_id="h-1", recipient="FJI", manifest_id="m-1", score=0.78, for_review=for_review)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["NAN", "TBU"])
    hit.traveller.passenger_ref = "FJ911-W"
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="FJI-WL-1", score=0.78, explanation="weak", band=band)
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_MODEL, id="risk-1", score=0.4, explanation="ranked")
    return hit


def test_a_hit_for_review_is_marked_and_each_watchlist_reason_shows_its_band():
    head, match, model = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_REVIEW, True)))
    assert head.startswith("h-1 FJ911 NAN-TBU") and head.endswith(f"score=0.78 {REVIEW_MARKER}")
    assert match.split()[:4] == ["watchlist", "FJI-WL-1", "0.78", "review"]
    assert model.split()[:4] == ["model", "risk-1", "0.40", "ranked"]  # no band for the model's reason


def test_an_alert_is_not_marked_for_review():
    head, match, _ = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_ALERT, False)))
    assert REVIEW_MARKER not in head
    assert match.split()[3] == "alert"
