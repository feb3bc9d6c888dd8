"""Intake cleaning and the per-carrier data-quality summary on a real broker: dirty manifests are stored cleaned
(the raw topic keeps the bytes as received), and `apihub carriers quality` reads the summary back from Kafka, after
the intake server that wrote it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services import client
from services.api_ingest.quality import read_quality
from services.api_ingest.server import IngestServer
from services.auth import issue_token
from services.bus import Topics, ensure_topics, read_to_end
from services.wire import intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic

pytestmark = pytest.mark.integration


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def _dirty(m: manifest_pb2.Manifest) -> manifest_pb2.Manifest:
    """Control, bidi and zero-width characters, an oversized surname, a nameless traveller, an unknown nationality
    and an arrival before the departure (UTC sent as local time across the date line)."""
    m.travellers[0].surname = "\u202eTAVOLA\x00\x1b"
    m.travellers[1].surname = "W" * 200_000
    m.travellers[2].surname = m.travellers[2].given_names = "\u200b"
    m.travellers[2].passenger_ref = "NONAME-3"
    m.travellers[3].nationality = "ZZZ"
    arrival = m.legs[0].scheduled_departure.ToDatetime(tzinfo=UTC) - timedelta(hours=13)
    m.legs[0].scheduled_arrival.CopyFrom(_ts(arrival))
    return m


def _submit(settings, address: str, m: manifest_pb2.Manifest) -> intake_pb2.Receipt:
    token = issue_token(settings.auth_secret, "carrier", m.carrier)
    [receipt] = client.submit(client.channel(address), token, [m])
    return receipt


def test_dirty_manifests_are_stored_cleaned_and_summarised_per_carrier(settings):
    ensure_topics(settings, ["FJI"])
    traffic = DemoTraffic(seed=41)
    dirty = _dirty(traffic.next_manifest(passengers=5))  # FJ 411
    dirty.message_ref = "QUALITY-DIRTY"
    late = traffic.next_manifest(passengers=2)  # FJ 911
    late.message_ref = "QUALITY-LATE"
    past = datetime.now(UTC) - timedelta(hours=2)
    for k, leg in enumerate(late.legs):  # departed two hours ago: received late
        leg.scheduled_departure.CopyFrom(_ts(past + timedelta(hours=4 * k)))
        leg.scheduled_arrival.CopyFrom(_ts(past + timedelta(hours=4 * k + 3)))
    clean = traffic.next_manifest(passengers=3)  # OL 761
    clean.message_ref = "QUALITY-CLEAN"

    server = IngestServer(settings).start()
    try:
        address = f"127.0.0.1:{server.port}"
        receipts = [_submit(settings, address, m) for m in (dirty, late, clean)]
    finally:
        server.stop(grace=1)
    assert [r.status for r in receipts] == [intake_pb2.RECEIPT_STATUS_ACCEPTED] * 3
    assert {(v.field, v.code) for v in receipts[0].warnings} >= {
        ("travellers[0].surname", "control_characters"),
        ("travellers[1].surname", "truncated"),
        ("travellers[2]", "no_usable_name"),
        ("travellers[3].nationality", "invalid_country"),
        ("legs[0].scheduled_arrival", "arrival_before_departure"),
    }

    topics = Topics(settings.topic_prefix)
    stored = {
        m.manifest_id: m
        for m in (manifest_pb2.Manifest.FromString(r.value) for r in read_to_end(settings, topics.manifests, "t"))
    }
    cleaned = stored[receipts[0].manifest_id]
    assert cleaned.travellers[0].surname == "TAVOLA" and len(cleaned.travellers[1].surname) == 70
    assert len(cleaned.travellers) == len(dirty.travellers) - 1 and cleaned.travellers[2].nationality == ""
    assert cleaned.legs[0].scheduled_arrival == dirty.legs[0].scheduled_arrival
    raw = {r.key.decode(): r.value for r in read_to_end(settings, topics.raw, "t")}
    assert raw[receipts[0].manifest_id] == dirty.SerializeToString()

    # The intake server is gone: the summary comes from Kafka, through the operators' command.
    env = {
        **os.environ,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    run = [sys.executable, "-m", "services.cli", "carriers", "quality"]
    done = subprocess.run([*run, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["carrier"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert set(rows) == {"FJ", "OL"}
    fj = rows["FJ"]
    assert (fj["manifests"], fj["late"], fj["with_warnings"]) == (2, 1, 1)
    assert fj["travellers"] == len(dirty.travellers) - 1 + len(late.travellers)
    assert {"control_characters", "truncated", "no_usable_name", "invalid_country"} <= set(fj["warnings"])
    assert fj["warnings"]["arrival_before_departure"] == 1
    assert (rows["OL"]["manifests"], rows["OL"]["late"], rows["OL"]["with_warnings"]) == (1, 0, 0)
    assert "TAVOLA" not in done.stdout and "NONAME" not in done.stdout  # codes and counts only

    text = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and text.stdout.startswith("FJ") and "no_usable_name 1" in text.stdout
    future = subprocess.run([*run, "--since", "2099-01-01", "--json"], capture_output=True, text=True, env=env)
    assert (future.returncode, future.stdout) == (0, "")
    wrong = subprocess.run([*run, "--since", "last tuesday"], capture_output=True, text=True, env=env)
    assert wrong.returncode == 2 and "give an age" in wrong.stderr and "Traceback" not in wrong.stderr
    assert [r.carrier for r in read_quality(settings)] == ["FJ", "OL"]
