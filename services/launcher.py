"""`apihub up`: a whole hub on one machine: local Kafka, topics, the three services.

The demo traffic `apihub up` plays on it by default is dev code (synthetic.demo, in a source checkout): services.cli
imports it only when the demo runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services import client
from services.bus import apply_topic_specs
from services.config import DEMO_AUTH_SECRET, HubSettings
from services.devkafka import LocalKafka
from services.directory import load_directory
from services.errors import HubError
from services.tls import ClientTLS, server_credentials

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
        topics = apply_topic_specs(s, directory.codes)
        for line in topics.lines():  # created, retention or replicas changed, what could not be done
            if not line.startswith("created "):
                self.say(f"Topics: {line}")
        self.say(f"Topics ready ({len(topics.created)} created).")
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


def warn_if_demo_secret(settings: HubSettings, say: Callable[[str], None]) -> None:
    keys = settings.auth_keys.values() if settings.auth_keys else [settings.auth_secret]
    if DEMO_AUTH_SECRET in keys:
        say("Note: tokens are signed with the public demo secret; set APIHUB_AUTH_SECRET (or _KEYS) for real use.")
