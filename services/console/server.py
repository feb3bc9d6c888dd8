"""`apihub serve console`: the member console's process.

It reads the officers' table (users topic), connects to the router as the console's own principal, starts the
readers that keep its workspace (the hits of each member with an officer, read with the console's own cursor), and
serves the web application with uvicorn until SIGTERM/SIGINT (then it finishes requests in flight, closes live
streams and stops its readers).
"""

from __future__ import annotations

import logging
import threading

from services.bus import TableReader, Topics, ensure_topics
from services.config import HubSettings
from services.console.app import create_app, templates
from services.console.deps import Console
from services.console.sessions import Sessions, SignInLimiter
from services.console.users import UserTable
from services.directory import load_directory
from services.errors import ConfigError
from services.serving import start_metrics

log = logging.getLogger(__name__)
GRACEFUL_S = 5


def listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"APIHUB_CONSOLE_LISTEN must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def build_console(settings: HubSettings, stopping: threading.Event) -> tuple[Console, list]:
    """The console's parts, with the threads that keep them current (started); and what to close at the end."""
    directory = load_directory(settings.directory_file)
    ensure_topics(settings, directory.codes)
    users = UserTable()
    reader = TableReader(settings, Topics(settings.topic_prefix).console_users, users.apply, "apihub-console-users")
    reader.catch_up(stopping=stopping)
    threading.Thread(target=reader.follow, args=(stopping,), name="console-users", daemon=True).start()
    console = Console(
        settings=settings,
        directory=directory,
        users=users,
        sessions=Sessions(settings.console_session_idle_minutes * 60, settings.console_session_max_hours * 3600),
        sign_ins=SignInLimiter(settings.console_sign_in_per_minute),
        templates=templates(),
    )
    closing: list = [reader]
    from services.console.users import UserWriter

    console.user_writer = UserWriter(settings)
    closing.append(console.user_writer)
    from services.console.gateway import HubGateway

    console.gateway = HubGateway(settings)
    closing.append(console.gateway)
    from services.console.workspace import start_workspace

    console.workspace, console.live, parts = start_workspace(settings, console, stopping)
    closing.extend(parts)
    return console, closing


def run_console(settings: HubSettings) -> None:
    import uvicorn

    class _ConsoleServer(uvicorn.Server):
        """Ends the live streams when the signal arrives: they never end by themselves, and uvicorn would wait its
        whole graceful period for them."""

        def __init__(self, config, live) -> None:
            super().__init__(config)
            self._live = live

        def handle_exit(self, sig, frame) -> None:
            if self._live is not None:
                self._live.close()
            super().handle_exit(sig, frame)

    host, port = listen_address(settings.console_listen)
    stopping = threading.Event()
    console, closing = build_console(settings, stopping)
    metrics = start_metrics(settings.console_metrics_port, settings.metrics_host)
    config = uvicorn.Config(
        create_app(console),
        host=host,
        port=port,
        # No access log: paths and queries can hold hit ids and searched names. services.console.app logs and
        # counts requests by route pattern instead.
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        proxy_headers=False,
        ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
        ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
        # Bounds: open connections and how long a slow client may take.
        limit_concurrency=500,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=GRACEFUL_S,
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = _ConsoleServer(config, console.live)
    scheme = "https" if settings.server_tls else "http"
    log.info("member console on %s://%s:%d (metrics %s)", scheme, host, port, metrics)
    try:
        server.run()  # until SIGTERM/SIGINT
    finally:
        stopping.set()
        if console.live is not None:
            console.live.close()
        for part in reversed(closing):
            try:
                part.close()
            except Exception as exc:  # noqa: BLE001 - closing at exit: one failure must not skip the rest
                log.warning("closing %s: %s", type(part).__name__, type(exc).__name__)
        log.info("member console stopped")
