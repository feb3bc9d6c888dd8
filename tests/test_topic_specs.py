"""Topic specs: every topic holding personal data has a bounded retention, replication follows the settings, and a
changed setting reaches topics that already exist (the last test, on the real broker)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from pydantic import ValidationError
from typer.testing import CliRunner

from services.bus import DAY_MS, Topics, apply_topic_specs, ensure_topics, make_admin, readable, topic_specs
from services.cli import app
from services.config import HubSettings
from services.directory import load_directory
from services.purge import KEPT, NOTES, RECORDS, TABLE, has_note, owned_topics, parse_before, strip_note
from services.wire import delivery_pb2

MEMBERS = ["FJI", "WSM"]


def _days(spec: dict) -> float | None:
    value = spec["configs"].get("retention.ms")
    return None if value is None else int(value) / DAY_MS


def test_every_topic_with_travellers_expires_and_audit_and_dispositions_are_bounded():
    # The finding: raw, manifests, hits and dead letters had no retention of their own (the broker's default),
    # audit and dispositions retention.ms -1 (forever).
    s = HubSettings()
    t = Topics(s.topic_prefix)
    specs = topic_specs(s, MEMBERS)
    travellers = [t.raw, t.manifests, t.hits, t.dead_letters, t.intake_index, t.deliveries, *map(t.outbox, MEMBERS)]
    assert {name: _days(specs[name]) for name in travellers} == dict.fromkeys(travellers, 30)
    assert (_days(specs[t.audit]), _days(specs[t.dispositions])) == (1826, 1826)
    # Members' current lists and rule files are configuration: compacted, never expired by time.
    for name in (t.watchlists, t.rules):
        assert specs[name]["configs"]["cleanup.policy"] == "compact" and _days(specs[name]) is None
    assert {specs[name]["configs"].get("cleanup.policy") for name in (t.intake_index, t.deliveries)} == {
        "compact,delete"
    }
    assert all(spec["configs"]["segment.ms"] == str(24 * 3600 * 1000) for spec in specs.values())
    assert "-1" not in {spec["configs"].get("retention.ms") for spec in specs.values()}


def test_retention_settings_reach_their_topics():
    s = HubSettings(
        traveller_retention_days=7,
        outbox_retention_days=14,
        audit_retention_days=-1,
        disposition_retention_days=400,
        topic_segment_hours=6,
    )
    t = Topics(s.topic_prefix)
    specs = topic_specs(s, ["FJI"])
    assert [_days(specs[n]) for n in (t.raw, t.manifests, t.hits)] == [7, 7, 7]
    assert [_days(specs[n]) for n in (t.outbox("FJI"), t.dead_letters)] == [14, 14]
    # Duplicate keys and delivery records outlive both the manifests and the outboxes they describe.
    assert [_days(specs[n]) for n in (t.intake_index, t.deliveries)] == [14, 14]
    assert specs[t.audit]["configs"]["retention.ms"] == "-1"
    assert _days(specs[t.dispositions]) == 400
    assert specs[t.raw]["configs"]["segment.ms"] == str(6 * 3600 * 1000)


@pytest.mark.parametrize(
    ("given", "factor", "insync"),
    [
        ({}, 1, 1),
        ({"kafka_replication_factor": 3}, 3, 2),
        ({"kafka_replication_factor": 3, "kafka_min_insync_replicas": 3}, 3, 3),
    ],
)
def test_every_topic_gets_the_replication_settings(given, factor, insync):
    specs = topic_specs(HubSettings(**given), MEMBERS)
    assert {spec["replication_factor"] for spec in specs.values()} == {factor}
    assert {spec["configs"]["min.insync.replicas"] for spec in specs.values()} == {str(insync)}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"APIHUB_TRAVELLER_RETENTION_DAYS": "0"}, "traveller_retention_days"),
        ({"APIHUB_OUTBOX_RETENTION_DAYS": "-1"}, "outbox_retention_days"),
        ({"APIHUB_AUDIT_RETENTION_DAYS": "0"}, "or -1 to keep until purged"),
        ({"APIHUB_KAFKA_REPLICATION_FACTOR": "0"}, "APIHUB_KAFKA_REPLICATION_FACTOR must be at least 1"),
        ({"APIHUB_KAFKA_REPLICATION_FACTOR": "2", "APIHUB_KAFKA_MIN_INSYNC_REPLICAS": "3"}, "between 0"),
    ],
)
def test_unusable_retention_and_replica_settings_are_refused(monkeypatch, env, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=says):
        HubSettings()


def test_notes_are_kept_shorter_only_when_they_expire_first():
    assert HubSettings().notes_kept_shorter  # 365 days of notes, 1826 of outcomes
    assert HubSettings(disposition_note_retention_days=30, disposition_retention_days=-1).notes_kept_shorter
    assert not HubSettings(disposition_note_retention_days=-1).notes_kept_shorter
    assert not HubSettings(disposition_note_retention_days=400, disposition_retention_days=400).notes_kept_shorter


def test_readable_values_say_days():
    assert readable("retention.ms", str(30 * DAY_MS)) == "2592000000 (30 days)"
    assert readable("segment.ms", str(6 * 3600 * 1000)) == "21600000 (6 hours)"
    assert readable("retention.ms", "-1") == "-1 (forever)"
    assert readable("retention.ms", None) == "(unset)"
    assert readable("cleanup.policy", "compact") == "compact"


def test_a_purge_covers_every_topic_the_hub_owns_and_keeps_configuration():
    s = HubSettings(topic_prefix="p1")
    t = Topics("p1")
    existing = set(topic_specs(s, MEMBERS)) | {"p1.outbox.XYZ.v1", "p10.raw.v1", "other.outbox.FJI.v1"}
    owned = owned_topics(s, MEMBERS, existing)
    assert owned[t.raw] == owned[t.audit] == owned[t.outbox("FJI")] == RECORDS
    assert owned[t.intake_index] == owned[t.deliveries] == TABLE
    assert owned[t.watchlists] == owned[t.rules] == KEPT
    assert owned[t.dispositions] == NOTES
    # The outbox of a member that has left the directory still holds hits: it is purged too; others' topics not.
    assert owned["p1.outbox.XYZ.v1"] == RECORDS
    assert "p10.raw.v1" not in owned and "other.outbox.FJI.v1" not in owned
    assert set(owned) == existing - {"p10.raw.v1", "other.outbox.FJI.v1"}
    # Notes kept as long as the dispositions: dispositions are purged like any other records.
    same = HubSettings(topic_prefix="p1", disposition_note_retention_days=-1)
    assert owned_topics(same, MEMBERS, existing)[t.dispositions] == RECORDS


def test_a_stripped_disposition_keeps_everything_but_its_note():
    d = delivery_pb2.Disposition(
        hit_id="H1", member="FJI", outcome=delivery_pb2.OUTCOME_TRUE_MATCH, note="seen at gate 3", reason_keys=["r:1"]
    )
    d.at.FromSeconds(1_700_000_000)
    stripped = delivery_pb2.Disposition.FromString(strip_note(d.SerializeToString()))
    assert stripped.note == ""
    d.ClearField("note")
    assert stripped == d
    assert has_note(b"\xff\xff not a disposition") and strip_note(b"\xff\xff not a disposition") is None
    assert not has_note(stripped.SerializeToString())


def test_purge_dates():
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert parse_before("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_before("2026-11-01T10:30:00Z", now) == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    assert parse_before("2026-11-01T10:30:00+12:00", now) == datetime(2026, 10, 31, 22, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="in the future"):
        parse_before("2026-12-07", now)
    with pytest.raises(ValueError, match="expected a date"):
        parse_before("last tuesday", now)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["purge"], "give either --before DATE or --expired-notes"),
        (["purge", "--before", "2020-01-01", "--expired-notes"], "give either --before DATE or --expired-notes"),
        (["purge", "--before", "2999-01-01"], "in the future"),
        (["purge", "--before", "soon"], "expected a date"),
    ],
)
def test_purge_refuses_unclear_requests_before_touching_kafka(args, says):
    result = CliRunner().invoke(app, args, env={"APIHUB_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output


# -- on the real broker ------------------------------------------------------------------------------------------


def _configs(settings: HubSettings, names: list[str], keys: list[str]) -> dict[str, dict[str, str]]:
    admin = make_admin(settings, "test-topic-specs")
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, keys) for name in names], config_filter="all"
        )["topic"]
    finally:
        admin.close()
    return {name: {key: described[name][key]["value"] for key in keys} for name in names}


def _await_retention(settings: HubSettings, wanted: dict[str, str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (
        shown := {n: c["retention.ms"] for n, c in _configs(settings, list(wanted), ["retention.ms"]).items()}
    ) != wanted:
        assert time.monotonic() < deadline, f"retention {shown}, expected {wanted}"
        time.sleep(0.2)


@pytest.mark.integration
def test_changed_retention_reaches_existing_topics_and_is_reported(settings):
    t = Topics(settings.topic_prefix)
    members = load_directory().codes  # as `apihub topics` below: the directory shipped with the hub
    created = ensure_topics(settings, members)
    assert set(created) == set(topic_specs(settings, members))
    keys = ["retention.ms", "min.insync.replicas", "segment.ms"]
    before = _configs(settings, [t.raw, t.audit, t.outbox("FJI")], keys)
    assert before[t.raw]["retention.ms"] == str(30 * DAY_MS)
    assert before[t.audit]["retention.ms"] == str(1826 * DAY_MS)

    # An operator shortens the travellers' retention and the audit's: the hub applies it on its next start.
    shorter = settings.model_copy(update={"traveller_retention_days": 7, "audit_retention_days": 400})
    report = apply_topic_specs(shorter, members)
    assert report.created == [] and report.problems == []
    assert report.changed[t.raw] == {"retention.ms": (str(30 * DAY_MS), str(7 * DAY_MS))}
    assert set(report.changed) == {t.raw, t.manifests, t.hits, t.audit}
    # The broker acknowledges a change before every broker answers with it (KRaft metadata propagation).
    week, audit = str(7 * DAY_MS), str(400 * DAY_MS)
    _await_retention(settings, {t.raw: week, t.manifests: week, t.hits: week, t.audit: audit})
    after = _configs(settings, [t.raw, t.audit, t.outbox("FJI")], keys)
    assert after[t.outbox("FJI")] == before[t.outbox("FJI")]  # its own setting did not change
    assert f"changed {t.raw}: retention.ms 2592000000 (30 days) -> 604800000 (7 days)" in report.lines()
    assert apply_topic_specs(shorter, members).lines() == []  # nothing left to change

    # `apihub topics` says the same; a replication factor the cluster's topics do not have is reported, not hidden.
    env = {
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        "APIHUB_TRAVELLER_RETENTION_DAYS": "30",
        "APIHUB_AUDIT_RETENTION_DAYS": "400",
        "APIHUB_KAFKA_REPLICATION_FACTOR": "2",
        "APIHUB_KAFKA_MIN_INSYNC_REPLICAS": "1",
    }
    said = CliRunner().invoke(app, ["topics"], env=env)
    assert said.exit_code == 1, said.output
    assert f"changed {t.manifests}: retention.ms 604800000 (7 days) -> 2592000000 (30 days)" in said.output
    assert f"not done: {t.raw}: replication factor 1, settings say 2" in said.output
    assert "Traceback" not in said.output
