"""Shared fixtures. Integration tests get one real Kafka broker per session and a fresh topic prefix each."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from services.config import HubSettings
from services.devkafka import LocalKafka, free_port


@pytest.fixture(autouse=True)
def _own_follow_state(tmp_path, monkeypatch):
    """`apihub hits follow` keeps what it showed in the user's state folder: each test gets its own, so tests (and
    two runs at once) never share one, and nothing is left in the home folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> str:
    """Bootstrap address of a real Apache Kafka broker: APIHUB_TEST_KAFKA, or one this session starts."""
    external = os.environ.get("APIHUB_TEST_KAFKA")
    if external:
        yield external
        return
    broker = LocalKafka(Path(tmp_path_factory.mktemp("kafka")), free_port(), free_port(), heap="768m")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def settings(kafka) -> HubSettings:
    """Settings of one test: its own topics on the session's broker, ephemeral ports, no metrics ports."""
    return HubSettings(
        kafka_bootstrap=kafka,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        ingest_listen="127.0.0.1:0",
        delivery_listen="127.0.0.1:0",
        ingest_metrics_port=-1,
        profiler_metrics_port=-1,
        router_metrics_port=-1,
        console_listen=f"127.0.0.1:{free_port()}",
        check_listen=f"127.0.0.1:{free_port()}",
        console_metrics_port=-1,
        heartbeat_seconds=0.2,
        profiler_poll_ms=50,
    )
