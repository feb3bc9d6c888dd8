"""`apihub purge`: delete what is older than a date from every topic the hub owns.

Retention (services.bus.topic_specs, APIHUB_*_RETENTION_DAYS) expires data by itself; a purge deletes earlier:
after a retention was shortened, on a data-protection request, or daily for dispositions' notes
(`apihub purge --expired-notes`). How, per kind of topic:

* Delete-policy topics (raw, manifests, hits, outboxes, dead letters, audit; dispositions too when their notes
  are kept as long as they are): KafkaAdminClient.delete_records up to the first offset stamped at or after the
  date (ListOffsets by time stamp, as KafkaConsumer.offsets_for_times). What lies below becomes unreadable at once:
  the partition's log start moves there.
* Tables (compact,delete: the intake index, delivery records): a tombstone for every key whose latest record is
  older than the date, so every process's in-memory table (bus.TableReader) forgets it, then delete_records as
  above. A key written again between the purge's read and its tombstone gets that write back: the purge reads
  what arrived meanwhile and re-publishes it after the tombstone.
* Dispositions, when their notes are kept shorter than the outcomes (APIHUB_DISPOSITION_NOTE_RETENTION_DAYS below
  APIHUB_DISPOSITION_RETENTION_DAYS): every disposition older than the date is re-published without its note (same
  key, partition, headers and time stamp, so the outcome keeps its own retention), the newer ones below the last
  of them are re-published unchanged, and only once the broker has acknowledged all of them are the originals
  deleted with delete_records. The copy keeps hit id, member, outcome, time and reasons: the precision report and
  the labels read it as before (a copy has the original's time, so "latest per member" is unchanged).
* Compacted configuration (watchlists, rules) is not purged: members' current lists and rule files, not
  travellers; deleting them would stop screening. A new load replaces them and compaction drops the old versions.

Nothing else in the hub needs to stop. A consumer whose position or committed offset is below a new log start (a
member's cursor on its outbox, a webhook dispatcher, a profiler or router behind) resumes at the log start
(auto_offset_reset=earliest): what was purged is simply never read. The purge names the members whose
unacknowledged hits it deleted.

Only topic names, counts and offsets are printed: never a key or a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import OffsetSpec, OffsetTimestamp
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from services.bus import Topics, make_admin, make_consumer, make_producer, topic_specs
from services.config import HubSettings
from services.errors import BrokerUnavailableError
from services.wire import delivery_pb2

# How a topic is purged (see the module docstring).
RECORDS, TABLE, NOTES, KEPT = "records", "table", "notes", "kept"
# Reading a table or the dispositions to their end gives up after this long.
READ_TIMEOUT_S = 300.0
# How long the purge waits for the broker to acknowledge what it writes (tombstones, re-published dispositions).
WRITE_TIMEOUT_S = 60.0


@dataclass
class TopicPurge:
    """What a purge did (or, on a dry run, would do) to one topic: counts and offsets only."""

    topic: str
    how: str
    deleted: int = 0  # records below the new log starts
    tombstones: int = 0  # keys whose latest record was older (tables)
    stripped: int = 0  # dispositions re-published without their note
    republished: int = 0  # records re-published unchanged (newer dispositions below the cut; table keys rewritten)
    older: int = 0  # records stamped before the date (dispositions: what labels lose)
    starts: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (log start before, after)
    cursors: list[str] = field(default_factory=list)  # members whose unacknowledged hits went

    def summary(self, dry_run: bool) -> str:
        if self.how == KEPT:
            return f"{self.topic}: kept (members' current configuration, not travellers)"
        verb = "would delete" if dry_run else "deleted"
        said = f"{self.topic}: {verb} {self.deleted} records"
        if self.how == TABLE:
            said += f", {'would write' if dry_run else 'wrote'} {self.tombstones} tombstones"
        if self.how == NOTES:
            said += f" after re-publishing {self.stripped} without their note and {self.republished} unchanged"
        moved = [f"{p}: {a}->{b}" for p, (a, b) in sorted(self.starts.items()) if b > a]
        if moved:
            said += f"; log start {', '.join(moved)}"
        return said


@dataclass
class Purge:
    """One purge: the clients it uses and what it found. Run it with purge()."""

    settings: HubSettings
    before_ms: int
    dry_run: bool
    admin: KafkaAdminClient
    consumer: KafkaConsumer
    producer: KafkaProducer | None = None

    def writer(self) -> KafkaProducer:
        if self.producer is None:
            self.producer = make_producer(self.settings, "apihub-purge")
        return self.producer

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close(timeout=10)
        self.consumer.close(autocommit=False)
        self.admin.close()


def owned_topics(settings: HubSettings, members: list[str], existing: set[str]) -> dict[str, str]:
    """Every existing topic the hub owns -> how it is purged: topic_specs' topics, and the outboxes of members
    that have left the directory."""
    specs = topic_specs(settings, members)
    t = Topics(settings.topic_prefix)
    owned: dict[str, str] = {}
    for name, spec in specs.items():
        if name not in existing:
            continue
        policy = spec["configs"].get("cleanup.policy", "delete")
        if policy == "compact":
            owned[name] = KEPT
        elif "compact" in policy:
            owned[name] = TABLE
        elif name == t.dispositions and settings.notes_kept_shorter:
            owned[name] = NOTES
        else:
            owned[name] = RECORDS
    for name in sorted(existing - set(owned)):
        if t.outbox_member(name):
            owned[name] = RECORDS
    return owned


def purge(
    settings: HubSettings,
    members: list[str],
    before: datetime,
    *,
    dry_run: bool = False,
    notes_only: bool = False,
    say: Callable[[str], None] = print,
) -> list[TopicPurge]:
    """Delete what is older than ``before`` from every topic the hub owns (see the module docstring); with
    ``notes_only``, only strip the notes of older dispositions. Says progress and a summary per topic; raises
    BrokerUnavailableError if the broker fails (what was done before stays done and a new run completes it)."""
    before_ms = int(before.timestamp() * 1000)
    admin = make_admin(settings, "apihub-purge")
    try:
        consumer = make_consumer(settings, None, "apihub-purge")
    except BaseException:
        admin.close()
        raise
    job = Purge(settings, before_ms, dry_run, admin, consumer)
    done: list[TopicPurge] = []
    topic = "the hub's topics"
    try:
        owned = owned_topics(settings, members, set(admin.list_topics()))
        if notes_only:
            dispositions = Topics(settings.topic_prefix).dispositions
            owned = {name: how for name, how in owned.items() if name == dispositions and how == NOTES}
        for topic, how in owned.items():
            say(f"{topic}: {'looking' if dry_run else 'purging'} ({how})...")
            result = TopicPurge(topic, how)
            if how != KEPT:
                _purge_topic(job, result)
            say(result.summary(dry_run))
            for line in result.cursors:
                say(f"  {line}")
            done.append(result)
    except KafkaError as exc:
        raise BrokerUnavailableError(
            f"purge stopped at {topic} ({type(exc).__name__}: {exc}); what was done stays done, run it again"
        ) from None
    finally:
        job.close()
    return done


def _purge_topic(job: Purge, result: TopicPurge) -> None:
    partitions = sorted(job.consumer.partitions_for_topic(result.topic) or ())
    tps = [TopicPartition(result.topic, p) for p in partitions]
    cuts = _cuts(job.admin, tps, job.before_ms)
    for tp in tps:
        start, cut, end = cuts[tp]
        if result.how == TABLE:
            cut = _tombstone_stale(job, tp, start, cut, end, result)
        elif result.how == NOTES:
            cut = _strip_notes(job, tp, start, end, result)
        else:
            result.older += cut - start
        if result.topic.startswith(f"{job.settings.topic_prefix}.outbox."):
            result.cursors += _cursors_behind(job, tp, start, cut)
        result.deleted += cut - start
        result.starts[tp.partition] = (start, cut)
        if cut > start and not job.dry_run:
            job.admin.delete_records({tp: cut})


def _cuts(admin: KafkaAdminClient, tps: list[TopicPartition], before_ms: int) -> dict[TopicPartition, tuple]:
    """(log start, first offset stamped at or after before_ms (the end if none), end) of each partition."""
    starts = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
    ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
    at = admin.list_partition_offsets(dict.fromkeys(tps, OffsetTimestamp(before_ms)))
    cuts = {}
    for tp in tps:
        start, end = starts[tp].offset, ends[tp].offset
        found = at[tp].offset if at[tp].offset >= 0 else end
        cuts[tp] = (start, min(max(found, start), end), end)
    return cuts


def _read(consumer: KafkaConsumer, tp: TopicPartition, start: int, end: int) -> Iterator:
    """The records of one partition in [start, end), in order (compacted gaps skipped)."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    deadline = time.monotonic() + READ_TIMEOUT_S
    while consumer.position(tp) < end:
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(f"{tp.topic}[{tp.partition}] could not be read within {READ_TIMEOUT_S:.0f}s")
        for record in consumer.poll(timeout_ms=500).get(tp, []):
            if record.offset >= end:
                return
            yield record


def _tombstone_stale(job: Purge, tp: TopicPartition, start: int, cut: int, end: int, result: TopicPurge) -> int:
    """Tombstones for the keys whose latest record is older than the date; the cut, lowered if needed so that no
    key's current record stamped after the date is deleted."""
    latest: dict[bytes, tuple[int, int, bool]] = {}  # key -> (offset, time stamp, has a value)
    for record in _read(job.consumer, tp, start, end):
        if record.key is not None:
            latest[record.key] = (record.offset, record.timestamp, record.value is not None)
    stale = [key for key, (_, stamp, alive) in latest.items() if alive and stamp < job.before_ms]
    current = [offset for offset, stamp, alive in latest.values() if alive and stamp >= job.before_ms]
    cut = min([cut, *current])
    result.tombstones += len(stale)
    if job.dry_run or not stale:
        return cut
    producer = job.writer()
    sent = [producer.send(tp.topic, key=key, value=None, partition=tp.partition) for key in stale]
    producer.flush(timeout=WRITE_TIMEOUT_S)
    written = {key: future.get(timeout=WRITE_TIMEOUT_S).offset for key, future in zip(stale, sent, strict=True)}
    result.republished += _restore_overwritten(job, tp, end, written)
    return cut


def _restore_overwritten(job: Purge, tp: TopicPartition, end: int, tombstones: dict[bytes, int]) -> int:
    """Re-publish the values written for a tombstoned key after the purge read the table and before its tombstone
    (a live process wrote it meanwhile): the tombstone must not undo a new write. Returns how many."""
    if not tombstones:
        return 0
    newer: dict[bytes, object] = {}
    for record in _read(job.consumer, tp, end, max(tombstones.values()) + 1):
        at = tombstones.get(record.key)
        if at is None or record.offset == at:
            continue
        if record.offset < at and record.value is not None:
            newer[record.key] = record
        elif record.offset > at:
            newer.pop(record.key, None)  # written after the tombstone: it stands by itself
    producer = job.writer()
    sent = [
        producer.send(tp.topic, key=r.key, value=r.value, partition=tp.partition, headers=list(r.headers or []))
        for r in newer.values()
    ]
    producer.flush(timeout=WRITE_TIMEOUT_S)
    for future in sent:
        future.get(timeout=WRITE_TIMEOUT_S)
    return len(sent)


def has_note(value: bytes | None) -> bool:
    """Whether a dispositions record has something to strip: a note, or no readable disposition at all."""
    try:
        return value is None or bool(delivery_pb2.Disposition.FromString(value).note)
    except DecodeError:
        return True


def strip_note(value: bytes | None) -> bytes | None:
    """A disposition without its note (None when the record is no disposition: it is dropped, not kept)."""
    if value is None:
        return None
    try:
        disposition = delivery_pb2.Disposition.FromString(value)
    except DecodeError:
        return None
    disposition.ClearField("note")
    return disposition.SerializeToString()


def _strip_notes(job: Purge, tp: TopicPartition, start: int, end: int, result: TopicPurge) -> int:
    """Re-publish older dispositions without their note, and the newer ones below them unchanged; return the cut
    (one past the last older disposition that still had a note), to delete the originals below it."""
    records = list(_read(job.consumer, tp, start, end))
    older = [r for r in records if r.timestamp < job.before_ms]
    result.older += len(older)
    dirty = [r for r in older if has_note(r.value)]
    if not dirty:
        return start
    cut = dirty[-1].offset + 1
    copies = []
    for r in records:
        if r.offset >= cut:
            break
        value = strip_note(r.value) if r.timestamp < job.before_ms else r.value
        if value is None:
            continue  # no disposition (undecodable): nothing to keep
        copies.append((r, value))
        if r.timestamp < job.before_ms:
            result.stripped += 1
        else:
            result.republished += 1
    if job.dry_run:
        return cut
    producer = job.writer()
    sent = [
        producer.send(
            tp.topic,
            key=r.key,
            value=value,
            partition=tp.partition,
            headers=list(r.headers or []),
            timestamp_ms=r.timestamp,
        )
        for r, value in copies
    ]
    producer.flush(timeout=WRITE_TIMEOUT_S)
    for future in sent:  # every copy is on the broker before any original goes
        future.get(timeout=WRITE_TIMEOUT_S)
    return cut


def _cursors_behind(job: Purge, tp: TopicPartition, start: int, cut: int) -> list[str]:
    """Members (and webhook dispatchers) whose acknowledged cursor is below the new log start of their outbox."""
    if cut <= start:
        return []
    t = Topics(job.settings.topic_prefix)
    member = t.outbox_member(tp.topic) or "?"
    groups = {t.member_group(member): "cursor", t.webhook_group(member): "webhook cursor"}
    try:
        # Each of the member's tools (`hits follow --reader`, the console) has a cursor of its own.
        readers = t.member_group(member, "-")[: -len("-")]
        for found in job.admin.list_groups():
            group = str(found.get("group_id", ""))
            if group.startswith(readers):
                groups[group] = f"cursor of reader {group[len(readers) :]}"
        committed = job.admin.list_group_offsets({group: [tp] for group in groups})
    except KafkaError as exc:
        return [f"{member}: cursors not read ({type(exc).__name__}); any below {cut} resumes at {cut}"]
    lines = []
    for group, what in groups.items():
        found = committed.get(group, {}).get(tp)
        acked = found.offset if found is not None and found.offset >= 0 else None
        if acked is None and what != "cursor":
            continue  # no webhook, or a reader that never acknowledged: nothing taken from the contact point
        if acked is None or acked < cut:
            lost = cut - max(acked if acked is not None else start, start)
            was = "never acknowledged" if acked is None else f"{what} {acked}"
            lines.append(
                f"{member}: {was} is below the new log start {cut}: resumes there ({lost} unacknowledged hits purged)"
            )
    return lines


def labels_note(results: list[TopicPurge], settings: HubSettings, before: datetime) -> str | None:
    """What becomes of the model labels drawn from the purged dispositions (services.profiler.labels)."""
    dispositions = Topics(settings.topic_prefix).dispositions
    older = sum(r.older for r in results if r.topic == dispositions)
    if not older:
        return None
    kept = any(r.topic == dispositions and r.how == NOTES for r in results)
    outcome = (
        "their outcomes stay on the dispositions topic without notes (APIHUB_DISPOSITION_RETENTION_DAYS), but "
        if kept
        else ""
    )
    return (
        f"Model labels: {older} dispositions are older than {before.isoformat()}; {outcome}the hits and manifests "
        "they were drawn from are purged, so they are no longer available for the next training (`apihub model "
        "labels` and `model train --dispositions` count them as hit or manifest missing). A model artefact trained "
        "before keeps what it learned from them until it is retrained."
    )


def parse_before(text: str, now: datetime | None = None) -> datetime:
    """--before: an ISO date (midnight UTC) or date and time (UTC unless it says otherwise), in the past."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--before {text!r}: expected a date like 2026-01-31 or 2026-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if when > now:
        raise ValueError(f"--before {text}: in the future (that would delete what is arriving now)")
    return when
