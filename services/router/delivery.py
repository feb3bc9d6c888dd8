"""Member-facing gRPC servicer HitDelivery: Subscribe + Ack on the member's outbox, and Dispose (the members'
configuration, WatchlistAdmin and RulesAdmin, is in services.router.admin).

A member's outbox has one partition; a record's offset there is the member's cursor, and the committed
offset of the member's consumer group is its acknowledged position. Delivery consumers use manual
assignment with the member's group id, so they read the acknowledged position but never join the group,
never rebalance each other, and never commit: only Ack commits.

Each reader of a member (SubscribeRequest.reader: "" its contact point, "cli" for `apihub hits follow`, "console")
has a consumer group of its own (Topics.member_group), so one tool's Ack, which is cumulative, never takes hits
from another. A stream's initial metadata tells the reader how many outbox records were deleted (retention, a
purge) between where it resumes and the oldest record kept: hits it has lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import grpc
from google.protobuf.message import DecodeError
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from services.auth import authorize_member, authorize_member_call
from services.bus import TableReader, Topics, make_consumer, make_producer
from services.codec import READER_NAME, READER_RULE, hit_fingerprint
from services.config import HubSettings
from services.directory import Directory
from services.dispositions import OUTCOME_NAMES
from services.router.ledger import DeliveryLedger
from services.wire import delivery_pb2, delivery_pb2_grpc, hit_pb2

log = logging.getLogger(__name__)

STREAMS_ACTIVE = Gauge("apihub_router_streams_active", "Open HitDelivery.Subscribe streams.")
DELIVERIES_SENT = Counter("apihub_router_deliveries_sent", "Hits written to members' Subscribe streams.", ["member"])
DUPLICATES_SKIPPED = Counter(
    "apihub_router_duplicates_skipped", "Outbox records skipped because the stream already sent that hit."
)
OUTBOX_BAD_RECORDS = Counter("apihub_router_outbox_bad_records", "Outbox records that could not be decoded.")
ACKS = Counter("apihub_router_acks", "Cursor acknowledgements committed.", ["member"])
OUTBOX_LAG = Gauge("apihub_router_outbox_lag", "Hits in a member's outbox it has not acknowledged yet", ["member"])
DELIVERY_LATENCY = Histogram(
    "apihub_router_delivery_latency_seconds",
    "From the manifest's receipt at intake to the hit's delivery on a member's Subscribe stream",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
HITS_LOST = Counter(
    "apihub_router_outbox_hits_lost",
    "Outbox records deleted (retention, purge) before a reader of the member got them, as found when its stream opened",
    ["member"],
)
DISPOSITIONS = Counter("apihub_router_dispositions", "Members' outcomes recorded for hits.", ["member", "outcome"])

# Subscribe streams each hold a server thread for their lifetime: a member may have settings.limit_member_streams
# open at once (APIHUB_LIMIT_MEMBER_STREAMS), counted per member so that one member's streams never lock the others
# out. (The server's own limits, services.limits, bound every call of every principal besides.)
# How many (hit id, version) pairs one stream remembers to skip replayed duplicates: a replay after a router crash
# repeats the batch it had not committed, a few thousand copies at most; members' tools keep their own record of
# what they showed (services.follow_state) for anything older. Held per open stream, so kept small.
SEEN_PER_STREAM = 10_000
# Bound on the Kafka round trips of one Ack or Dispose, so a broker outage answers UNAVAILABLE.
KAFKA_TIMEOUT_S = 10.0
# Longest an RPC waits for a new Kafka client to reach the broker before it fails UNAVAILABLE.
BOOTSTRAP_TIMEOUT_MS = 10_000

# The initial metadata of a Subscribe stream (services.follow reads them): outbox records deleted before the reader
# got them, and the cursor the stream starts at.
LOST_HITS_KEY = "apihub-lost-hits"
START_CURSOR_KEY = "apihub-start-cursor"

ConsumerFactory = Callable[[str, str], KafkaConsumer]  # (group_id, client_id) -> consumer
ProducerFactory = Callable[[], KafkaProducer]


def default_consumer_factory(settings: HubSettings) -> ConsumerFactory:
    def factory(group_id: str, client_id: str) -> KafkaConsumer:
        return make_consumer(
            settings,
            group_id,
            client_id,
            # Without a committed offset a member starts from its outbox's beginning.
            auto_offset_reset="earliest",
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        )

    return factory


def audit_event(
    event: str, member: str, hit_id: str = "", cursor: int = -1, detail: str = "", user: str = ""
) -> delivery_pb2.AuditEvent:
    record = delivery_pb2.AuditEvent(event=event, member=member, hit_id=hit_id, cursor=cursor, detail=detail, user=user)
    record.at.GetCurrentTime()
    return record


def _reader(context: grpc.ServicerContext, name: str) -> str:
    if name and not READER_NAME.fullmatch(name):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"reader must be {READER_RULE}, or empty for the contact point")
    return name


def _broker_unavailable(context: grpc.ServicerContext, exc: Exception) -> None:
    context.abort(grpc.StatusCode.UNAVAILABLE, f"the hub's broker is unavailable ({type(exc).__name__}); retry")


class _RecentKeys:
    """Bounded set: remembers the last ``limit`` keys added."""

    def __init__(self, limit: int):
        self._keys: OrderedDict[tuple, None] = OrderedDict()
        self._limit = limit

    def add(self, key: tuple) -> bool:
        """False when the key was already present."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._limit:
            self._keys.popitem(last=False)
        return True


class HitDeliveryServicer(delivery_pb2_grpc.HitDeliveryServicer):
    def __init__(
        self,
        settings: HubSettings,
        directory: Directory,
        *,
        consumer_factory: ConsumerFactory | None = None,
        producer_factory: ProducerFactory | None = None,
        ledger_factory=None,
        max_streams: int | None = None,
    ):
        self._settings = settings
        self._directory = directory
        self._topics = Topics(settings.topic_prefix)
        self._consumer_factory = consumer_factory or default_consumer_factory(settings)
        # Audit events and dispositions: one producer, made on first use.
        self._producer_factory = producer_factory or (
            lambda: make_producer(settings, "apihub-delivery", bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
        )
        self._producer: KafkaProducer | None = None
        # What was delivered to whom (the router's ledger, read from the deliveries topic) for Dispose.
        self._ledger_factory = ledger_factory or (lambda ledger: self._ledger_reader(ledger.apply_record))
        self._ledger: tuple[DeliveryLedger, TableReader] | None = None
        self._shared_lock = threading.Lock()
        # Open Subscribe streams per member, and the most one member may have.
        self._max_streams = settings.limit_member_streams if max_streams is None else max_streams
        self._streams: dict[str, int] = {}
        self._streams_lock = threading.Lock()
        self._stopping = threading.Event()
        # kafka-python consumers are not thread-safe: one committer per member, used under its lock.
        self._committers: dict[tuple[str, str], tuple[KafkaConsumer, threading.Lock]] = {}
        self._committers_lock = threading.Lock()

    def _ledger_reader(self, apply) -> TableReader:
        """The deliveries topic's reader: its catch-ups give up within KAFKA_TIMEOUT_S (an outage: UNAVAILABLE)."""
        client_id = "apihub-delivery-ledger"
        consumer = make_consumer(
            self._settings,
            None,
            client_id,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000),
        )
        try:
            return TableReader(self._settings, self._topics.deliveries, apply, client_id, consumer=consumer)
        except BaseException:
            consumer.close(autocommit=False)
            raise

    def _partition(self, member: str) -> TopicPartition:
        return TopicPartition(self._topics.outbox(member), 0)

    # -- Subscribe ---------------------------------------------------------------------------------------

    def Subscribe(
        self, request: delivery_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[delivery_pb2.Delivery]:
        member = authorize_member(context, self._settings, self._directory, request.member)
        reader = _reader(context, request.reader)
        cursor = request.cursor if request.HasField("cursor") else None
        if cursor is not None and cursor < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cursor must be >= 0")
        if self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the hub is shutting down; reconnect")
        if not self._open_stream(member):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"member {member} already has {self._max_streams} Subscribe streams open, the most allowed "
                "(APIHUB_LIMIT_MEMBER_STREAMS); close one, or retry later",
            )
        STREAMS_ACTIVE.inc()
        consumer = None
        try:
            try:
                group = self._topics.member_group(member, reader)
                consumer = self._consumer_factory(group, f"apihub-delivery-{member}")
                start, lost = self._position(consumer, member, cursor, context)
            except KafkaError as exc:
                _broker_unavailable(context, exc)
            context.send_initial_metadata(((LOST_HITS_KEY, str(lost)), (START_CURSOR_KEY, str(start))))
            log.info(
                "member %s subscribed (reader %s, cursor %s)",
                member,
                reader or "contact point",
                "acked" if cursor is None else cursor,
            )
            if lost:
                HITS_LOST.labels(member=member).inc(lost)
                log.warning(
                    "member %s (reader %s): %d outbox records were deleted before it got them",
                    member,
                    reader or "contact point",
                    lost,
                )
            yield from self._stream(member, consumer, context)
        finally:
            STREAMS_ACTIVE.dec()
            self._close_stream(member)
            if consumer is not None:
                consumer.close(autocommit=False)

    def _open_stream(self, member: str) -> bool:
        with self._streams_lock:
            open_now = self._streams.get(member, 0)
            if open_now >= self._max_streams:
                return False
            self._streams[member] = open_now + 1
            return True

    def _close_stream(self, member: str) -> None:
        with self._streams_lock:
            left = self._streams.get(member, 0) - 1
            if left > 0:
                self._streams[member] = left
            else:
                self._streams.pop(member, None)

    def _position(
        self, consumer: KafkaConsumer, member: str, cursor: int | None, context: grpc.ServicerContext
    ) -> tuple[int, int]:
        """Place the consumer where the stream starts; return that cursor and how many records between the
        reader's resume point and the outbox's oldest record were deleted (0 for a reader that never acked)."""
        tp = self._partition(member)
        timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
        consumer.assign([tp])
        oldest = consumer.beginning_offsets([tp], timeout_ms=timeout_ms)[tp]
        if cursor is None:
            # Position resolves to the group's committed offset, else the beginning (auto_offset_reset).
            resume = consumer.committed(tp, timeout_ms=timeout_ms)
            if resume is None:
                return oldest, 0
        else:
            end = consumer.end_offsets([tp], timeout_ms=timeout_ms)[tp]
            if cursor > end:
                context.abort(grpc.StatusCode.OUT_OF_RANGE, f"cursor {cursor} is past the outbox's end ({end})")
            # Below the log start (retention) the consumer resets to the beginning: the oldest hit still kept.
            consumer.seek(tp, cursor)
            resume = cursor
        return max(resume, oldest), max(oldest - resume, 0)

    def _stream(
        self, member: str, consumer: KafkaConsumer, context: grpc.ServicerContext
    ) -> Iterator[delivery_pb2.Delivery]:
        heartbeat = self._settings.heartbeat_seconds
        poll_ms = max(10, int(min(heartbeat, 0.5) * 1000))
        seen = _RecentKeys(SEEN_PER_STREAM)
        last_sent = time.monotonic()
        while context.is_active() and not self._stopping.is_set():
            try:
                batch = consumer.poll(timeout_ms=poll_ms)
            except KafkaError as exc:
                _broker_unavailable(context, exc)
            for tp, records in batch.items():
                for record in records:
                    try:
                        hit = hit_pb2.Hit.FromString(record.value or b"")
                    except DecodeError:
                        OUTBOX_BAD_RECORDS.inc()
                        log.warning(
                            "skipping undecodable outbox record %s[%d]@%d",
                            tp.topic,
                            tp.partition,
                            record.offset,
                        )
                        continue
                    # An update or a withdrawal reuses the hit id as another version: news, not a duplicate (copies
                    # routed before versions existed are told apart by their content).
                    if hit.hit_id and not seen.add((hit.hit_id, hit.version or hit_fingerprint(hit))):
                        DUPLICATES_SKIPPED.inc()
                        continue
                    yield delivery_pb2.Delivery(cursor=record.offset, hit=hit)
                    DELIVERIES_SENT.labels(member=member).inc()
                    if hit.manifest_received_at.seconds:
                        received = hit.manifest_received_at.seconds + hit.manifest_received_at.nanos / 1e9
                        DELIVERY_LATENCY.observe(max(time.time() - received, 0.0))
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent >= heartbeat:
                yield delivery_pb2.Delivery(heartbeat=True)
                last_sent = time.monotonic()
        if self._stopping.is_set() and context.is_active():
            # Not a normal end of stream: the member should reconnect (to another instance, or later).
            context.abort(grpc.StatusCode.UNAVAILABLE, "the hub is shutting down; resubscribe")

    # -- Ack -----------------------------------------------------------------------------------------------

    def Ack(self, request: delivery_pb2.AckRequest, context: grpc.ServicerContext) -> delivery_pb2.AckResponse:
        member = authorize_member(context, self._settings, self._directory, request.member)
        reader = _reader(context, request.reader)
        if request.cursor < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cursor must be >= 0")
        tp = self._partition(member)
        timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
        try:
            committer, lock = self._committer(member, reader)
            with lock:
                end = committer.end_offsets([tp], timeout_ms=timeout_ms)[tp]
                if request.cursor >= end:
                    context.abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        f"cursor {request.cursor} was never delivered (outbox ends at {end})",
                    )
                acked = committer.committed(tp, timeout_ms=timeout_ms)
                if acked is not None and acked > request.cursor:
                    # Acknowledgements only move forward; an old cursor (a late retry) changes nothing.
                    return delivery_pb2.AckResponse(next_cursor=acked)
                next_cursor = request.cursor + 1
                # The trail first: an acknowledgement the audit does not hold is not made.
                self.record(context, audit_event("acknowledged", member, cursor=request.cursor, detail=reader))
                committer.commit(offsets={tp: OffsetAndMetadata(next_cursor, "", -1)}, timeout_ms=timeout_ms)
        except KafkaError as exc:
            _broker_unavailable(context, exc)
        ACKS.labels(member=member).inc()
        if not reader:  # the lag of the member's contact point; its tools' cursors are their own business
            OUTBOX_LAG.labels(member=member).set(max(end - next_cursor, 0))
        log.info(
            "member %s (reader %s) acknowledged up to cursor %d", member, reader or "contact point", request.cursor
        )
        return delivery_pb2.AckResponse(next_cursor=next_cursor)

    # -- Dispose -------------------------------------------------------------------------------------------

    def Dispose(
        self, request: delivery_pb2.DisposeRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.DisposeResponse:
        caller = authorize_member_call(context, self._settings, self._directory, request.member, needs_user=True)
        member = caller.member
        if request.outcome not in OUTCOME_NAMES:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"outcome must be one of {', '.join(OUTCOME_NAMES.values())}"
            )
        if not request.hit_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hit_id is required")
        record = self.delivered_to(context, member, request.hit_id)
        disposition = delivery_pb2.Disposition(
            hit_id=request.hit_id,
            member=member,
            outcome=request.outcome,
            note=request.note,
            reason_keys=record.reason_keys,
            user=caller.user,
        )
        disposition.at.GetCurrentTime()
        self.record(
            context,
            audit_event(
                "disposed", member, hit_id=request.hit_id, detail=OUTCOME_NAMES[request.outcome], user=caller.user
            ),
            (self._topics.dispositions, request.hit_id, disposition),
        )
        DISPOSITIONS.labels(member=member, outcome=OUTCOME_NAMES[request.outcome]).inc()
        log.info("member %s disposed hit %s as %s", member, request.hit_id, OUTCOME_NAMES[request.outcome])
        return delivery_pb2.DisposeResponse(disposition=disposition)

    def delivered_to(self, context: grpc.ServicerContext, member: str, hit_id: str) -> hit_pb2.DeliveryRecord:
        """What the router recorded of a hit the member received, or abort: NOT_FOUND for a hit never delivered
        to it (another member's included: no hint that it exists), UNAVAILABLE on a broker outage."""
        try:
            record = self.delivered(hit_id)
        except KafkaError as exc:
            _broker_unavailable(context, exc)
        if record is None or member not in record.fingerprints:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no hit {hit_id} was delivered to {member}")
        return record

    def delivered(self, hit_id: str) -> hit_pb2.DeliveryRecord | None:
        """What the router recorded of this hit's deliveries (members, reasons), as of now; None for a hit it never
        delivered or whose flight closed (APIHUB_FLIGHT_STATE_DAYS). Raises KafkaError on a broker outage."""
        with self._shared_lock:
            if self._ledger is None:
                ledger = DeliveryLedger.for_settings(self._settings, "dispose")
                self._ledger = (ledger, self._ledger_factory(ledger))
            ledger, reader = self._ledger
            reader.catch_up(timeout_s=KAFKA_TIMEOUT_S)
            return ledger.get(hit_id)

    def record(self, context: grpc.ServicerContext, event: delivery_pb2.AuditEvent, *more) -> None:
        """Write an audit event (and any other records) and wait for the broker; UNAVAILABLE otherwise."""
        try:
            with self._shared_lock:
                if self._producer is None:
                    self._producer = self._producer_factory()
                producer = self._producer
            futures = [producer.send(self._topics.audit, key=event.member.encode(), value=event.SerializeToString())]
            futures += [
                producer.send(topic, key=key.encode(), value=msg.SerializeToString()) for topic, key, msg in more
            ]
            for future in futures:
                future.get(timeout=KAFKA_TIMEOUT_S)
        except KafkaError as exc:
            _broker_unavailable(context, exc)

    def _committer(self, member: str, reader: str) -> tuple[KafkaConsumer, threading.Lock]:
        with self._committers_lock:
            if (member, reader) not in self._committers:
                group = self._topics.member_group(member, reader)
                self._committers[member, reader] = (
                    self._consumer_factory(group, f"apihub-ack-{member}"),
                    threading.Lock(),
                )
            return self._committers[member, reader]

    # -- lifecycle -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """End every open stream at its next poll (within half a second); new ones are refused."""
        self._stopping.set()

    def close(self) -> None:
        self.stop()
        with self._shared_lock:
            producer, self._producer = self._producer, None
            ledger, self._ledger = self._ledger, None
        if producer is not None:
            producer.close(timeout=5)
        if ledger is not None:
            ledger[1].close()
        with self._committers_lock:
            committers, self._committers = self._committers, {}
        for consumer, lock in committers.values():
            with lock:
                consumer.close(autocommit=False)
