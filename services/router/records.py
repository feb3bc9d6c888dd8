"""Member-scoped reads, gRPC MemberRecords: a member's watchlist entries, rule file, audit trail, dispositions,
precision and outbox lag; and RecordView and RecordTake, which write to the trail that an officer viewed a hit's
traveller ("viewed") or took the hit in hand ("taken", the console's "I'm on it").

Every call names a member and is checked like HitDelivery (services.auth.authorize_member_call: a member token for
that member, or the hub's console for any member); each answers from that member's records only. The watchlist
entries, the rule files and the dispositions come from their topics, read into memory once and caught up before each
answer (TableReader, as the Dispose ledger does); the audit trail, which holds every member's events for years, is
read backwards a bounded stretch per call; the outbox lag is four broker requests (services.router.lag computes the
same for the metrics). RecordView and RecordTake accept a hit the member received: one in the delivery ledger (as
Dispose checks), or, for a flight the ledger no longer holds, one at the outbox cursor the call gives.

Each call is bounded (page sizes, the stretch of the trail one call reads, Kafka timeouts); a member may have
CALLS_PER_MEMBER of them in progress and the server CALLS_TOTAL (RESOURCE_EXHAUSTED beyond), so one member's reads
never hold the others' up, and a broker outage answers UNAVAILABLE.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
from google.protobuf.message import DecodeError
from kafka import KafkaConsumer
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from prometheus_client import Counter

from services.audit import is_seal
from services.auth import MemberCall, authorize_member_call
from services.bus import TableReader, Topics, make_admin, make_consumer
from services.config import HubSettings
from services.directory import Directory
from services.dispositions import precision_by_reason
from services.errors import ConfigError
from services.router.delivery import HitDeliveryServicer, audit_event
from services.router.lag import lag_of
from services.wire import delivery_pb2, delivery_pb2_grpc, hit_pb2

log = logging.getLogger(__name__)

VIEWS = Counter("apihub_router_hit_views", "Views of a hit's traveller written to the audit trail", ["member"])
TAKES = Counter("apihub_router_hit_takes", "Hits an officer took in hand, written to the audit trail", ["member"])

# At most this many MemberRecords calls of one member at once, and of all members together (beyond: refused).
CALLS_PER_MEMBER = 2
CALLS_TOTAL = 8
# Bound on the Kafka round trips of one call, so a broker outage answers UNAVAILABLE.
KAFKA_TIMEOUT_S = 10.0
BOOTSTRAP_TIMEOUT_MS = 10_000
# ListWatchlist: page size (default, most) and the longest query.
WATCHLIST_PAGE = 50
WATCHLIST_PAGE_MAX = 500
QUERY_MAX = 100
# Owners' watchlists held parsed (with their search text) between calls; the others only as the records' bytes.
PARSED_LISTS = 8
# AuditTrail: page size (default, most), the most records of the trail one call reads (every member's events
# together), read in stretches of AUDIT_STRETCH from the newest, within AUDIT_SCAN_S.
AUDIT_PAGE = 100
AUDIT_PAGE_MAX = 500
AUDIT_SCAN_MAX = 50_000
AUDIT_STRETCH = 2_000
AUDIT_SCAN_S = 5.0
# Kafka fetches of the trail and outbox reads: small, since they read a stretch (or one record) at a time (a record
# larger than this still comes whole).
FETCH_BYTES = 1024 * 1024
# ListDispositions: the most listed (the newest).
DISPOSITIONS_MAX = 10_000
# OutboxLag: the member's readers (SubscribeRequest.reader) reported, besides its webhook when it has one.
READERS = ("", "cli", "console")
WEBHOOK_READER = "webhook"
HIT_ID_MAX = 256
# Pause before asking the broker again after a retriable answer (within the call's time).
RETRY_PAUSE_S = 0.25


class BusyError(Exception):
    """No slot for this call; the message says whose limit (for RESOURCE_EXHAUSTED)."""


class RecordsGate:
    """At most ``per_member`` calls of one member and ``total`` calls together in progress; refuses at once."""

    def __init__(self, per_member: int = CALLS_PER_MEMBER, total: int = CALLS_TOTAL):
        self._per_member, self._total = per_member, total
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, member: str) -> Iterator[None]:
        with self._lock:
            held = self._held.get(member, 0)
            if held >= self._per_member:
                raise BusyError(
                    f"member {member} already has {held} record reads in progress, the most allowed; retry when one "
                    "has finished"
                )
            if sum(self._held.values()) >= self._total:
                raise BusyError("the hub is answering other members' record reads: retry in a moment")
            self._held[member] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held.get(member, 0) - 1
                if left > 0:
                    self._held[member] = left
                else:
                    self._held.pop(member, None)


def _broker_unavailable(context: grpc.ServicerContext, exc: Exception) -> None:
    context.abort(grpc.StatusCode.UNAVAILABLE, f"the hub's broker is unavailable ({type(exc).__name__}); retry")


# -- tables kept in memory -------------------------------------------------------------------------------------


class WatchlistTable:
    """Each owner's latest record of the watchlists topic (compacted, key = owner), as bytes; the lists asked for
    lately held parsed with their search text (PARSED_LISTS of them)."""

    def __init__(self, parsed: int = PARSED_LISTS):
        self._records: dict[str, tuple[int, bytes | None]] = {}
        self._parsed: OrderedDict[str, tuple[int, delivery_pb2.Watchlist | None, list[str]]] = OrderedDict()
        self._max_parsed = parsed

    def apply(self, key: bytes | None, value: bytes | None, record=None) -> None:
        owner = (key or b"").decode(errors="replace").strip().upper()
        if owner:
            self._records[owner] = (record.offset if record is not None else -1, value)

    def listing(self, owner: str) -> tuple[delivery_pb2.Watchlist | None, list[str]]:
        """The owner's current list (None: none loaded, or cleared) and each entry's search text, in its order."""
        offset, value = self._records.get(owner, (-1, None))
        held = self._parsed.get(owner)
        if held is not None and held[0] == offset:
            self._parsed.move_to_end(owner)
            return held[1], held[2]
        watchlist = None
        if value:
            try:
                watchlist = delivery_pb2.Watchlist.FromString(value)
            except DecodeError:
                log.warning("undecodable watchlist record of %s at offset %d skipped", owner, offset)
        texts = [search_text(e) for e in watchlist.entries] if watchlist is not None else []
        self._parsed[owner] = (offset, watchlist, texts)
        self._parsed.move_to_end(owner)
        while len(self._parsed) > self._max_parsed:
            self._parsed.popitem(last=False)
        return watchlist, texts


class RulesTable:
    """Each owner's latest record of the rules topic (compacted, key = owner, value = the YAML file as loaded; a
    tombstone or an empty value: no file), as bytes."""

    def __init__(self) -> None:
        self._records: dict[str, bytes | None] = {}

    def apply(self, key: bytes | None, value: bytes | None, record=None) -> None:
        owner = (key or b"").decode(errors="replace").strip().upper()
        if owner:
            self._records[owner] = value or None

    def current(self, owner: str) -> bytes | None:
        return self._records.get(owner)


def rules_digest(data: bytes) -> str:
    """The content digest of a stored rule file: what parse_ruleset (services.rules.language) computes over the text
    and LoadRules answered when the file was loaded (the record holds the text's UTF-8 bytes)."""
    return hashlib.sha256(data).hexdigest()[:12]


def search_text(entry: delivery_pb2.WatchlistEntry) -> str:
    """What a ListWatchlist query is looked for in: names (either order), entry id, category, document number."""
    names = f"{entry.surname} {entry.given_names}\n{entry.given_names} {entry.surname}"
    return f"{names}\n{entry.entry_id}\n{entry.category}\n{entry.document_number}".casefold()


class DispositionsTable:
    """Every member's latest disposition of each hit it disposed (services.dispositions.latest_per_member, kept up
    as records arrive: a later time wins, the later record read wins a tie, so a purge's note-less copy replaces
    the original)."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, delivery_pb2.Disposition]] = {}

    def apply(self, key: bytes | None, value: bytes | None, record=None) -> None:
        if not value:
            return
        try:
            d = delivery_pb2.Disposition.FromString(value)
        except DecodeError:
            where = f" at offset {record.offset}" if record is not None else ""
            log.warning("undecodable disposition%s skipped", where)
            return
        if not d.member or not d.hit_id:
            return
        mine = self._latest.setdefault(d.member, {})
        known = mine.get(d.hit_id)
        if known is None or (d.at.seconds, d.at.nanos) >= (known.at.seconds, known.at.nanos):
            mine[d.hit_id] = d

    def of(self, member: str) -> list[delivery_pb2.Disposition]:
        """The member's latest dispositions, newest first."""
        found = list(self._latest.get(member, {}).values())
        found.sort(key=lambda d: (d.at.seconds, d.at.nanos, d.hit_id), reverse=True)
        return found


class FollowedTable:
    """A table read from its topic by a TableReader made on first use (the server starts while Kafka comes up),
    caught up before each read; reads and catch-ups under one lock (a kafka-python consumer is not thread-safe)."""

    def __init__(self, make_reader: Callable[[], TableReader], timeout_s: float = KAFKA_TIMEOUT_S):
        self._make_reader = make_reader
        self._timeout_s = timeout_s
        self._reader: TableReader | None = None
        self._lock = threading.Lock()

    @contextmanager
    def current(self) -> Iterator[None]:
        """Hold the table caught up with its topic as of now for the block. Raises KafkaError (an outage) or
        ConfigError (the topic does not exist)."""
        with self._lock:
            if self._reader is None:
                self._reader = self._make_reader()
            self._reader.catch_up(timeout_s=self._timeout_s)
            yield

    def close(self) -> None:
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


# -- the audit trail, read backwards ---------------------------------------------------------------------------


class AuditPage:
    def __init__(self) -> None:
        self.records: list[delivery_pb2.AuditRecord] = []
        self.next_before: int | None = None


class ConsumerPool:
    """Kafka consumers (no group, nothing committed) for reads of one partition at a time, one per call in progress
    (the gate bounds how many), kept for the next call; one that failed is closed, not kept."""

    def __init__(self, factory: Callable[[], KafkaConsumer]):
        self._factory = factory
        self._idle: list[KafkaConsumer] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def borrow(self, tp: TopicPartition) -> Iterator[KafkaConsumer]:
        """A consumer assigned ``tp`` alone, for the block."""
        with self._lock:
            consumer = self._idle.pop() if self._idle else None
        if consumer is None:
            consumer = self._factory()
        healthy = False
        try:
            if consumer.assignment() != {tp}:
                consumer.assign([tp])
            yield consumer
            healthy = True
        finally:
            with self._lock:
                keep = healthy and not self._closed
                if keep:
                    self._idle.append(consumer)
            if not keep:  # after an error its state is unknown: a new one next time
                consumer.close(autocommit=False)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for consumer in idle:
            consumer.close(autocommit=False)


class AuditReader:
    """Pages of one member's events on the audit topic (one partition, every member's events keyed by member, and
    the sealers' seals), newest first: each call reads stretches of AUDIT_STRETCH records backwards from where the
    last page stopped, at most AUDIT_SCAN_MAX records, until the caller's deadline (AuditTrail: AUDIT_SCAN_S)."""

    def __init__(
        self,
        topic: str,
        consumers: ConsumerPool | Callable[[], KafkaConsumer],
        *,
        scan_max: int = AUDIT_SCAN_MAX,
        stretch: int = AUDIT_STRETCH,
    ):
        self._tp = TopicPartition(topic, 0)
        self._pool = consumers if isinstance(consumers, ConsumerPool) else ConsumerPool(consumers)
        self._owns_pool = not isinstance(consumers, ConsumerPool)
        self._scan_max, self._stretch = scan_max, stretch

    def page(self, member: str, before: int | None, limit: int, deadline: float) -> AuditPage:
        """Up to ``limit`` of the member's events before offset ``before`` (None: the newest), newest first. Raises
        KafkaError on an outage, TimeoutError when not even one stretch could be read by ``deadline``."""
        key = member.encode()
        page = AuditPage()
        timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
        with self._pool.borrow(self._tp) as consumer:
            start = consumer.beginning_offsets([self._tp], timeout_ms=timeout_ms)[self._tp]
            end = consumer.end_offsets([self._tp], timeout_ms=timeout_ms)[self._tp]
            high = end if before is None else max(min(before, end), start)
            scanned = 0
            while high > start and len(page.records) < limit and scanned < self._scan_max:
                low = max(start, high - self._stretch, high - (self._scan_max - scanned))
                found = self._stretch_of(consumer, low, high, key, deadline)
                if found is None:  # out of time: answer what the stretches read so far hold
                    if not scanned:
                        raise TimeoutError("the audit trail could not be read in time")
                    break
                page.records.extend(reversed(found))
                scanned += high - low
                high = low
            if len(page.records) > limit:
                del page.records[limit:]
                page.next_before = page.records[-1].offset
            elif high > start:
                page.next_before = high
        return page

    def _stretch_of(
        self, consumer: KafkaConsumer, low: int, high: int, key: bytes, deadline: float
    ) -> list[delivery_pb2.AuditRecord] | None:
        """The member's events in offsets [low, high), oldest first; None when ``deadline`` passed first."""
        consumer.seek(self._tp, low)
        found: list[delivery_pb2.AuditRecord] = []
        while consumer.position(self._tp) < high:
            if time.monotonic() > deadline:
                return None
            for record in consumer.poll(timeout_ms=200).get(self._tp, []):
                if record.offset >= high:
                    break
                if record.key != key or is_seal(record):
                    continue
                try:
                    event = delivery_pb2.AuditEvent.FromString(record.value or b"")
                except DecodeError:
                    continue  # `apihub audit verify` reports such records; a member's page skips them
                if event.member == key.decode():
                    found.append(delivery_pb2.AuditRecord(offset=record.offset, event=event))
        return found

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()


def outbox_holds(pool: ConsumerPool, topic: str, cursor: int, hit_id: str, deadline: float) -> bool:
    """Whether the record at ``cursor`` of a member's outbox (one partition) is a copy of hit ``hit_id``: what a
    member received, for hits the delivery ledger no longer holds. False when the cursor is outside what the outbox
    keeps; raises KafkaError on an outage, TimeoutError when the record could not be read by ``deadline``."""
    tp = TopicPartition(topic, 0)
    timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
    with pool.borrow(tp) as consumer:
        start = consumer.beginning_offsets([tp], timeout_ms=timeout_ms)[tp]
        end = consumer.end_offsets([tp], timeout_ms=timeout_ms)[tp]
        if not start <= cursor < end:
            return False
        consumer.seek(tp, cursor)
        while time.monotonic() <= deadline:
            for record in consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                if record.offset != cursor:
                    return False  # deleted meanwhile (retention, a purge)
                try:
                    return hit_pb2.Hit.FromString(record.value or b"").hit_id == hit_id
                except DecodeError:
                    return False
        raise TimeoutError("the member's outbox could not be read in time")


# -- the servicer ------------------------------------------------------------------------------------------------


@contextmanager
def member_call(
    context: grpc.ServicerContext,
    settings: HubSettings,
    directory: Directory,
    gate: RecordsGate,
    member: str,
    *,
    needs_user: bool = False,
    what: str = "member records",
) -> Iterator[MemberCall]:
    """Authorize a member-scoped call, hold one of the member's slots (``gate``), and answer a broker outage
    UNAVAILABLE: how every member-scoped servicer of the router (records, board administration) enters a call."""
    caller = authorize_member_call(context, settings, directory, member, needs_user=needs_user)
    try:
        with gate.admit(caller.member):
            yield caller
    except BusyError as exc:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    except KafkaError as exc:
        _broker_unavailable(context, exc)
    except ConfigError as exc:  # a topic of the hub's is missing: nothing to read until it is created
        log.warning("%s unavailable: %s", what, exc)
        context.abort(grpc.StatusCode.UNAVAILABLE, "the hub's topics are not ready; retry")


class MemberRecordsServicer(delivery_pb2_grpc.MemberRecordsServicer):
    """The MemberRecords calls. ``delivery`` is the server's HitDelivery servicer: RecordView and RecordTake check
    the hit against its delivery ledger (as Dispose does) and write the trail through it."""

    def __init__(
        self,
        settings: HubSettings,
        directory: Directory,
        delivery: HitDeliveryServicer,
        *,
        gate: RecordsGate | None = None,
        watchlists: FollowedTable | None = None,
        rules: FollowedTable | None = None,
        dispositions: FollowedTable | None = None,
        audit: AuditReader | None = None,
        admin_factory: Callable[[], object] | None = None,
    ):
        self._settings = settings
        self._directory = directory
        self._delivery = delivery
        self._topics = topics = Topics(settings.topic_prefix)
        self._gate = gate or RecordsGate()
        self._watchlist_table = WatchlistTable()
        self._watchlists = watchlists or FollowedTable(
            lambda: _table_reader(settings, topics.watchlists, self._watchlist_table.apply, "apihub-records-watchlists")
        )
        self._rules_table = RulesTable()
        self._rules = rules or FollowedTable(
            lambda: _table_reader(settings, topics.rules, self._rules_table.apply, "apihub-records-rules")
        )
        self._disposition_table = DispositionsTable()
        self._dispositions = dispositions or FollowedTable(
            lambda: _table_reader(
                settings, topics.dispositions, self._disposition_table.apply, "apihub-records-dispositions"
            )
        )
        # Readers of one partition at a time: stretches of the audit trail, one record of an outbox (RecordView and
        # RecordTake).
        self._consumers = ConsumerPool(
            lambda: make_consumer(
                settings,
                None,
                "apihub-records",
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000),
                fetch_max_bytes=FETCH_BYTES,
                max_partition_fetch_bytes=FETCH_BYTES,
            )
        )
        self._audit = audit or AuditReader(topics.audit, self._consumers)
        self._admin_factory = admin_factory or (
            lambda: make_admin(settings, "apihub-records-lag", request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000))
        )
        self._admin = None
        self._admin_lock = threading.Lock()

    def _call(self, context: grpc.ServicerContext, member: str, *, needs_user: bool = False):
        return member_call(context, self._settings, self._directory, self._gate, member, needs_user=needs_user)

    # -- ListWatchlist -----------------------------------------------------------------------------------------

    def ListWatchlist(
        self, request: delivery_pb2.ListWatchlistRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.ListWatchlistResponse:
        with self._call(context, request.member) as caller:
            if len(request.query) > QUERY_MAX:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"query must be at most {QUERY_MAX} characters")
            limit = _page_size(context, request.limit, WATCHLIST_PAGE, WATCHLIST_PAGE_MAX)
            query = request.query.strip().casefold()
            with self._watchlists.current():
                watchlist, texts = self._watchlist_table.listing(caller.member)
                reply = delivery_pb2.ListWatchlistResponse()
                if watchlist is None:
                    return reply
                matching = [i for i, text in enumerate(texts) if query in text] if query else range(len(texts))
                reply.total, reply.list_size = len(matching), len(texts)
                reply.scope = watchlist.scope
                if watchlist.HasField("loaded_at"):
                    reply.loaded_at.CopyFrom(watchlist.loaded_at)
                reply.entries.extend(watchlist.entries[i] for i in matching[request.offset : request.offset + limit])
                return reply

    # -- GetRules ----------------------------------------------------------------------------------------------

    def GetRules(
        self, request: delivery_pb2.GetRulesRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.GetRulesResponse:
        with self._call(context, request.member) as caller:
            with self._rules.current():
                data = self._rules_table.current(caller.member)
            if data is None:
                return delivery_pb2.GetRulesResponse(present=False)
            return delivery_pb2.GetRulesResponse(
                yaml=data.decode("utf-8", errors="replace"), present=True, digest=rules_digest(data)
            )

    # -- AuditTrail --------------------------------------------------------------------------------------------

    def AuditTrail(
        self, request: delivery_pb2.AuditTrailRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.AuditTrailResponse:
        with self._call(context, request.member) as caller:
            limit = _page_size(context, request.limit, AUDIT_PAGE, AUDIT_PAGE_MAX)
            before = request.before_offset if request.HasField("before_offset") else None
            if before is not None and before < 0:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "before_offset must be >= 0")
            try:
                page = self._audit.page(caller.member, before, limit, _deadline(context, AUDIT_SCAN_S))
            except TimeoutError as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry")
            reply = delivery_pb2.AuditTrailResponse(records=page.records)
            if page.next_before is not None:
                reply.next_before_offset = page.next_before
            return reply

    # -- ListDispositions, Precision ----------------------------------------------------------------------------

    def ListDispositions(
        self, request: delivery_pb2.ListDispositionsRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.ListDispositionsResponse:
        with self._call(context, request.member) as caller:
            limit = _page_size(context, request.limit, DISPOSITIONS_MAX, DISPOSITIONS_MAX)
            with self._dispositions.current():
                found = self._disposition_table.of(caller.member)
            return delivery_pb2.ListDispositionsResponse(dispositions=found[:limit], total=len(found))

    def Precision(
        self, request: delivery_pb2.PrecisionRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.PrecisionResponse:
        with self._call(context, request.member) as caller:
            with self._dispositions.current():
                found = self._disposition_table.of(caller.member)
            rows = [row for row in precision_by_reason(found) if reason_owner(row.reason) == caller.member]
            return delivery_pb2.PrecisionResponse(
                reasons=[
                    delivery_pb2.ReasonPrecision(reason=row.reason, confirmed=row.confirmed, refuted=row.refuted)
                    for row in rows
                ]
            )

    # -- OutboxLag ---------------------------------------------------------------------------------------------

    def OutboxLag(
        self, request: delivery_pb2.OutboxLagRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.OutboxLagResponse:
        with self._call(context, request.member) as caller:
            member = caller.member
            tp = TopicPartition(self._topics.outbox(member), 0)
            groups = {reader: self._topics.member_group(member, reader) for reader in READERS}
            if self._directory.members[member].webhook:
                groups[WEBHOOK_READER] = self._topics.webhook_group(member)
            deadline = _deadline(context, KAFKA_TIMEOUT_S)
            with self._admin_lock:
                if self._admin is None:
                    self._admin = self._admin_factory()
                admin = self._admin
                while True:
                    try:
                        end = admin.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset
                        start = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST})[tp].offset
                        committed = admin.list_group_offsets({group: [tp] for group in groups.values()})
                        break
                    except KafkaError as exc:
                        # A retriable answer (the group coordinator moving, or not there yet on a new broker)
                        # is retried within the call's time; anything else, or out of time: UNAVAILABLE.
                        if not exc.retriable or time.monotonic() + RETRY_PAUSE_S > deadline:
                            raise
                        time.sleep(RETRY_PAUSE_S)
            reply = delivery_pb2.OutboxLagResponse(oldest_cursor=start, end_cursor=end)
            for reader, group in groups.items():
                acked = committed.get(group, {}).get(tp)
                offset = acked.offset if acked is not None and acked.offset >= 0 else None
                lag = reply.readers.add(
                    reader=reader, webhook=reader == WEBHOOK_READER, pending=lag_of(end, start, offset)
                )
                if offset is not None:
                    lag.next_cursor = offset
            return reply

    # -- RecordView --------------------------------------------------------------------------------------------

    def RecordView(
        self, request: delivery_pb2.RecordViewRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.RecordViewResponse:
        return delivery_pb2.RecordViewResponse(event=self._hit_event("viewed", VIEWS, request, context))

    # -- RecordTake --------------------------------------------------------------------------------------------

    def RecordTake(
        self, request: delivery_pb2.RecordTakeRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.RecordTakeResponse:
        return delivery_pb2.RecordTakeResponse(event=self._hit_event("taken", TAKES, request, context))

    def _hit_event(self, name: str, counter, request, context: grpc.ServicerContext) -> delivery_pb2.AuditEvent:
        """An officer's act on a hit the member received ("viewed", "taken"), written to the audit trail."""
        with self._call(context, request.member, needs_user=True) as caller:
            if not request.hit_id or len(request.hit_id) > HIT_ID_MAX:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hit_id is required (at most {HIT_ID_MAX} characters)")
            self._check_received(context, caller.member, request)
            event = audit_event(name, caller.member, hit_id=request.hit_id, user=caller.user)
            self._delivery.record(context, event)
            counter.labels(member=caller.member).inc()
            return event

    def _check_received(
        self,
        context: grpc.ServicerContext,
        member: str,
        request: delivery_pb2.RecordViewRequest | delivery_pb2.RecordTakeRequest,
    ) -> None:
        """Abort NOT_FOUND unless the member received the hit: the delivery ledger says so (as for Dispose), or, for
        a flight the ledger no longer holds, the member's outbox holds a copy of it at the cursor given."""
        if not request.HasField("cursor"):
            self._delivery.delivered_to(context, member, request.hit_id)
            return
        try:
            known = self._delivery.delivered(request.hit_id)
        except KafkaError as exc:
            _broker_unavailable(context, exc)
        if known is not None and member in known.fingerprints:
            return
        topic = self._topics.outbox(member)
        try:
            held = outbox_holds(self._consumers, topic, request.cursor, request.hit_id, _deadline(context, 5.0))
        except TimeoutError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry")
        if not held:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no hit {request.hit_id} was delivered to {member}")

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._watchlists.close()
        self._rules.close()
        self._dispositions.close()
        self._audit.close()
        self._consumers.close()
        with self._admin_lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()


def _table_reader(settings: HubSettings, topic: str, apply, client_id: str) -> TableReader:
    """A TableReader whose broker requests (the end offsets of each catch-up) give up within KAFKA_TIMEOUT_S."""
    timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
    consumer = make_consumer(
        settings, None, client_id, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS, request_timeout_ms=timeout_ms
    )
    try:
        return TableReader(settings, topic, apply, client_id, consumer=consumer)
    except BaseException:
        consumer.close(autocommit=False)
        raise


def reason_owner(reason: str) -> str:
    """The owner in a reason key "source:owner:id" ("" when it has none)."""
    parts = reason.split(":", 2)
    return parts[1] if len(parts) == 3 else ""


def _page_size(context: grpc.ServicerContext, asked: int, default: int, most: int) -> int:
    if asked > most:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit must be at most {most}")
    return asked or default


def _deadline(context: grpc.ServicerContext, most_s: float) -> float:
    """Monotonic time by which a call's reading stops: within ``most_s``, and before the client's deadline."""
    remaining = context.time_remaining() if hasattr(context, "time_remaining") else None
    allowed = most_s if remaining is None else max(min(most_s, remaining - 0.5), 0.0)
    return time.monotonic() + allowed
