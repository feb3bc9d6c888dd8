"""Members' screening bands in the router: each member's copy holds the watchlist matches that reach its own review
band, each marked with its band, and is marked for review when nothing in it calls for action."""

from __future__ import annotations

import pytest

from services import hits
from services.config import HubSettings
from services.profiler import scoring
from services.router.ledger import WITHDRAWN, DeliveryLedger
from services.router.recipients import member_tailor, screening_band_tailor
from services.wire import hit_pb2

WATCHLIST, RULE, MODEL = hit_pb2.REASON_SOURCE_WATCHLIST, hit_pb2.REASON_SOURCE_RULE, hit_pb2.REASON_SOURCE_MODEL
ALERT, REVIEW = hit_pb2.SCREENING_BAND_ALERT, hit_pb2.SCREENING_BAND_REVIEW
# Fiji (and Tonga) review matches from 0.70 and are alerted from 0.90; Samoa sees nothing under 0.85 and is
# alerted from 0.95.
BANDS = {
    "FJI": {"alert": 0.9, "review": 0.7},
    "WSM": {"alert": 0.95, "review": 0.85},
    "TON": {"alert": 0.9, "review": 0.7},
}


def _hit(*reasons: tuple[int, float]) -> hit_pb2.Hit:
    hit = hit_pb2.Hit(hit_id="h-1", manifest_id="m-1", state=hit_pb2.HIT_STATE_ACTIVE)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["NAN", "APW"])
    hit.traveller.passenger_ref = "P1"
    for i, (source, score) in enumerate(reasons):
        hit.reasons.add(source=source, id=f"r{i}", score=score, owner="FJI")
    hit.score = hits.hit_score(hit.reasons)
    return hit


def test_a_match_between_review_and_alert_is_marked_review_and_the_copy_for_review():
    tailor = screening_band_tailor(BANDS)
    hit = _hit((WATCHLIST, 0.8))
    fiji = tailor(hit, "FJI")
    assert [r.band for r in fiji.reasons] == [REVIEW]
    assert fiji.for_review
    assert fiji.score == pytest.approx(0.8)
    assert tailor(hit, "WSM") is None  # under Samoa's review band: not for Samoa at all
    # The hit on the topic is untouched: bands belong to members' copies.
    assert not hit.for_review and hit.reasons[0].band == hit_pb2.SCREENING_BAND_UNSPECIFIED


def test_a_match_at_or_above_alert_is_marked_alert_and_not_for_review():
    tailor = screening_band_tailor(BANDS)
    hit = _hit((WATCHLIST, 0.9))
    fiji = tailor(hit, "FJI")
    assert [r.band for r in fiji.reasons] == [ALERT] and not fiji.for_review
    samoa = tailor(hit, "WSM")
    assert [r.band for r in samoa.reasons] == [REVIEW] and samoa.for_review


def test_a_rule_reason_makes_a_copy_not_for_review():
    tailor = screening_band_tailor(BANDS)
    fiji = tailor(_hit((WATCHLIST, 0.8), (RULE, 0.5)), "FJI")
    assert [(r.source, r.band) for r in fiji.reasons] == [(WATCHLIST, REVIEW), (RULE, 0)]
    assert not fiji.for_review
    rule_only = _hit((RULE, 0.5))
    assert tailor(rule_only, "FJI") is rule_only  # nothing to mark: the hit itself


def test_the_score_is_recomputed_when_a_match_is_dropped():
    tailor = screening_band_tailor(BANDS)
    hit = _hit((WATCHLIST, 0.8), (RULE, 0.5))
    assert hit.score == pytest.approx(0.9)
    samoa = tailor(hit, "WSM")
    assert [r.source for r in samoa.reasons] == [RULE]
    assert samoa.score == pytest.approx(0.5) and not samoa.for_review
    assert tailor(hit, "FJI").score == hit.score  # nothing dropped for Fiji: the profiler's score stands
    two = _hit((WATCHLIST, 0.8), (WATCHLIST, 0.96))
    samoa = tailor(two, "WSM")
    assert [(r.score, r.band) for r in samoa.reasons] == [(0.96, ALERT)]
    assert samoa.score == pytest.approx(0.96) and not samoa.for_review


def test_members_with_the_same_bands_share_one_copy_and_defaults_apply_to_the_others():
    tailor = screening_band_tailor(BANDS)
    hit = _hit((WATCHLIST, 0.8))
    assert tailor(hit, "FJI") is tailor(hit, "TON")  # the ledger fingerprints one version once
    alert, review = HubSettings().screening_band("AUS")
    expected = hits.screening_band(0.8, alert, review)
    aus = tailor(hit, "AUS")
    if expected == hit_pb2.SCREENING_BAND_UNSPECIFIED:
        assert aus is None
    else:
        assert [r.band for r in aus.reasons] == [expected]


def test_model_thresholds_and_screening_bands_compose_in_one_tailor():
    settings = HubSettings(model_thresholds={"FJI": 0.99, "WSM": 0.3}, screening_bands=BANDS)
    tailor = member_tailor(settings)
    hit = _hit((WATCHLIST, 0.8), (MODEL, 0.4))
    fiji = tailor(hit, "FJI")  # the model's 0.4 is under Fiji's threshold; the match is in its review band
    assert [(r.source, r.band) for r in fiji.reasons] == [(WATCHLIST, REVIEW)]
    assert fiji.for_review and fiji.score == pytest.approx(0.8)
    samoa = tailor(hit, "WSM")  # the match is under Samoa's review band; the model's 0.4 reaches its threshold
    assert [r.source for r in samoa.reasons] == [MODEL]
    assert samoa.for_review and samoa.score == pytest.approx(hits.MODEL_ONLY_CAP)
    assert tailor(_hit((WATCHLIST, 0.8), (MODEL, 0.2)), "WSM") is None  # nothing left for Samoa


def test_the_hit_score_has_one_definition():
    assert scoring.hit_score is hits.hit_score and scoring.combined_score is hits.combined_score
    assert scoring.MODEL_ONLY_CAP == hits.MODEL_ONLY_CAP


def _plan(ledger, hit, tailor, members=("FJI", "WSM")):
    plan = ledger.plan([hit], lambda _: set(members), tailor)
    ledger.commit(plan.records)
    return {(c.recipient, c.state): c for c in plan.copies}


def test_a_band_change_reaches_the_member_as_an_update_and_a_match_leaving_its_bands_as_a_withdrawal():
    ledger = DeliveryLedger()
    hit = _hit((WATCHLIST, 0.8))
    sent = _plan(ledger, hit, screening_band_tailor(BANDS))
    assert set(sent) == {("FJI", hit_pb2.HIT_STATE_ACTIVE)}
    assert _plan(ledger, hit, screening_band_tailor(BANDS)) == {}  # a replay is not news

    # Fiji raises its alert band under the score: same reasons and score, another band -> an update.
    raised = {**BANDS, "FJI": {"alert": 0.75, "review": 0.7}}
    update = _plan(ledger, hit, screening_band_tailor(raised))
    assert set(update) == {("FJI", hit_pb2.HIT_STATE_ACTIVE)}
    copy = update["FJI", hit_pb2.HIT_STATE_ACTIVE]
    assert [r.band for r in copy.reasons] == [ALERT] and not copy.for_review

    # A corrected manifest scores lower: under Fiji's review band now, so the hit is withdrawn from Fiji.
    weaker = _hit((WATCHLIST, 0.6))
    withdrawn = _plan(ledger, weaker, screening_band_tailor(raised))
    assert set(withdrawn) == {("FJI", hit_pb2.HIT_STATE_WITHDRAWN)}
    assert ledger.get("h-1").fingerprints["FJI"] == WITHDRAWN and ledger.get("h-1").withdrawn
