"""In-memory fakes for the router's unit tests: a gRPC servicer context and Kafka clients (no broker).

Tests reach them through the ``fakes`` fixture rather than ``import conftest``, so they work under any
pytest import mode and next to other test directories' conftest files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import grpc
import pytest
from kafka.structs import TopicPartition

from services.auth import bearer, issue_token
from services.config import HubSettings
from services.directory import load_directory
from services.wire import hit_pb2


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class FakeContext:
    """The slice of grpc.ServicerContext the servicers use; abort raises like the real one."""

    def __init__(self, metadata=(), active: bool = True):
        self._metadata = tuple(metadata)
        self.active = active
        self.initial_metadata: tuple = ()

    def send_initial_metadata(self, metadata):
        self.initial_metadata = tuple(metadata)

    def invocation_metadata(self):
        return self._metadata

    def abort(self, code, details):
        raise Aborted(code, details)

    def is_active(self) -> bool:
        return self.active


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class FakeConsumer:
    """Serves queued poll results, then empty polls (sleeping like a real poll); records every call."""

    def __init__(self, polls=(), end_offset: int = 0, committed: int | None = None, begin_offset: int = 0):
        self.polls = list(polls)
        self.end_offset = end_offset
        self.begin_offset = begin_offset
        self.committed_offset = committed
        self.calls: list[tuple] = []
        self.closed = False

    def subscribe(self, topics):
        self.calls.append(("subscribe", tuple(topics)))

    def partitions_for_topic(self, topic):
        return {0}

    def assign(self, partitions):
        self.calls.append(("assign", tuple(partitions)))

    def seek(self, tp, offset):
        self.calls.append(("seek", tp, offset))

    def end_offsets(self, partitions, timeout_ms=None):
        return {tp: self.end_offset for tp in partitions}

    def beginning_offsets(self, partitions, timeout_ms=None):
        return {tp: self.begin_offset for tp in partitions}

    def committed(self, tp, timeout_ms=None):
        return self.committed_offset

    def poll(self, timeout_ms=0, max_records=None):
        if self.polls:
            return self.polls.pop(0)
        time.sleep(timeout_ms / 1000)
        return {}

    def commit(self, offsets=None, timeout_ms=None):
        self.calls.append(("commit", offsets))
        for offset in offsets.values():
            self.committed_offset = offset.offset

    def close(self, autocommit=True):
        self.closed = True


class FakeFuture:
    def __init__(self, error: Exception | None = None):
        self.error = error

    def succeeded(self) -> bool:
        return self.error is None

    @property
    def exception(self):
        return self.error

    def get(self, timeout=None):
        if self.error is not None:
            raise self.error
        return object()


class FakeTable:
    """Stands in for a TableReader over an empty compacted topic."""

    def __init__(self):
        self.catch_ups = 0
        self.closed = False

    def catch_up(self, timeout_s=30.0, stopping=None):
        self.catch_ups += 1
        return True

    def close(self):
        self.closed = True


class FakeProducer:
    """Records sends and flushes in one call log, so tests can check their order against commits."""

    def __init__(self, calls: list | None = None, fail_topics: dict[str, Exception] | None = None):
        self.calls = calls if calls is not None else []
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.headers: dict[tuple[str, bytes | None], dict[str, bytes]] = {}
        self.fail_topics = fail_topics or {}

    def partitions_for(self, topic):
        self.calls.append(("metadata", topic))
        return {0}

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value))
        if headers is not None:
            self.headers[(topic, key)] = dict(headers)
        self.calls.append(("send", topic))
        return FakeFuture(self.fail_topics.get(topic))

    def flush(self, timeout=None):
        self.calls.append(("flush",))

    def close(self, timeout=None):
        self.calls.append(("close",))


def make_hit(hit_id: str, route: list[str], state: int = hit_pb2.HIT_STATE_ACTIVE) -> hit_pb2.Hit:
    hit = hit_pb2.Hit(hit_id=hit_id, manifest_id="m-test", state=state)
    hit.flight.route.extend(route)
    if route:
        hit.flight.origin, hit.flight.destination = route[0], route[-1]
    hit.traveller.surname = "SYNTHETIC"
    return hit


def record(topic: str, offset: int, value: bytes, partition: int = 0) -> tuple[TopicPartition, Record]:
    return TopicPartition(topic, partition), Record(topic, partition, offset, None, value)


@pytest.fixture
def unit_settings() -> HubSettings:
    """Settings for unit tests: no broker (an unreachable bootstrap), fast heartbeats."""
    return HubSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix="unit", heartbeat_seconds=0.05)


@pytest.fixture
def directory():
    return load_directory()


@pytest.fixture
def token_for(unit_settings):
    def metadata(kind: str, code: str):
        return bearer(issue_token(unit_settings.auth_secret, kind, code))

    return metadata


@pytest.fixture
def fakes() -> SimpleNamespace:
    return SimpleNamespace(
        Aborted=Aborted,
        Context=FakeContext,
        Consumer=FakeConsumer,
        Producer=FakeProducer,
        Table=FakeTable,
        Future=FakeFuture,
        make_hit=make_hit,
        record=record,
    )
