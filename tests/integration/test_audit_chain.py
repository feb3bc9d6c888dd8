"""The audit trail's seals on a real broker (services.audit): a normal run is sealed and verifies; a forged seal,
history rewritten on the topic, and records deleted past a checkpoint are caught by `apihub audit verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from hubkit import flight, plant
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from services import client
from services.audit import SEAL_HEADER, SEAL_MARK, AuditSealer, is_seal, make_seal, verify_trail
from services.auth import KeyRing
from services.bus import Topics, ensure_topics, make_producer, read_to_end
from services.directory import load_directory
from services.wire import delivery_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, env=env, timeout=180
    )


def _write_events(settings, first: int, count: int) -> None:
    """Audit events as the router writes them (keyed by member), from a writer of their own."""
    producer = make_producer(settings, "test-audit-writer")
    try:
        for n in range(first, first + count):
            event = delivery_pb2.AuditEvent(event="enqueued", member="FJI", hit_id=f"h-{n}", detail="active")
            producer.send(Topics(settings.topic_prefix).audit, key=b"FJI", value=event.SerializeToString())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def _sealed_trail(settings) -> None:
    ensure_topics(settings, load_directory().codes)
    sealer = AuditSealer(settings)
    try:
        _write_events(settings, 0, 5)
        assert sealer.seal() is not None
        _write_events(settings, 5, 4)
        assert sealer.seal() is not None
        assert sealer.seal() is None  # nothing new: no seal
    finally:
        sealer.close()


def test_a_normal_run_is_sealed_and_verifies(hub):
    settings = hub.settings
    # Two router processes' sealers at once, while the router worker and the delivery servicer write events.
    sealers = [AuditSealer(settings, interval_s=0.3) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in sealers]
    for t in threads:
        t.start()
    entry = demo_watchlists()["AUS"][1]
    hub.load("AUS", [entry])
    shared = flight(["NAN", "APW"], carrier="FJ", number="231")
    plant(shared, entry, "FJ231-P1")
    hub.submit(shared)
    [fiji] = hub.hits("FJI", want=1, idle=20)  # the follower acknowledges: an "acknowledged" event
    client.dispose(
        client.channel(hub.delivery_addr),
        hub.token("member", "FJI"),
        "FJI",
        fiji.hit_id,
        delivery_pb2.OUTCOME_TRUE_MATCH,
    )
    for s in sealers:
        s.close()  # the last seal, as when the router stops
    for t in threads:
        t.join(10)

    report = verify_trail(settings)
    assert report.ok, report.breaks
    assert report.events >= 3 and report.checked == report.events
    assert report.seals >= 1 and report.seals_valid == report.seals
    assert report.unsealed == 0

    verified = _cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout.splitlines()[-1] and "checkpoint:" in verified.stdout
    listed = _cli(settings, "audit", "--json")  # the seals stay out of the event listing
    assert listed.returncode == 0, listed.stderr
    kinds = {json.loads(line)["event"] for line in listed.stdout.splitlines()}
    assert {"enqueued", "acknowledged", "disposed"} <= kinds


def test_a_forged_seal_is_caught(settings):
    _sealed_trail(settings)
    topic = Topics(settings.topic_prefix).audit
    end = verify_trail(settings).end
    forged = make_seal(
        topic,
        KeyRing({"default": "not-the-hubs-key-0123456789"}, "default"),
        through=end - 1,
        chain=b"\x00" * 32,
        genesis=0,
        log_start=0,
        sealer="attacker",
    )
    producer = make_producer(settings, "test-attacker")
    producer.send(topic, value=forged.SerializeToString(), headers=[(SEAL_HEADER, SEAL_MARK)]).get(timeout=30)
    producer.close(timeout=5)

    report = verify_trail(settings)
    assert [b.offset for b in report.breaks] == [end]
    verified = _cli(settings, "audit", "verify", "--json")
    assert verified.returncode == 1
    assert json.loads(verified.stdout)["breaks"][0]["offset"] == end


def _recreate(settings, alter_offset: int | None) -> None:
    """Rewrite the audit topic as someone with broker access could: read it, delete it, create it again and
    produce every record back (same keys, values, headers and timestamps), one event changed if asked."""
    topic = Topics(settings.topic_prefix).audit
    records = sorted(read_to_end(settings, topic, "test-rewriter"), key=lambda r: r.offset)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="test-rewriter")
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
                break
            except (TopicAlreadyExistsError, KafkaError):  # the deletion is still under way
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.close()
    producer = make_producer(settings, "test-rewriter")
    for r in records:
        value = r.value
        if r.offset == alter_offset:
            event = delivery_pb2.AuditEvent.FromString(value)
            event.detail = "withdrawn"
            value = event.SerializeToString()
        producer.send(topic, key=r.key, value=value, headers=list(r.headers), timestamp_ms=r.timestamp, partition=0)
    producer.flush(timeout=30)
    producer.close(timeout=5)


def test_history_rewritten_on_the_topic_is_caught(settings):
    _sealed_trail(settings)
    assert verify_trail(settings).ok
    _recreate(settings, alter_offset=None)  # the control: the same records again verify
    assert verify_trail(settings).ok
    _recreate(settings, alter_offset=7)
    report = verify_trail(settings)
    assert not report.ok
    assert report.breaks[0].offset <= 7 and "altered" in report.breaks[0].reason


def test_deleted_records_pass_as_retention_but_not_past_a_checkpoint(settings):
    _sealed_trail(settings)
    topic = Topics(settings.topic_prefix).audit
    first = verify_trail(settings)
    checkpoint = first.checkpoint  # through offset 9 (events 0..4, seal 5, events 6..9, seal 10)
    assert checkpoint.startswith("9:")
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="test-deleter")
    try:
        admin.delete_records({TopicPartition(topic, 0): 3})  # into the first sealed span: as retention would
        cut = verify_trail(settings)
        assert cut.ok and cut.log_start == 3 and cut.first_checked == 5  # 3 and 4: attested by the seal at 5
        assert _cli(settings, "audit", "verify", "--since", checkpoint).returncode == 0

        # A router started after the cut continues the chain from the seal after the log start.
        _write_events(settings, 9, 2)
        sealer = AuditSealer(settings)
        assert sealer.seal() is not None
        sealer.close()
        assert verify_trail(settings).ok

        admin.delete_records({TopicPartition(topic, 0): 11})  # past the checkpoint
    finally:
        admin.close()
    without = verify_trail(settings)
    assert without.ok and without.log_start == 11  # the trail alone cannot tell this from retention...
    verified = _cli(settings, "audit", "verify", "--since", checkpoint)
    assert verified.returncode == 1  # ...the checkpoint kept outside the hub can
    assert "deleted" in verified.stdout and "TAMPERED" in verified.stdout


def test_unsealed_events_past_the_grace_period_fail_verify(settings):
    ensure_topics(settings, load_directory().codes)
    _write_events(settings, 0, 3)  # no router sealing
    records = list(read_to_end(settings, Topics(settings.topic_prefix).audit, "test-reader"))
    assert len(records) == 3 and not any(is_seal(r) for r in records)
    assert _cli(settings, "audit", "verify").returncode == 0  # within the grace period
    late = _cli(settings, "audit", "verify", "--grace", "0")
    assert late.returncode == 1 and "NOT SEALED" in late.stdout
