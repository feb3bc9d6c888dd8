"""The stream loop's delivery guarantee, tested once on the real broker (services.stream): a process killed between
produce and commit, a failed commit, a commit refused after the group moved on, a rebalance. An echo handler copies
every input record to an output topic, so these tests exercise the loop itself. Every wait is for a condition, with
a generous deadline that only turns a hang into a failure: no timing is asserted.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY

from services.bus import make_consumer, make_producer
from services.config import HubSettings
from services.stream import Handler, LoopSettings, Output, StreamLoop

pytestmark = pytest.mark.integration

PARTITIONS = 4
# Small batches: several per partition, so a failure or a rebalance falls between batches of one stream.
LOOP = LoopSettings(max_records=5, retry_backoff_s=0.1, close_timeout_s=10)
# Group consumers of these tests notice a rebalance within a fraction of a second.
FAST_GROUP = {"heartbeat_interval_ms": 250, "session_timeout_ms": 6000}
DEADLINE_S = 60.0


class Echo(Handler):
    """Copies each record to the output topic; remembers every value it handled (a replay shows twice)."""

    def __init__(self, topic: str, before=None):
        self.topic = topic
        self.seen: list[bytes] = []
        self._before = before  # called with each batch before it is handled (a test's gate)

    def handle(self, records: list) -> list[Output]:
        if self._before is not None:
            self._before(records)
        self.seen.extend(r.value for r in records)
        return [Output(self.topic, r.value, key=r.key) for r in records]


@dataclass
class Stream:
    """One test's input and output topics and consumer group on the session's broker."""

    settings: HubSettings
    input: str
    output: str
    group: str
    producer: KafkaProducer
    admin: KafkaAdminClient
    sent: int = 0

    def produce(self, count: int) -> list[bytes]:
        """``count`` more input records, record n on partition n % PARTITIONS at offset n // PARTITIONS."""
        values = [f"r-{n:04d}".encode() for n in range(self.sent, self.sent + count)]
        for n, value in enumerate(values, start=self.sent):
            self.producer.send(self.input, key=value, value=value, partition=n % PARTITIONS)
        self.producer.flush(timeout=30)
        self.sent += count
        return values

    def loop(self, name: str, handler: Handler, **consumer_options) -> StreamLoop:
        consumer = make_consumer(self.settings, self.group, name, **{**FAST_GROUP, **consumer_options})
        producer = make_producer(self.settings, name)
        return StreamLoop(name, consumer, producer, handler, LOOP, topics=[self.input])

    def committed(self) -> dict[int, int]:
        """The group's committed offset per input partition (none yet: absent)."""
        offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        return {tp.partition: at.offset for tp, at in offsets.items() if tp.topic == self.input and at.offset >= 0}

    def all_committed(self) -> bool:
        per_partition = collections.Counter(n % PARTITIONS for n in range(self.sent))
        return self.committed() == {p: per_partition[p] for p in range(PARTITIONS)}

    def outputs(self) -> list[bytes]:
        """Every value on the output topic, from its beginning to its current end."""
        consumer = make_consumer(self.settings, None, "stream-test-output")
        tp = TopicPartition(self.output, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        try:
            while consumer.position(tp) < end:
                assert time.monotonic() < deadline, "the output topic was not read to its end"
                values += [r.value for batch in consumer.poll(timeout_ms=200).values() for r in batch]
        finally:
            consumer.close()
        return values


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {DEADLINE_S:.0f}s")
        time.sleep(0.1)


def failures(loop_name: str) -> float:
    return REGISTRY.get_sample_value("apihub_stream_batch_failures_total", {"loop": loop_name}) or 0.0


@contextmanager
def running(*loops: StreamLoop):
    threads = [threading.Thread(target=loop.run, name=loop.name, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for loop in loops:
            loop.stop()
        for loop, thread in zip(loops, threads, strict=True):
            thread.join(30)
            assert not thread.is_alive(), f"{loop.name} did not stop"
            loop.close()


@pytest.fixture
def stream(settings):
    prefix = settings.topic_prefix
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="stream-test-admin")
    admin.create_topics(
        {
            f"{prefix}.in.v1": {"num_partitions": PARTITIONS, "replication_factor": 1},
            f"{prefix}.out.v1": {"num_partitions": 1, "replication_factor": 1},
        },
        wait_for_metadata=True,
    )
    producer = make_producer(settings, "stream-test-input")
    yield Stream(settings, f"{prefix}.in.v1", f"{prefix}.out.v1", f"{prefix}.echo", producer, admin)
    producer.close()
    admin.close()


# The killed process: the echo loop on the real consumer, except that the loop's first commit kills the process
# (SIGKILL: no finally, no close, no leaving the group) after its outputs were acknowledged. Static membership
# (group_instance_id) lets the restarted consumer take the dead one's place at once instead of after its session.
KILLED_AT_COMMIT = """
import os, signal, sys
from services.bus import make_consumer, make_producer
from services.config import HubSettings
from services.stream import Handler, LoopSettings, Output, StreamLoop

bootstrap, prefix, group, source, sink = sys.argv[1:]
settings = HubSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)


class KilledAtCommit:
    def __init__(self, consumer):
        self._consumer = consumer

    def __getattr__(self, name):
        return getattr(self._consumer, name)

    def commit(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)


class Echo(Handler):
    def handle(self, records):
        return [Output(sink, r.value, key=r.key) for r in records]


consumer = KilledAtCommit(make_consumer(settings, group, "killed", group_instance_id="echo-1"))
producer = make_producer(settings, "killed")
StreamLoop("killed", consumer, producer, Echo(), LoopSettings(max_records=5), topics=[source]).run()
"""


def test_a_process_killed_between_produce_and_commit_is_replayed_after_a_restart(stream):
    inputs = stream.produce(40)
    args = [stream.settings.bootstrap, stream.settings.topic_prefix, stream.group, stream.input, stream.output]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_COMMIT, *args], capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    produced = stream.outputs()
    assert produced, "the killed process produced its batch before the commit"
    assert stream.committed() == {}

    echo = Echo(stream.output)
    with running(stream.loop("restarted", echo, group_instance_id="echo-1")):
        wait_for(stream.all_committed, "every input committed after the restart")

    # At least once: the killed batch was handled again and its outputs produced again; nothing was lost.
    assert sorted(echo.seen) == sorted(inputs)
    outputs = collections.Counter(stream.outputs())
    assert set(outputs) == set(inputs)
    assert all(outputs[value] >= 2 for value in produced)


class CommitFailsOnce:
    """The real consumer, except that its first commit fails as when the coordinator does not answer in time."""

    def __init__(self, consumer):
        self._consumer = consumer
        self.failed: list[dict] = []

    def __getattr__(self, name):
        return getattr(self._consumer, name)

    def commit(self, offsets=None, timeout_ms=None):
        if not self.failed:
            self.failed.append(offsets)
            raise KafkaTimeoutError("commit not answered (injected)")
        return self._consumer.commit(offsets=offsets, timeout_ms=timeout_ms)


def test_a_failed_commit_rewinds_and_the_batch_is_redone(stream):
    inputs = stream.produce(40)
    echo = Echo(stream.output)
    name = f"{stream.group}-commit-fails"
    consumer = CommitFailsOnce(make_consumer(stream.settings, stream.group, name, **FAST_GROUP))
    loop = StreamLoop(name, consumer, make_producer(stream.settings, name), echo, LOOP, topics=[stream.input])
    with running(loop):
        wait_for(stream.all_committed, "every input committed")

    # The batch whose commit failed: per partition, every record below the offset it would have committed.
    [failed] = consumer.failed
    n_of = {value: int(value[2:]) for value in inputs}
    batch = [
        value
        for value in inputs
        if any(
            n_of[value] % PARTITIONS == tp.partition and n_of[value] // PARTITIONS < o.offset
            for tp, o in failed.items()
        )
    ]
    assert batch
    assert failures(name) == 1
    # That batch, and only that batch, was handled twice; its outputs were produced twice; nothing was lost.
    assert collections.Counter(echo.seen) == collections.Counter(inputs) + collections.Counter(batch)
    assert collections.Counter(stream.outputs()) == collections.Counter(inputs) + collections.Counter(batch)


def test_a_commit_refused_after_the_group_moved_on_loses_nothing(stream):
    """A loop stuck in one batch longer than max_poll_interval_ms is put out of the group; a second consumer takes
    its partitions; its commit is then refused by the broker (CommitFailedError), the batch rewound, nothing lost."""
    inputs = stream.produce(40)
    first_batch: list[bytes] = []
    released = threading.Event()

    def stuck_in_first_batch(records):
        if not first_batch:
            first_batch.extend(r.value for r in records)
            released.wait(DEADLINE_S)

    stuck, taker = Echo(stream.output, before=stuck_in_first_batch), Echo(stream.output)
    name = f"{stream.group}-stuck"
    try:
        with running(stream.loop(name, stuck, max_poll_interval_ms=3000)):
            wait_for(lambda: bool(first_batch), "the first batch in hand")
            with running(stream.loop(f"{stream.group}-taker", taker)):
                # The second consumer gets the stuck one's partitions only once the group has put it out.
                wait_for(lambda: set(first_batch) <= set(taker.seen), "the stuck batch taken over")
                released.set()
                wait_for(stream.all_committed, "every input committed")
    finally:
        released.set()

    assert failures(name) >= 1  # the stuck loop's commit was refused
    assert set(stuck.seen) | set(taker.seen) == set(inputs)
    outputs = collections.Counter(stream.outputs())
    assert set(outputs) == set(inputs)
    assert all(outputs[value] >= 2 for value in first_batch)  # produced by both: at least once, nothing lost


def test_a_consumer_joining_mid_stream_takes_partitions_and_no_record_is_lost(stream):
    first, second = Echo(stream.output), Echo(stream.output)
    inputs = stream.produce(40)
    with running(stream.loop(f"{stream.group}-first", first)):
        wait_for(stream.all_committed, "the first inputs committed")
        with running(stream.loop(f"{stream.group}-second", second)):
            # Records keep arriving while the group rebalances, until the second consumer has handled some.
            deadline = time.monotonic() + DEADLINE_S
            while not second.seen:
                assert time.monotonic() < deadline, "the second consumer never got a partition"
                inputs += stream.produce(PARTITIONS)
                time.sleep(0.05)
            inputs += stream.produce(10 * PARTITIONS)
            wait_for(stream.all_committed, "every input committed")

    assert first.seen and second.seen
    assert set(first.seen) | set(second.seen) == set(inputs)
    assert set(stream.outputs()) == set(inputs)
