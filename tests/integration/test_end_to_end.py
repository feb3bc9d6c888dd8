"""The walking skeleton end to end through a real broker: manifest in, hit out at the right contact point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import grpc
import pytest
from hubkit import flight, plant

from services import client
from services.directory import load_directory
from services.wire import manifest_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def test_watchlisted_passenger_reaches_members_with_jurisdiction_only(hub):
    entry = demo_watchlists()["FJI"][0]
    assert hub.load("FJI", [entry]).entries == 1
    m = flight(["SYD", "NAN", "TBU"])
    plant(m, entry, "FJ911-P99")
    [receipt] = hub.submit(m)
    assert receipt.status == 1, receipt

    for member in ("FJI", "TON", "AUS"):
        [hit] = hub.hits(member, want=1, idle=20)
        assert hit.recipient == member
        assert hit.manifest_id == receipt.manifest_id
        assert hit.traveller.passenger_ref == "FJ911-P99"
        assert hit.flight.route == ["SYD", "NAN", "TBU"]
        [reason] = hit.reasons
        assert (reason.source, reason.id, reason.owner) == (2, entry.entry_id, "FJI")
        assert entry.surname.lower() not in reason.explanation.lower()
    # Samoa has no port on this route: its outbox stays empty.
    assert hub.hits("WSM", idle=2) == []


def test_acknowledged_hits_are_not_delivered_again_and_outboxes_are_private(hub):
    entry = demo_watchlists()["WSM"][1]
    hub.load("WSM", [entry])
    m = flight(["APW", "NAN"], carrier="OL", number="761")
    plant(m, entry, "OL761-P7")
    hub.submit(m)
    first = hub.hits("WSM", want=1, idle=20)
    assert [h.traveller.passenger_ref for h in first] == ["OL761-P7"]
    assert hub.hits("WSM", idle=2) == []  # resumed after the acknowledged cursor

    chan = client.channel(hub.delivery_addr)
    with pytest.raises(grpc.RpcError) as err:
        client.Follower(chan, hub.token("member", "FJI"), "WSM").follow(lambda d: None, idle_exit=1)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_cli_submit_and_follow_through_the_real_hub(hub, tmp_path):
    entry = demo_watchlists()["TON"][2]
    csv = tmp_path / "ton.csv"
    csv.write_text(
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,"
        "document_issuer,category,owner\n"
        f"{entry.entry_id},{entry.surname},{entry.given_names},{entry.date_of_birth.year:04d}-"
        f"{entry.date_of_birth.month:02d}-{entry.date_of_birth.day:02d},,{entry.nationality},"
        f"{entry.document_number},{entry.nationality},trafficking,TON\n"
    )
    m = flight(["NAN", "TBU"], number="211")
    plant(m, entry, "FJ211-P1")
    manifest_file = tmp_path / "m.json"
    from google.protobuf import json_format

    manifest_file.write_text(json_format.MessageToJson(m))
    bad = tmp_path / "bad.json"
    bad_manifest = manifest_pb2.Manifest()
    bad_manifest.CopyFrom(m)
    bad_manifest.flight_number = ""  # no flight: rejected (a missing surname is only a warning)
    bad.write_text(json_format.MessageToJson(bad_manifest))

    env = {
        **os.environ,
        "APIHUB_TOPIC_PREFIX": hub.settings.topic_prefix,
        "APIHUB_KAFKA_BOOTSTRAP": hub.settings.kafka_bootstrap,
    }

    def apihub(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    loaded = apihub(
        "watchlist",
        "load",
        "--server",
        hub.delivery_addr,
        "--member",
        "TON",
        "--token",
        hub.token("member", "TON"),
        str(csv),
    )
    assert loaded.returncode == 0, loaded.stderr
    sub = apihub(
        "submit",
        "--server",
        hub.ingest_addr,
        "--token",
        hub.token("carrier", "FJ"),
        "--json",
        str(manifest_file),
    )
    assert sub.returncode == 0, sub.stderr
    [receipt] = [json.loads(line) for line in sub.stdout.splitlines()]
    assert receipt["status"] == "accepted" and receipt["passengers"] == len(m.travellers)
    assert set(receipt) >= {"status", "manifest_id", "passengers", "crew", "errors", "warnings"}

    rejected = apihub("submit", "--server", hub.ingest_addr, "--token", hub.token("carrier", "FJ"), "--json", str(bad))
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["errors"][0]["field"] == "flight_number"

    follow = apihub(
        "hits",
        "follow",
        "--server",
        hub.delivery_addr,
        "--member",
        "TON",
        "--token",
        hub.token("member", "TON"),
        "--idle-exit",
        "8",
        "--json",
    )
    assert follow.returncode == 0, follow.stderr
    hits = [json.loads(line) for line in follow.stdout.splitlines()]
    assert [h["passenger"]["ref"] for h in hits] == ["FJ211-P1"]
    [hit] = hits
    assert hit["manifest_id"] == receipt["manifest_id"] and hit["recipient"] == "TON"
    assert hit["flight"]["origin"] == "NAN" and hit["flight"]["destination"] == "TBU"
    assert hit["reasons"][0]["source"] == "watchlist" and hit["reasons"][0]["id"] == entry.entry_id


def test_replayed_hits_and_a_router_restart_deliver_nothing_twice_and_lose_nothing(hub):
    from services.bus import Topics, make_consumer, make_producer
    from services.router.worker import RouterWorker

    entries = demo_watchlists()["TON"]
    hub.load("TON", list(entries[:3]))
    first = flight(["NAN", "TBU"], number="211")
    plant(first, entries[0], "FJ211-P1")
    hub.submit(first)
    [delivered] = hub.hits("TON", want=1, idle=20)

    # The router stops; hits raised meanwhile wait in Kafka.
    router = hub.workers[1]
    router.stop()
    hub.threads[1].join(20)
    router.close()
    second = flight(["NAN", "TBU"], number="213")
    plant(second, entries[1], "FJ213-P1")
    hub.submit(second)

    # A profiler replay re-sends every hit record it produced (a crash between flush and commit).
    topics = Topics(hub.settings.topic_prefix)
    reader = make_consumer(hub.settings, None, "replay-reader")
    reader.subscribe([topics.hits])
    records = []
    for _ in range(100):
        records += [r for batch in reader.poll(timeout_ms=200).values() for r in batch]
        if sum(1 for r in records if b"FJ213-P1" in r.value) and sum(1 for r in records if b"FJ211-P1" in r.value):
            break
    reader.close()
    producer = make_producer(hub.settings, "replayer")
    for r in records:
        producer.send(topics.hits, key=r.key, value=r.value)
    producer.flush(timeout=30)
    producer.close()

    restarted = RouterWorker(hub.settings, load_directory())
    hub.workers[1] = restarted
    hub.threads[1] = threading.Thread(target=restarted.run, daemon=True)
    hub.threads[1].start()
    after = hub.hits("TON", want=1, idle=30)
    assert [h.traveller.passenger_ref for h in after] == ["FJ213-P1"]
    assert hub.hits("TON", idle=3) == []  # the replayed FJ211 and FJ213 records were not delivered again
    assert delivered.traveller.passenger_ref == "FJ211-P1"


def test_a_watchlist_replaced_while_running_takes_effect_without_a_restart(hub):
    first, second = demo_watchlists()["WSM"][2:4]
    hub.load("WSM", [first])
    before = flight(["APW", "NAN"], carrier="OL", number="771")
    plant(before, first, "OL771-P1")
    plant(before, second, "OL771-P2")
    hub.submit(before)
    assert [h.traveller.passenger_ref for h in hub.hits("WSM", want=1, idle=20)] == ["OL771-P1"]

    hub.load("WSM", [second])  # the new list replaces the old one: first is off it, second on it
    after = flight(["APW", "NAN"], carrier="OL", number="773")
    plant(after, first, "OL773-P1")
    plant(after, second, "OL773-P2")
    hub.submit(after)
    assert [h.traveller.passenger_ref for h in hub.hits("WSM", want=1, idle=20)] == ["OL773-P2"]
    assert hub.hits("WSM", idle=2) == []
