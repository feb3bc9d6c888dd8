"""The arena of the abuse suite: a whole hub as separate processes on its own local broker, a webhook target that
answers with a redirect, and the bookkeeping of what each attack did.

The fault suite (benchmarks.chaos) runs in the same arena, with its own webhook endpoint and topic prefix, and uses
the faults below: kill -9 of a service by name and its start again, a second process of a service (two profilers),
kill -9 of the broker and its start again on the same data directory and ports.

Every process it starts is stopped in ``close()``; every call it makes has a deadline, so a hang is a result (HUNG),
never a stuck suite.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import grpc
import yaml

from services import client
from services.auth import issue_token, token_claims
from services.bus import ensure_topics
from services.config import HubSettings
from services.devkafka import LocalKafka, free_port, terminate
from services.directory import parse_directory
from services.launcher import wait_healthy


class Outcome(Enum):
    REFUSED = "refused cleanly"
    WARNED = "accepted with warning"
    ACCEPTED = "accepted"
    CRASHED = "crashed"
    HUNG = "hung"
    LEAKED = "cross-principal effect"


# What no attack may ever produce: the suite fails on any of them.
FAILURES = frozenset({Outcome.CRASHED, Outcome.HUNG, Outcome.LEAKED})
# gRPC codes a server answers on purpose; UNKNOWN and INTERNAL mean an exception escaped a handler.
CLEAN_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
# Member whose contact point is a webhook in the arena's directory (the redirect target below).
WEBHOOK_MEMBER = "TUV"
HOOK_SECRET_ENV = "ABUSE_TUV_HOOK_SECRET"
SERVICES = ("ingest", "profiler", "router")


@dataclass
class Result:
    name: str
    outcome: Outcome
    expected: frozenset[Outcome]
    detail: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in self.expected and self.outcome not in FAILURES


def outcome_of_error(exc: grpc.RpcError) -> tuple[Outcome, str]:
    """How a failed call counts: a deliberate refusal, a hang, or a crash (an exception that escaped)."""
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Outcome.HUNG, "deadline exceeded"
    if code in CLEAN_CODES and "Traceback" not in details:
        return Outcome.REFUSED, f"{code.name}: {details[:160]}"
    return Outcome.CRASHED, f"{code.name}: {details[:160]}"


class _Target(http.server.BaseHTTPRequestHandler):
    """A member's webhook endpoint gone bad: POST /hook answers 302 to /sink; anything reaching /sink is a leak."""

    calls: dict[str, int]

    def _answer(self) -> None:
        self.server.calls[f"{self.command} {self.path}"] = self.server.calls.get(f"{self.command} {self.path}", 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/hook":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/sink")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET = _answer

    def log_message(self, *_args) -> None:
        pass


@dataclass
class Arena:
    """One broker, the hub's three services and a webhook endpoint (by default one that redirects)."""

    workdir: Path
    say: Callable[[str], None] = print
    broker: LocalKafka | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    settings: HubSettings | None = None
    # The endpoint of webhook_member's contact point. None: start() serves _Target (answers with a redirect);
    # given (already serving), the arena points the directory at it and shuts it down in close().
    webhook: http.server.HTTPServer | None = None
    webhook_member: str = WEBHOOK_MEMBER
    env: dict[str, str] = field(default_factory=dict)
    # Settings of every service beyond the arena's own (APIHUB_* variables), e.g. another sharing policy.
    extra_env: dict[str, str] = field(default_factory=dict)
    # Start of the arena's topic prefix (a random suffix follows).
    prefix: str = "abuse"
    # What each process runs ("ingest", "profiler", "router") and its own settings, by process name.
    roles: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    # Names and document numbers the attacks sent: none may appear in a service's log.
    sensitive: set[str] = field(default_factory=set)
    # A carrier credential listed as revoked in the arena's directory.
    revoked_token: str = ""

    def start(self) -> Arena:
        self.broker = LocalKafka(self.workdir / "kafka", free_port(), free_port(), progress=self.say).start()
        if self.webhook is None:
            self.webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
            self.webhook.calls = {}
            threading.Thread(target=self.webhook.serve_forever, daemon=True).start()
        directory = self._directory()
        self.env = {
            **os.environ,
            "APIHUB_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "APIHUB_TOPIC_PREFIX": f"{self.prefix}{uuid.uuid4().hex[:6]}",
            "APIHUB_INGEST_LISTEN": f"127.0.0.1:{free_port()}",
            "APIHUB_DELIVERY_LISTEN": f"127.0.0.1:{free_port()}",
            "APIHUB_INGEST_METRICS_PORT": str(free_port()),
            "APIHUB_PROFILER_METRICS_PORT": str(free_port()),
            "APIHUB_ROUTER_METRICS_PORT": str(free_port()),
            "APIHUB_CONSOLE_LISTEN": f"127.0.0.1:{free_port()}",
            "APIHUB_CONSOLE_METRICS_PORT": "-1",
            "APIHUB_DIRECTORY_FILE": str(directory),
            HOOK_SECRET_ENV: "abuse-suite-webhook-secret",
            **self.extra_env,
        }
        self.settings = HubSettings(
            **{k[len("APIHUB_") :].lower(): v for k, v in self.env.items() if k.startswith("APIHUB_")}
        )
        ensure_topics(self.settings, parse_directory(directory.read_text(), str(directory)).codes)
        for name in SERVICES:
            self._spawn(name)
        wait_healthy(self.settings.ingest_listen)
        wait_healthy(self.settings.delivery_listen)
        return self

    def _directory(self) -> Path:
        from importlib import resources

        data = yaml.safe_load(resources.files("services.data").joinpath("members.yaml").read_text())
        for member in data["members"]:
            if member["code"] == self.webhook_member:
                member["webhook"] = {
                    "url": f"http://127.0.0.1:{self.webhook.server_port}/hook",
                    "secret_env": HOOK_SECRET_ENV,
                }
                member["allow_private_network"] = True  # loopback: the arena's own endpoint
        # A carrier credential issued, then revoked by its id (jti) in the directory.
        settings = HubSettings()
        self.revoked_token = issue_token(settings, "carrier", "PX")
        data["revoked_tokens"] = [token_claims(self.revoked_token)["jti"]]
        path = self.workdir / "members.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def _spawn(self, name: str, service: str | None = None, env: dict[str, str] | None = None) -> None:
        """Start process ``name`` running `apihub serve SERVICE` (SERVICE: ``name`` unless given, or what ``name``
        ran before), with ``env`` on top of the arena's settings; its output appends to ``<name>.log``."""
        if service is None:
            service, env = self.roles.get(name, (name, env))
        env = env or {}
        self.roles[name] = (service, env)
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    # -- faults (the fault suite) --------------------------------------------------------------------------------
    def spawn_second(self, name: str, service: str) -> None:
        """Another process of ``service`` (e.g. a second profiler in the same consumer group), with its own
        metrics port."""
        self._spawn(name, service, {f"APIHUB_{service.upper()}_METRICS_PORT": str(free_port())})

    def kill(self, name: str) -> None:
        """kill -9 of one of the arena's processes, waited for (no shutdown, no flush, no commit)."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def restart(self, name: str) -> None:
        """Start a process again as it was started (after kill(), or after it exited)."""
        if self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        self._spawn(name)

    def kill_broker(self) -> None:
        """kill -9 of the broker: its data directory stays, as after a crash of the process."""
        if self.broker.pid is not None:
            os.kill(self.broker.pid, signal.SIGKILL)
        self.broker.stop()  # reaps the killed process; nothing left to stop

    def start_broker(self, timeout: float = 120.0) -> None:
        """Start the broker again on the same ports and data directory (after kill_broker)."""
        log = self.broker.log_file
        if log.exists():  # the new process's ready line must not be found in the old one's log
            log.rename(log.with_name(f"broker-{time.time_ns()}.log"))
        self.broker.start(timeout)

    # -- what attacks use ----------------------------------------------------------------------------------------
    def token(self, kind: str, code: str) -> str:
        return issue_token(self.settings, kind, code)

    def ingest(self) -> grpc.Channel:
        return client.channel_for(self.settings, self.settings.ingest_listen)

    def delivery(self) -> grpc.Channel:
        return client.channel_for(self.settings, self.settings.delivery_listen)

    def cli(self, *args: str, timeout: float = 60.0, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
        """Run `apihub ARGS` against the arena (its settings in the environment)."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            input=input_bytes,
            cwd=self.workdir,
        )

    def webhook_calls(self) -> dict[str, int]:
        return dict(self.webhook.calls)

    # -- after the attacks ---------------------------------------------------------------------------------------
    def dead(self) -> list[str]:
        """Services that are no longer running, with their exit status."""
        return [f"{name} (exit {p.returncode})" for name, p in self.procs.items() if p.poll() is not None]

    def tracebacks(self) -> list[str]:
        """Service logs holding a Python traceback: an exception that reached the log instead of its sender."""
        return [
            name for name in self.procs if "Traceback" in (self.workdir / f"{name}.log").read_text(errors="replace")
        ]

    def personal_data_in_logs(self) -> list[str]:
        """Services whose log holds a name or document number an attack sent (never the value itself)."""
        found = []
        for name in self.procs:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            if any(value in text for value in self.sensitive):
                found.append(name)
        return found

    def close(self) -> None:
        for proc in self.procs.values():
            try:
                terminate(proc, 20)
            except Exception:
                proc.kill()
        if self.webhook is not None:
            self.webhook.shutdown()
        if self.broker is not None:
            self.broker.stop()


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="apihub-abuse-"))


def timed(fn: Callable[[], tuple[Outcome, str]]) -> tuple[Outcome, str, float]:
    started = time.monotonic()
    try:
        outcome, detail = fn()
    except grpc.RpcError as exc:
        outcome, detail = outcome_of_error(exc)
    return outcome, detail, time.monotonic() - started
