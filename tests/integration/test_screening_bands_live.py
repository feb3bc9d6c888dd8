"""Members' screening bands in the running hub: a weak watchlist match reaches the member whose review band it
reaches, marked for review, and not the member whose review band is above it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hubkit import RunningHub, flight, plant

from services.config import validate_screening_bands
from services.directory import load_directory
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore
from services.wire import delivery_pb2, hit_pb2, manifest_pb2

pytestmark = pytest.mark.integration

# Both on Fiji's regional list; the first matches exactly, the second only weakly (see _weak_traveller).
EXACT = delivery_pb2.WatchlistEntry(
    entry_id="FJI-WL-EXACT",
    surname="NAVULA",
    given_names="ELENOA",
    date_of_birth=manifest_pb2.PartialDate(year=1979, month=3, day=2),
    nationality="FJI",
    document_number="FP0456123",
    category="wanted",
)
WEAK = delivery_pb2.WatchlistEntry(
    entry_id="FJI-WL-WEAK",
    surname="MULLER",
    given_names="JEAN PIERRE",
    date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
    category="people_smuggling",
)


def _flight() -> manifest_pb2.Manifest:
    """NAN -> APW (Fiji and Samoa have jurisdiction): the exact match and the weak one on board."""
    m = flight(["NAN", "APW"], carrier="FJ", number="521")
    plant(m, EXACT, "FJ521-EXACT")
    weak = m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="Muller",
        given_names="Jean-Pierre",
        date_of_birth=manifest_pb2.PartialDate(year=1975, month=1, day=1),  # years off the listed date
        nationality="FRA",
        passenger_ref="FJ521-WEAK",
    )
    weak.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number="18FR77310",
        issuing_state="FRA",
        expiry=manifest_pb2.PartialDate(year=2031, month=1, day=1),
    )
    return m


def _weak_score(manifest: manifest_pb2.Manifest) -> float:
    """The weak match's score, from the profiler's own scoring, offline."""
    store = WatchlistStore()
    store.apply(delivery_pb2.Watchlist(owner="FJI", scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL, entries=[WEAK]))
    found = score_batch([manifest], store, load_directory(), datetime.now(UTC), rules=(), watchlist_threshold=0.3)
    [score] = [r.score for h in found if h.traveller.passenger_ref == "FJ521-WEAK" for r in h.reasons]
    assert 0.3 < score < 0.99, "the planted traveller should match the entry only weakly"
    return score


def test_a_weak_match_reaches_only_the_member_whose_review_band_it_reaches_marked_for_review(settings):
    manifest = _flight()
    score = _weak_score(manifest)
    # Fiji reviews from just under the weak score and is alerted just above it; Samoa is alerted from just above
    # it and reviews nothing lower.
    above, under = score + 0.005, score - 0.005
    bands = validate_screening_bands(
        {"FJI": {"alert": above, "review": under}, "WSM": {"alert": above, "review": above}}
    )
    hub = RunningHub(settings.model_copy(update={"screening_bands": bands}))
    try:
        assert hub.load("FJI", [EXACT, WEAK]).entries == 2
        hub.submit(manifest)

        fiji = {h.traveller.passenger_ref: h for h in hub.hits("FJI", want=2, idle=20)}
        assert set(fiji) == {"FJ521-EXACT", "FJ521-WEAK"}
        weak = fiji["FJ521-WEAK"]
        assert [(r.id, r.band) for r in weak.reasons] == [("FJI-WL-WEAK", hit_pb2.SCREENING_BAND_REVIEW)]
        assert weak.for_review and weak.score == pytest.approx(score)
        exact = fiji["FJ521-EXACT"]
        assert [r.band for r in exact.reasons] == [hit_pb2.SCREENING_BAND_ALERT] and not exact.for_review

        # Every member's copies of a hit go out in one flush: Samoa's outbox is complete once Fiji has its hits.
        samoa = {h.traveller.passenger_ref: h for h in hub.hits("WSM", want=2, idle=3)}
        assert set(samoa) == {"FJ521-EXACT"}  # the weak match is under Samoa's review band
        assert [r.band for r in samoa["FJ521-EXACT"].reasons] == [hit_pb2.SCREENING_BAND_ALERT]
    finally:
        hub.stop()
