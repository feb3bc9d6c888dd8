"""Router worker: hits topic -> one addressed copy per recipient in that member's outbox.

At-least-once in, once per member in effect. The hub's stream loop (services.stream) polls a batch of hits,
produces what ``handle()`` returns, flushes, checks every send and only then commits the batch's offsets, or
rewinds the batch. This worker's part: before a batch, the delivery ledger catches up with the deliveries topic;
the batch's copies (new hits, updates of changed hits, withdrawals to the members that got a hit) and their audit
events are produced and flushed first, then the ledger records they change (services.stream's phases); the ledger
adopts its records once they are acknowledged. A crash or a failed send replays the batch; the ledger then holds what
was already delivered, and a Subscribe stream skips duplicates it has already sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from kafka.structs import TopicPartition
from prometheus_client import Counter, Histogram

from services.bus import TableReader, Topics, make_consumer, make_producer
from services.config import HubSettings
from services.directory import Directory
from services.instances import InstanceName, claim_instance
from services.router.delivery import audit_event
from services.router.ledger import CLOSED_FLIGHT_HITS, DeliveryLedger, Plan
from services.router.recipients import member_tailor, recipients
from services.sharing import load_policy
from services.stream import Handler, Interrupted, Output, StreamLoop
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
ROUTE_FAILURES = Counter(
    "apihub_router_batch_failures",
    "Batches rewound for a retry (unacknowledged sends, failed commits, broker errors); replayed.",
)
ROUTING_LATENCY = Histogram(
    "apihub_router_routing_latency_seconds",
    "From the manifest's receipt at intake to the hit's copies acknowledged in the outboxes.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


def router_group(settings: HubSettings) -> str:
    return f"{settings.topic_prefix}.router"


def _latency_seconds(hit: hit_pb2.Hit, now: float) -> float | None:
    received = hit.manifest_received_at
    if not (received.seconds or received.nanos):
        return None
    return max(0.0, now - (received.seconds + received.nanos / 1e9))


class RouterWorker(Handler):
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
        # A static member of the router group: a restarted router takes its partitions back at once.
        self._instance = InstanceName(None) if consumer else claim_instance(settings, router_group(settings), "router")
        static = {"group_instance_id": self._instance.name} if self._instance.name else {}
        self._loop = StreamLoop(
            "router",
            consumer or make_consumer(settings, router_group(settings), "apihub-router", **static),
            producer or make_producer(settings, "apihub-router"),
            self,
            topics=[self._topics.hits],
            # Fetched before the first hit: a cold first delivery otherwise waits a metadata round trip per
            # outbox (hundreds of milliseconds).
            output_topics=[self._topics.deliveries, self._topics.audit, *map(self._topics.outbox, directory.codes)],
            failures=ROUTE_FAILURES,
        )
        self._policy = load_policy(settings.sharing_file, directory)
        # Each member's copy: the model's reason at its own review threshold, watchlist matches at its own
        # screening bands (a member's copy left with no reason is not sent; the ledger withdraws an earlier one).
        self._tailor = member_tailor(settings)
        # Bounded by flight age (APIHUB_FLIGHT_STATE_DAYS): hits of a flight long gone are ignored (Plan.closed).
        self.ledger = DeliveryLedger.for_settings(settings)
        self._ledger_reader = ledger_reader or TableReader(
            settings, self._topics.deliveries, self.ledger.apply_record, "apihub-router-ledger"
        )
        self._pending: tuple[Plan, list[hit_pb2.Hit]] | None = None  # the batch in hand: handle() -> acknowledged()
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Route batches until stop(); returns early, logged, when the loop gave up (another process took this one's
        group instance id): the server's watch then stops the process."""
        log.info(
            "router worker consuming %s as group %s (%s)",
            self._topics.hits,
            router_group(self._settings),
            self._instance.name or "a dynamic member",
        )
        self._loop.run()

    @property
    def ready(self) -> threading.Event:
        """Set once the worker has warmed up (ledger read, outboxes' metadata), just before it first polls."""
        return self._loop.ready

    def stop(self) -> None:
        self._loop.stop()

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.close(timeout)
        finally:
            self._ledger_reader.close()
            self._instance.release()

    @property
    def retry_backoff_s(self) -> float:
        """Pause after a failed batch (services.stream.LoopSettings.retry_backoff_s); tests set 0."""
        return self._loop.retry_backoff_s

    @retry_backoff_s.setter
    def retry_backoff_s(self, seconds: float) -> None:
        self._loop.retry_backoff_s = seconds

    def route_batch(self, batch: dict[TopicPartition, list]) -> bool:
        """Route one polled batch; True when its offsets were committed, False when it will be replayed."""
        try:
            return self._loop.process(batch)
        except Exception as exc:
            self._loop.record_failure(exc)
            return False

    # -- the stream loop's handler -------------------------------------------------------------------------

    def warm_up(self, stopping: threading.Event) -> None:
        # The ledger now, not on the first hit.
        self._ledger_reader.catch_up(stopping=stopping)

    def handle(self, records: list) -> list[Output]:
        # Whatever another router instance recorded before this batch was polled is applied first.
        if not self._ledger_reader.catch_up(stopping=self._loop.stopping):
            raise Interrupted("stopping while catching up the delivery ledger")
        hits = self._decode(records)
        plan = self.ledger.plan(hits, self._members_of, self._tailor)
        self._pending = (plan, hits)
        outputs = [
            Output(self._topics.outbox(copy.recipient), copy.SerializeToString(), key=copy.hit_id.encode())
            for copy in plan.copies
        ]
        for copy in plan.copies:  # the trail of every delivery, in the same flush as the delivery itself
            state = "withdrawn" if copy.state == hit_pb2.HIT_STATE_WITHDRAWN else "active"
            event = audit_event("enqueued", copy.recipient, hit_id=copy.hit_id, detail=state)
            outputs.append(Output(self._topics.audit, event.SerializeToString(), key=copy.recipient.encode()))
        # The ledger's records go only once the copies they record are on the broker (phase 1): a crash between the
        # two leaves copies the ledger does not know, sent again under the same (hit id, version), which members
        # de-duplicate, never a record of a copy that is not in the outbox, which would be lost.
        for hit_id, entry in plan.records.items():
            outputs.append(Output(self._topics.deliveries, entry.SerializeToString(), key=hit_id.encode(), phase=1))
        return outputs

    def acknowledged(self, records: list, outputs: Sequence[Output]) -> None:
        plan, hits = self._pending
        self._pending = None
        self.ledger.commit(plan.records)
        if plan.closed:
            CLOSED_FLIGHT_HITS.inc(len(plan.closed))
            log.info(
                "%d hits or clearances of flights closed more than %d days ago ignored (e.g. flight %s)",
                len(plan.closed),
                self._settings.flight_state_days,
                plan.closed[0],
            )
        now = time.time()
        for copy in plan.copies:
            withdrawn = copy.state == hit_pb2.HIT_STATE_WITHDRAWN
            DELIVERIES_ENQUEUED.labels(member=copy.recipient, kind="withdrawal" if withdrawn else "hit").inc()
            latency = None if withdrawn else _latency_seconds(copy, now)
            if latency is not None:
                ROUTING_LATENCY.observe(latency)
        log.debug("routed %d hits as %d deliveries", len(hits), len(plan.copies))

    def _decode(self, records: list) -> list[hit_pb2.Hit]:
        hits: list[hit_pb2.Hit] = []
        for record in records:
            HITS_CONSUMED.inc()
            try:
                hits.append(hit_pb2.Hit.FromString(record.value or b""))
            except DecodeError:
                BAD_RECORDS.inc()
                log.warning("undecodable hit record %s[%d]@%d skipped", record.topic, record.partition, record.offset)
        return hits

    def _members_of(self, hit: hit_pb2.Hit) -> set[str]:
        members = recipients(hit, self._directory, self._policy)
        if not members:
            UNROUTABLE.inc()
            log.info("hit %s (manifest %s) has no recipient; skipped", hit.hit_id, hit.manifest_id)
        return members
