"""Intake's duplicate index in memory: keys kept for flight_state_days after they were stored, and at most
intake_index_max_keys of them."""

from types import SimpleNamespace

from prometheus_client import REGISTRY

from services.api_ingest.index import IntakeIndex
from services.config import HubSettings

DAY = 86400.0
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _index(clock, **settings) -> IntakeIndex:
    return IntakeIndex(HubSettings(flight_state_days=14, **settings), reader=object(), clock=clock)


def _record(stored_s: float):
    return SimpleNamespace(timestamp=int(stored_s * 1000))


def test_keys_stored_longer_ago_than_the_window_are_forgotten():
    clock = Clock()
    index = _index(clock)
    index.remember(["content:old", "ref:FJ|A|1|0"], "m-old")
    clock.now += 10 * DAY
    index.remember(["content:new"], "m-new")
    assert index.lookup(["content:old"]) == "m-old"  # 10 days: still a duplicate

    clock.now += 5 * DAY  # the first keys are 15 days old; the next key stored drops them
    index.remember(["content:newer"], "m-newer")
    assert index.lookup(["content:old", "ref:FJ|A|1|0"]) is None
    assert index.lookup(["content:new"]) == "m-new" and len(index) == 2


def test_keys_read_back_from_the_topic_keep_their_own_age():
    clock = Clock()
    index = _index(clock)
    index._apply(b"content:ancient", b"m-1", _record(NOW - 30 * DAY))
    index._apply(b"content:recent", b"m-2", _record(NOW - 2 * DAY))
    assert index.lookup(["content:ancient"]) is None
    assert index.lookup(["content:recent"]) == "m-2"
    index._apply(b"content:recent", None, _record(NOW))  # a tombstone
    assert len(index) == 0


def test_at_most_the_configured_number_of_keys_oldest_first():
    clock = Clock()
    index = _index(clock, intake_index_max_keys=3)
    before = REGISTRY.get_sample_value("apihub_ingest_index_evicted_total", {"reason": "count"}) or 0
    for i in range(5):
        clock.now += 1
        index.remember([f"content:{i}"], f"m-{i}")
    assert len(index) == 3
    assert index.lookup(["content:0"]) is None and index.lookup(["content:1"]) is None
    assert index.lookup(["content:4"]) == "m-4"
    assert REGISTRY.get_sample_value("apihub_ingest_index_evicted_total", {"reason": "count"}) - before == 2
    assert REGISTRY.get_sample_value("apihub_ingest_index_keys") == 3
