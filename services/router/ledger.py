"""The delivery ledger: which version of each hit every member was sent, and which hits were withdrawn.

It makes delivery once-per-member in effect (a replayed or unchanged hit is not sent again; a changed one is
sent as an update under the same id) and sends a withdrawal exactly to the members that got the hit. The
ledger lives in memory, rebuilt from the compacted deliveries topic; the router writes its changes in the
same flush as the outbox copies, before committing its input offsets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from services.codec import flight_key_of, hit_fingerprint
from services.wire import hit_pb2, manifest_pb2

log = logging.getLogger(__name__)

WITHDRAWN = "withdrawn"


@dataclass
class Plan:
    """What one batch of hits turns into: outbox copies and the ledger records they change."""

    copies: list[hit_pb2.Hit] = field(default_factory=list)
    records: dict[str, hit_pb2.DeliveryRecord] = field(default_factory=dict)


_SOURCES = {
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}


def reason_keys(hit: hit_pb2.Hit) -> list[str]:
    """'source:owner:id' of each reason: what a disposition is credited to."""
    return sorted({f"{_SOURCES.get(r.source, 'unspecified')}:{r.owner}:{r.id}" for r in hit.reasons})


class DeliveryLedger:
    def __init__(self) -> None:
        self._records: dict[str, hit_pb2.DeliveryRecord] = {}
        self._by_flight: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, hit_id: str) -> hit_pb2.DeliveryRecord | None:
        return self._records.get(hit_id)

    def apply_record(self, key: bytes | None, value: bytes | None, record=None) -> None:
        """A record of the deliveries topic (or a tombstone) replaces what the ledger knew of that hit."""
        hit_id = (key or b"").decode()
        if value is None:
            old = self._records.pop(hit_id, None)
            if old:
                self._by_flight.get(old.flight_key, set()).discard(hit_id)
            return
        try:
            entry = hit_pb2.DeliveryRecord.FromString(value)
        except DecodeError:
            where = f" at offset {record.offset}" if record is not None else ""
            log.warning("undecodable delivery record%s skipped", where)
            return
        self.commit({entry.hit_id or hit_id: entry})

    def commit(self, records: dict[str, hit_pb2.DeliveryRecord]) -> None:
        """Adopt records once the broker holds them."""
        for hit_id, entry in records.items():
            self._records[hit_id] = entry
            self._by_flight.setdefault(entry.flight_key, set()).add(hit_id)

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
        for hit in hits:
            if hit.hit_id and hit.state != hit_pb2.HIT_STATE_WITHDRAWN:
                self._plan_hit(hit, recipients(hit), tailor or _addressed, plan)
            else:
                self._plan_clearance(hit, plan)
        return plan

    def _current(self, hit_id: str, plan: Plan) -> hit_pb2.DeliveryRecord | None:
        return plan.records.get(hit_id) or self._records.get(hit_id)

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
            plan.copies.append(copy)
            entry.fingerprints[member] = fingerprint
        # Members that hold an earlier version but are not entitled to this one (a shared entry no longer
        # matches after a correction, a model reason fell under their threshold, a watchlist match under their
        # review band) are told it is withdrawn.
        for member in sorted(set(entry.fingerprints) - delivered):
            if entry.fingerprints[member] != WITHDRAWN:
                plan.copies.append(_withdrawal(hit.hit_id, member, entry.passenger_ref, hit))
                entry.fingerprints[member] = WITHDRAWN
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
            for member in sorted(entry.fingerprints):
                if entry.fingerprints[member] != WITHDRAWN:
                    plan.copies.append(_withdrawal(hit_id, member, entry.passenger_ref, clearance))
                    entry.fingerprints[member] = WITHDRAWN
            plan.records[hit_id] = entry


def _addressed(hit: hit_pb2.Hit, member: str) -> hit_pb2.Hit:
    """The default tailoring: every member entitled to a hit sees all of it."""
    return hit


def _withdrawal(hit_id: str, member: str, passenger_ref: str, cause: hit_pb2.Hit) -> hit_pb2.Hit:
    """A withdrawal of ``hit_id`` for one member: the flight and passenger reference only, no reasons."""
    withdrawal = hit_pb2.Hit(
        hit_id=hit_id,
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
