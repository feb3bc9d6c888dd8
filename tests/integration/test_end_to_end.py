"""The walking skeleton end to end through a real broker: manifest in, hit out at the right contact point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import grpc
import pytest

from services import client
from services.api_ingest.server import IngestServer
from services.auth import issue_token
from services.bus import ensure_topics
from services.demo import DemoTraffic, demo_watchlists
from services.directory import load_directory
from services.profiler.worker import ProfilerWorker
from services.router.server import DeliveryServer
from services.router.worker import RouterWorker
from services.wire import delivery_pb2, manifest_pb2

pytestmark = pytest.mark.integration


class RunningHub:
    """Ingest server, profiler and router of one test, in this process, on the session's broker."""

    def __init__(self, settings):
        self.settings = settings
        directory = load_directory()
        ensure_topics(settings, directory.codes)
        self.ingest = IngestServer(settings).start()
        self.delivery_server = DeliveryServer(settings, directory).start()
        self.ingest_addr = f"127.0.0.1:{self.ingest.port}"
        self.delivery_addr = f"127.0.0.1:{self.delivery_server.port}"
        self.workers = [ProfilerWorker(settings, directory), RouterWorker(settings, directory)]
        self.threads = [threading.Thread(target=w.run, daemon=True) for w in self.workers]
        for t in self.threads:
            t.start()

    def stop(self):
        for w in self.workers:
            w.stop()
        for t in self.threads:
            t.join(20)
        for w in self.workers:
            w.close()
        self.delivery_server.stop(grace=1)
        self.ingest.stop(grace=1)

    def token(self, kind: str, code: str) -> str:
        return issue_token(self.settings.auth_secret, kind, code)

    def submit(self, manifest):
        return client.submit(
            client.channel(self.ingest_addr), self.token("carrier", manifest.carrier), [manifest]
        )

    def load(self, owner, entries, scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL):
        return client.load_watchlist(
            client.channel(self.delivery_addr), self.token("member", owner), owner, entries, scope
        )

    def hits(self, member: str, idle: float = 3.0, want: int | None = None) -> list:
        got: list = []
        follower = client.Follower(client.channel(self.delivery_addr), self.token("member", member), member)
        follower.follow(
            lambda d: got.append(d.hit),
            idle_exit=idle,
            should_stop=lambda: want is not None and len(got) >= want,
        )
        return got


@pytest.fixture
def hub(settings):
    running = RunningHub(settings)
    yield running
    running.stop()


def _flight(route: list[str], carrier="FJ", number="911", passengers=5, seed=21) -> manifest_pb2.Manifest:
    m = DemoTraffic(seed=seed).next_manifest(passengers=passengers)
    # Keep only ordinary passengers, no planted watchlist person: the test plants its own.
    keep = [t for t in m.travellers[:passengers]]
    del m.travellers[:]
    m.travellers.extend(keep)
    m.carrier, m.flight_number = carrier, number
    departure = m.legs[0].scheduled_departure
    del m.legs[:]
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.CopyFrom(departure)
    for t in m.travellers:  # no expired documents: only the watchlist should fire
        t.documents[0].expiry.year = departure.ToDatetime().year + 5
    return m


def _plant(m: manifest_pb2.Manifest, entry: delivery_pb2.WatchlistEntry, ref: str) -> None:
    t = m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=entry.surname.title(),
        given_names=entry.given_names.lower(),
        date_of_birth=entry.date_of_birth,
        nationality=entry.nationality,
        passenger_ref=ref,
    )
    t.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number=entry.document_number,
        issuing_state=entry.nationality,
        expiry=manifest_pb2.PartialDate(year=2031, month=1, day=1),
    )


def test_watchlisted_passenger_reaches_members_with_jurisdiction_only(hub):
    entry = demo_watchlists()["FJI"][0]
    assert hub.load("FJI", [entry]).entries == 1
    m = _flight(["SYD", "NAN", "TBU"])
    _plant(m, entry, "FJ911-P99")
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
    m = _flight(["APW", "NAN"], carrier="OL", number="761")
    _plant(m, entry, "OL761-P7")
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
    m = _flight(["NAN", "TBU"], number="211")
    _plant(m, entry, "FJ211-P1")
    manifest_file = tmp_path / "m.json"
    from google.protobuf import json_format

    manifest_file.write_text(json_format.MessageToJson(m))
    bad = tmp_path / "bad.json"
    bad_manifest = manifest_pb2.Manifest()
    bad_manifest.CopyFrom(m)
    bad_manifest.travellers[0].surname = ""
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

    rejected = apihub(
        "submit", "--server", hub.ingest_addr, "--token", hub.token("carrier", "FJ"), "--json", str(bad)
    )
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["errors"][0]["field"] == "travellers[0].surname"

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
