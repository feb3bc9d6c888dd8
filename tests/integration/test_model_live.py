"""The risk model in the running profiler: a traveller matching a planted pattern reaches members for review."""

from __future__ import annotations

import pytest
from hubkit import RunningHub, flight

from services.profiler.history import CASH
from services.profiler.model import train
from services.profiler.scoring import MODEL_ONLY_CAP
from services.wire import hit_pb2, manifest_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
def hub_with_model(settings, tmp_path):
    artefact = train(tmp_path / "models", rows=30_000, seed=1)
    running = RunningHub(settings.model_copy(update={"model_path": artefact.path}))
    yield running, artefact
    running.stop()


def test_model_ranks_a_planted_pattern_for_review_and_never_above_the_cap(hub_with_model):
    hub, artefact = hub_with_model
    m = flight(["NAN", "APW"], carrier="FJ", number="411")
    departure = m.legs[0].scheduled_departure.ToDatetime()
    for t in m.travellers:  # ordinary bookings: weeks ahead, by card, return trips
        t.booking.booking_date.CopyFrom(manifest_pb2.PartialDate(year=2026, month=1, day=5))
        t.booking.payment_form, t.booking.one_way = "CC", False
    odd = m.travellers[0]
    odd.passenger_ref = "FJ411-ODD"
    odd.booking.booking_date.CopyFrom(
        manifest_pb2.PartialDate(year=departure.year, month=departure.month, day=departure.day)
    )
    odd.booking.payment_form, odd.booking.one_way = sorted(CASH)[0], True
    hub.submit(m)
    hits = hub.hits("FJI", want=1, idle=20)
    [hit] = [h for h in hits if h.traveller.passenger_ref == "FJ411-ODD"]
    [reason] = hit.reasons
    assert (reason.source, reason.id, reason.category) == (hit_pb2.REASON_SOURCE_MODEL, artefact.version, "review")
    assert hit.score <= MODEL_ONLY_CAP
    assert "cash" in reason.explanation
