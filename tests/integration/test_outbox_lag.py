"""Outbox lag per member, read from the real broker: what an offline member has not acknowledged yet."""

from __future__ import annotations

import time

import pytest
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY

from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.directory import load_directory
from services.router.lag import OutboxLagMonitor

pytestmark = pytest.mark.integration


def _refresh(monitor: OutboxLagMonitor) -> dict[str, int]:
    """On a fresh broker the group coordinator (the offsets topic) may not exist yet: the service's loop
    retries next round; the test retries at once, a bounded number of times."""
    for _ in range(30):
        try:
            return monitor.refresh()
        except KafkaError as exc:
            if not exc.retriable:
                raise
            time.sleep(0.5)
    return monitor.refresh()


def test_lag_counts_unacknowledged_hits_per_member_and_follows_acks(settings):
    directory = load_directory()
    ensure_topics(settings, directory.codes)
    topics = Topics(settings.topic_prefix)
    producer = make_producer(settings, "test-lag")
    for i in range(3):
        producer.send(topics.outbox("TON"), key=f"h-{i}".encode(), value=b"x")
    producer.send(topics.outbox("FJI"), key=b"h-9", value=b"x")
    producer.flush()
    producer.close()
    monitor = OutboxLagMonitor(settings, directory)
    try:
        lags = _refresh(monitor)
        assert (lags["TON"], lags["FJI"], lags["WSM"]) == (3, 1, 0)
        assert REGISTRY.get_sample_value("apihub_router_outbox_lag", {"member": "TON"}) == 3

        # Tonga acknowledges its first two hits (what HitDelivery.Ack commits): one left.
        acker = make_consumer(settings, topics.member_group("TON"), "test-lag-ack")
        tp = TopicPartition(topics.outbox("TON"), 0)
        acker.assign([tp])
        acker.commit(offsets={tp: OffsetAndMetadata(2, "", -1)})
        acker.close(autocommit=False)
        assert _refresh(monitor)["TON"] == 1
    finally:
        monitor.close()
