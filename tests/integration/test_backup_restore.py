"""`apihub backup` and `apihub restore` on the real broker: a hub's watchlists, rules, dispositions and audit trail
backed up, restored under another topic prefix (a fresh set of topics), and a hub there screens the same manifests
with the same hits; a backup that was damaged or changed, or a restore over existing records, is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import uuid

import pytest
from hubkit import RunningHub, flight, plant
from typer.testing import CliRunner

from services import client
from services.audit import AuditSealer
from services.bus import Topics, ensure_topics, make_producer, read_to_end
from services.cli import app
from services.directory import load_directory
from services.wire import delivery_pb2, manifest_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

RULES = """owner: FJI
rules:
  - id: FJI-CREW-CHECK
    description: Crew members on flights through Fiji (test rule)
    category: test
    score: 0.4
    when:
      role: crew
"""
PARTS = ("watchlists", "rules", "dispositions", "audit")


def _cli(settings, *args: str, **env: str):
    environment = {
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        **env,
    }
    result = CliRunner().invoke(app, list(args), env=environment)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _manifests() -> list[manifest_pb2.Manifest]:
    """A flight through Fiji to Tonga with a traveller on Fiji's list, one on Tonga's, and a crew member (Fiji's
    rule); a second flight with Fiji's traveller only."""
    lists = demo_watchlists()
    first = flight(["NAN", "TBU"], number="501")
    plant(first, lists["FJI"][0], "FJ501-P90")
    plant(first, lists["TON"][2], "FJ501-P91")
    crew = first.travellers.add()
    crew.CopyFrom(first.travellers[0])
    crew.role, crew.passenger_ref, crew.surname = manifest_pb2.TRAVELLER_ROLE_CREW, "FJ501-C1", "Crewmember"
    second = flight(["SUV", "NAN"], number="503")
    plant(second, lists["FJI"][0], "FJ503-P90")
    return [first, second]


def _configure(hub: RunningHub) -> None:
    lists = demo_watchlists()
    assert hub.load("FJI", [lists["FJI"][0]]).entries == 1
    assert hub.load("TON", [lists["TON"][2]]).entries == 1
    chan = client.channel_for(hub.settings, hub.delivery_addr)
    assert client.load_rules(chan, hub.token("member", "FJI"), "FJI", RULES).rules == 1


def _screen(hub: RunningHub) -> dict[str, list]:
    """Each member's hits for the manifests: hit id, traveller, and every reason (source, id, owner, score)."""
    for manifest in _manifests():
        [receipt] = hub.submit(manifest)
        assert receipt.status == 1, receipt  # accepted, not duplicate: the intake index is not restored
    seen = {}
    for member, count in (("FJI", 4), ("TON", 3)):
        hits = hub.hits(member, want=count, idle=20)
        seen[member] = sorted(
            (
                h.hit_id,
                h.traveller.passenger_ref,
                sorted((r.source, r.id, r.owner, round(r.score, 9)) for r in h.reasons),
            )
            for h in hits
        )
    return seen


def _records(settings, part: str) -> list[tuple]:
    topic = getattr(Topics(settings.topic_prefix), part)
    return [(r.key, r.value, r.timestamp) for r in read_to_end(settings, topic, "test-backup-reader")]


def test_a_backup_restored_under_another_prefix_screens_the_same_manifests_alike(settings, tmp_path):
    hub = RunningHub(settings)
    try:
        _configure(hub)
        before = _screen(hub)
        assert len(before["FJI"]) == 4 and len(before["TON"]) == 3, before
        hit_id = before["FJI"][0][0]
        chan = client.channel_for(settings, hub.delivery_addr)
        outcome = delivery_pb2.OUTCOME_TRUE_MATCH
        client.dispose(chan, hub.token("member", "FJI"), "FJI", hit_id, outcome, note="seen at the gate")
    finally:
        hub.stop()
    sealer = AuditSealer(settings)
    assert sealer.seal() is not None
    sealer.close()

    backup_dir = tmp_path / "backup"
    made = _cli(settings, "backup", str(backup_dir))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    for name in ("manifest.json", *(f"{part}.jsonl" for part in PARTS)):
        assert stat.S_IMODE((backup_dir / name).stat().st_mode) == 0o600, name
    for part in PARTS:
        entry = manifest["parts"][part]
        data = (backup_dir / f"{part}.jsonl").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["records"] == len(data.splitlines())
    assert [manifest["parts"][p]["records"] for p in ("watchlists", "rules", "dispositions")] == [2, 1, 1]
    assert manifest["audit"]["ok"] and manifest["audit"]["checkpoint"]
    assert b"seen at the gate" not in made.stdout_bytes  # counts and names of topics only

    restored = settings.model_copy(update={"topic_prefix": f"r{uuid.uuid4().hex[:10]}"})
    done = _cli(restored, "restore", str(backup_dir))
    assert done.exit_code == 0, done.output
    assert "checksums and record counts match" in done.stdout
    assert "restored audit trail checkpoint: " in done.stdout
    for part in ("watchlists", "rules", "dispositions"):
        assert _records(restored, part) == _records(settings, part), part
    verify = _cli(restored, "audit", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    report = json.loads(verify.stdout)
    assert report["ok"] and report["unsealed"] == 0
    assert report["events"] == manifest["audit"]["events"]

    again = _cli(restored, "restore", str(backup_dir))
    assert again.exit_code == 2
    assert "not empty" in again.stderr and "--force" in again.stderr

    hub = RunningHub(restored)
    try:
        assert _screen(hub) == before
    finally:
        hub.stop()


def _small_backup(settings, tmp_path):
    """A backup of a watchlist and a sealed audit trail of three events, written without a whole hub."""
    ensure_topics(settings, load_directory().codes)
    topics = Topics(settings.topic_prefix)
    watchlist = delivery_pb2.Watchlist(owner="FJI", entries=[demo_watchlists()["FJI"][0]])
    producer = make_producer(settings, "test-backup-writer")
    producer.send(topics.watchlists, key=b"FJI", value=watchlist.SerializeToString())
    for n in range(3):
        event = delivery_pb2.AuditEvent(event="enqueued", member="FJI", hit_id=f"h-{n}", detail="active")
        producer.send(topics.audit, key=b"FJI", value=event.SerializeToString())
    producer.flush(timeout=30)
    producer.close(timeout=5)
    sealer = AuditSealer(settings)
    assert sealer.seal() is not None
    sealer.close()
    directory = tmp_path / "small"
    made = _cli(settings, "backup", str(directory))
    assert made.exit_code == 0, made.output
    return directory


def _copy(directory, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(directory, target)
    return target


def _restamp(directory, part: str) -> None:
    """Make manifest.json agree with a changed file, as someone changing a backup on purpose would."""
    manifest = json.loads((directory / "manifest.json").read_text())
    data = (directory / f"{part}.jsonl").read_bytes()
    manifest["parts"][part]["sha256"] = hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_damaged_or_changed_backup_is_refused_before_anything_is_written(settings, tmp_path):
    directory = _small_backup(settings, tmp_path)
    fresh = settings.model_copy(update={"topic_prefix": f"r{uuid.uuid4().hex[:10]}"})

    damaged = _copy(directory, tmp_path, "damaged")
    lines = (damaged / "watchlists.jsonl").read_bytes().replace(b'"offset":0', b'"offset":7')
    (damaged / "watchlists.jsonl").write_bytes(lines)
    refused = _cli(fresh, "restore", str(damaged))
    assert refused.exit_code == 2
    assert "watchlists.jsonl: its SHA-256 differs from manifest.json's" in refused.stderr

    # An audit event changed, the manifest made to agree: the trail's seal no longer matches.
    changed = _copy(directory, tmp_path, "changed")
    audit = (changed / "audit.jsonl").read_text().splitlines()
    record = json.loads(audit[1])
    event = delivery_pb2.AuditEvent.FromString(base64.b64decode(record["value"]))
    event.hit_id = "h-other"
    record["value"] = base64.b64encode(event.SerializeToString()).decode()
    audit[1] = json.dumps(record, separators=(",", ":"))
    (changed / "audit.jsonl").write_text("\n".join(audit) + "\n")
    _restamp(changed, "audit")
    refused = _cli(fresh, "restore", str(changed))
    assert refused.exit_code == 2
    assert "the backup's audit trail breaks at offset" in refused.stderr and "--skip-audit" in refused.stderr

    # Under another key ring no seal verifies: refused too, naming the settings.
    wrong_keys = _cli(fresh, "restore", str(directory), APIHUB_AUTH_SECRET="another-hubs-signing-secret-0123")
    assert wrong_keys.exit_code == 2
    assert "verifies with this key ring" in wrong_keys.stderr

    incomplete = _copy(directory, tmp_path, "incomplete")
    (incomplete / "manifest.json").unlink()
    refused = _cli(fresh, "restore", str(incomplete))
    assert refused.exit_code == 2 and "incomplete" in refused.stderr

    dry = _cli(fresh, "restore", "--dry-run", str(directory))
    assert dry.exit_code == 0, dry.output
    assert "a restore would write 4 records" in dry.stdout  # the watchlist and 3 audit events (not the old seal)
    # Nothing of it reached the fresh prefix: no topic was even created.
    assert Topics(fresh.topic_prefix).watchlists not in _topics(fresh)

    # The rest restores without the changed trail, which stays in the backup.
    partial = _cli(fresh, "restore", "--skip-audit", str(changed))
    assert partial.exit_code == 0, partial.output
    assert len(_records(fresh, "watchlists")) == 1 and _records(fresh, "audit") == []

    # --force appends to topics that hold records: the trail too, sealed anew.
    forced = _cli(fresh, "restore", "--force", str(directory))
    assert forced.exit_code == 0, forced.output
    assert len(_records(fresh, "watchlists")) == 2
    verify = _cli(fresh, "audit", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    assert json.loads(verify.stdout)["events"] == 3

    again = _cli(settings, "backup", str(directory))
    assert again.exit_code == 2 and "not empty" in again.stderr


def _topics(settings) -> set[str]:
    from services.bus import make_admin

    admin = make_admin(settings, "test-backup-admin")
    try:
        return set(admin.list_topics())
    finally:
        admin.close()
