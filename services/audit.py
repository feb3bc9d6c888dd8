"""The audit trail made tamper-evident: a hash chain over the audit topic, sealed by the router, checked by
`apihub audit verify`.

The chain is defined over the audit topic's one partition in offset order, whoever wrote the records:
h(n) = SHA-256(h(n-1) || SHA-256(record n)), where record n's bytes are its offset, timestamp, key, value and
headers (``record_digest``), and h is 32 zero bytes before the genesis offset (0 on a trail that was never cut).
So the several writers of the trail (each router's worker through the at-least-once stream loop, which may
re-produce a batch after a rewind; the delivery servicer; the profilers' interactive checks) need no coordination:
a re-produced event is one more record, chained like any other.

A sealer thread in each router process (``AuditSealer``) reads the topic every APIHUB_AUDIT_SEAL_SECONDS and when
the router stops, and when records are not yet sealed it appends a seal (proto AuditSeal, header
``apihub-record: audit-seal``): the offset it covers, h there, and an HMAC-SHA256 of both under a key derived from
the hub's signing key. Two sealers are harmless: each seal states what it covers, and a sealer seals only what no
seal covers yet. ``verify_trail`` recomputes the chain from the earliest record still on the topic and checks
every seal. Where retention or a purge deleted the oldest records, it continues from the first seal that covers
the new log start (the records that seal covers are attested by it, not recomputed).

What this shows, and what it cannot:
- Sealed records cannot be altered, removed from the middle, reordered, or the topic rewritten (deleted and
  produced again) without a seal failing, unless the HMAC key is known: a forged seal fails its HMAC.
- Records after the last seal are unprotected until the next seal (at most APIHUB_AUDIT_SEAL_SECONDS while a
  router runs); verify reports them, and fails when they are older than its grace period (no router sealed them).
- Seals prove integrity, not authorship: someone who may write to the topic can append an event, and the next
  seal covers it. Restrict writes to the audit topic to the router and the profiler (its interactive checks write
  "checked" events) with broker ACLs.
- Deleting the oldest records (Kafka delete_records) cannot be told from retention or `apihub purge` by the trail
  alone: verify says where the log starts now; keep the checkpoint it prints (offset and chain hash) outside the
  hub, and `apihub audit verify --since OFFSET:HASH` fails if anything up to it was deleted or differs.
- A seal under a key that has since left the key ring cannot be checked (reported); later seals still cover
  everything before them, because the chain is cumulative.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import TopicPartition
from prometheus_client import Counter, Gauge

from services.auth import KeyRing
from services.bus import Topics, make_consumer, make_producer
from services.config import HubSettings
from services.errors import ConfigError
from services.wire import delivery_pb2

log = logging.getLogger(__name__)

SEALS = Counter("apihub_audit_seals", "Seals this process wrote on the audit trail.")
UNSEALED = Gauge("apihub_audit_unsealed_records", "Audit records no seal covers yet, as of the sealer's last read.")
BREAKS = Counter("apihub_audit_breaks", "Breaks of the audit chain the sealer saw (run `apihub audit verify`).")

# The header that marks a seal on the audit topic (events carry no headers).
SEAL_HEADER = "apihub-record"
SEAL_MARK = b"audit-seal"
# The audit topic has one partition (services.bus.topic_specs): its offsets order the whole trail.
PARTITION = 0
ZERO = bytes(32)
# Most records held in memory to anchor the chain and check seals that cover slightly older offsets: a one-shot
# verify's, and a router's sealer's (which runs for months, so it keeps less: seals by other routers cover offsets a
# few seconds behind the end, far fewer than this at any rate the hub sees).
WINDOW = 200_000
SEALER_WINDOW = 10_000
# Longest one read of the topic may go without progress before it fails (seconds), and one offsets request (ms):
# a broker outage fails a round (and the router's last seal at shutdown) instead of hanging it.
READ_TIMEOUT_S = 60.0
OFFSETS_TIMEOUT_MS = 10_000
# How long the last seal at a router's stop may wait for the broker (seconds).
CLOSE_TIMEOUT_S = 15.0
_SEAL_KEY_LABEL = b"apihub audit seal key v1"


# -- the chain ------------------------------------------------------------------------------------------------------


def _framed(data: bytes | None) -> bytes:
    return struct.pack(">q", -1) if data is None else struct.pack(">q", len(data)) + data


def record_digest(record: Any) -> bytes:
    """SHA-256 of one record as stored: offset, timestamp, key, value and headers, each length-framed."""
    digest = hashlib.sha256(b"apihub-audit-record-v1")
    digest.update(struct.pack(">qq", record.offset, record.timestamp))
    digest.update(_framed(record.key))
    digest.update(_framed(record.value))
    headers = list(record.headers or [])
    digest.update(struct.pack(">q", len(headers)))
    for name, value in headers:
        digest.update(_framed(name.encode()))
        digest.update(_framed(value))
    return digest.digest()


def chain_step(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


def is_seal(record: Any) -> bool:
    """Whether an audit topic record is a seal (not an AuditEvent): readers of the trail skip these."""
    return (SEAL_HEADER, SEAL_MARK) in list(record.headers or [])


def seal_mac(topic: str, seal: delivery_pb2.AuditSeal, secret: str) -> bytes:
    """HMAC-SHA256 of a seal's fields and the topic it is on, under a key derived from one key of the ring (so a
    seal MAC can never be mistaken for a token signature)."""
    key = hmac.new(secret.encode(), _SEAL_KEY_LABEL, hashlib.sha256).digest()
    fields = (
        topic,
        seal.partition,
        seal.through_offset,
        seal.chain_sha256.hex(),
        seal.genesis_offset,
        seal.log_start_offset,
        seal.key_id,
        seal.at.seconds,
        seal.at.nanos,
        seal.sealer,
    )
    return hmac.new(key, "\n".join(map(str, fields)).encode(), hashlib.sha256).digest()


def make_seal(topic: str, ring: KeyRing, *, through: int, chain: bytes, genesis: int, log_start: int, sealer: str):
    seal = delivery_pb2.AuditSeal(
        partition=PARTITION,
        through_offset=through,
        chain_sha256=chain,
        genesis_offset=genesis,
        log_start_offset=log_start,
        key_id=ring.signing_key_id,
        sealer=sealer,
    )
    seal.at.GetCurrentTime()
    seal.hmac_sha256 = seal_mac(topic, seal, ring.signing_secret)
    return seal


@dataclass(frozen=True)
class Break:
    offset: int
    reason: str


@dataclass
class _Entry:
    leaf: bytes
    hash: bytes | None  # h(offset) once the chain is anchored at or before it
    event: bool  # an AuditEvent (not a seal)
    events_through: int  # events read up to and including this offset
    timestamp: int
    recomputed: bool = False  # hash computed here from the record (not taken from a seal)


@dataclass
class TrailReport:
    """What a read of the trail found; ``ok`` when nothing broke."""

    topic: str
    log_start: int = 0
    end: int = 0
    events: int = 0  # audit events read
    checked: int = 0  # events whose chain was recomputed (from the genesis or from a seal)
    seals: int = 0  # seal records read
    seals_valid: int = 0  # seals whose HMAC verifies and whose hash matches the records
    seals_retired: int = 0  # seals under a key no longer in the ring: not checkable
    seals_unchecked: int = 0  # valid seals covering records this read no longer holds
    first_checked: int | None = None  # offset where the recomputed chain starts
    sealed_through: int = -1  # last offset a checked seal covers
    sealed_chain: bytes = b""  # h(sealed_through)
    unsealed: int = 0  # events after sealed_through
    oldest_unsealed_ms: int | None = None  # Kafka timestamp of the oldest of them
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def checkpoint(self) -> str:
        """OFFSET:HASH of the last checked seal, for `apihub audit verify --since` (empty: nothing sealed, or a break:
        no checkpoint of a trail that does not verify)."""
        return f"{self.sealed_through}:{self.sealed_chain.hex()}" if self.sealed_chain and self.ok else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "ok": self.ok,
            "log_start": self.log_start,
            "end": self.end,
            "events": self.events,
            "checked": self.checked,
            "first_checked": self.first_checked,
            "seals": self.seals,
            "seals_valid": self.seals_valid,
            "seals_retired": self.seals_retired,
            "seals_unchecked": self.seals_unchecked,
            "sealed_through": self.sealed_through,
            "unsealed": self.unsealed,
            "oldest_unsealed_ms": self.oldest_unsealed_ms,
            "checkpoint": self.checkpoint,
            "breaks": [{"offset": b.offset, "reason": b.reason} for b in self.breaks],
        }


class AuditChain:
    """The chain of one partition, fed records in offset order (``add``); checks seals as they come.

    Pure: no Kafka. Used by the sealer (which reads incrementally and seals ``head``) and by verify.
    """

    def __init__(self, topic: str, ring: KeyRing, log_start: int, *, window: int = WINDOW, checkpoints: bool = True):
        self.report = TrailReport(topic, log_start=log_start, end=log_start)
        self._ring = ring
        self._window_size = window
        self._checked_before = 0  # events recomputed among those no longer held
        # Through offset -> chain of every seal that checked, for check_checkpoint (one-shot reads only: a sealer
        # running for months would hold one entry per seal).
        self._attested: dict[int, bytes] | None = {} if checkpoints else None
        self._window: deque[_Entry] = deque()
        self._restart(log_start)
        if log_start == 0:  # a trail never cut: the chain starts at its first record
            self._genesis, self._head, self.report.first_checked = 0, ZERO, 0

    def _restart(self, offset: int) -> None:
        self._checked_before += sum(1 for e in self._window if e.event and e.recomputed)
        self._expected = offset
        self._start = offset  # offset of self._window[0]
        self._window = deque()
        self._genesis: int | None = None  # set once anchored
        self._head: bytes | None = None  # h(self._expected - 1) once anchored

    @property
    def anchored(self) -> bool:
        return self._head is not None

    @property
    def head(self) -> tuple[int, bytes, int] | None:
        """(last offset read, h there, genesis offset) once anchored and past the genesis."""
        if self._head is None or self._expected <= (self._genesis or 0):
            return None
        return self._expected - 1, self._head, self._genesis or 0

    def add(self, record: Any) -> None:
        offset = record.offset
        if offset != self._expected:
            if offset > self._expected:
                self._break(self._expected, f"offsets {self._expected}..{offset - 1} are missing: records removed")
            else:
                self._break(offset, f"offset {offset} came after {self._expected - 1}: the partition was rewritten")
            self._restart(offset)
        self._expected = offset + 1
        self.report.end = offset + 1
        seal = is_seal(record)
        self._push(record_digest(record), not seal, record.timestamp)
        if seal:
            self.report.seals += 1
            self._on_seal(offset, record.value or b"")
        else:
            self.report.events += 1

    def _push(self, leaf: bytes, event: bool, timestamp: int) -> None:
        if self._head is not None:
            self._head = chain_step(self._head, leaf)
        # Events read up to this offset: the previous entry's count, or every event read so far (add() counts
        # this record after the push).
        total = (self._window[-1].events_through if self._window else self.report.events) + event
        self._window.append(_Entry(leaf, self._head, event, total, timestamp, self._head is not None))
        if len(self._window) > self._window_size:
            gone = self._window.popleft()
            self._checked_before += gone.event and gone.recomputed
            self._start += 1

    def _entry(self, offset: int) -> _Entry | None:
        index = offset - self._start
        return self._window[index] if 0 <= index < len(self._window) else None

    def _break(self, offset: int, reason: str) -> None:
        self.report.breaks.append(Break(offset, reason))

    def _on_seal(self, offset: int, value: bytes) -> None:
        try:
            seal = delivery_pb2.AuditSeal.FromString(value)
        except DecodeError:
            self._break(offset, f"the record at offset {offset} is marked as a seal but is not one")
            return
        secret = self._ring.keys.get(seal.key_id)
        if secret is None:
            self.report.seals_retired += 1
            return
        if not hmac.compare_digest(seal_mac(self.report.topic, seal, secret), seal.hmac_sha256):
            self._break(offset, f"the seal at offset {offset} does not verify: forged or altered")
            return
        through = seal.through_offset
        if (
            seal.partition != PARTITION
            or not 0 <= seal.genesis_offset <= through < offset
            or len(seal.chain_sha256) != 32
        ):
            self._break(offset, f"the seal at offset {offset} claims offsets it cannot cover")
            return
        if self._head is None:
            if not self._anchor(seal):
                self.report.seals_unchecked += 1
            return
        ours = self._hash_at(through, seal.genesis_offset)
        if ours is None:
            self.report.seals_unchecked += 1
        elif hmac.compare_digest(ours, seal.chain_sha256):
            self._sealed(through, seal.chain_sha256)
        else:
            since = max(self.report.sealed_through + 1, self.report.first_checked or 0)
            self._break(
                since,
                f"the seal at offset {offset} does not match the records through offset {through}: "
                f"a record in offsets {since}..{through} was altered, inserted or removed",
            )
            # Check what follows against this seal, so a later change shows as a break of its own.
            self._rebase(through, seal.chain_sha256, seal.genesis_offset)
            self._sealed(through, seal.chain_sha256, matched=False)

    def _anchor(self, seal: delivery_pb2.AuditSeal) -> bool:
        """Start the chain from a seal: at its genesis when the records from there are held, else at the offset it
        covers when every record after that is held. False if it covers only records no longer on the topic."""
        through, genesis = seal.through_offset, seal.genesis_offset
        matched = True
        if genesis >= self._start:
            self._rebase(genesis - 1, ZERO, genesis)
            self.report.first_checked = genesis
            matched = hmac.compare_digest(self._hash_at(through, genesis) or b"", seal.chain_sha256)
            if not matched:
                self._break(genesis, f"the seal through offset {through} does not match the records from {genesis}")
                self._rebase(through, seal.chain_sha256, genesis)
        elif through >= self._start - 1:
            self._rebase(through, seal.chain_sha256, genesis)
            self.report.first_checked = through + 1
        else:
            return False
        self._sealed(through, seal.chain_sha256, matched)
        return True

    def _rebase(self, offset: int, chain: bytes, genesis: int) -> None:
        """Take ``chain`` as h(offset) and recompute the chain of every held record after it."""
        self._genesis, running = genesis, chain
        held = self._entry(offset)
        if held is not None and offset >= genesis:
            held.hash = chain
        for index in range(max(offset + 1 - self._start, 0), len(self._window)):
            entry = self._window[index]
            running = chain_step(running, entry.leaf)
            entry.hash, entry.recomputed = running, True
        self._head = running

    def _hash_at(self, offset: int, genesis: int) -> bytes | None:
        entry = self._entry(offset)
        if entry is None:
            return None
        if genesis == self._genesis:
            return entry.hash
        if genesis < self._start:  # another sealer's chain, from a genesis no longer held
            return None
        running = ZERO  # another sealer started its chain afresh at ``genesis``: recompute it
        for index in range(genesis - self._start, offset - self._start + 1):
            running = chain_step(running, self._window[index].leaf)
        return running

    def _sealed(self, through: int, chain: bytes, matched: bool = True) -> None:
        """A seal with a valid HMAC: what follows is checked against it (and it counts as valid if it matched)."""
        self.report.seals_valid += matched
        if self._attested is not None and matched:
            self._attested[through] = chain
        if through > self.report.sealed_through:
            self.report.sealed_through, self.report.sealed_chain = through, chain

    def start_fresh(self) -> None:
        """Begin a new chain at the oldest record held (a sealer that found no seal it could continue from)."""
        self._rebase(self._start - 1, ZERO, self._start)
        self.report.first_checked = self._start

    def unsealed(self) -> tuple[int, int | None]:
        """(events after the last checked seal, Kafka timestamp of the oldest of them)."""
        through = self.report.sealed_through
        entry = self._entry(through)
        if entry is not None:
            sealed_events = entry.events_through
        elif self._window and through < self._start:
            sealed_events = 0 if through < 0 else self._window[0].events_through - self._window[0].event
        else:
            sealed_events = 0
        count = max(self.report.events - sealed_events, 0)
        if count == 0:
            return 0, None
        first = max(through + 1, self._start) - self._start
        oldest = next((e.timestamp for e in itertools.islice(self._window, first, None) if e.event), None)
        return count, oldest

    def check_checkpoint(self, offset: int, chain: bytes) -> None:
        """A break unless the trail still holds everything after ``offset`` and h(offset) is still ``chain``."""
        if self.report.log_start > offset + 1:
            self._break(
                offset, f"records after the checkpoint {offset} were deleted (log starts at {self.report.log_start})"
            )
            return
        ours = (self._attested or {}).get(offset) or self._hash_at(offset, self._genesis or 0)
        if ours is None:
            self._break(offset, f"no checked seal or recomputed record covers the checkpoint offset {offset}")
        elif not hmac.compare_digest(ours, chain):
            self._break(offset, f"the chain through offset {offset} differs from the checkpoint: history rewritten")

    def finish(self) -> TrailReport:
        held = sum(1 for e in self._window if e.event and e.recomputed)
        self.report.checked = self._checked_before + held
        self.report.unsealed, self.report.oldest_unsealed_ms = self.unsealed()
        return self.report


# -- reading the topic ----------------------------------------------------------------------------------------------


def _read_until(consumer, tp: TopicPartition, end: int, timeout_s: float = READ_TIMEOUT_S) -> Iterator[Any]:
    """Records of one assigned partition from the consumer's position up to ``end`` (exclusive)."""
    deadline = time.monotonic() + timeout_s
    while consumer.position(tp, timeout_ms=OFFSETS_TIMEOUT_MS) < end:
        records = consumer.poll(timeout_ms=500).get(tp, [])
        if records:
            deadline = time.monotonic() + timeout_s
        elif time.monotonic() > deadline:
            raise KafkaTimeoutError(f"{tp.topic} could not be read to offset {end} within {timeout_s:.0f}s")
        # Records past ``end`` (appended meanwhile) are yielded too: the consumer's position is already past them.
        yield from records


def _assign(consumer, topic: str) -> tuple[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ConfigError(f"there is no audit topic {topic}: create the hub's topics first (apihub topics)")
    if partitions != {PARTITION}:
        raise ConfigError(f"{topic} has {len(partitions)} partitions: the audit trail must have exactly one")
    tp = TopicPartition(topic, PARTITION)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    return tp, consumer.beginning_offsets([tp], timeout_ms=OFFSETS_TIMEOUT_MS)[tp]


def verify_trail(
    settings: HubSettings, *, since: tuple[int, bytes] | None = None, consumer=None, timeout_s: float = READ_TIMEOUT_S
) -> TrailReport:
    """Read the whole audit trail and check it: the chain, every seal, and the checkpoint ``since`` if given."""
    topic = Topics(settings.topic_prefix).audit
    consumer = consumer or make_consumer(settings, None, "apihub-audit-verify")
    try:
        tp, start = _assign(consumer, topic)
        end = consumer.end_offsets([tp], timeout_ms=OFFSETS_TIMEOUT_MS)[tp]
        chain = AuditChain(topic, KeyRing.of(settings), start)
        for record in _read_until(consumer, tp, end, timeout_s):
            chain.add(record)
        if since is not None:
            chain.check_checkpoint(*since)
        report = chain.finish()
        report.end = max(report.end, end)
        return report
    finally:
        consumer.close()


def parse_checkpoint(text: str) -> tuple[int, bytes]:
    """OFFSET:HASH as `apihub audit verify` prints it; ValueError otherwise."""
    offset, _, digest = text.strip().partition(":")
    try:
        parsed = int(offset), bytes.fromhex(digest)
    except ValueError:
        parsed = (-1, b"")
    if parsed[0] < 0 or len(parsed[1]) != 32:
        raise ValueError("expected OFFSET:SHA256 as `apihub audit verify` prints it (checkpoint: ...)")
    return parsed


# -- the sealer -----------------------------------------------------------------------------------------------------


class AuditSealer:
    """Seals the audit trail: ``seal()`` once; ``run()`` every ``interval_s`` until ``stop()``; ``close()`` seals a
    last time and closes its Kafka clients. One per router process; several together are harmless."""

    def __init__(self, settings: HubSettings, *, consumer=None, producer=None, interval_s: float | None = None):
        self._settings = settings
        self._topic = Topics(settings.topic_prefix).audit
        self._ring = KeyRing.of(settings)
        self._interval_s = settings.audit_seal_seconds if interval_s is None else interval_s
        self._consumer, self._producer = consumer, producer
        self._chain: AuditChain | None = None
        self._tp: TopicPartition | None = None
        self._breaks_seen = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def _catch_up(self, timeout_s: float) -> AuditChain:
        if self._consumer is None:
            self._consumer = make_consumer(self._settings, None, "apihub-audit-sealer")
        if self._chain is None:
            self._tp, start = _assign(self._consumer, self._topic)
            self._chain = AuditChain(self._topic, self._ring, start, window=SEALER_WINDOW, checkpoints=False)
        end = self._consumer.end_offsets([self._tp], timeout_ms=OFFSETS_TIMEOUT_MS)[self._tp]
        for record in _read_until(self._consumer, self._tp, end, timeout_s):
            self._chain.add(record)
        breaks = self._chain.report.breaks
        for found in breaks[self._breaks_seen :]:
            BREAKS.inc()
            log.error("audit trail break at offset %d: %s", found.offset, found.reason)
        self._breaks_seen = len(breaks)
        return self._chain

    def seal(self, timeout_s: float = READ_TIMEOUT_S) -> delivery_pb2.AuditSeal | None:
        """Read the trail to its end and seal it if any event is not sealed yet; the seal written, or None."""
        with self._lock:
            if self._closed:
                return None
            chain = self._catch_up(timeout_s)
            unsealed, _ = chain.unsealed()
            UNSEALED.set(unsealed)
            if not unsealed:
                return None
            if not chain.anchored:
                log.warning(
                    "no seal on %s covers its log start: the chain starts afresh at its oldest record", self._topic
                )
                chain.start_fresh()
            if chain.head is None:
                return None
            through, head, genesis = chain.head
            log_start = self._consumer.beginning_offsets([self._tp], timeout_ms=OFFSETS_TIMEOUT_MS)[self._tp]
            seal = make_seal(
                self._topic,
                self._ring,
                through=through,
                chain=head,
                genesis=genesis,
                log_start=log_start,
                sealer=self.name,
            )
            if self._producer is None:
                self._producer = make_producer(self._settings, "apihub-audit-sealer")
            future = self._producer.send(
                self._topic, value=seal.SerializeToString(), headers=[(SEAL_HEADER, SEAL_MARK)], partition=PARTITION
            )
            future.get(timeout=timeout_s)
            SEALS.inc()
            log.info("sealed the audit trail through offset %d (%d records)", through, unsealed)
            return seal

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.seal()
            except (KafkaError, ConfigError) as exc:
                log.warning("audit trail not sealed this round (%s: %s)", type(exc).__name__, exc)
            except Exception:  # a bug must not end sealing for the router's lifetime; the records hold ids only
                log.exception("audit trail not sealed this round")
            self._stopping.wait(self._interval_s)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        """Stop, seal what the router wrote last, close. Idempotent."""
        self.stop()
        try:
            self.seal(timeout_s=CLOSE_TIMEOUT_S)
        except (KafkaError, ConfigError) as exc:
            log.warning("audit trail not sealed at stop (%s)", type(exc).__name__)
        with self._lock:
            self._closed = True
            if self._producer is not None:
                self._producer.close(timeout=5)
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
            self._producer = self._consumer = None
