"""The stream loop's steps against in-memory fakes (its guarantee on a real broker: integration/test_stream_loop.py)."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest
from kafka.errors import CommitFailedError, KafkaTimeoutError
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY

from services.stream import Handler, Interrupted, LoopSettings, Output, StreamLoop

Record = namedtuple("Record", "topic partition offset key value")
IN = "unit.in.v1"
QUICK = LoopSettings(poll_ms=1, retry_backoff_s=0)


class FakeConsumer:
    def __init__(self, calls, batches=(), commit_error=None):
        self.calls = calls
        self.batches = list(batches)
        self.commit_error = commit_error
        self.closed_with = None

    def subscribe(self, topics):
        self.calls.append(("subscribe", tuple(topics)))

    def assign(self, partitions):
        self.calls.append(("assign", tuple(partitions)))

    def partitions_for_topic(self, topic):
        return {0, 1}

    def poll(self, timeout_ms=0, max_records=None):
        self.calls.append(("poll", max_records))
        return self.batches.pop(0) if self.batches else {}

    def seek(self, tp, offset):
        self.calls.append(("seek", tp.partition, offset))

    def commit(self, offsets=None, timeout_ms=None):
        self.calls.append(("commit", {tp.partition: o.offset for tp, o in offsets.items()}))
        if self.commit_error is not None:  # once
            error, self.commit_error = self.commit_error, None
            raise error

    def close(self, autocommit=True):
        self.closed_with = autocommit


class FakeFuture:
    def __init__(self, exception=None):
        self.exception = exception

    def succeeded(self):
        return self.exception is None


class FakeProducer:
    def __init__(self, calls, fail_topic=None, flush_error=None):
        self.calls = calls
        self.fail_topic = fail_topic
        self.flush_error = flush_error
        self.closed = 0

    def partitions_for(self, topic):
        return {0}

    def send(self, topic, key=None, value=None, headers=None):
        self.calls.append(("send", topic, key, value, headers))
        return FakeFuture(KafkaTimeoutError("not acknowledged") if topic == self.fail_topic else None)

    def flush(self, timeout=None):
        self.calls.append(("flush",))
        if self.flush_error is not None:
            raise self.flush_error

    def close(self, timeout=None):
        self.closed += 1


class Echo(Handler):
    def __init__(self, calls, raises=None):
        self.calls = calls
        self.raises = raises

    def handle(self, records):
        self.calls.append(("handle", [r.offset for r in records]))
        if self.raises is not None:
            raise self.raises
        return [Output("unit.out.v1", r.value, key=r.key, headers=(("h", b"1"),)) for r in records]

    def acknowledged(self, records, outputs):
        self.calls.append(("acknowledged", len(outputs)))


def batch():
    """Two partitions: offsets 7-8 of partition 0, offset 3 of partition 1."""
    p0, p1 = TopicPartition(IN, 0), TopicPartition(IN, 1)
    return {
        p0: [Record(IN, 0, 7, b"a", b"A"), Record(IN, 0, 8, b"b", b"B")],
        p1: [Record(IN, 1, 3, b"c", b"C")],
    }


def loop_of(calls, handler=None, consumer=None, producer=None, name="unit"):
    return StreamLoop(
        name,
        consumer or FakeConsumer(calls, [batch()]),
        producer or FakeProducer(calls),
        handler or Echo(calls),
        QUICK,
        topics=[IN],
    )


def failures(name):
    return REGISTRY.get_sample_value("apihub_stream_batch_failures_total", {"loop": name}) or 0.0


def kinds(calls):
    return [c[0] for c in calls]


def test_outputs_are_sent_flushed_and_acknowledged_before_the_offsets_after_each_partition_are_committed():
    calls = []
    loop = loop_of(calls)
    assert loop.step() is True
    assert kinds(calls) == ["subscribe", "poll", "handle", "send", "send", "send", "flush", "acknowledged", "commit"]
    assert calls[3] == ("send", "unit.out.v1", b"a", b"A", [("h", b"1")])
    assert calls[-1] == ("commit", {0: 9, 1: 4})


@pytest.mark.parametrize(
    "producer_fault",
    [{"fail_topic": "unit.out.v1"}, {"flush_error": KafkaTimeoutError("flush timed out")}],
    ids=["failed send", "flush timeout"],
)
def test_unacknowledged_outputs_rewind_every_partition_and_commit_nothing(producer_fault):
    calls = []
    loop = loop_of(calls, producer=FakeProducer(calls, **producer_fault))
    with pytest.raises(KafkaTimeoutError):
        loop.step()
    assert "commit" not in kinds(calls) and "acknowledged" not in kinds(calls)
    assert [c for c in calls if c[0] == "seek"] == [("seek", 0, 7), ("seek", 1, 3)]


@pytest.mark.parametrize("error", [CommitFailedError("rebalanced"), KafkaTimeoutError("no coordinator")])
def test_a_failed_commit_rewinds_the_batch_so_it_is_handled_again(error):
    calls = []
    consumer = FakeConsumer(calls, [batch(), batch()], commit_error=error)
    loop = loop_of(calls, consumer=consumer)
    with pytest.raises(type(error)):
        loop.step()
    assert kinds(calls)[-3:] == ["commit", "seek", "seek"]
    assert loop.step() is True
    assert [c[1] for c in calls if c[0] == "handle"] == [[7, 8, 3], [7, 8, 3]]


def test_a_handler_that_raises_rewinds_and_produces_nothing():
    calls = []
    loop = loop_of(calls, handler=Echo(calls, raises=RuntimeError("bug")))
    with pytest.raises(RuntimeError):
        loop.step()
    assert "send" not in kinds(calls) and "commit" not in kinds(calls)
    assert ("seek", 0, 7) in calls


def test_an_interrupted_handler_leaves_the_batch_uncommitted_without_counting_a_failure():
    calls = []
    before = failures("interrupted")
    loop = loop_of(calls, handler=Echo(calls, raises=Interrupted("stopping")), name="interrupted")
    assert loop.step() is False
    assert "commit" not in kinds(calls) and ("seek", 1, 3) in calls
    assert failures("interrupted") == before


def test_a_batch_without_outputs_is_committed_without_a_flush():
    calls = []

    class Silent(Echo):
        def handle(self, records):
            super().handle(records)
            return []

    loop = loop_of(calls, handler=Silent(calls))
    assert loop.step() is True
    assert kinds(calls) == ["subscribe", "poll", "handle", "acknowledged", "commit"]


def test_an_empty_poll_does_nothing():
    calls = []
    loop = loop_of(calls, consumer=FakeConsumer(calls))
    assert loop.step() is True
    assert kinds(calls) == ["subscribe", "poll"]


def test_run_retries_a_failed_batch_counts_it_and_stops_and_close_is_idempotent():
    calls = []
    consumer = FakeConsumer(calls, [batch(), batch()], commit_error=KafkaTimeoutError("once"))
    producer = FakeProducer(calls)
    before = failures("run")
    loop = loop_of(calls, consumer=consumer, producer=producer, name="run")
    thread = threading.Thread(target=loop.run)
    thread.start()
    deadline = threading.Event()
    for _ in range(500):
        if kinds(calls).count("commit") >= 2:
            break
        deadline.wait(0.01)
    loop.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert kinds(calls).count("commit") == 2 and failures("run") == before + 1
    loop.close()
    loop.close()
    assert consumer.closed_with is False and producer.closed == 1
    with pytest.raises(RuntimeError, match="closed"):
        loop.run()


def test_a_loop_reads_either_subscribed_topics_or_assigned_partitions():
    calls = []
    StreamLoop("assigned", FakeConsumer(calls), FakeProducer(calls), Echo(calls), partitions=[TopicPartition(IN, 0)])
    assert calls == [("assign", (TopicPartition(IN, 0),))]
    with pytest.raises(ValueError):
        StreamLoop("neither", FakeConsumer(calls), FakeProducer(calls), Echo(calls))


class Ledgered(Echo):
    """A handler whose outputs record what it did (phase 1) beside what it did (phase 0), as the router's are."""

    def handle(self, records):
        self.calls.append(("handle", [r.offset for r in records]))
        done = [Output("unit.out.v1", r.value, key=r.key) for r in records]
        return [Output("unit.ledger.v1", b"done", key=r.key, phase=1) for r in records] + done


def test_a_later_phase_is_sent_only_once_the_broker_acknowledged_the_earlier_one():
    calls = []
    loop = loop_of(calls, handler=Ledgered(calls))
    assert loop.step() is True
    sent = [(c[0], c[1]) if c[0] == "send" else (c[0],) for c in calls if c[0] in ("send", "flush")]
    assert sent == [("send", "unit.out.v1")] * 3 + [("flush",)] + [("send", "unit.ledger.v1")] * 3 + [("flush",)]


def test_a_failed_earlier_phase_sends_nothing_of_the_later_one():
    calls = []
    loop = loop_of(calls, handler=Ledgered(calls), producer=FakeProducer(calls, fail_topic="unit.out.v1"))
    with pytest.raises(KafkaTimeoutError):
        loop.step()
    assert not [c for c in calls if c[0] == "send" and c[1] == "unit.ledger.v1"]
    assert "commit" not in kinds(calls)
