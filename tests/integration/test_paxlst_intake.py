"""The public PAXLST samples through the real hub: accepted with the right counts, answered once, and traced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from samples import GUIDE, astra_interchanges, sample

from services import client
from services.bus import Topics, make_consumer
from services.paxlst.reader import parse_paxlst, split_interchanges
from services.paxlst.writer import render_paxlst
from services.wire import intake_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

ACCEPTED, DUPLICATE = intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE


def _submit(hub, carrier: str, data: bytes) -> intake_pb2.PaxlstReceipts:
    return client.submit_paxlst(client.channel(hub.ingest_addr), hub.token("carrier", carrier), data)


def test_guide_examples_are_accepted_with_their_counts_and_answered_once(hub):
    first, second, third = split_interchanges(sample(GUIDE))
    counts = []
    for carrier, data in (("ZZ", first), ("ZZ", second), ("XZ", third)):
        reply = _submit(hub, carrier, data)
        assert reply.status == ACCEPTED, reply
        counts += [(r.status, r.passengers, r.crew) for r in reply.receipts]
    assert counts == [(ACCEPTED, 1, 0), (ACCEPTED, 0, 1), (ACCEPTED, 2, 0)]
    # Sent again, each message is a duplicate of the stored version.
    again = _submit(hub, "XZ", third)
    assert [r.status for r in again.receipts] == [DUPLICATE]


def test_astra_iapi_messages_are_accepted(hub):
    accepted = 0
    for data in astra_interchanges():
        if b"PAXLST:D" not in data:
            continue  # the government's CUSRES answers in the same sample are not carrier input
        carrier = parse_paxlst(data).messages[0].manifest.carrier  # the sample has CA and ZH flights
        reply = _submit(hub, carrier, data)
        assert reply.status == ACCEPTED, reply
        accepted += sum(r.passengers for r in reply.receipts)
    assert accepted > 0


def test_a_hit_traces_back_to_the_raw_message_that_raised_it(hub):
    entry = demo_watchlists()["FJI"][3]
    hub.load("FJI", [entry])
    from hubkit import flight, plant

    m = flight(["NAN", "APW"], number="221")
    plant(m, entry, "FJ221-P4")
    data = render_paxlst(m, interchange_ref="TRACE1")
    [receipt] = _submit(hub, "FJ", data).receipts
    [hit] = hub.hits("FJI", want=1, idle=20)
    assert hit.manifest_id == receipt.manifest_id and hit.traveller.passenger_ref == "FJ221-P4"

    consumer = make_consumer(hub.settings, None, "trace")
    consumer.subscribe([Topics(hub.settings.topic_prefix).raw])
    raw = {}
    for _ in range(50):
        for batch in consumer.poll(timeout_ms=200).values():
            raw.update({r.key.decode(): (r.value, dict(r.headers)) for r in batch})
        if hit.manifest_id in raw:
            break
    consumer.close()
    value, headers = raw[hit.manifest_id]
    assert headers["format"] == b"paxlst"
    assert value.startswith(b"UNH") and b"FJ221-P4" in value


def test_cli_submits_a_paxlst_file_and_names_segments_of_errors(hub, tmp_path):
    first, second, _ = split_interchanges(sample(GUIDE))
    good = tmp_path / "zz.edi"
    good.write_bytes(first + b"\n" + second)
    warned = tmp_path / "warned.txt"
    warned.write_bytes(first.replace(b"NAT+2+", b"NAT+2+QQ").replace(b"RFF+TN:", b"RFF+TN:X"))
    bad = tmp_path / "bad.txt"  # an unknown departure airport: the flight cannot be routed
    bad.write_bytes(first.replace(b"LOC+125+SYD", b"LOC+125+QQQ").replace(b"RFF+TN:", b"RFF+TN:Y"))
    env = {**os.environ, "APIHUB_TOPIC_PREFIX": hub.settings.topic_prefix}
    run = [sys.executable, "-m", "services.cli", "submit", "--server", hub.ingest_addr, "--json"]
    token = ["--token", hub.token("carrier", "ZZ")]

    ok = subprocess.run([*run, *token, str(good)], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    receipts = [json.loads(line) for line in ok.stdout.splitlines()]
    assert [(r["status"], r["passengers"], r["crew"]) for r in receipts] == [("accepted", 1, 0), ("accepted", 0, 1)]

    # An unknown nationality is screened without it, and the warning names the segment.
    accepted = subprocess.run([*run, *token, str(warned)], capture_output=True, text=True, env=env, timeout=120)
    assert accepted.returncode == 0, accepted.stderr
    [receipt] = [json.loads(line) for line in accepted.stdout.splitlines()]
    assert receipt["status"] == "accepted"
    [warning] = [w for w in receipt["warnings"] if w["code"] == "invalid_country"]
    assert warning["field"] == "travellers[0].nationality" and warning["segment"].endswith(" NAT")

    rejected = subprocess.run([*run, *token, str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert rejected.returncode == 1
    [receipt] = [json.loads(line) for line in rejected.stdout.splitlines()]
    [error] = receipt["errors"]
    assert error["code"] == "unknown_port" and error["field"] == "legs[0].origin"
    assert error["segment"].endswith(" LOC")
