"""`apihub up`: a whole hub on one machine: local Kafka, topics, the three services, supervised (a process that
exits is started again: services.supervisor); `apihub health`: the check docker-compose runs in each container.

The demo traffic `apihub up` plays on it by default is dev code (synthetic.demo, in a source checkout): services.cli
imports it only when the demo runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services import client
from services.bus import KafkaUnreachableError, apply_topic_specs
from services.config import DEMO_AUTH_SECRET, HubSettings
from services.devkafka import LocalKafka, terminate
from services.directory import load_directory
from services.errors import HubError
from services.serving import serve_metrics
from services.supervisor import STATUS_FILE, ChildSpec, RestartPolicy, Supervisor, read_status
from services.tls import ClientTLS, server_credentials

SERVICES = ("ingest", "profiler", "router", "console")


def wait_healthy(
    address: str, timeout: float = 60.0, tls: ClientTLS | None = None, alive: Callable[[], bool] | None = None
) -> None:
    """Until the gRPC server at ``address`` reports SERVING (over TLS when ``tls`` is given); HubError after
    ``timeout``, or as soon as ``alive()`` says the process that should answer is gone."""
    deadline = time.monotonic() + timeout
    with client.channel(address, tls=tls) as chan:
        stub = health_pb2_grpc.HealthStub(chan)
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise HubError(f"the process that should answer at {address} exited")
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
    """The running pieces of a local hub under a Supervisor (services.supervisor): a service (or the local broker)
    that exits is started again; ``stop()`` takes them down, the services before the broker."""

    settings: HubSettings
    say: Callable[[str], None] = print
    kafka: LocalKafka | None = None
    supervisor: Supervisor | None = None
    metrics: WSGIServer | None = None

    @property
    def logs(self) -> Path:
        return self.settings.state_dir / "logs"

    @property
    def status_path(self) -> Path:
        return self.settings.state_dir / STATUS_FILE

    def start(self, stop: threading.Event | None = None) -> Hub:
        """Broker, topics, services; returns once ingest and router answer health checks (or ``stop`` is set while
        waiting for an external Kafka cluster). Raises HubError, with everything it started stopped again."""
        stop = stop or threading.Event()
        s = self.settings
        _check_client_tls(s)
        tls = ClientTLS.from_settings(s)
        self._refuse_second_hub()
        self.supervisor = Supervisor(policy_of(s), self.say, self.status_path, self._details())
        try:
            if s.uses_local_kafka:
                self.say(
                    f"Starting a local Apache Kafka broker on 127.0.0.1:{s.kafka_port} "
                    f"(data in {s.state_dir / 'kafka'})..."
                )
                self.kafka = LocalKafka(s.state_dir / "kafka", s.kafka_port, s.kafka_controller_port, progress=self.say)
                self.supervisor.launch(self._broker_child(self.kafka))
            else:
                self.say(f"Using the Kafka cluster at {s.kafka_bootstrap}")
            if not self._make_topics(stop):
                return self
            for name in SERVICES:
                self.supervisor.launch(self._service_child(name))
            for name, address in (
                ("ingest", s.ingest_listen),
                ("router", s.delivery_listen),
                ("profiler", s.check_listen),
            ):
                try:
                    wait_healthy(address, tls=tls, alive=lambda n=name: self.supervisor.alive(n))
                except HubError:
                    raise HubError(f"the {name} service did not come up; see {self.logs / (name + '.log')}") from None
            self._wait_console()
        except BaseException:
            self.stop()
            raise
        self._serve_metrics()
        self.supervisor.running()
        metrics = self.supervisor.details.get("metrics")
        self.say(
            f"Hub up: carriers submit to {s.ingest_listen} and check travellers at {s.check_listen}, members follow "
            f"hits at {s.delivery_listen}; "
            f"service logs in {self.logs}; `apihub status` shows what runs" + (f" (and {metrics})." if metrics else ".")
        )
        self.say(f"console: {console_url(s)}")
        return self

    def _wait_console(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                _check_console(self.settings, 2.0)
                return
            except HubError:
                if not self.supervisor.alive("console") or time.monotonic() > deadline:
                    raise HubError(f"the console did not come up; see {self.logs / 'console.log'}") from None
                time.sleep(0.3)

    def _refuse_second_hub(self) -> None:
        previous = read_status(self.status_path)
        if previous.running:
            raise HubError(
                f"a hub is already running from {self.settings.state_dir} (supervisor pid "
                f"{previous.supervisor.get('pid')}): see `apihub status`, or set APIHUB_STATE_DIR for another one"
            )
        left = previous.leftovers()
        if left:
            pids = ", ".join(f"{name} pid {pid}" for name, pid in left.items())
            self.say(
                f"Note: the previous hub's supervisor (pid {previous.supervisor.get('pid')}) is gone, but processes "
                f"it started may still run ({pids}); if a port is in use below, stop them (kill PID)."
            )

    def _details(self) -> dict[str, object]:
        s = self.settings
        kafka = f"local broker at {s.bootstrap}" if s.uses_local_kafka else f"external cluster at {s.kafka_bootstrap}"
        return {
            "ingest": s.ingest_listen,
            "delivery": s.delivery_listen,
            "checks": s.check_listen,
            "kafka": kafka,
            "logs": str(self.logs),
        }

    def _make_topics(self, stop: threading.Event) -> bool:
        """Create the topics. An external cluster out of reach is waited for (False: ``stop`` was set meanwhile)."""
        s, waiting, delay = self.settings, False, 1.0
        directory = load_directory(s.directory_file)
        while True:
            try:
                topics = apply_topic_specs(s, directory.codes)
                break
            except KafkaUnreachableError as exc:
                if s.uses_local_kafka:
                    raise
                if not waiting:
                    self.say(f"Waiting for the Kafka cluster at {s.kafka_bootstrap} ({exc}); Ctrl-C stops.")
                waiting = True
            if stop.wait(delay):
                return False
            delay = min(delay * 2, 30.0)
        if waiting:
            self.say(f"Kafka cluster at {s.kafka_bootstrap} reached.")
        for line in topics.lines():  # created, retention or replicas changed, what could not be done
            if not line.startswith("created "):
                self.say(f"Topics: {line}")
        self.say(f"Topics ready ({len(topics.created)} created).")
        return True

    def _broker_child(self, kafka: LocalKafka) -> ChildSpec:
        def start() -> subprocess.Popen:
            kafka.start()  # returns once the broker is ready (it may take a while: the supervisor waits)
            # LocalKafka keeps its process to itself; the supervisor must see it exit (and reap it).
            return kafka._proc

        def stop(_proc) -> None:
            self.say("Stopping Kafka...")
            kafka.stop()

        return ChildSpec("kafka", start, stop, log=kafka.log_file, tier=0)

    def _service_child(self, name: str) -> ChildSpec:
        env = {**os.environ, "APIHUB_KAFKA_BOOTSTRAP": self.settings.bootstrap}
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"

        def start() -> subprocess.Popen:
            with log.open("ab") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "serve", name],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # Its own process group: Ctrl-C in a terminal reaches `apihub up` alone, which stops the
                    # services itself (and does not take their exit for a crash).
                    process_group=0,
                )

        return ChildSpec(name, start, lambda proc: terminate(proc, 20), log=log)

    def _serve_metrics(self) -> None:
        s = self.settings
        try:
            self.metrics = serve_metrics(s.supervisor_metrics_port, s.metrics_host)
        except OSError as exc:
            self.say(
                f"Supervisor metrics: cannot listen on {s.metrics_host}:{s.supervisor_metrics_port} "
                f"({exc.strerror or exc}); running without them (APIHUB_SUPERVISOR_METRICS_PORT, -1 disables)."
            )
            return
        if self.metrics is not None:
            host = f"[{s.metrics_host}]" if ":" in s.metrics_host else s.metrics_host
            self.supervisor.details["metrics"] = f"http://{host}:{self.metrics.server_port}/metrics"

    def supervise(self, stop: threading.Event) -> None:
        """Restart what exits until ``stop`` is set. SupervisionError (everything stopped) when a service keeps
        exiting."""
        if self.supervisor is not None:
            self.supervisor.run(stop)

    def check_children(self) -> None:
        """HubError once the supervisor gave up (the demo stops then); a service restarting is no error."""
        if self.supervisor is not None and self.supervisor.failed:
            raise HubError(self.supervisor.message)

    def stop(self) -> None:
        """Stop every service, then the broker; idempotent."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.kafka is not None:  # a broker whose start failed half-way
            self.kafka.stop()
            self.kafka = None
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics.server_close()
            self.metrics = None


def policy_of(settings: HubSettings) -> RestartPolicy:
    return RestartPolicy(
        backoff=settings.supervisor_backoff_seconds,
        backoff_max=settings.supervisor_backoff_max_seconds,
        budget=settings.supervisor_restart_budget,
        window=settings.supervisor_restart_window_seconds,
    )


def _check_client_tls(s: HubSettings) -> None:
    """TLS first: a wrong file should stop the launch before anything runs."""
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


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT (Ctrl-C) set ``stop`` while inside (the main thread's handlers, restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def local_address(listen: str) -> str:
    """Where to reach a server on this host that listens on ``listen`` (0.0.0.0 and :: mean loopback here)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_health(settings: HubSettings, service: str, timeout: float = 5.0) -> str:
    """One service of this host, as docker-compose's healthcheck asks (`apihub health SERVICE`): ingest and router
    answer the gRPC health service; the profiler its metrics page (its interactive checks' gRPC server answers
    health too, but that says nothing of its batch loop). Returns what answered; HubError says what did not."""
    if service == "profiler":
        return _check_profiler_page(settings, timeout)
    if service == "console":
        return _check_console(settings, timeout)
    address = local_address(settings.ingest_listen if service == "ingest" else settings.delivery_listen)
    with client.channel_for(settings, address) as chan:
        try:
            reply = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise HubError(f"{service}: no health answer at {address}: {exc.code().name}") from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise HubError(f"{service} at {address} is {status}")
    return f"{service} at {address}: {status}"


def console_url(settings: HubSettings) -> str:
    scheme = "https" if settings.server_tls else "http"
    return f"{scheme}://{local_address(settings.console_listen)}"


def _check_console(settings: HubSettings, timeout: float) -> str:
    """The console answers /healthz (over TLS with the hub's CA when it serves TLS)."""
    import ssl

    url = f"{console_url(settings)}/healthz"
    context = None
    if settings.server_tls:
        context = ssl.create_default_context(cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None)
    if _fetch(url, timeout, "console", context=context).strip() != b"ok":
        raise HubError(f"console: {url} answers, but not as the console")
    return f"console at {url}: up"


def _fetch(url: str, timeout: float, service: str, missing: str = "answer", context=None) -> bytes:
    """The page at ``url``, never through an HTTP proxy; HubError naming the service and the reason when not."""
    handlers = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as page:
            return page.read()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # urllib's URLError wraps the socket's error
        reason = getattr(reason, "strerror", None) or reason
        raise HubError(f"{service}: no {missing} at {url} ({reason})") from None


def _check_profiler_page(settings: HubSettings, timeout: float) -> str:
    port = settings.profiler_metrics_port
    if port <= 0:
        raise HubError(
            f"the profiler's health is its metrics page, but APIHUB_PROFILER_METRICS_PORT is {port}: set a port"
        )
    url = f"http://{local_address(f'{settings.metrics_host}:{port}')}/metrics"
    body = _fetch(url, timeout, "profiler", "metrics page")
    if b"apihub_profiler_" not in body:
        raise HubError(f"profiler: {url} answers, but not with the profiler's metrics")
    return f"profiler at {url}: metrics page up"


def warn_if_demo_secret(settings: HubSettings, say: Callable[[str], None]) -> None:
    keys = settings.auth_keys.values() if settings.auth_keys else [settings.auth_secret]
    if DEMO_AUTH_SECRET in keys:
        say("Note: tokens are signed with the public demo secret; set APIHUB_AUTH_SECRET (or _KEYS) for real use.")
