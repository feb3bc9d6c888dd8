"""Router worker: hits topic -> one addressed copy per recipient in that member's outbox.

At-least-once in, once per member in effect: before a batch, the delivery ledger catches up with the
deliveries topic; the batch's copies (new hits, updates of changed hits, withdrawals to the members that
got a hit) and the ledger records they change are produced and flushed together, every send is checked,
and only then are the batch's input offsets committed. A crash or a failed send replays the batch; the
ledger then holds what was already delivered, and a Subscribe stream skips duplicates it has already sent.
"""

from __future__ import annotations

import logging
import threading
import time

from google.protobuf.message import DecodeError
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Histogram

from services.bus import TableReader, Topics, await_topic_metadata, make_consumer, make_producer
from services.config import HubSettings
from services.directory import Directory
from services.router.delivery import audit_event
from services.router.ledger import DeliveryLedger
from services.router.recipients import member_tailor, recipients
from services.sharing import load_policy
from services.wire import hit_pb2

log = logging.getLogger(__name__)

HITS_CONSUMED = Counter("apihub_router_hits_consumed", "Records read from the hits topic.")
DELIVERIES_ENQUEUED = Counter(
    "apihub_router_deliveries_enqueued",
    "Hit copies (new, updated or withdrawn) acknowledged by the broker in a member's outbox.",
    ["member", "kind"],
)
UNROUTABLE = Counter("apihub_router_unroutable_hits", "Hits no member has jurisdiction over (skipped).")
BAD_RECORDS = Counter("apihub_router_bad_records", "Hit records that could not be decoded (skipped).")
ROUTE_FAILURES = Counter("apihub_router_batch_failures", "Batches whose outbox sends were not acknowledged (replayed).")
ROUTING_LATENCY = Histogram(
    "apihub_router_routing_latency_seconds",
    "From the manifest's receipt at intake to the hit's copies acknowledged in the outboxes.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# How long one poll waits for records: bounds how fast stop() is noticed. Not much shorter: kafka-python
# 3.0.12 can lose a rebalance's assignment when a poll's timer runs out during JoinGroup/SyncGroup.
POLL_MS = 500
# How long a flush may take before the batch counts as failed and is replayed.
FLUSH_TIMEOUT_S = 30.0
# Pause before replaying a failed batch, so a broker outage is not a busy loop.
RETRY_BACKOFF_S = 1.0


def router_group(settings: HubSettings) -> str:
    return f"{settings.topic_prefix}.router"


def _latency_seconds(hit: hit_pb2.Hit, now: float) -> float | None:
    received = hit.manifest_received_at
    if not (received.seconds or received.nanos):
        return None
    return max(0.0, now - (received.seconds + received.nanos / 1e9))


class RouterWorker:
    """Consumes the hits topic in the router group and fills the member outboxes.

    ``run()`` blocks until ``stop()`` (safe from another thread or a signal handler); ``close()`` stops,
    waits for ``run()`` to return, and closes the Kafka clients. ``consumer`` and ``producer`` may be
    injected (tests); by default they are built from the settings.
    """

    def __init__(
        self, settings: HubSettings, directory: Directory, *, consumer=None, producer=None, ledger_reader=None
    ):
        self._settings = settings
        self._directory = directory
        self._topics = Topics(settings.topic_prefix)
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self.retry_backoff_s = RETRY_BACKOFF_S
        self._consumer = consumer or make_consumer(settings, router_group(settings), "apihub-router")
        self._producer = producer or make_producer(settings, "apihub-router")
        self._consumer.subscribe([self._topics.hits])
        self._policy = load_policy(settings.sharing_file, directory)
        # Each member's copy: the model's reason at its own review threshold, watchlist matches at its own
        # screening bands (a member's copy left with no reason is not sent; the ledger withdraws an earlier one).
        self._tailor = member_tailor(settings)
        self.ledger = DeliveryLedger()
        self._ledger_reader = ledger_reader or TableReader(
            settings, self._topics.deliveries, self.ledger.apply_record, "apihub-router-ledger"
        )

    def run(self) -> None:
        if self._closed:
            raise RuntimeError("RouterWorker is closed")
        self._idle.clear()
        log.info("router worker consuming %s as group %s", self._topics.hits, router_group(self._settings))
        try:
            await_topic_metadata(self._consumer, self._topics.hits, self._stopping, self.retry_backoff_s)
            self._warm_up()
            while not self._stopping.is_set():
                try:
                    batch = self._consumer.poll(timeout_ms=POLL_MS)
                    if batch:
                        self.route_batch(batch)
                except KafkaError as exc:
                    # Broker trouble: nothing was committed for the batch in hand, so it is replayed.
                    log.warning("router poll/commit failed (%s); retrying", type(exc).__name__)
                    self._stopping.wait(self.retry_backoff_s)
        finally:
            self._idle.set()
            log.info("router worker stopped")

    def _warm_up(self) -> None:
        """Fetch the output topics' metadata and the ledger now, not on the first hit: a cold first delivery
        otherwise waits a metadata round trip per outbox (hundreds of milliseconds)."""
        outputs = [self._topics.deliveries, self._topics.audit, *map(self._topics.outbox, self._directory.codes)]
        try:
            for topic in outputs:
                self._producer.partitions_for(topic)
            self._ledger_reader.catch_up(stopping=self._stopping)
        except KafkaError as exc:  # not fatal: the first batch fetches what it needs
            log.warning("router warm-up incomplete (%s)", type(exc).__name__)

    def stop(self) -> None:
        self._stopping.set()

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self.stop()
        if not self._idle.wait(timeout):
            log.warning("router worker still running after %.0fs; closing its clients anyway", timeout)
        self._closed = True
        try:
            self._producer.close(timeout=timeout)
        finally:
            self._consumer.close(autocommit=False)
            self._ledger_reader.close()

    def route_batch(self, batch: dict[TopicPartition, list]) -> bool:
        """Route one polled batch; True when its offsets were committed, False when it will be replayed."""
        # Whatever another router instance recorded before this batch was polled is applied first.
        if not self._ledger_reader.catch_up(stopping=self._stopping):
            self._rewind(batch)
            return False
        hits: list[hit_pb2.Hit] = []
        for tp, records in batch.items():
            for record in records:
                HITS_CONSUMED.inc()
                try:
                    hits.append(hit_pb2.Hit.FromString(record.value or b""))
                except DecodeError:
                    BAD_RECORDS.inc()
                    log.warning("undecodable hit record %s[%d]@%d skipped", tp.topic, tp.partition, record.offset)

        def members_of(hit: hit_pb2.Hit) -> set[str]:
            members = recipients(hit, self._directory, self._policy)
            if not members:
                UNROUTABLE.inc()
                log.info("hit %s (manifest %s) has no recipient; skipped", hit.hit_id, hit.manifest_id)
            return members

        plan = self.ledger.plan(hits, members_of, self._tailor)
        sends = []  # (member or "", future)
        for copy in plan.copies:
            future = self._producer.send(
                self._topics.outbox(copy.recipient), key=copy.hit_id.encode(), value=copy.SerializeToString()
            )
            sends.append((copy.recipient, future))
        for copy in plan.copies:  # the trail of every delivery, in the same flush as the delivery itself
            state = "withdrawn" if copy.state == hit_pb2.HIT_STATE_WITHDRAWN else "active"
            event = audit_event("enqueued", copy.recipient, hit_id=copy.hit_id, detail=state)
            sends.append(
                (
                    "",
                    self._producer.send(
                        self._topics.audit, key=copy.recipient.encode(), value=event.SerializeToString()
                    ),
                )
            )
        for hit_id, entry in plan.records.items():
            future = self._producer.send(self._topics.deliveries, key=hit_id.encode(), value=entry.SerializeToString())
            sends.append(("", future))
        routed = [c for c in plan.copies if c.state != hit_pb2.HIT_STATE_WITHDRAWN]

        if not self._all_acknowledged(sends):
            ROUTE_FAILURES.inc()
            self._rewind(batch)
            self._stopping.wait(self.retry_backoff_s)
            return False

        self.ledger.commit(plan.records)
        now = time.time()
        for copy in plan.copies:
            kind = "withdrawal" if copy.state == hit_pb2.HIT_STATE_WITHDRAWN else "hit"
            DELIVERIES_ENQUEUED.labels(member=copy.recipient, kind=kind).inc()
        for hit in routed:
            latency = _latency_seconds(hit, now)
            if latency is not None:
                ROUTING_LATENCY.observe(latency)

        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items() if records}
        try:
            self._consumer.commit(offsets=offsets)
        except CommitFailedError:
            # The group rebalanced under us: the partitions' new owner replays from the last commit, and
            # the outboxes' readers drop the duplicate hit ids.
            log.warning("commit after rebalance rejected; %d partitions will be replayed", len(offsets))
            return False
        log.debug("routed %d hits as %d deliveries", len(hits), len(plan.copies))
        return True

    def _all_acknowledged(self, sends) -> bool:
        if not sends:
            return True
        try:
            self._producer.flush(timeout=FLUSH_TIMEOUT_S)
        except KafkaTimeoutError:
            log.warning("outbox flush timed out after %.0fs; batch will be replayed", FLUSH_TIMEOUT_S)
            return False
        # flush() returns when every send completed, successfully or not: check each one.
        failed = [(member, f) for member, f in sends if not f.succeeded()]
        for member, future in failed[:5]:
            log.warning("outbox send for %s failed: %s", member, type(future.exception).__name__)
        if failed:
            log.warning("%d of %d outbox sends failed; batch will be replayed", len(failed), len(sends))
        return not failed

    def _rewind(self, batch: dict[TopicPartition, list]) -> None:
        for tp, records in batch.items():
            if not records:
                continue
            try:
                self._consumer.seek(tp, records[0].offset)
            except KafkaError:
                # No longer ours after a rebalance: its new owner starts from the last commit anyway.
                log.info("partition %s[%d] was revoked; not rewinding it", tp.topic, tp.partition)
