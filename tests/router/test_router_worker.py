import threading

import pytest
from kafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from services.bus import Topics
from services.router.worker import RouterWorker
from services.wire import hit_pb2


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def worker_parts(unit_settings, directory, fakes):
    calls: list[tuple] = []
    consumer = fakes.Consumer()
    consumer.calls = calls
    producer = fakes.Producer(calls)
    worker = RouterWorker(unit_settings, directory, consumer=consumer, producer=producer, ledger_reader=fakes.Table())
    worker.retry_backoff_s = 0
    return worker, consumer, producer, calls


def test_subscribes_to_the_hits_topic(worker_parts, unit_settings):
    _, consumer, _, _ = worker_parts
    assert ("subscribe", (Topics(unit_settings.topic_prefix).hits,)) in consumer.calls


def test_one_addressed_copy_per_recipient_keyed_by_hit_id(worker_parts, unit_settings, fakes):
    worker, _, producer, _ = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    tp, rec = fakes.record(topics.hits, 7, fakes.make_hit("h-1", ["SYD", "NAN", "TBU"]).SerializeToString())

    assert worker.route_batch({tp: [rec]}) is True

    by_topic = {
        topic: (key, hit_pb2.Hit.FromString(value))
        for topic, key, value in producer.sent
        if topic not in (topics.deliveries, topics.audit)
    }
    assert set(by_topic) == {topics.outbox("AUS"), topics.outbox("FJI"), topics.outbox("TON")}
    [(key, value)] = [(k, v) for t, k, v in producer.sent if t == topics.deliveries]
    record = hit_pb2.DeliveryRecord.FromString(value)
    assert key == b"h-1" and sorted(record.fingerprints) == ["AUS", "FJI", "TON"]
    for member in ("AUS", "FJI", "TON"):
        key, copy = by_topic[topics.outbox(member)]
        assert key == b"h-1"
        assert copy.recipient == member
        assert copy.hit_id == "h-1"


def test_outputs_flushed_before_inputs_committed(worker_parts, unit_settings, fakes):
    worker, _, _, calls = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    tp, first = fakes.record(topics.hits, 3, fakes.make_hit("h-1", ["NAN"]).SerializeToString())
    _, second = fakes.record(topics.hits, 4, fakes.make_hit("h-2", ["APW"]).SerializeToString())

    worker.route_batch({tp: [first, second]})

    kinds = [c[0] for c in calls if c[0] != "subscribe"]
    # Two outbox copies and their two audit events flushed, then the two delivery records that record them
    # (never a record on the broker before its copy), all before the commit.
    assert kinds == ["send"] * 4 + ["flush"] + ["send"] * 2 + ["flush", "commit"]
    sent = [c[1] for c in calls if c[0] == "send"]
    assert all(topic == topics.deliveries for topic in sent[4:]) and topics.deliveries not in sent[:4]
    committed = calls[-1][1]
    assert committed[tp].offset == 5  # next record to read, not the last one read


def test_failed_send_commits_nothing_and_rewinds(unit_settings, directory, fakes):
    topics = Topics(unit_settings.topic_prefix)
    calls: list[tuple] = []
    consumer = fakes.Consumer()
    consumer.calls = calls
    producer = fakes.Producer(calls, fail_topics={topics.outbox("TON"): KafkaTimeoutError()})
    worker = RouterWorker(unit_settings, directory, consumer=consumer, producer=producer, ledger_reader=fakes.Table())
    worker.retry_backoff_s = 0
    tp, rec = fakes.record(topics.hits, 10, fakes.make_hit("h-1", ["NAN", "TBU"]).SerializeToString())
    _, rec2 = fakes.record(topics.hits, 11, fakes.make_hit("h-2", ["NAN"]).SerializeToString())

    assert worker.route_batch({tp: [rec, rec2]}) is False

    assert not [c for c in calls if c[0] == "commit"]
    assert ("seek", tp, 10) in calls


def test_unroutable_hit_is_counted_skipped_and_committed(worker_parts, unit_settings, fakes):
    worker, _, producer, calls = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    before = metric("apihub_router_unroutable_hits_total")
    tp, rec = fakes.record(topics.hits, 0, fakes.make_hit("h-1", ["LHR", "CDG"]).SerializeToString())

    assert worker.route_batch({tp: [rec]}) is True

    assert producer.sent == []
    assert metric("apihub_router_unroutable_hits_total") == before + 1
    assert calls[-1][0] == "commit"


def test_undecodable_record_is_counted_and_skipped_without_logging_content(worker_parts, unit_settings, fakes, caplog):
    worker, _, producer, _ = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    before = metric("apihub_router_bad_records_total")
    tp, bad = fakes.record(topics.hits, 5, b"\xff\xffSMITH 1980-01-01 P1234567", partition=2)
    _, good = fakes.record(topics.hits, 6, fakes.make_hit("h-2", ["NAN"]).SerializeToString(), partition=2)

    assert worker.route_batch({tp: [bad, good]}) is True

    assert metric("apihub_router_bad_records_total") == before + 1
    assert [topic for topic, _, _ in producer.sent] == [topics.outbox("FJI"), topics.audit, topics.deliveries]
    assert f"{topics.hits}[2]@5" in caplog.text
    assert "SMITH" not in caplog.text and "P1234567" not in caplog.text


def test_enqueued_per_member_counted_only_after_ack(worker_parts, unit_settings, fakes):
    worker, _, _, _ = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    before = metric("apihub_router_deliveries_enqueued_total", member="WSM", kind="hit")
    tp, rec = fakes.record(topics.hits, 0, fakes.make_hit("h-1", ["APW"]).SerializeToString())

    worker.route_batch({tp: [rec]})

    assert metric("apihub_router_deliveries_enqueued_total", member="WSM", kind="hit") == before + 1


def test_routing_latency_observed_from_manifest_receipt(worker_parts, unit_settings, fakes):
    worker, _, _, _ = worker_parts
    topics = Topics(unit_settings.topic_prefix)
    hit = fakes.make_hit("h-1", ["APW"])
    hit.manifest_received_at.GetCurrentTime()
    hit.manifest_received_at.seconds -= 3
    before = metric("apihub_router_routing_latency_seconds_count")
    slow_before = metric("apihub_router_routing_latency_seconds_bucket", le="2.5")
    tp, rec = fakes.record(topics.hits, 0, hit.SerializeToString())

    worker.route_batch({tp: [rec]})

    assert metric("apihub_router_routing_latency_seconds_count") == before + 1
    # About three seconds: above the 2.5 s bucket.
    assert metric("apihub_router_routing_latency_seconds_bucket", le="2.5") == slow_before


def test_run_returns_after_stop_from_another_thread_and_close_is_idempotent(worker_parts):
    worker, consumer, producer, calls = worker_parts
    thread = threading.Thread(target=worker.run)
    thread.start()
    worker.stop()
    worker.stop()
    thread.join(timeout=5)

    assert not thread.is_alive()
    worker.close()
    worker.close()
    assert consumer.closed
    assert calls.count(("close",)) == 1
