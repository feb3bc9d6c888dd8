"""`apihub up`: a whole hub on one machine: local Kafka, topics, the three services, demo traffic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services import client
from services.api_ingest.paxlst_writer import render_paxlst
from services.auth import issue_token
from services.bus import ensure_topics
from services.codec import hit_to_json
from services.config import DEMO_AUTH_SECRET, HubSettings
from services.demo import DemoTraffic, cancelled_reservation, demo_watchlists
from services.devkafka import LocalKafka
from services.directory import load_directory
from services.errors import HubError
from services.tls import ClientTLS, server_credentials
from services.wire import intake_pb2, manifest_pb2

SERVICES = ("ingest", "profiler", "router")


def wait_healthy(address: str, timeout: float = 60.0, tls: ClientTLS | None = None) -> None:
    """Until the gRPC server at ``address`` reports SERVING (over TLS when ``tls`` is given)."""
    deadline = time.monotonic() + timeout
    with client.channel(address, tls=tls) as chan:
        stub = health_pb2_grpc.HealthStub(chan)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise HubError(f"no healthy gRPC server at {address} after {timeout:.0f}s")


@dataclass
class Hub:
    """The running pieces of a local hub; ``stop()`` takes them down in reverse order."""

    settings: HubSettings
    say: Callable[[str], None] = print
    kafka: LocalKafka | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> Hub:
        s = self.settings
        # TLS first: a wrong file should stop the launch before anything runs.
        if s.server_tls and not s.client_tls:
            raise HubError(
                "APIHUB_TLS_CERT_FILE is set but the hub's own clients (health checks, demo) have no TLS settings: "
                "set APIHUB_TLS_CA_FILE (and, for mutual TLS, APIHUB_TLS_CLIENT_CERT_FILE / _KEY_FILE)"
            )
        if s.tls_client_ca_file is not None and s.tls_client_cert_file is None:
            raise HubError(
                "APIHUB_TLS_CLIENT_CA_FILE requires client certificates, but the hub's own clients (health checks, "
                "demo) have none: set APIHUB_TLS_CLIENT_CERT_FILE and APIHUB_TLS_CLIENT_KEY_FILE"
            )
        server_credentials(s)  # the services would fail on these files: say which one now
        tls = ClientTLS.from_settings(s)
        if s.uses_local_kafka:
            self.say(
                f"Starting a local Apache Kafka broker on 127.0.0.1:{s.kafka_port} (data in {s.state_dir / 'kafka'})..."
            )
            self.kafka = LocalKafka(
                s.state_dir / "kafka", s.kafka_port, s.kafka_controller_port, progress=self.say
            ).start()
        else:
            self.say(f"Using the Kafka cluster at {s.kafka_bootstrap}")
        directory = load_directory(s.directory_file)
        created = ensure_topics(s, directory.codes)
        self.say(f"Topics ready ({len(created)} created).")
        env = {**os.environ, "APIHUB_KAFKA_BOOTSTRAP": s.bootstrap}
        logs = s.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            out = (logs / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            out.close()
        for name, address in (("ingest", s.ingest_listen), ("router", s.delivery_listen)):
            try:
                wait_healthy(address, tls=tls)
            except HubError:
                self.stop()
                raise HubError(f"the {name} service did not come up; see {logs / (name + '.log')}") from None
        self.say(
            f"Hub up: carriers submit to {s.ingest_listen}, members follow hits at {s.delivery_listen}; "
            f"service logs in {logs}."
        )
        return self

    def check_children(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise HubError(
                    f"the {name} service exited with code {proc.returncode}; "
                    f"see {self.settings.state_dir / 'logs' / (name + '.log')}"
                )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        if self.kafka:
            self.say("Stopping Kafka...")
            self.kafka.stop()
            self.kafka = None


def run_demo(hub: Hub, stop: threading.Event, interval: float, say: Callable[[str], None]) -> None:
    """Load demo watchlists, follow every member's hits in threads, and feed manifests until ``stop``."""
    s = hub.settings
    secret = s.auth_secret
    member_chan = client.channel_for(s, s.delivery_listen)
    for owner, entries in demo_watchlists().items():
        client.load_watchlist(member_chan, issue_token(secret, "member", owner), owner, entries)
    say("Demo watchlists loaded for FJI, WSM, AUS and TON (synthetic people).")

    def follow(member: str) -> None:
        def show(delivery) -> None:
            h = hit_to_json(delivery.hit)
            why = "; ".join(
                f"{r['source']} {r['id']} ({r['score']:.2f}{', ' + r['band'] if r['band'] else ''}): {r['explanation']}"
                for r in h["reasons"]
            )
            f = h["flight"]
            if h["state"] == "withdrawn":
                say(f"[{member} contact point] hit {h['hit_id']} WITHDRAWN (passenger {h['passenger']['ref']})")
                return
            say(
                f"[{member} contact point] hit {h['hit_id']} on {f['carrier']}{f['number']} "
                f"{'-'.join(f['route'])} {f['departure'][:16]} passenger {h['passenger']['ref']} "
                f"score {h['score']:.2f}{' for review' if h['for_review'] else ''} — {why}"
            )

        follower = client.Follower(member_chan, issue_token(secret, "member", member), member)
        while not stop.is_set():
            try:
                follower.follow(show, should_stop=stop.is_set)
            except grpc.RpcError:
                stop.wait(1)  # the router restarts or shuts down: resume from the acknowledged cursor

    directory = load_directory(s.directory_file)
    for member in directory.codes:
        threading.Thread(target=follow, args=(member,), daemon=True, name=f"follow-{member}").start()

    # Carriers alternate between gRPC and PAXLST; now and then one cancels the reservation of a watchlisted
    # passenger it reported earlier (an XR change), and the members that got the hit see it withdrawn.
    traffic = DemoTraffic()
    ingest_chan = client.channel_for(s, s.ingest_listen)
    to_cancel: list[tuple[manifest_pb2.Manifest, str]] = []
    sent = 0
    while not stop.is_set():
        sent += 1
        if to_cancel and sent % 4 == 0:
            original, ref = to_cancel.pop(0)
            m, what = cancelled_reservation(original, ref), f"cancels the reservation of {ref}"
        else:
            m = traffic.next_manifest()
            what = "passenger list"
            if traffic.planted:
                to_cancel.append((m, traffic.planted))
        token = issue_token(secret, "carrier", m.carrier)
        if sent % 2:
            receipt, via = client.submit(ingest_chan, token, [m])[0], "gRPC"
        else:
            receipt, via = client.submit_paxlst(ingest_chan, token, render_paxlst(m)).receipts[0], "PAXLST"
        status = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_").lower()
        route = "-".join([leg.origin for leg in m.legs] + [m.legs[-1].destination])
        say(
            f"[carrier {m.carrier}] {via} {what} {m.carrier}{m.flight_number} {route}: {receipt.passengers} "
            f"passengers, {receipt.crew} crew -> {status} ({receipt.manifest_id})"
        )
        stop.wait(interval)
        hub.check_children()


def warn_if_demo_secret(settings: HubSettings, say: Callable[[str], None]) -> None:
    if settings.auth_secret == DEMO_AUTH_SECRET:
        say("Note: tokens are signed with the public demo secret; set APIHUB_AUTH_SECRET for real use.")
