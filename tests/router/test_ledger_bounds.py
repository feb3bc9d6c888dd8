"""The delivery ledger's memory, bounded by flight age: closed flights are dropped and get no more deliveries."""

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.config import HubSettings
from services.router.ledger import DeliveryLedger, departure_day
from services.wire import hit_pb2

ACTIVE, WITHDRAWN = hit_pb2.HIT_STATE_ACTIVE, hit_pb2.HIT_STATE_WITHDRAWN


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


def _hit(hit_id: str, departure: str | None = "2026-12-01", reasons=("WL-1",), number="911") -> hit_pb2.Hit:
    hit = hit_pb2.Hit(hit_id=hit_id, manifest_id="m-1", state=ACTIVE)
    hit.flight.carrier, hit.flight.number = "FJ", number
    hit.flight.route.extend(["NAN", "TBU"])
    if departure:
        hit.flight.departure.FromJsonString(f"{departure}T08:00:00Z")
    hit.traveller.passenger_ref = f"P-{hit_id}"
    for r in reasons:
        hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id=r, score=1.0)
    return hit


def _clearance(template: hit_pb2.Hit, *ids: str, whole_flight: bool = False) -> hit_pb2.Hit:
    record = hit_pb2.Hit(manifest_id="m-2", state=WITHDRAWN, whole_flight=whole_flight)
    record.flight.CopyFrom(template.flight)
    record.withdrawn_hit_ids.extend(ids)
    return record


def _run(ledger: DeliveryLedger, hits, members=("FJI", "TON")):
    plan = ledger.plan(hits, lambda hit: set(members))
    ledger.commit(plan.records)
    return [(c.recipient, c.hit_id, c.state) for c in plan.copies], plan


@pytest.fixture
def clock():
    return Clock(datetime(2026, 12, 3, 12, 0, tzinfo=UTC))


@pytest.fixture
def ledger(clock):
    return DeliveryLedger(max_age_days=14, clock=clock)


def test_departure_day_is_read_from_the_flight_key():
    assert str(departure_day("FJ911/2026-12-01/NAN")) == "2026-12-01"
    assert departure_day("FJ911//NAN") is None
    assert departure_day("not a flight key") is None


def test_records_of_a_flight_departed_more_than_the_window_ago_are_dropped(ledger, clock):
    _run(ledger, [_hit("h-old", "2026-12-01"), _hit("h-old2", "2026-12-01")])
    _run(ledger, [_hit("h-new", "2026-12-05", number="411")])
    assert (len(ledger), ledger.flights) == (3, 2)

    clock.advance(14)  # 2026-12-17: flights of 2026-12-03 and later are open
    assert ledger.evict() == 2
    assert ledger.get("h-old") is None and ledger.get("h-old2") is None
    assert ledger.get("h-new") is not None
    assert (len(ledger), ledger.flights) == (1, 1)
    assert ledger.evict() == 0  # nothing more closed the same day


def test_a_flight_exactly_the_window_old_is_still_open(ledger, clock):
    clock.advance(12)  # 2026-12-15: 2026-12-01 departed exactly 14 days ago
    copies, plan = _run(ledger, [_hit("h-1", "2026-12-01")])
    assert copies == [("FJI", "h-1", ACTIVE), ("TON", "h-1", ACTIVE)] and not plan.closed
    clock.advance(1)
    assert ledger.closed("FJ911/2026-12-01/NAN")
    assert ledger.evict() == 1


def test_eviction_happens_as_records_are_committed(ledger, clock):
    _run(ledger, [_hit("h-old", "2026-12-01")])
    clock.advance(20)
    _run(ledger, [_hit("h-new", "2026-12-20", number="411")])  # the next batch's commit drops the closed flight
    assert ledger.get("h-old") is None and ledger.get("h-new") is not None


def test_a_late_amendment_after_eviction_reaches_nobody(ledger, clock):
    _run(ledger, [_hit("h-1", "2026-12-01")])
    clock.advance(20)
    ledger.evict()
    # A changed hit of the closed flight: neither a new delivery nor an update.
    copies, plan = _run(ledger, [_hit("h-1", "2026-12-01", reasons=("WL-1", "HUB-DOC-EXPIRED"))])
    assert copies == [] and plan.records == {}
    assert plan.closed == ["FJ911/2026-12-01/NAN"]
    # Nor a withdrawal, by id or for the whole flight; and nothing of it is held again.
    copies, plan = _run(ledger, [_clearance(_hit("h-1"), "h-1"), _clearance(_hit("h-1"), whole_flight=True)])
    assert copies == [] and len(plan.closed) == 2
    assert ledger.get("h-1") is None and len(ledger) == 0


def test_a_late_hit_of_a_closed_flight_is_ignored_even_before_eviction_ran(ledger, clock):
    _run(ledger, [_hit("h-1", "2026-12-01")])
    clock.advance(20)  # no commit since: the record is still held, but the flight is closed
    copies, plan = _run(ledger, [_clearance(_hit("h-1"), "h-1")])
    assert copies == [] and plan.closed == ["FJ911/2026-12-01/NAN"]


def test_a_new_version_of_a_recent_flight_still_updates_and_withdraws(ledger, clock):
    _run(ledger, [_hit("h-old", "2026-12-01", number="411")])
    _run(ledger, [_hit("h-1", "2026-12-20"), _hit("h-2", "2026-12-20")], members=("FJI",))
    clock.advance(20)  # 2026-12-23: the 12-01 flight closes, the 12-20 one is open
    ledger.evict()
    assert ledger.get("h-old") is None

    copies, _ = _run(ledger, [_hit("h-1", "2026-12-20", reasons=("WL-1", "HUB-DOC-EXPIRED"))], members=("FJI",))
    assert copies == [("FJI", "h-1", ACTIVE)]  # an update under the same id
    copies, _ = _run(ledger, [_hit("h-1", "2026-12-20", reasons=("WL-1", "HUB-DOC-EXPIRED"))], members=("FJI",))
    assert copies == []  # unchanged: not sent again
    copies, _ = _run(ledger, [_clearance(_hit("h-1", "2026-12-20"), whole_flight=True)])
    assert sorted(copies) == [("FJI", "h-1", WITHDRAWN), ("FJI", "h-2", WITHDRAWN)]


def test_records_of_closed_flights_read_back_from_the_topic_are_not_held(ledger, clock):
    clock.advance(20)
    old = hit_pb2.DeliveryRecord(hit_id="h-old", flight_key="FJ911/2026-12-01/NAN")
    old.fingerprints["FJI"] = "fp"
    recent = hit_pb2.DeliveryRecord(hit_id="h-new", flight_key="FJ911/2026-12-20/NAN")
    recent.fingerprints["FJI"] = "fp"
    ledger.apply_record(b"h-old", old.SerializeToString())
    ledger.apply_record(b"h-new", recent.SerializeToString())
    assert ledger.get("h-old") is None and ledger.get("h-new") == recent


def test_a_tombstone_leaves_no_empty_index_behind(ledger):
    _run(ledger, [_hit("h-1", "2026-12-10")])
    ledger.apply_record(b"h-1", None)
    assert (len(ledger), ledger.flights) == (0, 0)
    assert ledger._by_day == {}  # the per-day index goes with its last flight


def test_undated_flights_are_bounded_by_count_least_recently_recorded_first(clock):
    ledger = DeliveryLedger(max_age_days=14, max_undated=2, clock=clock)
    evicted = REGISTRY.get_sample_value("apihub_router_ledger_evicted_total", {"ledger": "unnamed", "reason": "count"})
    _run(ledger, [_hit("h-1", None)])
    _run(ledger, [_hit("h-2", None)])
    _run(ledger, [_hit("h-1", None, reasons=("WL-2",))])  # h-1 recorded again: now the most recent
    _run(ledger, [_hit("h-3", None)])
    assert ledger.get("h-2") is None
    assert ledger.get("h-1") is not None and ledger.get("h-3") is not None
    after = REGISTRY.get_sample_value("apihub_router_ledger_evicted_total", {"ledger": "unnamed", "reason": "count"})
    assert after - (evicted or 0) == 1
    clock.advance(3650)
    assert ledger.evict() == 0 and len(ledger) == 2  # age does not apply to them


def test_a_ledger_without_a_window_never_closes_a_flight(clock):
    ledger = DeliveryLedger(clock=clock)
    _run(ledger, [_hit("h-1", "2026-12-01")])
    clock.advance(3650)
    assert ledger.evict() == 0
    copies, _ = _run(ledger, [_clearance(_hit("h-1"), "h-1")])
    assert copies == [("FJI", "h-1", WITHDRAWN), ("TON", "h-1", WITHDRAWN)]


def test_the_router_ledger_takes_its_window_from_the_settings_and_shows_its_size():
    ledger = DeliveryLedger.for_settings(HubSettings(flight_state_days=3), name="router")
    today = datetime.now(UTC).date()
    assert not ledger.closed(f"FJ911/{today - timedelta(days=3)}/NAN")
    assert ledger.closed(f"FJ911/{today - timedelta(days=4)}/NAN")
    _run(ledger, [_hit("h-1", str(today)), _hit("h-2", str(today))])
    assert REGISTRY.get_sample_value("apihub_router_ledger_hits", {"ledger": "router"}) == 2
    assert REGISTRY.get_sample_value("apihub_router_ledger_flights", {"ledger": "router"}) == 1


def test_the_window_must_be_at_least_a_day():
    with pytest.raises(ValueError, match="flight_state_days"):
        HubSettings(flight_state_days=0)


def test_the_router_worker_commits_a_closed_flights_hit_without_delivering_it(unit_settings, directory, fakes):
    from services.bus import Topics
    from services.router.worker import RouterWorker

    topics = Topics(unit_settings.topic_prefix)
    calls: list[tuple] = []
    consumer = fakes.Consumer()
    consumer.calls = calls
    producer = fakes.Producer(calls)
    worker = RouterWorker(unit_settings, directory, consumer=consumer, producer=producer, ledger_reader=fakes.Table())
    long_gone = str(datetime.now(UTC).date() - timedelta(days=unit_settings.flight_state_days + 1))
    before = REGISTRY.get_sample_value("apihub_router_closed_flight_hits_total") or 0
    tp, rec = fakes.record(topics.hits, 0, _hit("h-late", long_gone).SerializeToString())

    assert worker.route_batch({tp: [rec]}) is True
    assert producer.sent == [] and worker.ledger.get("h-late") is None
    assert REGISTRY.get_sample_value("apihub_router_closed_flight_hits_total") - before == 1
    assert calls[-1][0] == "commit"
