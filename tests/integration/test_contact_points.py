"""Contact points through the real broker: sharing with owners, dispositions, and the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
from hubkit import flight, plant

from services import client
from services.wire import delivery_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def test_owner_gets_hits_only_under_an_arrangement_and_dispositions_are_audited(hub):
    entry = demo_watchlists()["AUS"][1]  # Australia's regional entry
    hub.load("AUS", [entry])
    shared = flight(["NAN", "APW"], carrier="FJ", number="221")  # Fiji and Samoa: parties with Australia
    plant(shared, entry, "FJ221-P1")
    not_shared = flight(["AKL", "RAR"], carrier="NZ", number="946")  # the Cook Islands are not a party
    plant(not_shared, entry, "NZ946-P1")
    hub.submit(shared)
    hub.submit(not_shared)

    [fiji] = hub.hits("FJI", want=1, idle=20)
    [australia] = hub.hits("AUS", want=1, idle=20)
    assert australia.hit_id == fiji.hit_id and australia.traveller.passenger_ref == "FJ221-P1"
    [cook] = hub.hits("COK", want=1, idle=20)
    assert cook.traveller.passenger_ref == "NZ946-P1"
    assert hub.hits("AUS", idle=2) == []  # the Rarotonga hit never reaches Australia

    chan = client.channel(hub.delivery_addr)
    reply = client.dispose(chan, hub.token("member", "FJI"), "FJI", fiji.hit_id, delivery_pb2.OUTCOME_FALSE_POSITIVE)
    assert reply.disposition.member == "FJI"
    with pytest.raises(grpc.RpcError) as err:  # Tonga has no port on this route: it never got the hit
        client.dispose(chan, hub.token("member", "TON"), "TON", fiji.hit_id, delivery_pb2.OUTCOME_TRUE_MATCH)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    env = {
        **os.environ,
        "APIHUB_TOPIC_PREFIX": hub.settings.topic_prefix,
        "APIHUB_KAFKA_BOOTSTRAP": hub.settings.kafka_bootstrap,
    }
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "--member", "FJI", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert {e["member"] for e in events} == {"FJI"}
    kinds = [(e["event"], e["hit_id"] or e["cursor"]) for e in events]
    assert ("enqueued", fiji.hit_id) in kinds and ("disposed", fiji.hit_id) in kinds
    assert any(kind == "acknowledged" for kind, _ in kinds)
    assert not any(entry.surname.lower() in line.lower() for line in out.stdout.splitlines())

    stats = subprocess.run(
        [sys.executable, "-m", "services.cli", "dispositions", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert stats.returncode == 0, stats.stderr
    [row] = [json.loads(line) for line in stats.stdout.splitlines()]
    assert row == {"reason": f"watchlist:AUS:{entry.entry_id}", "confirmed": 0, "refuted": 1, "precision": 0.0}
