"""`apihub backup DIR` and `apihub restore DIR`: the hub's state that lives only in Kafka, to files and back.

What a backup holds, one JSON-lines file per topic:

* ``watchlists.jsonl``, ``rules.jsonl``: members' current watchlists and rule files (compacted topics): the latest
  record of each owner; an owner whose latest record deletes its list has none.
* ``dispositions.jsonl``: every disposition on the topic (members' outcomes, with their free-text notes).
* ``audit.jsonl``: every record of the audit trail, its seals included, with the offsets they had.

Each line is one record: partition, offset, time stamp (ms), key, value and headers (bytes in base64), exactly as
stored. ``manifest.json``, written last, gives the format, the hub's version, the time, the topic of each file, its
record count and SHA-256, and what checking the audit trail found at backup time. A directory without it is an
incomplete backup. Backups hold personal data (watchlists, dispositions' notes): the directory is created 0700 and
every file 0600; keep them where only operators can read them, and delete them as the retention rules say.

What is not backed up, and why:

* Travellers' data in flight: raw, manifests, hits, members' outboxes, dead letters. They expire with their
  retention; a copy would escape it. After a restore into a fresh broker, carriers send again the flights still to
  come, and members receive their hits from then on (their cursors start afresh with their new outboxes).
* The intake index and the delivery records: tables about those records, meaningless without them. Restoring the
  index would answer a carrier's new submission of a flight DUPLICATE, and the flight would never be screened.
* The member directory, the sharing policy, the model and the key ring are files (APIHUB_DIRECTORY_FILE,
  APIHUB_SHARING_FILE, APIHUB_MODEL_PATH, APIHUB_AUTH_KEYS): "directory changes" are edits of that file, not Kafka
  records. Back them up with the deployment's configuration.

The audit trail. Its hash chain is defined over the offsets of the topic it is on, and its seals name that topic,
so a restored copy (new offsets, maybe a new topic prefix) cannot carry the old seals. So:

* ``apihub restore`` first checks the backup's trail as ``apihub audit verify`` would, from the records with their
  original offsets and against their original seals (run it with the hub's key ring: APIHUB_AUTH_KEYS or
  APIHUB_AUTH_SECRET). A break, or seals none of which verify with this ring, refuses the restore: restoring would
  re-seal, and so hide, what the break shows. ``--skip-audit`` restores the rest and leaves the trail in the backup.
* It then writes the events (not the old seals) in their order, keys, values and time stamps, and seals them at
  once, as a router would: on the restored hub ``apihub audit verify`` checks the restored trail from the restore
  on. The history before the restore is attested by the backup's own trail: the backup's manifest.json keeps the
  checkpoint (OFFSET:HASH) of the original trail, and the restore prints the new trail's checkpoint.

Restore checks everything before it writes anything: the manifest, each file's SHA-256 and record count, the audit
trail, and that the target topics are empty (``--force`` writes into topics that are not: the records are appended,
so the backup's watchlists and rule files become the current ones, and its dispositions and audit events follow
those already there). It creates the hub's topics where missing, as ``apihub topics`` does, under the settings'
topic prefix, which need not be the backup's. Only topic names, counts and offsets are printed: never a key or
value. Checksums catch a damaged or partial copy, not a deliberate change by someone who may write the backup:
only the audit trail's seals do that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from services.audit import AuditChain, AuditSealer, TrailReport, is_seal, seal_mac
from services.auth import KeyRing
from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.config import HubSettings
from services.errors import BrokerUnavailableError, HubError
from services.wire import delivery_pb2

FORMAT = "apihub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Reading a topic gives up after this long without progress (seconds); writing, after this long without an ack.
READ_TIMEOUT_S = 300.0
WRITE_TIMEOUT_S = 60.0
# Records sent before waiting for their acks, and between two progress lines.
WRITE_BATCH = 1000
PROGRESS_EVERY = 10_000


class BackupError(HubError):
    """A backup that cannot be written, or used as it is (incomplete, altered, a broken audit trail), or a restore
    that would overwrite: nothing was written to Kafka."""


@dataclass(frozen=True)
class Part:
    """One topic of a backup: its name in Topics (and the file's), and whether only each key's latest record counts."""

    name: str
    latest_per_key: bool
    what: str

    def topic(self, prefix: str) -> str:
        return getattr(Topics(prefix), self.name)


PARTS = (
    Part("watchlists", True, "members' current watchlists"),
    Part("rules", True, "members' current rule files"),
    Part("console_users", True, "the member console's officers (password hashes)"),
    Part("board_policies", True, "members' board policies for interactive checks"),
    Part("overrides", True, "members' board overrides"),
    Part("dispositions", False, "members' dispositions"),
    Part("audit", False, "the audit trail"),
)


@dataclass(frozen=True)
class StoredRecord:
    """One record as a backup keeps it: the attributes services.audit.record_digest reads, so a backup's audit trail
    is checked like the topic's."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, record: Any) -> StoredRecord:
        headers = [(name, bytes(value or b"")) for name, value in record.headers or []]
        return cls(record.partition, record.offset, record.timestamp, record.key, record.value, headers)

    def line(self) -> bytes:
        data = {
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": _b64(self.key),
            "value": _b64(self.value),
            "headers": [[name, _b64(value)] for name, value in self.headers],
        }
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> StoredRecord:
        data = json.loads(line)
        headers = [(str(name), _unb64(value) or b"") for name, value in data.get("headers") or []]
        key, value = _unb64(data["key"]), _unb64(data["value"])
        return cls(int(data["partition"]), int(data["offset"]), int(data["timestamp"]), key, value, headers)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def hub_version() -> str:
    try:
        return metadata.version("pacific-apihub")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- backup ---------------------------------------------------------------------------------------------------------


def backup(settings: HubSettings, directory: Path, say: Callable[[str], None] = print) -> dict:
    """Write a backup of every part into ``directory`` (new or empty), manifest.json last; return the manifest."""
    _prepare_directory(directory)
    consumer = make_consumer(settings, None, "apihub-backup")
    parts: dict[str, dict] = {}
    trail: TrailReport | None = None
    topic = "the hub's topics"
    try:
        for part in PARTS:
            topic = part.topic(settings.topic_prefix)
            bounds = _bounds(consumer, topic)
            if bounds is None:
                raise BackupError(f"there is no topic {topic}: is APIHUB_TOPIC_PREFIX={settings.topic_prefix} right?")
            say(f"{topic}: reading {sum(end - start for start, end in bounds.values())} records ({part.what})...")
            records: Iterable[StoredRecord] = _read(consumer, topic, bounds)
            chain = None
            if part.name == "audit":
                if set(bounds) != {0}:
                    raise BackupError(f"{topic} has {len(bounds)} partitions: the audit trail must have exactly one")
                chain = AuditChain(topic, KeyRing.of(settings), bounds[0][0])
                records = _fed(records, chain)
            if part.latest_per_key:
                records = _latest(records)
            count, digest = _write_part(directory / f"{part.name}.jsonl", records, topic, say)
            parts[part.name] = _part_entry(part, topic, count, digest, bounds)
            say(f"{topic}: {count} records -> {part.name}.jsonl")
            if chain is not None:
                trail = chain.finish()
    except KafkaError as exc:
        raise BrokerUnavailableError(
            f"backup stopped at {topic} ({type(exc).__name__}: {exc}); {directory} is incomplete (no {MANIFEST})"
        ) from None
    finally:
        consumer.close(autocommit=False)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hub_version": hub_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "topic_prefix": settings.topic_prefix,
        "parts": parts,
        "audit": trail.as_dict() if trail is not None else None,
    }
    with _private_file(directory / MANIFEST) as out:
        out.write(json.dumps(manifest, indent=2).encode() + b"\n")
    return manifest


def _part_entry(part: Part, topic: str, count: int, digest: str, bounds: dict[int, tuple[int, int]]) -> dict:
    return {
        "topic": topic,
        "file": f"{part.name}.jsonl",
        "records": count,
        "sha256": digest,
        "selection": "the latest record of each key" if part.latest_per_key else "every record",
        "partitions": {str(p): {"log_start": start, "end": end} for p, (start, end) in sorted(bounds.items())},
    }


def _prepare_directory(directory: Path) -> None:
    """A new or empty directory, 0700: an earlier backup is never overwritten."""
    try:
        if directory.exists():
            if not directory.is_dir():
                raise BackupError(f"{directory}: exists and is not a directory")
            if any(directory.iterdir()):
                raise BackupError(f"{directory}: not empty; a backup goes into a new or empty directory")
        else:
            directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise BackupError(f"{directory}: {exc.strerror or exc}") from None


def _private_file(path: Path):
    """A new file only its owner may read (0600), opened for writing; never an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError(f"{path}: {exc.strerror or exc}") from None
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _bounds(consumer, topic: str) -> dict[int, tuple[int, int]] | None:
    """(log start, end) of each partition of the topic; None when there is no such topic."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        return None
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    starts, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    return {tp.partition: (starts[tp], ends[tp]) for tp in tps}


def _read(consumer, topic: str, bounds: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
    """Every record of the topic below the end offsets in ``bounds``, partition by partition, in offset order."""
    for partition, (start, end) in sorted(bounds.items()):
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while consumer.position(tp) < end:
            polled = consumer.poll(timeout_ms=500).get(tp, [])
            if polled:
                deadline = time.monotonic() + READ_TIMEOUT_S
            elif time.monotonic() > deadline:
                raise BrokerUnavailableError(f"{topic}[{partition}] could not be read within {READ_TIMEOUT_S:.0f}s")
            for record in polled:
                if record.offset < end:
                    yield StoredRecord.of(record)


def _fed(records: Iterable[StoredRecord], chain: AuditChain) -> Iterator[StoredRecord]:
    for record in records:
        chain.add(record)
        yield record


def _latest(records: Iterable[StoredRecord]) -> list[StoredRecord]:
    """The latest record of each key, in offset order; none for a key whose latest record is a tombstone."""
    latest: dict[tuple[int, bytes | None], StoredRecord] = {}
    for record in records:
        latest[(record.partition, record.key)] = record
    kept = [r for r in latest.values() if r.value is not None]
    return sorted(kept, key=lambda r: (r.partition, r.offset))


def _write_part(path: Path, records: Iterable[StoredRecord], topic: str, say) -> tuple[int, str]:
    digest, count = hashlib.sha256(), 0
    with _private_file(path) as out:
        for record in records:
            line = record.line()
            out.write(line)
            digest.update(line)
            count += 1
            if count % PROGRESS_EVERY == 0:
                say(f"{topic}: {count} records...")
    return count, digest.hexdigest()


# -- restore --------------------------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    """What a restore wrote (or, on a dry run, would write): records per topic, and the restored audit trail."""

    written: dict[str, int] = field(default_factory=dict)
    seals_left: int = 0  # the backup's old seals, not written (the restore seals anew)
    backup_trail: dict | None = None  # the backup's trail as the restore checked it (TrailReport.as_dict)
    checkpoint: str = ""  # OFFSET:HASH of the restored trail's seal


def read_manifest(directory: Path) -> dict:
    """The backup's manifest.json, checked for format and version; BackupError otherwise."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(f"{path}: missing: not a backup, or an incomplete one (a backup writes it last)") from None
    except OSError as exc:
        raise BackupError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BackupError(f"{path}: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not an apihub backup manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(f"{path}: backup format {version!r}; this hub reads format {FORMAT_VERSION} and older")
    parts = manifest.get("parts")
    missing = [p.name for p in PARTS if not isinstance(parts, dict) or not isinstance(parts.get(p.name), dict)]
    if missing:
        raise BackupError(f"{path}: no entry for {', '.join(missing)}")
    return manifest


def check_files(directory: Path, manifest: dict, parts: Iterable[Part]) -> None:
    """Every part's file has the SHA-256 and record count the manifest says; BackupError naming the first that
    does not."""
    for part in parts:
        entry, path = manifest["parts"][part.name], directory / f"{part.name}.jsonl"
        digest, count = hashlib.sha256(), 0
        try:
            with path.open("rb") as f:
                for line in f:
                    digest.update(line)
                    count += 1
        except OSError as exc:
            raise BackupError(f"{path}: {exc.strerror or exc}") from None
        if digest.hexdigest() != entry.get("sha256"):
            raise BackupError(f"{path}: its SHA-256 differs from {MANIFEST}'s: the file was damaged or changed")
        if count != entry.get("records"):
            raise BackupError(f"{path}: {count} records, {MANIFEST} says {entry.get('records')}")


def stored_records(path: Path) -> Iterator[StoredRecord]:
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                yield StoredRecord.from_line(line)
            except (ValueError, KeyError, TypeError) as exc:
                raise BackupError(f"{path}: line {number}: not a backed-up record ({type(exc).__name__})") from None


def check_trail(directory: Path, manifest: dict, ring: KeyRing) -> TrailReport:
    """The backup's audit trail checked as `apihub audit verify` checks the topic: with its original offsets and
    topic name, against its seals. BackupError on a break, or when it has seals and none verifies with ``ring``."""
    entry = manifest["parts"]["audit"]
    log_start = int((entry.get("partitions") or {}).get("0", {}).get("log_start", 0))
    topic = str(entry.get("topic", ""))
    chain = AuditChain(topic, ring, log_start)
    signed = 0  # seals whose HMAC verifies with this ring, whether or not the records match them
    for record in stored_records(directory / "audit.jsonl"):
        chain.add(record)
        signed += is_seal(record) and _signed_by(ring, topic, record.value or b"")
    report = chain.finish()
    skip = "; --skip-audit restores the rest and leaves the trail in the backup"
    if report.seals and not signed:
        raise BackupError(
            f"none of the {report.seals} seals of the backup's audit trail verifies with this key ring: run the "
            f"restore with the hub's keys (APIHUB_AUTH_KEYS or APIHUB_AUTH_SECRET), or the seals were forged{skip}"
        )
    if report.breaks:
        first = report.breaks[0]
        raise BackupError(f"the backup's audit trail breaks at offset {first.offset}: {first.reason}{skip}")
    return report


def _signed_by(ring: KeyRing, topic: str, value: bytes) -> bool:
    try:
        seal = delivery_pb2.AuditSeal.FromString(value)
    except DecodeError:
        return False
    secret = ring.keys.get(seal.key_id)
    return secret is not None and hmac.compare_digest(seal_mac(topic, seal, secret), seal.hmac_sha256)


def restore(
    settings: HubSettings,
    directory: Path,
    members: list[str],
    *,
    force: bool = False,
    skip_audit: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> RestoreReport:
    """Check the backup in ``directory`` and write it into the settings' topics (see the module docstring)."""
    manifest = read_manifest(directory)
    parts = [p for p in PARTS if not (skip_audit and p.name == "audit")]
    made = manifest.get("created"), manifest.get("hub_version"), manifest.get("topic_prefix")
    say("backup of {} (hub {}, topic prefix {})".format(*made))
    check_files(directory, manifest, parts)
    say("checksums and record counts match")
    report = RestoreReport()
    if not skip_audit:
        trail = check_trail(directory, manifest, KeyRing.of(settings))
        report.backup_trail = trail.as_dict()
        say(
            f"the backup's audit trail verifies: {trail.events} events, {trail.seals_valid} seals checked"
            + (f", {trail.unsealed} events after the last seal" if trail.unsealed else "")
        )
    targets = {p.name: p.topic(settings.topic_prefix) for p in parts}
    try:
        _check_targets(settings, members, targets, force=force, dry_run=dry_run)
        if dry_run:
            report.written = {targets[p.name]: int(manifest["parts"][p.name]["records"]) for p in parts}
            if report.backup_trail is not None:  # events only: the old seals are not written
                report.written[targets["audit"]] = report.backup_trail["events"]
            return report
        _write_parts(settings, directory, parts, targets, report, say)
    except KafkaError as exc:
        raise BrokerUnavailableError(
            f"restore stopped ({type(exc).__name__}: {exc}); run it again with --force to complete it (records "
            "already written are written again: the latest watchlists and rules are the same, dispositions and audit "
            "events appear twice)"
        ) from None
    if not skip_audit:
        _seal(settings, report, say)
    return report


def _check_targets(
    settings: HubSettings, members: list[str], targets: dict[str, str], *, force: bool, dry_run: bool
) -> None:
    """Create the hub's topics where missing (not on a dry run); BackupError when a target holds records, unless
    ``force``."""
    if not dry_run:
        ensure_topics(settings, members)
    consumer = make_consumer(settings, None, "apihub-restore")
    try:
        filled = {}
        for topic in targets.values():
            bounds = _bounds(consumer, topic) or {}
            records = sum(end - start for start, end in bounds.values())
            if records:
                filled[topic] = records
    finally:
        consumer.close(autocommit=False)
    if filled and not force:
        held = ", ".join(f"{topic} ({n} records)" for topic, n in filled.items())
        raise BackupError(
            f"not empty: {held}. Restore into a fresh broker or another APIHUB_TOPIC_PREFIX, or pass --force to "
            "append the backup (its watchlists and rule files become the current ones)"
        )


def _write_parts(settings, directory: Path, parts: list[Part], targets: dict[str, str], report, say) -> None:
    producer = make_producer(settings, "apihub-restore")
    consumer = make_consumer(settings, None, "apihub-restore")
    try:
        for part in parts:
            topic = targets[part.name]
            partitions = consumer.partitions_for_topic(topic) or set()
            records: Iterable[StoredRecord] = stored_records(directory / f"{part.name}.jsonl")
            if part.name == "audit":
                records = _events_only(records, report)
            say(f"{topic}: writing {part.what}...")
            report.written[topic] = _send_all(producer, topic, records, partitions, say)
            say(f"{topic}: {report.written[topic]} records written")
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)


def _events_only(records: Iterable[StoredRecord], report: RestoreReport) -> Iterator[StoredRecord]:
    for record in records:
        if is_seal(record):
            report.seals_left += 1
        else:
            yield record


def _send_all(producer, topic: str, records: Iterable[StoredRecord], partitions: set[int], say) -> int:
    """Send the records as stored (same key, value, headers, time stamp; same partition where the topic has it),
    waiting for the broker's acks every WRITE_BATCH records; return how many."""
    pending, count = [], 0
    for record in records:
        pending.append(
            producer.send(
                topic,
                key=record.key,
                value=record.value,
                headers=list(record.headers),
                partition=record.partition if record.partition in partitions else None,
                timestamp_ms=record.timestamp,
            )
        )
        count += 1
        if len(pending) >= WRITE_BATCH:
            _acked(producer, pending)
        if count % PROGRESS_EVERY == 0:
            say(f"{topic}: {count} records written...")
    _acked(producer, pending)
    return count


def _acked(producer, pending: list) -> None:
    producer.flush(timeout=WRITE_TIMEOUT_S)
    for future in pending:
        future.get(timeout=WRITE_TIMEOUT_S)
    pending.clear()


def _seal(settings: HubSettings, report: RestoreReport, say) -> None:
    """Seal the restored trail now, as a router would at its next round (which does it if this fails)."""
    topic = Topics(settings.topic_prefix).audit
    sealer = AuditSealer(settings)
    try:
        seal = sealer.seal()
    except (KafkaError, HubError) as exc:
        say(f"{topic}: not sealed now ({type(exc).__name__}); a router seals it at its next round")
        return
    finally:
        sealer.close()
    if seal is not None:
        report.checkpoint = f"{seal.through_offset}:{seal.chain_sha256.hex()}"
        say(f"{topic}: sealed through offset {seal.through_offset}")
