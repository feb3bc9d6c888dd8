"""The risk model in the running profiler: a traveller matching a planted pattern reaches members for review."""

from __future__ import annotations

import pytest
from hubkit import RunningHub, flight

from services.profiler.model import CASH
from services.profiler.scoring import MODEL_ONLY_CAP
from services.wire import delivery_pb2, hit_pb2, manifest_pb2
from synthetic.history import train_on_history

pytestmark = pytest.mark.integration


@pytest.fixture
def hub_with_model(settings, tmp_path):
    artefact = train_on_history(tmp_path / "models", rows=30_000, seed=1)
    # Samoa reviews nothing the model alone raises (a probability never reaches 1); Fiji keeps the default.
    running = RunningHub(settings.model_copy(update={"model_path": artefact.path, "model_thresholds": {"WSM": 1.0}}))
    yield running, artefact
    running.stop()


def _odd_booking_flight(number="411"):
    """NAN -> APW (Fiji and Samoa): ordinary bookings but one made on the day, in cash, one way."""
    m = flight(["NAN", "APW"], carrier="FJ", number=number)
    departure = m.legs[0].scheduled_departure.ToDatetime()
    for t in m.travellers:  # ordinary bookings: weeks ahead, by card, return trips
        t.booking.booking_date.CopyFrom(manifest_pb2.PartialDate(year=2026, month=1, day=5))
        t.booking.payment_form, t.booking.one_way = "CC", False
    odd = m.travellers[0]
    odd.passenger_ref = f"FJ{number}-ODD"
    odd.booking.booking_date.CopyFrom(
        manifest_pb2.PartialDate(year=departure.year, month=departure.month, day=departure.day)
    )
    odd.booking.payment_form, odd.booking.one_way = sorted(CASH)[0], True
    return m


def test_model_ranks_a_planted_pattern_for_review_and_never_above_the_cap(hub_with_model):
    hub, artefact = hub_with_model
    hub.submit(_odd_booking_flight())
    hits = hub.hits("FJI", want=1, idle=20)
    [hit] = [h for h in hits if h.traveller.passenger_ref == "FJ411-ODD"]
    [reason] = hit.reasons
    assert (reason.source, reason.id, reason.category) == (hit_pb2.REASON_SOURCE_MODEL, artefact.version, "review")
    assert hit.score <= MODEL_ONLY_CAP
    assert "cash" in reason.explanation


def test_each_member_gets_model_reasons_only_at_its_own_threshold(hub_with_model):
    hub, _ = hub_with_model
    hub.submit(_odd_booking_flight("411"))  # the model alone raises FJ411-ODD
    # Screened before Fiji lists the traveller (below): only then is the model its only reason.
    (first,) = hub.hits("FJI", want=1, idle=20)
    listed = _odd_booking_flight("412")  # the same traveller on another flight, and on Fiji's watchlist
    odd = listed.travellers[0]
    entry = delivery_pb2.WatchlistEntry(
        entry_id="FJI-ODD",
        surname=odd.surname,
        given_names=odd.given_names,
        date_of_birth=odd.date_of_birth,
        document_number=odd.documents[0].number,
        nationality=odd.nationality,
    )
    assert hub.load("FJI", [entry]).entries == 1
    hub.submit(listed)

    fiji = {h.traveller.passenger_ref: h for h in [first, *hub.hits("FJI", want=1, idle=20)]}
    assert set(fiji) == {"FJ411-ODD", "FJ412-ODD"}
    assert {r.source for r in fiji["FJ411-ODD"].reasons} == {hit_pb2.REASON_SOURCE_MODEL}
    assert {r.source for r in fiji["FJ412-ODD"].reasons} == {
        hit_pb2.REASON_SOURCE_WATCHLIST,
        hit_pb2.REASON_SOURCE_MODEL,
    }
    # Every member's copies of a hit go out in one flush: Samoa's outbox is complete once Fiji has its hits.
    samoa = {h.traveller.passenger_ref: h for h in hub.hits("WSM", want=2, idle=3)}
    assert set(samoa) == {"FJ412-ODD"}  # the model-only hit is not for Samoa
    assert {r.source for r in samoa["FJ412-ODD"].reasons} == {hit_pb2.REASON_SOURCE_WATCHLIST}
    assert samoa["FJ412-ODD"].score == fiji["FJ412-ODD"].score
