"""The members' side of the fault suite: every member follows its hits with the hub's real clients, and every hit a
member is shown goes into one delivery log (the Desk).

- Most members: services.client.Follower in a thread each (what `apihub up`'s demo and members' own programs use),
  subscribing again after the stream breaks, as the demo does.
- One member (CLI_MEMBER): `apihub hits follow --json` as its own process, its lines read here; when it exits the
  suite starts it again (a member's service manager would), and counts the restarts. Stopping and starting it is
  the fault "a member offline and back".
- One member (WEBHOOK_MEMBER): its contact point is a webhook, served here. It checks each POST's signature,
  answers 503 while told to fail (the fault "a webhook failing for a while") and 200 otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc

from benchmarks.chaos.counting import AMENDED, FIRST, WITHDRAWN, Shown
from benchmarks.chaos.traffic import AMENDED_LOCATOR
from services import client
from services.codec import hit_fingerprint
from services.config import HubSettings
from services.follow import Backoff
from services.follow_state import ShownLog, state_file_name
from services.wire import hit_pb2

# Busy members (many routes touch their ports): one follows with the CLI, one takes hits by webhook.
CLI_MEMBER = "FJI"
WEBHOOK_MEMBER = "NZL"
# JSON fields that differ between two deliveries of the same version (who, which manifest version, when, where).
_VOLATILE = ("recipient", "manifest_id", "raised_at", "cursor", "version")


def version_of(hit: hit_pb2.Hit) -> str:
    """(hit id, version) identifies what a member was shown: Hit.version where the copy carries one, else the
    content's fingerprint (services.codec.hit_fingerprint: what a member would see change)."""
    version = getattr(hit, "version", 0)
    return f"v{version}" if version else f"fp:{hit_fingerprint(hit)}"


def version_of_json(h: dict) -> str:
    """The same for the JSON form of a hit (`hits follow --json`, the webhook's body)."""
    if h.get("version"):
        return f"v{h['version']}"
    body = {k: v for k, v in h.items() if k not in _VOLATILE}
    return "fp:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def kind_of(state: str, locator: str) -> str:
    if state == "withdrawn":
        return WITHDRAWN
    return AMENDED if locator == AMENDED_LOCATOR else FIRST


def shown_hit(member: str, channel: str, hit: hit_pb2.Hit) -> Shown:
    state = "withdrawn" if hit.state == hit_pb2.HIT_STATE_WITHDRAWN else "active"
    return Shown(
        time.monotonic(),
        member,
        channel,
        hit.hit_id,
        version_of(hit),
        kind_of(state, hit.traveller.reservation_locator),
        tuple(hit.flight.route),
    )


def shown_json(member: str, channel: str, h: dict) -> Shown:
    return Shown(
        time.monotonic(),
        member,
        channel,
        h["hit_id"],
        version_of_json(h),
        kind_of(h["state"], h["passenger"].get("reservation_locator", "")),
        tuple(h["flight"]["route"]),
    )


class Desk:
    """The delivery log: every hit shown to any member, in the order shown; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shown: list[Shown] = []
        # (when, member) of each member tool that exited by itself and was started again here.
        self.restarts: list[tuple[float, str]] = []

    def add(self, shown: Shown) -> None:
        with self._lock:
            self._shown.append(shown)

    def shown(self) -> list[Shown]:
        with self._lock:
            return list(self._shown)


class GrpcMembers:
    """A member tool for each of these members, in a thread each: services.client.Follower as a tool runs it, with
    a durable record of what it showed (services.follow_state.ShownLog, one file per member) and the reconnection
    backoff of `hits follow` (APIHUB_FOLLOW_RETRY_SECONDS, APIHUB_FOLLOW_RETRY_MAX_SECONDS)."""

    def __init__(self, desk: Desk, members: list[str], settings: HubSettings, token, state_dir: Path) -> None:
        self._desk, self._settings, self._token, self._state_dir = desk, settings, token, state_dir
        self._stop = threading.Event()
        self.stats: dict[str, dict[str, int]] = {}  # per member: the Follower's counts (shown, repeats skipped...)
        self._threads = [
            threading.Thread(target=self._follow, args=(m,), daemon=True, name=f"follow-{m}") for m in members
        ]

    def start(self) -> GrpcMembers:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        for t in self._threads:
            t.start()
        return self

    def _follow(self, member: str) -> None:
        s = self._settings
        shown = ShownLog(self._state_dir / state_file_name(member, ""))
        follower = None
        try:
            with client.channel_for(s, s.delivery_listen) as chan:
                backoff = Backoff(s.follow_retry_seconds, s.follow_retry_max_seconds)
                follower = client.Follower(chan, self._token(member), member, shown=shown, backoff=backoff)
                while not self._stop.is_set():
                    # With a backoff the follower reconnects by itself; it raises only what retrying cannot fix.
                    with contextlib.suppress(grpc.RpcError):
                        follower.follow(
                            lambda d: self._desk.add(shown_hit(member, "grpc", d.hit)), should_stop=self._stop.is_set
                        )
                    self._stop.wait(1.0)
        finally:
            shown.close()
            if follower is not None:
                self.stats[member] = follower.stats.as_dict()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


class CliMember:
    """`apihub hits follow --member M --json` as a process of its own; restarted here when it exits by itself."""

    def __init__(self, desk: Desk, member: str, env: dict[str, str], workdir: Path) -> None:
        self._desk, self.member, self._workdir = desk, member, workdir
        # Its record of what it showed (follow-<member>-cli.sqlite) in the suite's folder.
        self._env = {**env, "APIHUB_FOLLOW_STATE_DIR": str(workdir / "member-state")}
        self._proc: subprocess.Popen | None = None
        self._wanted = False
        self._lock = threading.Lock()
        self._watch = threading.Thread(target=self._supervise, daemon=True, name=f"cli-{member}")
        self._closing = threading.Event()

    def start(self) -> None:
        with self._lock:
            self._wanted = True
            self._spawn()
        if not self._watch.is_alive():
            self._watch.start()

    def stop(self) -> None:
        """The member's tool stopped (SIGTERM, as a service manager stops it); not started again until start()."""
        with self._lock:
            self._wanted = False
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        self._closing.set()
        self.stop()

    def _spawn(self) -> None:
        log = (self._workdir / f"follow-{self.member}.log").open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "hits", "follow", "--member", self.member, "--json"],
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=self._workdir,
        )
        log.close()
        threading.Thread(target=self._read, args=(self._proc,), daemon=True, name=f"read-{self.member}").start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            try:
                h = json.loads(line)
            except ValueError:
                continue  # not a hit (the tool's own message on stdout)
            self._desk.add(shown_json(self.member, "cli", h))

    def _supervise(self) -> None:
        while not self._closing.wait(0.5):
            with self._lock:
                if self._wanted and self._proc is not None and self._proc.poll() is not None:
                    self._desk.restarts.append((time.monotonic(), self.member))
                    self._spawn()


class _Endpoint(http.server.BaseHTTPRequestHandler):
    """POST /hook: a member's webhook. 401 for a bad signature, 503 while failing, else 200 and the hit logged."""

    server: WebhookEndpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = self.server.signed(self.headers.get("X-Apihub-Timestamp", ""), body, self.headers)
        if not ok:
            status = 401
        elif self.server.failing.is_set():
            status = 503
        else:
            status = 200
            self.server.desk.add(shown_json(self.server.member, "webhook", json.loads(body)))
        self.server.answers[status] += 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


class WebhookEndpoint(http.server.ThreadingHTTPServer):
    """The webhook member's endpoint on loopback; ``failing`` set: it answers 503 Service Unavailable."""

    daemon_threads = True

    def __init__(self, desk: Desk, member: str, secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Endpoint)
        self.desk, self.member, self._secret = desk, member, secret.encode()
        self.failing = threading.Event()
        self.answers: Counter[int] = Counter()
        threading.Thread(target=self.serve_forever, daemon=True, name="webhook-endpoint").start()

    def signed(self, timestamp: str, body: bytes, headers) -> bool:
        """The member's check: HMAC-SHA256 over "<timestamp>.<body>" with the shared secret."""
        mac = hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers.get("X-Apihub-Signature", ""), f"sha256={mac}")
