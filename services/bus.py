"""Kafka: topic names, topic creation, and producer/consumer factories with the hub's settings.

Kafka is the only shared state between the services: manifests, hits, per-member outboxes, and the
compacted watchlist topic that every profiler process converges on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from services.config import HubSettings
from services.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def raw(self) -> str:
        """Bytes exactly as received, keyed by manifest id: trace and replay."""
        return f"{self.prefix}.raw.v1"

    @property
    def manifests(self) -> str:
        """Canonical Manifest, keyed by flight key, so a flight's versions stay in order in one partition."""
        return f"{self.prefix}.manifests.v1"

    @property
    def watchlists(self) -> str:
        """Compacted: one Watchlist record per owner member; the latest replaces the previous one."""
        return f"{self.prefix}.watchlists.v1"

    @property
    def rules(self) -> str:
        """Compacted: one member's rule file (YAML) per owner; the latest replaces the previous one."""
        return f"{self.prefix}.rules.v1"

    @property
    def deliveries(self) -> str:
        """Compacted: the router's DeliveryRecord per hit id (who got which version of it)."""
        return f"{self.prefix}.deliveries.v1"

    @property
    def intake_index(self) -> str:
        """Compacted: duplicate-detection keys of accepted manifests -> manifest id."""
        return f"{self.prefix}.intake-index.v1"

    @property
    def dispositions(self) -> str:
        """Members' outcomes for hits, keyed by hit id."""
        return f"{self.prefix}.dispositions.v1"

    @property
    def dead_letters(self) -> str:
        """Hits a member's webhook never accepted after every retry, with the member and the error as headers."""
        return f"{self.prefix}.deadletter.v1"

    @property
    def audit(self) -> str:
        """Append-only trail of deliveries, acknowledgements and dispositions, keyed by member."""
        return f"{self.prefix}.audit.v1"

    @property
    def hits(self) -> str:
        """Unrouted hits from the profiler, keyed by hit id."""
        return f"{self.prefix}.hits.v1"

    def outbox(self, member: str) -> str:
        """One member's durable queue; its single partition's offset is the member's cursor."""
        return f"{self.prefix}.outbox.{member.upper()}.v1"

    def member_group(self, member: str) -> str:
        """Consumer group whose committed offset on the outbox is the member's acknowledged cursor."""
        return f"{self.prefix}.member.{member.upper()}"

    def webhook_group(self, member: str) -> str:
        """Consumer group of the member's webhook dispatcher: its committed offset is what the member answered."""
        return f"{self.prefix}.webhook.{member.upper()}"


def topic_specs(settings: HubSettings, members: list[str]) -> dict[str, dict]:
    """Every topic the hub uses, with explicit partition counts and configs."""
    t = Topics(settings.topic_prefix)
    big = {"max.message.bytes": str(settings.max_message_bytes + 1024 * 1024)}
    # Delivery records and duplicate keys must outlive the outboxes' unacknowledged hits.
    retention_ms = settings.outbox_retention_days * 24 * 3600 * 1000
    # A member offline for a while must still find every unacknowledged hit when it returns.
    outbox = {**big, "retention.ms": str(retention_ms)}
    specs: dict[str, dict] = {
        t.raw: {"num_partitions": settings.partitions, "replication_factor": 1, "configs": big},
        t.manifests: {"num_partitions": settings.partitions, "replication_factor": 1, "configs": big},
        t.hits: {"num_partitions": settings.partitions, "replication_factor": 1, "configs": big},
        t.watchlists: {
            "num_partitions": 1,
            "replication_factor": 1,
            "configs": {**big, "cleanup.policy": "compact"},
        },
        t.rules: {"num_partitions": 1, "replication_factor": 1, "configs": {**big, "cleanup.policy": "compact"}},
        t.deliveries: {
            "num_partitions": settings.partitions,
            "replication_factor": 1,
            "configs": {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)},
        },
        t.dead_letters: {"num_partitions": 1, "replication_factor": 1, "configs": outbox},
        t.dispositions: {"num_partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "-1"}},
        # Oversight needs the whole trail: kept until an operator decides otherwise.
        t.audit: {"num_partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "-1"}},
        t.intake_index: {
            "num_partitions": settings.partitions,
            "replication_factor": 1,
            "configs": {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)},
        },
    }
    for member in members:
        specs[t.outbox(member)] = {"num_partitions": 1, "replication_factor": 1, "configs": outbox}
    return specs


def ensure_topics(settings: HubSettings, members: list[str]) -> list[str]:
    """Create the hub's topics that do not exist yet; return the names created."""
    specs = topic_specs(settings, members)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="apihub-admin")
    try:
        existing = set(admin.list_topics())
        missing = {name: spec for name, spec in specs.items() if name not in existing}
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                # Another process created some of them first: fine, they exist.
                log.info("some topics were created concurrently")
        return sorted(missing)
    finally:
        admin.close()


def make_producer(settings: HubSettings, client_id: str, **overrides) -> KafkaProducer:
    """Idempotent, acks=all producer that batches (linger) and accepts manifest-sized records."""
    options = dict(
        bootstrap_servers=settings.bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=settings.max_message_bytes + 1024 * 1024,
        # A send that cannot reach the broker fails within this time instead of hanging a caller.
        max_block_ms=10_000,
        request_timeout_ms=10_000,
        delivery_timeout_ms=20_000,
        bootstrap_timeout_ms=10_000,
        # Find a restarted broker within seconds, not the client's default of up to 30 s.
        reconnect_backoff_max_ms=2_000,
    )
    options.update(overrides)
    return KafkaProducer(**options)


def make_consumer(settings: HubSettings, group_id: str | None, client_id: str, **overrides) -> KafkaConsumer:
    """Consumer that never auto-commits: offsets are committed only after outputs are acknowledged."""
    options = dict(
        bootstrap_servers=settings.bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The broker answers a fetch as soon as one byte is there (fetch.min.bytes=1), so a long wait costs
        # no latency; it only bounds idle polling. 50 ms here made every idle outbox stream 20 fetches/s and
        # the router half a core at no load (and p99 receipt-to-delivery 193 -> 155 ms at 1,000 travellers/s).
        fetch_max_wait_ms=500,
        max_partition_fetch_bytes=settings.max_message_bytes + 1024 * 1024,
        bootstrap_timeout_ms=10_000,
        reconnect_backoff_max_ms=2_000,
    )
    options.update(overrides)
    return KafkaConsumer(**options)


def await_topic_metadata(
    consumer: KafkaConsumer, topic: str, stopping: threading.Event, backoff_s: float = 1.0
) -> bool:
    """Wait until the consumer knows the topic's partitions; call before the first poll of a group consumer.

    kafka-python 3.0.12 otherwise joins the group before it has the topic's metadata, gets an empty
    assignment, and rebalances again once the metadata arrives; if that second rebalance straddles the end
    of a poll's timer, the consumer stays joined with no partitions and never consumes (seen in the
    end-to-end test about one run in five). Returns False if ``stopping`` was set first.
    """
    while not stopping.is_set():
        try:
            if consumer.partitions_for_topic(topic):
                return True
            log.warning("topic %s has no partitions yet; waiting", topic)
        except KafkaError as exc:
            log.warning("no metadata for %s (%s); retrying", topic, type(exc).__name__)
        stopping.wait(backoff_s)
    return False


class TableReader:
    """Reads a compacted topic from the beginning into memory and catches up to its end on demand.

    Every process that needs a table (watchlists, delivery records, duplicate keys) reads all of it with
    no consumer group, so all instances converge; ``catch_up()`` before acting on an input guarantees that
    whatever was acknowledged on the table before the input was read has been applied.
    """

    def __init__(self, settings: HubSettings, topic: str, apply, client_id: str, consumer=None, poll_ms: int = 100):
        self._topic = topic
        self._apply = apply  # apply(key: bytes | None, value: bytes | None, record) -> None
        self._poll_ms = poll_ms
        self._consumer = consumer or make_consumer(settings, None, client_id)
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic} does not exist: create the hub's topics (apihub topics)")
        self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)

    def catch_up(self, timeout_s: float = 30.0, stopping: threading.Event | None = None) -> bool:
        """Apply records up to the end offsets read now; False if ``stopping`` was set first."""
        end = self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < end[tp] for tp in self._partitions):
            if stopping is not None and stopping.is_set():
                return False
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{self._topic} did not catch up within {timeout_s:.0f}s")
            for batch in self._consumer.poll(timeout_ms=self._poll_ms).values():
                for record in batch:
                    self._apply(record.key, record.value, record)
        return True

    def follow(self, stopping: threading.Event) -> None:
        """Apply new records as they arrive until ``stopping`` is set (run it in its own thread)."""
        while not stopping.is_set():
            try:
                for batch in self._consumer.poll(timeout_ms=200).values():
                    for record in batch:
                        self._apply(record.key, record.value, record)
            except KafkaError as exc:
                log.warning("reading %s failed (%s); retrying", self._topic, type(exc).__name__)
                stopping.wait(1.0)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def read_to_end(settings: HubSettings, topic: str, client_id: str, idle_polls: int = 5):
    """Every record of a topic, from the beginning to its current end (no group, nothing committed): for
    operators' read-back commands. The end is where ``idle_polls`` polls in a row return nothing."""
    consumer = make_consumer(settings, None, client_id)
    consumer.subscribe([topic])
    idle = 0
    try:
        while idle < idle_polls:
            polled = consumer.poll(timeout_ms=200)
            idle = 0 if polled else idle + 1
            for batch in polled.values():
                yield from batch
    finally:
        consumer.close()
