"""The audit trail's hash chain and seals (services.audit), on in-memory records: what verify accepts, what it
reports as a break, and the sealer's decisions. The same code on a real broker: tests/integration/test_audit_chain.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from services.audit import (
    SEAL_HEADER,
    SEAL_MARK,
    AuditChain,
    is_seal,
    make_seal,
    parse_checkpoint,
    record_digest,
)
from services.auth import KeyRing
from services.wire import delivery_pb2

TOPIC = "t.audit.v1"
RING = KeyRing({"k1": "audit-test-key-0123456789abcdef"}, "k1")


@dataclass
class Rec:
    offset: int
    value: bytes | None
    key: bytes | None = b"FJI"
    headers: list = field(default_factory=list)
    timestamp: int = 1_765_000_000_000


def _event(n: int) -> bytes:
    return delivery_pb2.AuditEvent(event="enqueued", member="FJI", hit_id=f"h-{n}", detail="active").SerializeToString()


class Trail:
    """A partition's records, and a sealer that reads them incrementally as the router's does."""

    def __init__(self, ring: KeyRing = RING):
        self.records: list[Rec] = []
        self.ring = ring
        self._sealer = AuditChain(TOPIC, ring, 0)
        self._fed = 0

    def events(self, count: int) -> Trail:
        for _ in range(count):
            self.records.append(Rec(len(self.records), _event(len(self.records))))
        return self

    def _catch_up(self) -> AuditChain:
        for record in self.records[self._fed :]:
            self._sealer.add(record)
        self._fed = len(self.records)
        return self._sealer

    def seal(self, ring: KeyRing | None = None) -> delivery_pb2.AuditSeal:
        through, head, genesis = self._catch_up().head
        seal = make_seal(
            TOPIC, ring or self.ring, through=through, chain=head, genesis=genesis, log_start=0, sealer="t"
        )
        self.append_seal(seal)
        return seal

    def append_seal(self, seal: delivery_pb2.AuditSeal) -> None:
        self.records.append(Rec(len(self.records), seal.SerializeToString(), None, [(SEAL_HEADER, SEAL_MARK)]))

    def unsealed(self) -> int:
        return self._catch_up().unsealed()[0]


def verify(records, ring: KeyRing = RING, log_start: int | None = None, **kw):
    start = records[0].offset if log_start is None else log_start
    chain = AuditChain(TOPIC, ring, start, **kw)
    for record in records:
        chain.add(record)
    return chain


def _normal_trail() -> Trail:
    trail = Trail().events(5)
    trail.seal()
    trail.events(4)
    trail.seal()
    trail.events(2)
    return trail


def test_an_intact_trail_verifies_and_reports_what_is_not_sealed_yet():
    trail = _normal_trail()
    report = verify(trail.records).finish()
    assert report.ok, report.breaks
    assert (report.events, report.checked, report.seals, report.seals_valid) == (11, 11, 2, 2)
    assert (report.sealed_through, report.unsealed, report.first_checked) == (9, 2, 0)
    assert report.oldest_unsealed_ms == trail.records[-2].timestamp
    assert report.checkpoint.startswith("9:")


def test_a_replayed_event_is_just_one_more_record():
    # The stream loop re-produces a batch after a rewind: the same event twice is not tampering.
    trail = Trail().events(3)
    trail.records.append(dataclasses.replace(trail.records[1], offset=3))
    trail.seal()
    assert verify(trail.records).finish().ok


def test_an_altered_record_breaks_the_chain_at_the_seal_after_it():
    trail = _normal_trail()
    rewritten = list(trail.records)
    rewritten[7] = dataclasses.replace(rewritten[7], value=_event(99))
    report = verify(rewritten).finish()
    assert [b.offset for b in report.breaks] == [5]  # after what the first seal covers (through 4)
    assert "does not match the records through offset 9" in report.breaks[0].reason


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": 1},
        {"key": b"WSM"},
        {"headers": [("x", b"y")]},
    ],
)
def test_every_part_of_a_record_is_chained(change):
    trail = _normal_trail()
    rewritten = list(trail.records)
    rewritten[2] = dataclasses.replace(rewritten[2], **change)
    assert not verify(rewritten).finish().ok


def test_a_removed_record_shows_as_missing_offsets():
    trail = _normal_trail()
    report = verify(trail.records[:3] + trail.records[4:]).finish()
    assert report.breaks[0].offset == 3
    assert "offsets 3..3 are missing" in report.breaks[0].reason


def test_a_rewritten_partition_with_records_in_another_order_breaks():
    trail = _normal_trail()
    swapped = list(trail.records)
    swapped[1], swapped[2] = (dataclasses.replace(swapped[2], offset=1), dataclasses.replace(swapped[1], offset=2))
    assert not verify(swapped).finish().ok


def test_a_forged_seal_fails_its_hmac():
    trail = _normal_trail()
    forged = make_seal(
        TOPIC,
        KeyRing({"k1": "the-attackers-guess-0123456789"}, "k1"),
        through=10,
        chain=b"\x01" * 32,
        genesis=0,
        log_start=0,
        sealer="x",
    )
    trail.append_seal(forged)
    report = verify(trail.records).finish()
    assert [(b.offset, "does not verify" in b.reason) for b in report.breaks] == [(13, True)]


def test_a_genuine_seal_with_an_altered_field_fails_its_hmac():
    trail = _normal_trail()
    genuine = delivery_pb2.AuditSeal.FromString(trail.records[5].value)
    genuine.through_offset = 3
    trail.append_seal(genuine)
    assert "does not verify" in verify(trail.records).finish().breaks[0].reason


def test_a_seal_from_another_topic_does_not_verify_here():
    trail = _normal_trail()
    through, head, genesis = verify(trail.records).head
    other = make_seal("other.audit.v1", RING, through=through, chain=head, genesis=genesis, log_start=0, sealer="t")
    trail.append_seal(other)
    assert not verify(trail.records).finish().ok


def test_a_record_marked_as_seal_that_is_not_one_is_a_break():
    trail = _normal_trail()
    trail.records.append(Rec(len(trail.records), b"\xff\xff\xff", None, [(SEAL_HEADER, SEAL_MARK)]))
    assert "not one" in verify(trail.records).finish().breaks[0].reason


def test_a_replayed_genuine_seal_is_harmless():
    trail = _normal_trail()
    trail.records.append(dataclasses.replace(trail.records[5], offset=len(trail.records)))
    report = verify(trail.records).finish()
    assert report.ok and report.seals_valid == 3


def test_retention_deleting_the_oldest_records_is_not_a_break():
    trail = _normal_trail()
    trail.seal()
    kept = trail.records[3:]  # offsets 0..2 gone: the first seal (at 5, through 4) covers the new log start
    report = verify(kept).finish()
    assert report.ok, report.breaks
    assert report.log_start == 3
    assert report.first_checked == 5  # records 3 and 4 are attested by the seal, not recomputed
    assert report.checked == 6 and report.unsealed == 0


def test_an_altered_record_after_retention_still_breaks():
    trail = _normal_trail()
    trail.seal()
    kept = [r if r.offset != 8 else dataclasses.replace(r, value=_event(77)) for r in trail.records[3:]]
    assert not verify(kept).finish().ok


def test_a_checkpoint_kept_outside_the_hub_catches_deletion_and_rewriting():
    trail = _normal_trail()
    checkpoint = parse_checkpoint(verify(trail.records).finish().checkpoint)
    trail.events(3)
    trail.seal()
    assert checkpoint[0] == 9

    intact = verify(trail.records)
    intact.check_checkpoint(*checkpoint)
    assert intact.finish().ok

    deleted = verify(trail.records[11:])  # everything through offset 10 deleted, the checkpoint's too
    deleted.check_checkpoint(*checkpoint)
    report = deleted.finish()
    assert [b.offset for b in report.breaks] == [9] and "deleted" in report.breaks[0].reason

    # Deleting up to the checkpoint's own record is not deleting anything after it.
    upto = verify(trail.records[10:])
    upto.check_checkpoint(*checkpoint)
    assert upto.finish().ok

    other = verify(trail.records)
    other.check_checkpoint(checkpoint[0], b"\x02" * 32)
    assert "differs" in other.finish().breaks[0].reason


@pytest.mark.parametrize("text", ["", "9", "9:zz", "-1:" + "00" * 32, "9:" + "00" * 31])
def test_bad_checkpoints_are_refused(text):
    with pytest.raises(ValueError):
        parse_checkpoint(text)


def test_two_sealers_seal_alike_and_do_not_seal_each_others_seals():
    trail = Trail().events(4)
    other = AuditChain(TOPIC, RING, 0)
    for record in trail.records:
        other.add(record)
    trail.seal()
    # The second sealer read the same records before the first seal landed: its seal covers the same offset.
    through, head, genesis = other.head
    trail.append_seal(make_seal(TOPIC, RING, through=through, chain=head, genesis=genesis, log_start=0, sealer="b"))
    assert trail.unsealed() == 0  # only seals since: nothing to seal
    report = verify(trail.records).finish()
    assert report.ok and report.seals_valid == 2


def test_a_sealer_that_finds_no_seal_to_continue_from_starts_a_new_chain():
    trail = _normal_trail()
    kept = trail.records[11:]  # offsets 0..10 and both seals gone: nothing covers the log start
    sealer = verify(kept)
    assert not sealer.anchored and sealer.unsealed()[0] == 2
    sealer.start_fresh()
    through, head, genesis = sealer.head
    assert (through, genesis) == (12, 11)
    seal = make_seal(TOPIC, RING, through=through, chain=head, genesis=genesis, log_start=11, sealer="t")
    kept.append(Rec(13, seal.SerializeToString(), None, [(SEAL_HEADER, SEAL_MARK)]))
    report = verify(kept).finish()
    assert report.ok and report.first_checked == 11 and report.checked == 2 and report.unsealed == 0


def test_a_seal_under_a_retired_key_is_reported_and_later_seals_cover_its_records():
    trail = Trail().events(3)
    trail.seal()  # k1
    trail.events(2)
    rotated = KeyRing({"k1": RING.keys["k1"], "k2": "audit-test-key-2-0123456789abcdef"}, "k2")
    trail.seal(rotated)
    after = KeyRing({"k2": rotated.keys["k2"]}, "k2")
    report = verify(trail.records, ring=after).finish()
    assert report.ok and report.seals_retired == 1 and report.seals_valid == 1
    assert report.sealed_through == 5 and report.checked == 5
    tampered = [r if r.offset != 1 else dataclasses.replace(r, value=_event(42)) for r in trail.records]
    assert not verify(tampered, ring=after).finish().ok


def test_after_a_break_later_changes_show_as_breaks_of_their_own():
    trail = _normal_trail()
    trail.seal()
    rewritten = [
        dataclasses.replace(r, value=_event(90 + r.offset)) if r.offset in (1, 12) else r for r in trail.records
    ]
    report = verify(rewritten).finish()
    assert [b.offset for b in report.breaks] == [0, 10]


def test_a_small_window_still_checks_seals_and_counts_unsealed_events():
    trail = Trail()
    for _ in range(6):
        trail.events(7)
        trail.seal()
    trail.events(3)
    report = verify(trail.records, window=10).finish()
    assert report.ok and report.seals_valid == 6 and report.checked == 45 and report.unsealed == 3


def test_record_digest_and_seal_marker():
    record = Rec(4, b"v")
    assert record_digest(record) != record_digest(dataclasses.replace(record, offset=5))
    assert record_digest(Rec(0, None)) != record_digest(Rec(0, b""))
    assert not is_seal(record) and is_seal(Rec(0, b"", None, [(SEAL_HEADER, SEAL_MARK)]))
