"""Consumer lag of the profiler and router groups, read from the real broker by the router's lag monitor (what the
alerts ApihubConsumerLagHigh and ApihubConsumerStalled read)."""

from __future__ import annotations

import time

import pytest
from hubkit import flight, plant
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY

from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.directory import load_directory
from services.router.lag import OutboxLagMonitor, consumer_groups
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def _refresh(monitor: OutboxLagMonitor) -> dict[str, int]:
    """On a fresh broker the group coordinator may not exist yet: retried at once, a bounded number of times."""
    for _ in range(30):
        try:
            monitor.refresh()
            return monitor.consumer_lags
        except KafkaError as exc:
            if not exc.retriable:
                raise
            time.sleep(0.5)
    monitor.refresh()
    return monitor.consumer_lags


def _commit_ends(settings, group: str, topic: str) -> None:
    consumer = make_consumer(settings, group, "test-consumer-lag-commit")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        consumer.commit(offsets={tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
    finally:
        consumer.close(autocommit=False)


def test_consumer_lag_counts_what_each_group_has_not_committed_on_every_partition(settings):
    directory = load_directory()
    ensure_topics(settings, directory.codes)
    topics = Topics(settings.topic_prefix)
    producer = make_producer(settings, "test-consumer-lag")
    for i in range(6):  # keys spread over the manifests topic's partitions
        producer.send(topics.manifests, key=f"flight-{i}".encode(), value=b"x")
    for i in range(2):
        producer.send(topics.hits, key=f"hit-{i}".encode(), value=b"x")
    producer.flush()
    producer.close()
    monitor = OutboxLagMonitor(settings, directory)
    try:
        assert _refresh(monitor) == {"profiler": 6, "router": 2}  # never committed: everything kept
        assert REGISTRY.get_sample_value("apihub_consumer_group_lag", {"group": "profiler"}) == 6
        assert REGISTRY.get_sample_value("apihub_router_lag_refreshed_timestamp_seconds") > 0

        _commit_ends(settings, *consumer_groups(settings)["profiler"])
        assert _refresh(monitor) == {"profiler": 0, "router": 2}
        assert REGISTRY.get_sample_value("apihub_consumer_group_lag", {"group": "profiler"}) == 0
    finally:
        monitor.close()


def test_the_groups_measured_are_those_the_profiler_and_router_commit_in(hub):
    """Were a group id here not the workers' own, its lag would stay at everything the topic holds."""
    entry = demo_watchlists()["FJI"][0]
    hub.load("FJI", [entry])
    m = flight(["NAN", "SUV"], number="431")
    plant(m, entry, "FJ431-P1")
    hub.submit(m)
    assert len(hub.hits("FJI", want=1, idle=20)) == 1  # a manifest screened, a hit routed: both groups committed
    monitor = OutboxLagMonitor(hub.settings, load_directory())
    try:
        lags = _refresh(monitor)
        for _ in range(20):  # the last commits may trail the delivery by a moment
            if lags == {"profiler": 0, "router": 0}:
                break
            time.sleep(0.5)
            lags = _refresh(monitor)
        assert lags == {"profiler": 0, "router": 0}
    finally:
        monitor.close()
