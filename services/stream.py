"""The hub's one at-least-once loop: poll a batch -> handle it -> produce its outputs -> flush -> check every
send -> commit the batch's offsets. Anything that fails before the commit is acknowledged rewinds the batch
(seek back to its first offsets), so it is handled again; nothing is committed that has no acknowledged
outputs. A crash between produce and commit therefore replays the batch and produces its outputs again:
delivery is at least once, and the deterministic ids of what the workers produce make a replay harmless
downstream.

Workers supply a ``Handler``: ``handle(records) -> outputs``, plus the hooks they need (``warm_up`` before the
first poll, ``acknowledged`` once the outputs are on the broker and before the commit). The loop owns the
Kafka clients' lifecycle: ``run()`` until ``stop()`` (safe from any thread or a signal handler), and an
idempotent ``close()``. The delivery guarantee is tested once, against a real broker, in
tests/integration/test_stream_loop.py (a process killed between produce and commit, a failed commit, a
rebalance).

Written after faust-streaming's consumer (faust/transport/consumer.py), which writes its commit logic once for
every agent. Logs carry topics, partitions, offsets, counts and exception types, never record contents; a run of
failed batches (a broker outage) is logged when it starts, now and then while it lasts, and when it ends
(services.bus.FailureRun), not once per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from kafka.errors import FencedInstanceIdError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Histogram

from services.bus import FailureRun, await_topic_metadata

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """The loop's knobs; each worker builds one (from HubSettings where the hub's settings name them)."""

    # How long one poll waits for records: bounds how fast stop() is noticed. For a group consumer not much
    # shorter than 500 ms: kafka-python 3.0.12 can lose a rebalance's assignment when a poll's timer runs out
    # during JoinGroup/SyncGroup.
    poll_ms: int = 500
    # Most records one poll hands to handle(); None: the consumer's max_poll_records (500 by default).
    # Batches amortise the per-record cost of the clients: keep them large unless each record is its own
    # acknowledgement (a webhook POST).
    max_records: int | None = None
    # How long one flush may wait for the broker to acknowledge the outputs before the batch is rewound.
    flush_timeout_s: float = 30.0
    # How long one commit may wait for the group coordinator (ms) before the batch is rewound.
    commit_timeout_ms: int = 30_000
    # Pause after a failed batch before the next poll, so an unreachable broker is not a busy loop.
    retry_backoff_s: float = 1.0
    # How long close() waits for run() to return, then for the producer to deliver what it still buffers.
    close_timeout_s: float = 30.0


@dataclass(frozen=True)
class Output:
    """One record for the loop to produce. Outputs of a later ``phase`` are sent only once the broker acknowledged
    every output of the earlier ones: a record that says something was done (a ledger entry) never reaches the broker
    without what it says was done (the copies), whatever a crash interrupts."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    phase: int = 0


class Interrupted(Exception):
    """Raised by a handler that stop() interrupted (e.g. while catching up a table): the batch is rewound for
    the next owner, not counted as a failure."""


class OutputsNotAcknowledged(KafkaError):
    """Some outputs of a batch were not acknowledged by the broker; the batch was rewound."""

    retriable = True


class Handler:
    """What a worker gives the loop. Only handle() is required; the hooks do nothing by default."""

    def warm_up(self, stopping: threading.Event) -> None:
        """Once, before the first poll (load tables, fetch metadata). May raise: logged, the loop goes on."""

    def handle(self, records: list) -> Sequence[Output]:
        """The outputs of one batch of records, in the order they are to be produced. Raising rewinds the batch
        and retries it after a pause: skip a record that can never be handled instead of raising for it."""
        raise NotImplementedError

    def acknowledged(self, records: list, outputs: Sequence[Output]) -> None:
        """Every output is on the broker and the offsets are not committed yet: adopt state that may only
        follow durable outputs, count what was produced. Raising rewinds the batch like a failed send."""


# The loop's measurements, one series per loop (label `loop`: profiler, router, webhook-<member>).
BATCH_FAILURES = Counter(
    "apihub_stream_batch_failures",
    "Batches rewound for a retry (unacknowledged outputs, failed commits, broker errors, handler errors)",
    ["loop"],
)
BATCH_DURATION = Histogram(
    "apihub_stream_batch_duration_seconds",
    "From a polled batch to its committed offsets",
    ["loop"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECORDS_COMMITTED = Counter("apihub_stream_records_committed", "Input records whose offsets were committed", ["loop"])


def close_quietly(what: str, close: Callable[[], object]) -> None:
    """Close one client; a failure is logged, so one failing client does not keep the others open."""
    try:
        close()
    except Exception as exc:
        log.warning("closing the %s failed: %s", what, type(exc).__name__)


def next_offsets(polled: Mapping[TopicPartition, list]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit for a polled batch: per partition, the one after its last record."""
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in polled.items() if records}


class StreamLoop:
    """poll -> handle -> produce -> flush -> check -> commit, or rewind; one loop per consumer, run in one thread.

    Input is either ``topics`` (subscribed in the consumer's group: partitions are balanced between the group's
    members) or ``partitions`` (assigned: this loop alone reads them, committing in the consumer's group).
    ``output_topics`` are the topics whose metadata is fetched before the first poll, so the first batch does
    not wait a metadata round trip per topic. ``failures`` and ``batch_seconds`` are the worker's own metrics,
    counted beside the loop's.
    """

    def __init__(
        self,
        name: str,
        consumer,
        producer,
        handler: Handler,
        settings: LoopSettings | None = None,
        *,
        topics: Sequence[str] = (),
        partitions: Sequence[TopicPartition] = (),
        output_topics: Sequence[str] = (),
        failures: Counter | None = None,
        batch_seconds: Histogram | None = None,
    ) -> None:
        if bool(topics) == bool(partitions):
            raise ValueError("a stream loop reads either topics (subscribed) or partitions (assigned)")
        self.name = name
        self.settings = settings or LoopSettings()
        self.stopping = threading.Event()
        self._consumer = consumer
        self._producer = producer
        self._handler = handler
        self._topics = tuple(topics)
        self._output_topics = tuple(output_topics)
        self._failures = [BATCH_FAILURES.labels(loop=name), *([failures] if failures is not None else [])]
        self._durations = [BATCH_DURATION.labels(loop=name), *([batch_seconds] if batch_seconds is not None else [])]
        self._committed = RECORDS_COMMITTED.labels(loop=name)
        # A broker outage fails batch after batch: logged when it starts, now and then, and when it ends.
        self._trouble = FailureRun(log, f"{name}: processing batches")
        # Set once the inputs' metadata is known and warm_up() is done, just before the first poll.
        self.ready = threading.Event()
        # Why run() gave up, when it did (another process took this one's group instance id); else None.
        self.fatal: str | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        if topics:
            consumer.subscribe(list(topics))
        else:
            consumer.assign(list(partitions))

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Process batches until stop(); a failed batch is rewound, counted, logged and retried after a pause."""
        if self._closed:
            raise RuntimeError(f"the {self.name} loop is closed")
        self._idle.clear()
        try:
            if not self._await_inputs():
                return
            self._warm_up()
            log.info("%s loop running", self.name)
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    self.step()
                except FencedInstanceIdError:
                    self._fenced()
                    return
                except Exception as exc:
                    self.record_failure(exc)
        finally:
            self._idle.set()
            log.info("%s loop stopped", self.name)

    def stop(self) -> None:
        """Ask run() to return once the batch in hand is committed or rewound. Idempotent, from any thread."""
        self.stopping.set()

    def close(self, timeout_s: float | None = None) -> None:
        """Stop, wait for run() to return, close the clients without committing anything more. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        timeout_s = self.settings.close_timeout_s if timeout_s is None else timeout_s
        if not self._idle.wait(timeout_s):
            log.warning("%s loop still running after %.0fs; closing its clients anyway", self.name, timeout_s)
        close_quietly(f"{self.name} producer", lambda: self._producer.close(timeout=timeout_s))
        close_quietly(f"{self.name} consumer", lambda: self._consumer.close(autocommit=False))

    @property
    def retry_backoff_s(self) -> float:
        return self.settings.retry_backoff_s

    @retry_backoff_s.setter
    def retry_backoff_s(self, seconds: float) -> None:
        self.settings = replace(self.settings, retry_backoff_s=seconds)

    # -- one batch ---------------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Poll one batch and process it (see process); True also when the poll returned nothing."""
        polled = self._consumer.poll(timeout_ms=self.settings.poll_ms, max_records=self.settings.max_records)
        return self.process(polled) if polled else True

    def process(self, polled: Mapping[TopicPartition, list]) -> bool:
        """Handle, produce, flush, check and commit one polled batch.

        Returns True when its offsets are committed, False when stop() interrupted the handler (the batch is
        rewound). Any failure rewinds the batch and raises: the caller counts it and pauses (record_failure).
        """
        records = [record for batch in polled.values() for record in batch]
        if not records:
            return True
        started = time.perf_counter()
        try:
            outputs = self._handler.handle(records)
            self._produce(outputs)
            self._handler.acknowledged(records, outputs)
        except Interrupted:
            self._rewind(polled)
            log.info("%s: stopping; %d records left uncommitted for the next owner", self.name, len(records))
            return False
        except BaseException:
            self._rewind(polled)
            raise
        offsets = next_offsets(polled)
        try:
            self._consumer.commit(offsets=offsets, timeout_ms=self.settings.commit_timeout_ms)
        except Exception as exc:
            # Not committed (a rebalance took the partitions, or the coordinator did not answer): the outputs are
            # durable and the batch is handled again, here or by the partitions' new owner.
            self._rewind(polled)
            log.debug("%s: commit of %d partitions failed (%s)", self.name, len(offsets), type(exc).__name__)
            raise
        self._trouble.succeeded()
        self._committed.inc(len(records))
        elapsed = time.perf_counter() - started
        for histogram in self._durations:
            histogram.observe(elapsed)
        return True

    def record_failure(self, exc: BaseException) -> None:
        """Count a failed (already rewound) batch, log it if it starts a run of failures (FailureRun), then pause
        before the next poll unless stopping."""
        for counter in self._failures:
            counter.inc()
        self._trouble.failed(f"{type(exc).__name__}; the batch is rewound")
        self.stopping.wait(self.settings.retry_backoff_s)

    def _fenced(self) -> None:
        """Another process joined the group under this one's instance id: the broker gave it this one's partitions,
        and this one may commit nothing more. It stops (run() returns; the worker exits with an error)."""
        self.fatal = (
            f"{self.name}: another process joined the consumer group under this process's instance id and took its "
            "partitions; two processes of one group must never share APIHUB_INSTANCE_ID"
        )
        log.error("%s", self.fatal)

    # -- steps -------------------------------------------------------------------------------------------------

    def _await_inputs(self) -> bool:
        """Subscribed topics' metadata before the first poll (see bus.await_topic_metadata); False if stopped."""
        return all(
            await_topic_metadata(self._consumer, topic, self.stopping, self.settings.retry_backoff_s)
            for topic in self._topics
        )

    def _warm_up(self) -> None:
        try:
            for topic in self._output_topics:
                self._producer.partitions_for(topic)
        except KafkaError as exc:  # not fatal: the first batch fetches what it needs
            log.warning("%s: output metadata not fetched (%s)", self.name, type(exc).__name__)
        try:
            self._handler.warm_up(self.stopping)
        except Exception as exc:
            log.warning("%s: warm-up incomplete, retried with the first batch (%s)", self.name, type(exc).__name__)

    def _produce(self, outputs: Sequence[Output]) -> None:
        """Send the outputs phase by phase: every output of a phase, one flush, then a check of every send (never a
        wait on one future per record), before the next phase is sent."""
        for phase in sorted({out.phase for out in outputs}):
            self._produce_phase([out for out in outputs if out.phase == phase])

    def _produce_phase(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        sends = []
        for out in outputs:
            extra = {"headers": list(out.headers)} if out.headers else {}
            sends.append((out.topic, self._producer.send(out.topic, key=out.key, value=out.value, **extra)))
        # Raises KafkaTimeoutError when the broker did not acknowledge everything in time.
        self._producer.flush(timeout=self.settings.flush_timeout_s)
        # flush() returns when every send completed, successfully or not.
        failed = [(topic, future) for topic, future in sends if not future.succeeded()]
        if not failed:
            return
        # Which topics, once per run of failures: every batch of an outage fails alike.
        say = log.debug if self._trouble.failing else log.warning
        for topic, future in failed[:5]:
            say("%s: send to %s failed: %s", self.name, topic, type(future.exception).__name__)
        say("%s: %d of %d sends failed; the batch will be handled again", self.name, len(failed), len(sends))
        first = failed[0][1].exception
        raise first if isinstance(first, BaseException) else OutputsNotAcknowledged(f"{len(failed)} sends failed")

    def _rewind(self, polled: Mapping[TopicPartition, list]) -> None:
        """Seek back to each polled partition's first record, so the next poll returns the batch again."""
        for tp, batch in polled.items():
            if not batch:
                continue
            try:
                self._consumer.seek(tp, batch[0].offset)
            except Exception as exc:  # revoked meanwhile: its new owner starts from the last commit anyway
                log.info("%s: not rewinding %s[%d] (%s)", self.name, tp.topic, tp.partition, type(exc).__name__)
