"""The delivery ledger: which version of each hit every member was sent, and which hits were withdrawn.

It makes delivery once-per-member in effect (a replayed or unchanged hit is not sent again; a changed one is
sent as an update under the same id) and sends a withdrawal exactly to the members that got the hit. The
ledger lives in memory, rebuilt from the compacted deliveries topic; the router writes its changes in the
same flush as the outbox copies, before committing its input offsets.

It also numbers the versions of each hit (Hit.version, DeliveryRecord.version): the copies one hit record or
clearance produces are one version, numbered next_version(): the time the profiler raised that record, in
milliseconds, or the last version's number plus 1 when that is not greater. A number rather than a content
fingerprint, because one process numbers a hit at a time: every version of a hit id comes through one partition
of the hits topic (keyed by flight), and the ledger has caught up with the deliveries topic before each batch. A
batch replayed after a crash meets the ledger as it stood and the records as they were, and numbers its copies as
before, so a copy that reached the outbox twice carries the same (hit id, version), which is what members
de-duplicate on. The time keeps the numbers increasing where the ledger no longer knows a hit (a record dropped
from memory, a hub restored without its deliveries topic), where counting alone would start again at 1.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from google.protobuf.message import DecodeError
from prometheus_client import Counter, Gauge

from services.codec import flight_key_of, hit_fingerprint
from services.config import HubSettings
from services.wire import hit_pb2, manifest_pb2

log = logging.getLogger(__name__)

WITHDRAWN = "withdrawn"

# The ledger's memory, bounded by flight age (settings flight_state_days): see DeliveryLedger.
LEDGER_HITS = Gauge(
    "apihub_router_ledger_hits",
    "Delivery records held in memory (router: the worker's ledger; dispose: the Dispose servicer's)",
    ["ledger"],
)
LEDGER_FLIGHTS = Gauge("apihub_router_ledger_flights", "Flights with delivery records held in memory", ["ledger"])
LEDGER_EVICTED = Counter(
    "apihub_router_ledger_evicted",
    "Delivery records dropped from memory: their flight closed (age), or the bound on undated ones was reached (count)",
    ["ledger", "reason"],
)
CLOSED_FLIGHT_HITS = Counter(
    "apihub_router_closed_flight_hits",
    "Hits and clearances ignored because their flight departed more than APIHUB_FLIGHT_STATE_DAYS ago",
)
_DEFAULT_UNDATED = HubSettings.model_fields["flight_state_undated_max"].default


def _utcnow() -> datetime:
    return datetime.now(UTC)


def departure_day(flight_key: str) -> date | None:
    """The departure date of a flight key ('FJ911/2026-12-01/NAN', services.codec.flight_key), or None."""
    parts = flight_key.rsplit("/", 2)
    try:
        return date.fromisoformat(parts[1]) if len(parts) == 3 else None
    except ValueError:
        return None


@dataclass
class Plan:
    """What one batch of hits turns into: outbox copies and the ledger records they change."""

    copies: list[hit_pb2.Hit] = field(default_factory=list)
    records: dict[str, hit_pb2.DeliveryRecord] = field(default_factory=dict)
    # Flight keys of the hits and clearances ignored because their flight is closed (DeliveryLedger.closed).
    closed: list[str] = field(default_factory=list)


_SOURCES = {
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}


def reason_keys(hit: hit_pb2.Hit) -> list[str]:
    """'source:owner:id' of each reason: what a disposition is credited to."""
    return sorted({f"{_SOURCES.get(r.source, 'unspecified')}:{r.owner}:{r.id}" for r in hit.reasons})


class DeliveryLedger:
    """What was delivered of every hit of the flights still open, in memory.

    Bounded by flight age (for_settings: flight_state_days; without ``max_age_days``, as in tests and one-off reads,
    no flight closes): a flight whose departure date is more than ``max_age_days`` before today (UTC) is
    closed. Its records are dropped when the day turns (one pass over the departure dates held), records of closed
    flights read back from the topic are never held, and hits and clearances of a closed flight are not planned
    (Plan.closed): with its records gone, a late update could not be told from a new hit nor a withdrawal reach
    whoever got it, so a flight long gone gets neither. The records of flights without a departure date (age
    unknown) are bounded by count instead, the least recently recorded dropped first.
    """

    def __init__(
        self,
        *,
        max_age_days: int | None = None,
        max_undated: int = _DEFAULT_UNDATED,
        clock: Callable[[], datetime] = _utcnow,
        name: str | None = None,
    ) -> None:
        # hit id -> (flight key, the DeliveryRecord serialized): a few hundred bytes a hit, where the parsed message
        # takes over a kilobyte; get() parses the one asked for.
        self._records: dict[str, tuple[str, bytes]] = {}
        self._by_flight: dict[str, set[str]] = {}
        self._by_day: dict[date, set[str]] = {}  # flight keys by departure date: what closes together
        self._undated: OrderedDict[str, None] = OrderedDict()  # hit ids of undated flights, least recent first
        self._max_age = None if max_age_days is None else timedelta(days=max_age_days)
        self._max_undated = max_undated
        self._clock = clock
        self._name = name or "unnamed"
        self._open_from: date | None = None  # the first departure date still open at the last eviction
        if name:
            # Sizes read when the metrics are scraped (nothing counted per record); a weak reference, so the gauge
            # never keeps a ledger alive. One ledger per name in a process (the last one made is shown).
            ref = weakref.ref(self)
            LEDGER_HITS.labels(ledger=name).set_function(lambda: len(ref() or ()))
            LEDGER_FLIGHTS.labels(ledger=name).set_function(lambda: ref().flights if ref() else 0)

    @classmethod
    def for_settings(cls, settings: HubSettings, name: str = "router") -> DeliveryLedger:
        """The ledger of a router process (name "router": the worker's; "dispose": the Dispose servicer's)."""
        return cls(max_age_days=settings.flight_state_days, max_undated=settings.flight_state_undated_max, name=name)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def flights(self) -> int:
        return len(self._by_flight)

    def open_from(self) -> date:
        """The earliest departure date whose flights are still open today (date.min: every flight is)."""
        if self._max_age is None:
            return date.min
        return self._clock().astimezone(UTC).date() - self._max_age

    def closed(self, flight_key: str) -> bool:
        """Whether the flight departed more than max_age_days ago (never for a flight without a date)."""
        day = departure_day(flight_key)
        return day is not None and day < self.open_from()

    def evict(self) -> int:
        """Drop the records of flights closed since the last call (cheap when none closed); how many."""
        open_from = self.open_from()
        if open_from == self._open_from:
            return 0
        self._open_from = open_from
        dropped = 0
        for day in [d for d in self._by_day if d < open_from]:
            for flight in self._by_day.pop(day):
                for hit_id in self._by_flight.pop(flight, ()):
                    dropped += self._records.pop(hit_id, None) is not None
        if dropped:
            LEDGER_EVICTED.labels(ledger=self._name, reason="age").inc(dropped)
            log.info(
                "%s ledger: %d delivery records of flights departed before %s dropped", self._name, dropped, open_from
            )
        return dropped

    def _store(self, hit_id: str, entry: hit_pb2.DeliveryRecord) -> None:
        if hit_id in self._records:
            self._forget(hit_id)
        day = departure_day(entry.flight_key)
        if day is not None and self._open_from is not None and day < self._open_from:  # evict() just set it
            LEDGER_EVICTED.labels(ledger=self._name, reason="age").inc()
            return  # a closed flight's record (read back from the topic): nothing will ask for it
        flight = sys.intern(entry.flight_key)  # one string per flight, however many hits it has
        self._records[hit_id] = (flight, entry.SerializeToString())
        self._by_flight.setdefault(flight, set()).add(hit_id)
        if day is not None:
            self._by_day.setdefault(day, set()).add(flight)
            return
        self._undated[hit_id] = None
        while len(self._undated) > self._max_undated:
            oldest, _ = self._undated.popitem(last=False)
            self._forget(oldest)
            LEDGER_EVICTED.labels(ledger=self._name, reason="count").inc()

    def _forget(self, hit_id: str) -> None:
        old = self._records.pop(hit_id, None)
        self._undated.pop(hit_id, None)
        if old is None:
            return
        flight = old[0]
        hits = self._by_flight.get(flight)
        if hits is None:
            return
        hits.discard(hit_id)
        if not hits:
            del self._by_flight[flight]
            day = departure_day(flight)
            flights = self._by_day.get(day) if day is not None else None
            if flights is not None:
                flights.discard(flight)
                if not flights:
                    del self._by_day[day]

    def get(self, hit_id: str) -> hit_pb2.DeliveryRecord | None:
        held = self._records.get(hit_id)
        return None if held is None else hit_pb2.DeliveryRecord.FromString(held[1])

    def apply_record(self, key: bytes | None, value: bytes | None, record=None) -> None:
        """A record of the deliveries topic (or a tombstone) replaces what the ledger knew of that hit."""
        hit_id = (key or b"").decode()
        if value is None:
            self._forget(hit_id)
            return
        try:
            entry = hit_pb2.DeliveryRecord.FromString(value)
        except DecodeError:
            where = f" at offset {record.offset}" if record is not None else ""
            log.warning("undecodable delivery record%s skipped", where)
            return
        self.commit({entry.hit_id or hit_id: entry})

    def commit(self, records: dict[str, hit_pb2.DeliveryRecord]) -> None:
        """Adopt records once the broker holds them (and drop those of flights closed meanwhile)."""
        self.evict()
        for hit_id, entry in records.items():
            self._store(hit_id, entry)

    def plan(self, hits: list[hit_pb2.Hit], recipients, tailor=None) -> Plan:
        """Copies to send for a batch of hits and clearances.

        ``recipients(hit)`` gives a hit's members; ``tailor(hit, member)`` (optional) gives the version of the
        hit that member may see (the hit itself when it is all for them; never modified here), or None when
        nothing in it is for that member (e.g. a model reason under the member's own review threshold, a
        watchlist match under its review band). A member that got an earlier version and is no longer entitled
        to this one is sent a withdrawal. A version differing in anything the member sees (reasons, their
        screening bands, for_review, score) has another fingerprint, so it goes out as an update.
        """
        plan = Plan()
        open_from = self.open_from()
        for hit in hits:
            flight = flight_key_of(hit.flight)
            day = departure_day(flight)
            if day is not None and day < open_from:
                plan.closed.append(flight)  # a flight long gone: neither updates nor withdrawals (see the class)
            elif hit.hit_id and hit.state != hit_pb2.HIT_STATE_WITHDRAWN:
                self._plan_hit(hit, recipients(hit), tailor or _addressed, plan)
            else:
                self._plan_clearance(hit, plan)
        return plan

    def _current(self, hit_id: str, plan: Plan) -> hit_pb2.DeliveryRecord | None:
        return plan.records.get(hit_id) or self.get(hit_id)

    def _plan_hit(self, hit: hit_pb2.Hit, members: set[str], tailor, plan: Plan) -> None:
        known = self._current(hit.hit_id, plan)
        entry = hit_pb2.DeliveryRecord()
        if known is not None:
            entry.CopyFrom(known)
        else:
            entry.hit_id, entry.flight_key = hit.hit_id, flight_key_of(hit.flight)
        entry.passenger_ref = hit.traveller.passenger_ref
        del entry.reason_keys[:]
        entry.reason_keys.extend(reason_keys(hit))
        delivered = set()
        # Every copy of the hit sent now (to any member: new, update or withdrawal) is its next version (Hit.version).
        number, first_copy = next_version(entry, hit), len(plan.copies)
        # One fingerprint per distinct version (most members see the hit itself); the versions are kept here
        # with it, so no id() is reused by another object while the loop runs.
        versions: dict[int, tuple[hit_pb2.Hit, str]] = {}
        for member in sorted(members):
            version = tailor(hit, member)
            if version is None:
                continue
            delivered.add(member)
            if id(version) not in versions:
                versions[id(version)] = (version, hit_fingerprint(version))
            fingerprint = versions[id(version)][1]
            if entry.fingerprints.get(member) == fingerprint:
                continue  # this member already has exactly this version
            copy = hit_pb2.Hit()
            copy.CopyFrom(version)
            copy.recipient = member
            copy.version = number
            plan.copies.append(copy)
            entry.fingerprints[member] = fingerprint
        # Members that hold an earlier version but are not entitled to this one (a shared entry no longer
        # matches after a correction, a model reason fell under their threshold, a watchlist match under their
        # review band) are told it is withdrawn.
        for member in sorted(set(entry.fingerprints) - delivered):
            if entry.fingerprints[member] != WITHDRAWN:
                plan.copies.append(_withdrawal(hit.hit_id, member, entry.passenger_ref, hit, number))
                entry.fingerprints[member] = WITHDRAWN
        if len(plan.copies) > first_copy:
            entry.version = number
        # Withdrawn as a whole when nobody holds it any more (it may be raised again later).
        entry.withdrawn = not delivered and bool(entry.fingerprints)
        if entry.fingerprints if known is None else entry != known:
            plan.records[hit.hit_id] = entry

    def _plan_clearance(self, clearance: hit_pb2.Hit, plan: Plan) -> None:
        ids = list(clearance.withdrawn_hit_ids)
        if clearance.hit_id:
            ids.append(clearance.hit_id)
        if clearance.whole_flight:
            flight = flight_key_of(clearance.flight)
            staged = [i for i, r in plan.records.items() if r.flight_key == flight]
            ids.extend(sorted(self._by_flight.get(flight, set()) | set(staged)))
        for hit_id in dict.fromkeys(ids):
            known = self._current(hit_id, plan)
            if known is None or known.withdrawn:
                continue  # never delivered, or already withdrawn: nothing to tell anyone
            entry = hit_pb2.DeliveryRecord()
            entry.CopyFrom(known)
            entry.withdrawn = True
            number, first_copy = next_version(entry, clearance), len(plan.copies)
            for member in sorted(entry.fingerprints):
                if entry.fingerprints[member] != WITHDRAWN:
                    plan.copies.append(_withdrawal(hit_id, member, entry.passenger_ref, clearance, number))
                    entry.fingerprints[member] = WITHDRAWN
            if len(plan.copies) > first_copy:
                entry.version = number
            plan.records[hit_id] = entry


def _addressed(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit:
    """The default tailoring: every member entitled to a hit sees all of it."""
    return hit


def next_version(entry: hit_pb2.DeliveryRecord, cause: hit_pb2.Hit) -> int:
    """The number of the copies ``cause`` (a hit or clearance record) makes of the hit ``entry`` records: when it
    was raised (a clearance, which has no such time: when its manifest was received), in milliseconds, or one more
    than the last version when that is not greater."""
    at = cause.raised_at if cause.HasField("raised_at") else cause.manifest_received_at
    return max(entry.version + 1, at.seconds * 1000 + at.nanos // 1_000_000)


def _withdrawal(hit_id: str, member: str, passenger_ref: str, cause: hit_pb2.Hit, number: int) -> hit_pb2.Hit:
    """A withdrawal of ``hit_id`` for one member: the flight and passenger reference only, no reasons."""
    withdrawal = hit_pb2.Hit(
        hit_id=hit_id,
        version=number,
        recipient=member,
        manifest_id=cause.manifest_id,
        flight=cause.flight,
        traveller=manifest_pb2.Traveller(passenger_ref=passenger_ref),
        state=hit_pb2.HIT_STATE_WITHDRAWN,
    )
    withdrawal.raised_at.GetCurrentTime()
    if cause.HasField("manifest_received_at"):
        withdrawal.manifest_received_at.CopyFrom(cause.manifest_received_at)
    return withdrawal
