"""What every service process shares: gRPC servers with health and reflection, metrics, logging, signals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from services.config import HubSettings
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


def bind(server: grpc.Server, listen: str, settings: HubSettings | None = None) -> int:
    """Bind ``listen`` ("host:0" picks a free port) and return the port: with TLS (mutual TLS when required)
    if the settings name a server certificate, else in plain text. Raises ConfigError for unusable TLS files."""
    credentials = server_credentials(settings) if settings is not None else None
    port = server.add_insecure_port(listen) if credentials is None else server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"could not listen on {listen}")
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
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python is chatty at INFO about every connection.
    logging.getLogger("kafka").setLevel(logging.WARNING)


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
