"""The processing loop against in-memory fakes of the three Kafka clients (real broker: tests/integration)."""

import threading
from collections import namedtuple
from datetime import UTC, datetime

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY

from services import codec
from services.bus import Topics
from services.config import HubSettings
from services.directory import load_directory
from services.errors import ConfigError
from services.profiler.worker import ProfilerWorker
from services.wire import delivery_pb2, hit_pb2, manifest_pb2

SETTINGS = HubSettings(topic_prefix="unit", profiler_metrics_port=-1, profiler_poll_ms=10)
TOPICS = Topics("unit")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
Record = namedtuple("Record", "topic partition offset key value")


class FakeManifestConsumer:
    def __init__(self, events):
        self.events = events
        self.batches = []  # each: {TopicPartition: [Record]}
        self.seeks = []
        self.subscribed = None
        self.closed_with = None

    def subscribe(self, topics):
        self.subscribed = list(topics)

    def partitions_for_topic(self, topic):
        return {0} if topic in (self.subscribed or []) else set()

    def poll(self, timeout_ms=0, max_records=None):
        self.events.append("poll")
        return self.batches.pop(0) if self.batches else {}

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def commit(self, offsets=None, timeout_ms=None):
        self.events.append("commit")
        self.committed = offsets

    def close(self, autocommit=True):
        self.closed_with = autocommit


class FakeWatchlistConsumer:
    """A single-partition topic log with a read position (the watchlists topic unless told otherwise)."""

    def __init__(self, topic=TOPICS.watchlists):
        self.tp = TopicPartition(topic, 0)
        self.log = []
        self.pos = None
        self.closed_with = None

    def append(self, key, value):
        self.log.append(Record(self.tp.topic, 0, len(self.log), key, value))

    def partitions_for_topic(self, topic):
        return {0} if topic == self.tp.topic else set()

    def assign(self, partitions):
        assert partitions == [self.tp]

    def seek_to_beginning(self, *partitions):
        self.pos = 0

    def end_offsets(self, partitions):
        return {self.tp: len(self.log)}

    def position(self, tp):
        return self.pos

    def poll(self, timeout_ms=0, max_records=None):
        records, self.pos = self.log[self.pos :], len(self.log)
        return {self.tp: records} if records else {}

    def close(self, autocommit=True):
        self.closed_with = autocommit


class FakeFuture:
    def __init__(self, exception=None):
        self.exception = exception

    def failed(self):
        return self.exception is not None

    def succeeded(self):
        return self.exception is None


class FakeProducer:
    def __init__(self, events, fail=False):
        self.events = events
        self.fail = fail
        self.sent = []
        self.closed = False

    def partitions_for(self, topic):
        return {0}

    def send(self, topic, key=None, value=None):
        self.events.append("send")
        self.sent.append((topic, key, value))
        return FakeFuture(KafkaTimeoutError("not acknowledged") if self.fail else None)

    def flush(self, timeout=None):
        self.events.append("flush")

    def close(self, timeout=None):
        self.closed = True


@pytest.fixture
def fakes():
    events = []
    return {
        "events": events,
        "consumer": FakeManifestConsumer(events),
        "watchlists": FakeWatchlistConsumer(),
        "rules": FakeWatchlistConsumer(TOPICS.rules),
        "producer": FakeProducer(events),
    }


def _worker(fakes, settings=SETTINGS):
    return ProfilerWorker(
        settings,
        load_directory(),
        clock=lambda: NOW,
        manifest_consumer=fakes["consumer"],
        watchlist_consumer=fakes["watchlists"],
        rules_consumer=fakes["rules"],
        policy_consumer=FakeWatchlistConsumer(TOPICS.board_policies),
        overrides_consumer=FakeWatchlistConsumer(TOPICS.overrides),
        producer=fakes["producer"],
    )


def _manifest(manifest_id="m-aaaa", function=manifest_pb2.MESSAGE_FUNCTION_ORIGINAL):
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id=manifest_id, function=function)
    manifest.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, 7, tzinfo=UTC)
    )
    manifest.travellers.add(surname="Tupou", given_names="Sione", date_of_birth=manifest_pb2.PartialDate(year=1975))
    manifest.travellers.add(
        surname="Müller",
        given_names="Jean-Pierre",
        passenger_ref="PAX-7",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
    )
    return manifest


def _watchlist(owner="FJI", entry_id="WL-0007"):
    entry = delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname="MULLER",
        given_names="JEAN PIERRE",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
        category="people_smuggling",
    )
    return delivery_pb2.Watchlist(owner=owner, entries=[entry]).SerializeToString()


def _batch(*values, partition=0, first_offset=10):
    tp = TopicPartition(TOPICS.manifests, partition)
    return {tp: [Record(tp.topic, partition, first_offset + i, b"k", v) for i, v in enumerate(values)]}


def _metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_watchlist_loaded_after_start_is_applied_before_the_batch_is_scored(fakes):
    worker = _worker(fakes)
    assert fakes["consumer"].subscribed == [TOPICS.manifests]
    fakes["watchlists"].append(b"FJI", _watchlist())  # acknowledged before the manifest batch is polled
    manifest = _manifest()
    fakes["consumer"].batches.append(_batch(manifest.SerializeToString()))

    assert worker.process_once() == 1
    hits = [sent for sent in fakes["producer"].sent if hit_pb2.Hit.FromString(sent[2]).hit_id]
    [(topic, key, value)] = hits
    assert topic == TOPICS.hits
    assert key == codec.flight_key(manifest).encode()
    hit = hit_pb2.Hit.FromString(value)
    assert [r.id for r in hit.reasons] == ["WL-0007"]
    assert hit.traveller.passenger_ref == "PAX-7"
    assert hit.raised_at.ToDatetime(tzinfo=UTC) == NOW


def test_hits_are_flushed_before_offsets_are_committed(fakes):
    fakes["watchlists"].append(b"FJI", _watchlist())
    worker = _worker(fakes)
    fakes["consumer"].batches.append(_batch(_manifest("m-1").SerializeToString(), _manifest("m-2").SerializeToString()))
    assert worker.process_once() == 2
    sends = len(fakes["producer"].sent)
    assert sends >= 2
    assert fakes["events"] == ["poll", *["send"] * sends, "flush", "commit"]
    # The offset after the batch's last record, not the last record itself.
    committed = {tp: at.offset for tp, at in fakes["consumer"].committed.items()}
    assert committed == {TopicPartition(TOPICS.manifests, 0): 12}


def test_unacknowledged_hits_rewind_the_batch_and_commit_nothing(fakes):
    fakes["watchlists"].append(b"FJI", _watchlist())
    fakes["producer"].fail = True
    worker = _worker(fakes)
    batch = _batch(_manifest().SerializeToString(), first_offset=42)
    fakes["consumer"].batches.append(batch)
    with pytest.raises(KafkaTimeoutError):
        worker.process_once()
    assert "commit" not in fakes["events"]
    assert fakes["consumer"].seeks == [(TopicPartition(TOPICS.manifests, 0), 42)]


def test_undecodable_manifests_are_skipped_and_a_cancellation_becomes_a_clearance(fakes):
    fakes["watchlists"].append(b"FJI", _watchlist())
    worker = _worker(fakes)
    bad_before = _metric("apihub_profiler_bad_records_total", stream="manifests", stage="decode")
    scored_before = _metric("apihub_profiler_manifests_consumed_total", outcome="scored")
    cancel = _manifest("m-cancel", function=manifest_pb2.MESSAGE_FUNCTION_CANCEL)
    good = _manifest("m-good")
    fakes["consumer"].batches.append(
        _batch(b"\x0a\xff\x01", None, cancel.SerializeToString(), good.SerializeToString())
    )
    assert worker.process_once() == 1
    sent = [hit_pb2.Hit.FromString(value) for _, _, value in fakes["producer"].sent]
    clearance, hit = sent[0], sent[1]
    # The cancelled version withdraws every traveller it names; it is screened for nothing.
    assert clearance.manifest_id == "m-cancel" and clearance.state == hit_pb2.HIT_STATE_WITHDRAWN
    assert not clearance.hit_id and hit.hit_id in clearance.withdrawn_hit_ids
    assert hit.manifest_id == "m-good" and hit.state == hit_pb2.HIT_STATE_ACTIVE
    assert fakes["events"][-1] == "commit"
    assert _metric("apihub_profiler_bad_records_total", stream="manifests", stage="decode") == bad_before + 2
    assert _metric("apihub_profiler_manifests_consumed_total", outcome="scored") == scored_before + 2


def test_a_manifest_that_breaks_scoring_is_skipped_and_the_rest_scored(fakes, monkeypatch):
    from services.profiler import worker as worker_module

    real = worker_module.score_batch

    def fragile(manifests, *args, **kwargs):
        if any(m.manifest_id == "m-poison" for m in manifests):
            raise RuntimeError("bug")
        return real(manifests, *args, **kwargs)

    monkeypatch.setattr(worker_module, "score_batch", fragile)
    fakes["watchlists"].append(b"FJI", _watchlist())
    worker = _worker(fakes)
    before = _metric("apihub_profiler_bad_records_total", stream="manifests", stage="score")
    fakes["consumer"].batches.append(
        _batch(_manifest("m-1").SerializeToString(), _manifest("m-poison").SerializeToString())
    )
    assert worker.process_once() == 1
    assert hit_pb2.Hit.FromString(fakes["producer"].sent[0][2]).manifest_id == "m-1"
    assert fakes["events"][-1] == "commit"
    assert _metric("apihub_profiler_bad_records_total", stream="manifests", stage="score") == before + 1


def test_bad_watchlist_records_are_skipped_and_later_ones_applied(fakes):
    fakes["watchlists"].append(b"FJI", b"\x0a\xff\x01")
    fakes["watchlists"].append(b"TON", _watchlist(owner="TON", entry_id="TON-1"))
    fakes["watchlists"].append(b"FJI", _watchlist(owner="FJI", entry_id="FJI-1"))
    fakes["watchlists"].append(b"FJI", None)  # tombstone: FJI withdrew its list
    worker = _worker(fakes)
    assert worker.catch_up_watchlists()
    assert worker.store.owners == ["TON"]
    assert _metric("apihub_profiler_watchlist_entries", owner="TON") == 1
    assert _metric("apihub_profiler_watchlist_entries", owner="FJI") == 0


def test_empty_poll_does_nothing(fakes):
    worker = _worker(fakes)
    assert worker.process_once() == 0
    assert fakes["events"] == ["poll"]


def test_run_returns_after_stop_from_another_thread_and_close_is_idempotent(fakes):
    worker = _worker(fakes)
    runner = threading.Thread(target=worker.run)
    runner.start()
    worker.stop()
    worker.stop()
    runner.join(timeout=5)
    assert not runner.is_alive()
    worker.close()
    worker.close()
    assert fakes["consumer"].closed_with is False
    assert fakes["watchlists"].closed_with is False
    assert fakes["producer"].closed


def test_missing_watchlists_topic_is_a_configuration_error(fakes):
    fakes["watchlists"].partitions_for_topic = lambda topic: set()
    with pytest.raises(ConfigError, match="does not exist"):
        _worker(fakes)
    assert fakes["producer"].closed


def test_watchlists_are_screened_at_the_lowest_review_band_of_all_members(fakes):
    # Samoa reviews lower than anyone, though it has no jurisdiction over NAN-TBU: a regional entry's hit can
    # still reach it as the entry's owner under the sharing policy, and the router tailors each member's copy.
    settings = SETTINGS.model_copy(update={"screening_bands": {"WSM": {"review": 0.5}}})
    worker = _worker(fakes, settings)
    asked = []
    matches = worker.store.matches

    def spy(frame, jurisdiction, threshold):
        asked.append(threshold)
        return matches(frame, jurisdiction, threshold=threshold)

    worker.store.matches = spy
    fakes["watchlists"].append(b"FJI", _watchlist())
    fakes["consumer"].batches.append(_batch(_manifest().SerializeToString()))
    assert worker.process_once() == 1
    assert asked == [0.5] == [settings.lowest_screening_review]
