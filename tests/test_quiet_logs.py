"""An outage in a few lines: kafka-python's records through the KafkaLogGate, the hub's retry loops through FailureRun.

No broker here: records as kafka-python writes them during an outage, on a clock the tests move.
"""

from __future__ import annotations

import logging

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from services import serving
from services.bus import FailureRun
from services.serving import KafkaLogGate
from services.stream import Handler, StreamLoop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gated(caplog):
    """A kafka-python logger behind a gate on a test clock; what passes reaches the root logger (caplog)."""
    clock = Clock()
    logger = logging.getLogger("kafka.test_quiet_logs")
    gate = KafkaLogGate(clock=clock)
    logger.addHandler(gate)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        yield logger, clock, caplog
    finally:
        logger.removeHandler(gate)
        logger.propagate = True


def passed(caplog) -> list[logging.LogRecord]:
    """The records the gate passed on (pytest also captures the gated logger's own records directly)."""
    return [r for r in caplog.records if r.pathname == serving.__file__]


def refused() -> ConnectionError:
    return ConnectionError("111 ECONNREFUSED")


def outage(logger, clock, seconds: int, per_second: int = 10) -> None:
    """What every client logs while the broker is down: failed connections, some with a traceback."""
    for _ in range(seconds):
        for i in range(per_second):
            logger.error("Connection failed: %s", refused())
            logger.warning("No node available for metadata refresh - backoff/retry")
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except ConnectionResetError:
                logger.exception("<KafkaTCPTransport [none]>: Error receiving network data closing socket")
            logger.info("Initializing connection for node_id %s", i)
        clock.now += 1


def test_an_outage_is_one_warning_then_one_line_when_connected_again(gated):
    logger, clock, caplog = gated
    logger.info("<KafkaConnection node_id=1>: Connected")  # before the outage: nothing to say
    outage(logger, clock, seconds=40)
    logger.info("<KafkaConnection node_id=1>: Connected")

    said = [(r.levelname, r.getMessage()) for r in passed(caplog)]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
    assert said[0][1].startswith("Kafka unreachable (ConnectionError: 111 ECONNREFUSED)")
    assert said[1][1] == "Kafka reachable again after 40s (1199 client errors not logged)"
    assert not any(r.exc_info for r in passed(caplog))
    assert not any("Traceback" in r.getMessage() for r in passed(caplog))


def test_a_long_outage_is_reminded_now_and_then_not_per_retry(gated):
    logger, clock, caplog = gated
    outage(logger, clock, seconds=600, per_second=1)
    reminders = [r.getMessage() for r in passed(caplog) if "still unreachable" in r.getMessage()]
    # After a minute, then at three times the time elapsed: 1, 3 and 9 minutes (27 is past the outage).
    assert [m.split(" (")[0] for m in reminders] == [
        "Kafka still unreachable after 60s",
        "Kafka still unreachable after 180s",
        "Kafka still unreachable after 540s",
    ]
    assert len(passed(caplog)) == 4


def test_failures_just_after_a_reconnect_are_no_new_outage(gated):
    logger, clock, caplog = gated
    outage(logger, clock, seconds=5)
    logger.info("<KafkaConnection node_id=1>: Connected")
    clock.now += 1
    logger.error("Connection failed: %s", refused())  # a client whose attempt started before the broker was back
    assert [r.getMessage().split(" (")[0] for r in passed(caplog)] == [
        "Kafka unreachable",
        "Kafka reachable again after 5s",
        "a Kafka connection closed",
    ]
    clock.now += KafkaLogGate.SETTLE_S
    logger.error("Connection failed: %s", refused())  # past the settling time: down again
    assert passed(caplog)[-1].getMessage().startswith("Kafka unreachable")


def test_other_warnings_pass_once_a_minute_each_without_traceback(gated):
    logger, clock, caplog = gated
    for i in range(30):
        try:
            raise ValueError("bad batch")
        except ValueError:
            logger.exception("Failed to produce messages to topic-partition %s", i)
        logger.warning("Heartbeat session expired, marking coordinator dead")
        logger.warning("Task <Task object at 0x7f%x> ran for 0.%ds (>0.100s threshold)", 0xABC0 + i, 100 + i)
        clock.now += 1
    clock.now += 60
    logger.warning("Failed to produce messages to topic-partition %s", 99)
    said = [r.getMessage() for r in passed(caplog)]
    assert said == [
        "Failed to produce messages to topic-partition 0 (ValueError: bad batch)",
        "Heartbeat session expired, marking coordinator dead",
        "Task <Task object at 0x7fabc0> ran for 0.100s (>0.100s threshold)",
        "Failed to produce messages to topic-partition 99 (29 more like it in the last minute)",
    ]
    assert [r.name for r in passed(caplog)][0] == "kafka.test_quiet_logs"
    assert not any(r.exc_info for r in passed(caplog))
    assert not any("Traceback" in r.getMessage() for r in passed(caplog))


def test_info_and_debug_records_do_not_pass(gated):
    logger, _clock, caplog = gated
    logger.info("Bootstrap complete: %s", "cluster")
    logger.debug("Sending request")
    assert passed(caplog) == []


def test_a_run_of_failures_is_logged_when_it_starts_now_and_then_and_when_it_ends(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    run = FailureRun(logging.getLogger("services.test"), "reading t.v1", clock=clock)
    run.succeeded()  # nothing failed: nothing to say
    for _ in range(200):
        run.failed("KafkaTimeoutError")
        clock.now += 1
    assert run.failing
    run.succeeded()
    run.succeeded()
    assert not run.failing
    assert [r.getMessage() for r in caplog.records] == [
        "reading t.v1 failed (KafkaTimeoutError); retrying",
        "reading t.v1 still failing after 60s (61 attempts, last: KafkaTimeoutError)",
        "reading t.v1 still failing after 180s (181 attempts, last: KafkaTimeoutError)",
        "reading t.v1 works again after 200s (200 failed attempts)",
    ]


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset, self.key, self.value, self.topic, self.partition = offset, None, b"x", "t.v1", 0


class _Consumer:
    """A consumer whose broker is away until ``away`` is cleared."""

    def __init__(self) -> None:
        self.away = True
        self.offset = 0

    def subscribe(self, topics) -> None:
        pass

    def poll(self, timeout_ms: int, max_records=None):
        if self.away:
            raise KafkaTimeoutError("Failed to update metadata")
        self.offset += 1
        return {TopicPartition("t.v1", 0): [_Record(self.offset)]}

    def commit(self, offsets, timeout_ms: int) -> None:
        pass

    def seek(self, tp, offset: int) -> None:
        pass


def test_a_stream_loop_logs_a_run_of_failed_batches_once_and_its_end(caplog):
    caplog.set_level(logging.INFO, logger="services.stream")
    consumer = _Consumer()
    loop = StreamLoop("profiler", consumer, producer=None, handler=_Quiet(), topics=["t.v1"])
    loop.retry_backoff_s = 0
    for _ in range(50):  # an outage: every batch fails
        with pytest.raises(KafkaTimeoutError):
            loop.step()
        loop.record_failure(KafkaTimeoutError())
    consumer.away = False
    assert loop.step()
    assert loop.step()
    said = [r.getMessage() for r in caplog.records if r.name == "services.stream"]
    assert said == [
        "profiler: processing batches failed (KafkaTimeoutError; the batch is rewound); retrying",
        "profiler: processing batches works again after 0s (50 failed attempts)",
    ]


class _Quiet(Handler):
    def handle(self, records: list) -> list:
        return []
