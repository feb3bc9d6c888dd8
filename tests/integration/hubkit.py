"""A whole hub in the test process on the session's real broker, and the manifests the tests send it."""

from __future__ import annotations

import threading

from services import client
from services.api_ingest.server import IngestServer
from services.auth import issue_token
from services.bus import ensure_topics
from services.directory import load_directory
from services.profiler.check import CheckServer
from services.profiler.worker import ProfilerWorker
from services.router.server import DeliveryServer
from services.router.worker import RouterWorker
from services.wire import delivery_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic


class RunningHub:
    """Ingest server, profiler and router of one test, in this process, on the session's broker."""

    def __init__(self, settings, directory=None):
        self.settings = settings
        directory = directory or load_directory()
        ensure_topics(settings, directory.codes)
        self.ingest = IngestServer(settings).start()
        self.delivery_server = DeliveryServer(settings, directory).start()
        self.ingest_addr = f"127.0.0.1:{self.ingest.port}"
        self.delivery_addr = f"127.0.0.1:{self.delivery_server.port}"
        self.workers = [ProfilerWorker(settings, directory), RouterWorker(settings, directory)]
        # The profiler's interactive checks (iAPI), on its worker's tables.
        self.checks = CheckServer(settings, directory, self.workers[0], listen="127.0.0.1:0").start()
        self.check_addr = f"127.0.0.1:{self.checks.port}"
        self.threads = [threading.Thread(target=w.run, daemon=True) for w in self.workers]
        for t in self.threads:
            t.start()

    def stop(self):
        for w in self.workers:
            w.stop()
        for t in self.threads:
            t.join(20)
        self.checks.stop(grace=1)
        for w in self.workers:
            w.close()
        self.delivery_server.stop(grace=1)
        self.ingest.stop(grace=1)

    def token(self, kind: str, code: str) -> str:
        return issue_token(self.settings, kind, code)

    def submit(self, manifest):
        return client.submit(
            client.channel_for(self.settings, self.ingest_addr), self.token("carrier", manifest.carrier), [manifest]
        )

    def check(self, manifest, carrier: str | None = None, timeout: float = 10.0):
        """The CheckResponse of an interactive check of the manifest's travellers, as its carrier."""
        chan = client.channel_for(self.settings, self.check_addr)
        return client.check_travellers(chan, self.token("carrier", carrier or manifest.carrier), manifest, timeout)

    def load(self, owner, entries, scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL):
        return client.load_watchlist(
            client.channel_for(self.settings, self.delivery_addr), self.token("member", owner), owner, entries, scope
        )

    def hits(self, member: str, idle: float = 3.0, want: int | None = None) -> list:
        got: list = []
        follower = client.Follower(
            client.channel_for(self.settings, self.delivery_addr), self.token("member", member), member
        )
        follower.follow(
            lambda d: got.append(d.hit),
            idle_exit=idle,
            should_stop=lambda: want is not None and len(got) >= want,
        )
        return got


def flight(route: list[str], carrier="FJ", number="911", passengers=5, seed=21) -> manifest_pb2.Manifest:
    m = DemoTraffic(seed=seed).next_manifest(passengers=passengers)
    # Keep only ordinary passengers, no planted watchlist person: the test plants its own.
    keep = [t for t in m.travellers[:passengers]]
    del m.travellers[:]
    m.travellers.extend(keep)
    m.carrier, m.flight_number = carrier, number
    m.message_ref = f"{carrier}{number}-{'-'.join(route)}"  # each test flight is its own message, not a resend
    departure = m.legs[0].scheduled_departure
    del m.legs[:]
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.CopyFrom(departure)
    for t in m.travellers:  # no expired documents: only the watchlist should fire
        t.documents[0].expiry.year = departure.ToDatetime().year + 5
    return m


def plant(m: manifest_pb2.Manifest, entry: delivery_pb2.WatchlistEntry, ref: str) -> None:
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
