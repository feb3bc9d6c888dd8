"""What every service process shares: gRPC servers with health and reflection, metrics, logging, signals."""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from services.config import HubSettings
from services.errors import HubError
from services.limits import LimitInterceptor
from services.tls import is_loopback, server_credentials

log = logging.getLogger(__name__)


def new_grpc_server(settings: HubSettings, limits: LimitInterceptor | None = None) -> grpc.Server:
    """A gRPC server whose every call passes the principal limits (services.limits; ``limits`` lets the caller
    keep a handle on them). grpc_threads threads, and as many calls at most (maximum_concurrent_rpcs): a call
    beyond is refused at once, never queued behind open streams."""
    limit = settings.max_message_bytes
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_threads, thread_name_prefix="grpc"),
        interceptors=[limits or LimitInterceptor(settings)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
        maximum_concurrent_rpcs=settings.grpc_threads,
    )


def add_standard_services(server: grpc.Server, service_names: Iterable[str]) -> health.HealthServicer:
    """gRPC health (for load balancers and grpc_health_probe) and reflection (for grpcurl)."""
    names = list(service_names)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    return health_servicer


class ListenError(HubError, OSError):
    """A server cannot listen where it was told to (the port is in use): the service ends with this message."""


def bind(server: grpc.Server, listen: str, settings: HubSettings | None = None) -> int:
    """Bind ``listen`` ("host:0" picks a free port) and return the port: with TLS (mutual TLS when required)
    if the settings name a server certificate, else in plain text. Raises ConfigError for unusable TLS files."""
    credentials = server_credentials(settings) if settings is not None else None
    try:
        port = server.add_insecure_port(listen) if credentials is None else server.add_secure_port(listen, credentials)
    except RuntimeError:  # grpc's "Failed to bind": the address is taken, or not this host's
        port = 0
    if port == 0:
        raise ListenError(
            f"could not listen on {listen}: is another hub (or another program) using that port? Stop it, or set "
            "APIHUB_INGEST_LISTEN / APIHUB_DELIVERY_LISTEN to a free address"
        )
    if credentials is not None:
        mutual = settings.tls_client_ca_file is not None
        log.info("gRPC on %s with TLS%s", listen, ", client certificates required" if mutual else "")
    elif not is_loopback(listen):
        log.warning(
            "gRPC on %s in PLAIN TEXT on a non-loopback address: tokens, manifests and hits cross the network "
            "unencrypted; set APIHUB_TLS_CERT_FILE and APIHUB_TLS_KEY_FILE",
            listen,
        )
    return port


def serve_metrics(port: int, host: str = "127.0.0.1") -> WSGIServer | None:
    """Serve Prometheus /metrics on ``host`` (APIHUB_METRICS_HOST): -1 disables, 0 picks a free port. Returns the
    server (shutdown() stops it) and logs where it listens. The pages have no authentication: a non-loopback
    address is logged as a warning."""
    if port < 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    where = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}/metrics"
    if is_loopback(f"{host}:0"):
        log.info("metrics on %s", where)
    else:
        log.warning("metrics on %s, without authentication: whoever reaches this address can read them", where)
    return server


def start_metrics(port: int, host: str = "127.0.0.1") -> int | None:
    """serve_metrics, returning the port it listens on (None when disabled)."""
    server = serve_metrics(port, host)
    return None if server is None else server.server_port


def configure_logging(level: str = "INFO") -> None:
    """One line per record on stderr; kafka-python's records through a KafkaLogGate (an outage in a few lines)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kafka = logging.getLogger("kafka")
    # INFO reaches the gate (it needs "Connected" to say an outage ended); the gate passes none of it on.
    kafka.setLevel(logging.INFO)
    kafka.propagate = False
    for handler in [h for h in kafka.handlers if isinstance(h, KafkaLogGate)]:
        kafka.removeHandler(handler)  # configured twice in one process: one gate
    kafka.addHandler(KafkaLogGate())


# kafka-python's records that mean a broker cannot be reached at all: a connection attempt failed, or no connection
# is left to ask for metadata. An outage ends with a new connection ("<node>: Connected").
_UNREACHABLE = re.compile(r"Connection failed|No node available|ECONNREFUSED|Connection refused|Bootstrap.*failed")
_CONNECTED = re.compile(r": Connected$|^Bootstrap complete")
# A connection that closed (an idle one the broker dropped, a broker going away): the client reconnects by itself.
_DISCONNECTED = re.compile(r"disconnected|Connection lost|Abort \(|Error (receiving|sending)|reset by peer")
# What varies between two lines of one kind: numbers, addresses of objects (0x7f...), durations.
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+(\.\d+)?")


class KafkaLogGate(logging.Handler):
    """The one handler of kafka-python's loggers: passes on what an operator needs to the root logger's handlers.

    kafka-python logs every failed attempt of every client: a broker outage was hundreds of lines a minute per
    service, some with a traceback. Through the gate:
    - brokers out of reach make state changes: one warning when it starts, a reminder while it lasts (after a
      minute, then at three times the time elapsed, at most hourly), one line when a connection succeeds again;
      every kafka-python record meanwhile is held back and counted;
    - a connection that closes while the brokers are reachable is one info line a minute at most;
    - any other warning or error passes once a minute per kind of message, saying how many like it were held;
    - nothing passes with a traceback (the exception's type and message stay in the line); info and debug
      records do not pass.
    Lines about connections name nodes and exception types, never record contents.
    """

    REPEAT_S = 60.0
    # After a state change, failures within this time do not make another: clients retry out of step.
    SETTLE_S = 10.0

    def __init__(self, clock=time.monotonic) -> None:
        super().__init__(logging.DEBUG)
        self._clock = clock
        self._down_since: float | None = None
        self._changed = -self.SETTLE_S
        self._remind_at = 0.0
        self._held = 0
        self._recent: dict[str, tuple[float, int]] = {}  # kind of message -> (last passed, held since)

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        now, text = self._clock(), _text(record)
        if record.levelno < logging.WARNING:
            if self._down_since is not None and _CONNECTED.search(text):
                self._say(
                    logging.INFO,
                    "Kafka reachable again after %.0fs (%d client errors not logged)",
                    now - self._down_since,
                    self._held,
                )
                self._down_since, self._changed = None, now
            return
        if self._down_since is not None:
            self._held += 1
            if now >= self._remind_at:
                lasted = now - self._down_since
                self._remind_at = now + min(2 * lasted, 3600.0)
                self._say(
                    logging.WARNING,
                    "Kafka still unreachable after %.0fs (%d client errors not logged); last: %s",
                    lasted,
                    self._held,
                    _reason(record, text),
                )
            return
        if _UNREACHABLE.search(text) and now - self._changed >= self.SETTLE_S:
            self._down_since, self._changed, self._remind_at, self._held = now, now, now + self.REPEAT_S, 0
            self._say(logging.WARNING, "Kafka unreachable (%s); the clients keep retrying", _reason(record, text))
            return
        kind = "disconnected" if _DISCONNECTED.search(text) or _UNREACHABLE.search(text) else _kind(record, text)
        last, held = self._recent.get(kind, (-self.REPEAT_S, 0))
        if now - last < self.REPEAT_S:
            self._recent[kind] = (last, held + 1)
            return
        if len(self._recent) > 1000:
            self._recent.clear()
        self._recent[kind] = (now, 0)
        more = f" ({held} more like it in the last minute)" if held else ""
        if kind == "disconnected":
            self._say(logging.INFO, "a Kafka connection closed (%s); reconnecting%s", _reason(record, text), more)
        else:
            said = f"{text} ({_reason(record, text)})" if record.exc_info else text
            self._say(record.levelno, "%s%s", said, more, name=record.name)

    def _say(self, level: int, msg: str, *args, name: str = "kafka") -> None:
        root = logging.getLogger()
        if root.isEnabledFor(level):
            root.handle(logging.LogRecord(name, level, __file__, 0, msg, args, None))


def _text(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a malformed record of the library's: its template, unformatted
        return str(record.msg)


def _reason(record: logging.LogRecord, text: str) -> str:
    """The exception's type and message when the record carries one, else its line (bounded)."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is None:
        exc = next(
            (a for a in (record.args if isinstance(record.args, tuple) else ()) if isinstance(a, BaseException)), None
        )
    if exc is None:
        return text[:300]
    said = str(exc)  # kafka-python's errors start with their class name already
    return (said if said.startswith(type(exc).__name__) else f"{type(exc).__name__}: {said}")[:300]


def _kind(record: logging.LogRecord, text: str) -> str:
    return f"{record.name}:{_NUMBERS.sub('N', text)[:120]}"


def wait_for_signal(on_stop: Callable[[], None], watch: threading.Thread | None = None) -> None:
    """Block until SIGTERM or SIGINT (or until the ``watch`` thread dies), then call on_stop once.

    A watched worker thread that dies takes the process down with it (exit code 1 after on_stop), so a
    supervisor restarts it instead of leaving a server that answers but no longer works.
    """
    stopped = threading.Event()

    def handle(signum, _frame):
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stopped.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopped.wait(0.5):
            if watch is not None and not watch.is_alive():
                log.error("worker thread %s ended unexpectedly; shutting down", watch.name)
                break
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        on_stop()
    if watch is not None and not stopped.is_set():
        raise SystemExit(1)
