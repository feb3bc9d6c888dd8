"""Supervision of the processes `apihub up` starts: what exits unexpectedly is started again, with a backoff and a
restart budget, and the state of every process is published for `apihub status` and Prometheus.

A Supervisor holds named children, each a start function returning a process (a subprocess.Popen, or anything with
``pid`` and ``poll()``) and a stop function. ``check()`` (``run()`` calls it in a loop) reaps what exited, so nothing
stays <defunct>, says which child exited with which status or signal and when it starts again, and starts it after
an exponential backoff. A child that exits again when it has used its budget of restarts within the window ends the
supervision: every other child is stopped and ``check()`` raises SupervisionError. ``stop()`` restarts nothing any
more and stops every child, the later tiers first (services before the broker they need).

The state is written to a status file (JSON, atomically replaced) and exported as the gauges apihub_supervisor_up
and apihub_supervisor_started_seconds and the counter apihub_supervisor_restarts_total, labelled by service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from services.errors import HubError

UP = Gauge("apihub_supervisor_up", "1 while a process `apihub up` supervises runs, 0 while it is down", ["service"])
RESTARTS = Counter(
    "apihub_supervisor_restarts", "Times `apihub up` started a process again after it exited", ["service"]
)
STARTED = Gauge(
    "apihub_supervisor_started_seconds", "Unix time the current process of a supervised service started", ["service"]
)

# The status file's name in APIHUB_STATE_DIR.
STATUS_FILE = "status.json"
# Supervisor states in the status file: the first two mean a hub is (or should be) running.
LIVE_STATES = ("starting", "running", "stopping")


class SupervisionError(HubError):
    """A child kept exiting: its restart budget is spent, so the supervisor stopped every child."""


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...


@dataclass(frozen=True)
class RestartPolicy:
    """Restart after ``backoff`` seconds, doubled for each restart within ``window``, at most ``backoff_max``; a
    child that exits when it has had ``budget`` restarts within ``window`` seconds is not restarted again."""

    backoff: float = 1.0
    backoff_max: float = 30.0
    budget: int = 5
    window: float = 300.0

    def delay(self, recent_restarts: int) -> float:
        return min(self.backoff_max, self.backoff * 2 ** min(recent_restarts, 32))


@dataclass(frozen=True)
class ChildSpec:
    name: str
    start: Callable[[], Process]
    # Stops a running process and reaps it (blocking): e.g. SIGTERM, wait, SIGKILL.
    stop: Callable[[Process], None]
    # Where its output goes, named in messages.
    log: Path | None = None
    # Stopped after every child of a higher tier (a broker before its clients: tier 0), with its tier in parallel.
    tier: int = 1


def describe_exit(code: int) -> str:
    """'exited with status 1', 'was killed by SIGKILL'."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _iso(wall: float | None) -> str | None:
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")


def _span(seconds: float) -> str:
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


@dataclass
class _Child:
    spec: ChildSpec
    proc: Process | None = None
    state: str = "starting"  # up, restarting, stopped, failed
    # Wall time of the last change of state (started, exited, stopped).
    since_wall: float | None = None
    started_wall: float | None = None
    started_mono: float = 0.0
    restarts: int = 0
    # Monotonic times of the restarts within the policy's window.
    recent: deque[float] = field(default_factory=deque)
    last_exit: str | None = None
    last_exit_wall: float | None = None
    next_start: float | None = None  # monotonic

    def as_json(self, now: float) -> dict[str, Any]:
        wait = None if self.next_start is None else max(0.0, self.next_start - now)
        return {
            "state": self.state,
            "pid": self.proc.pid if self.proc is not None and self.state == "up" else None,
            "since": _iso(self.since_wall),
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": _iso(self.last_exit_wall),
            "next_attempt": None if wait is None else _iso(time.time() + wait),
        }


class Supervisor:
    """Named child processes, restarted by ``policy`` when they exit; their state in ``status_path`` (JSON)."""

    def __init__(
        self,
        policy: RestartPolicy,
        say: Callable[[str], None] = print,
        status_path: Path | None = None,
        details: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy, self.say, self.status_path, self.details = policy, say, status_path, dict(details or {})
        self._clock = clock
        self._children: dict[str, _Child] = {}
        self._stopping = False
        self._status_broken = False
        self.state = "starting"
        self.message = ""
        self.started = time.time()

    # -- starting and watching -------------------------------------------------------------------------------------
    def launch(self, spec: ChildSpec) -> Process:
        """Start a child now and supervise it from here on; an error starting it is the caller's to handle."""
        if spec.name in self._children:
            raise ValueError(f"{spec.name} is already supervised")
        child = self._children[spec.name] = _Child(spec)
        try:
            self._start(child)
        except BaseException:
            child.state = "failed"
            self.publish()
            raise
        self.publish()
        return child.proc

    def _start(self, child: _Child) -> None:
        child.proc = child.spec.start()
        child.state, child.next_start = "up", None
        child.started_wall, child.started_mono = time.time(), self._clock()
        child.since_wall = child.started_wall
        UP.labels(child.spec.name).set(1)
        STARTED.labels(child.spec.name).set(child.started_wall)

    def running(self) -> None:
        """Every child is up: the hub is running (the status file says so)."""
        self.state = "running"
        self.publish()

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """check() until ``stop`` is set; raises SupervisionError (everything stopped) when a budget is spent."""
        if self.state == "starting":
            self.running()
        while not stop.wait(interval):
            self.check()

    def check(self) -> None:
        """One pass: reap children that exited, schedule their restart, start those whose backoff has passed."""
        if self._stopping:
            return
        for child in list(self._children.values()):
            now = self._clock()
            if child.state == "up":
                code = child.proc.poll()
                if code is not None:
                    self._down(child, describe_exit(code), now)
            elif child.state == "restarting" and now >= child.next_start:
                self._restart(child)

    def _restart(self, child: _Child) -> None:
        now = self._clock()
        child.recent.append(now)
        child.restarts += 1
        RESTARTS.labels(child.spec.name).inc()
        try:
            self._start(child)
        except (HubError, OSError) as exc:  # a start that fails counts as an exit
            self._down(child, f"could not be started ({' '.join(str(exc).split())[:300]})", self._clock())
            return
        self.say(f"{child.spec.name} restarted (pid {child.proc.pid}; restart {child.restarts}).")
        self.publish()

    def _down(self, child: _Child, what: str, now: float) -> None:
        name, policy = child.spec.name, self.policy
        pid = f" (pid {child.proc.pid})" if child.proc is not None and child.state == "up" else ""
        ran = f" after {_span(now - child.started_mono)}" if child.state == "up" else ""
        child.last_exit = what
        child.last_exit_wall = child.since_wall = time.time()
        UP.labels(name).set(0)
        while child.recent and child.recent[0] <= now - policy.window:
            child.recent.popleft()
        see = f"; see {child.spec.log}" if child.spec.log else ""
        if len(child.recent) >= policy.budget:
            child.state = "failed"
            self._give_up(
                f"{name}{pid} {what}{ran}, after {len(child.recent)} restarts within {policy.window:g} s "
                f"(restart budget {policy.budget}): stopping the hub{see}"
            )
        delay = policy.delay(len(child.recent))
        child.state, child.next_start = "restarting", now + delay
        self.say(
            f"{name}{pid} {what}{ran}; restarting in {delay:g} s "
            f"(restart {len(child.recent) + 1} of at most {policy.budget} within {policy.window:g} s){see}"
        )
        self.publish()

    def _give_up(self, message: str) -> None:
        self.say(message)
        self.message = message
        self.stop()
        raise SupervisionError(message)

    # -- stopping --------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Restart nothing any more; stop every child, higher tiers first (each tier in parallel). Idempotent."""
        self._stopping = True
        if self.state not in ("stopped", "failed"):
            self.state = "stopping"
            self.publish()
        tiers = sorted({c.spec.tier for c in self._children.values()}, reverse=True)
        for tier in tiers:
            group = [c for c in self._children.values() if c.spec.tier == tier]
            with ThreadPoolExecutor(max_workers=max(1, len(group))) as pool:
                list(pool.map(self._stop_child, group))
        self.state = "failed" if self.message else "stopped"
        self.publish()

    def _stop_child(self, child: _Child) -> None:
        if child.proc is not None and child.state == "up":
            child.spec.stop(child.proc)
        if child.proc is not None:
            child.proc.poll()  # reaped, whatever state it was in
        if child.state != "failed":
            child.state, child.since_wall = "stopped", time.time()
        child.next_start = None
        UP.labels(child.spec.name).set(0)

    # -- what it shows ---------------------------------------------------------------------------------------------
    @property
    def failed(self) -> bool:
        return bool(self.message)

    def alive(self, name: str) -> bool:
        """Whether the child's process runs now (polled, so reaped if it exited; check() still handles the exit)."""
        child = self._children.get(name)
        return child is not None and child.proc is not None and child.state == "up" and child.proc.poll() is None

    def pids(self) -> dict[str, int]:
        """The pid of each child that is up."""
        return {n: c.proc.pid for n, c in self._children.items() if c.state == "up" and c.proc is not None}

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "supervisor": {
                "pid": os.getpid(),
                "state": self.state,
                "since": _iso(self.started),
                "updated": _iso(time.time()),
                "message": self.message,
            },
            **self.details,
            "services": {name: child.as_json(now) for name, child in self._children.items()},
        }

    def publish(self) -> None:
        """Write the status file (atomically: readers see the old file or the new one, never half of one)."""
        if self.status_path is None:
            return
        try:
            write_json_atomically(self.status_path, self.snapshot())
        except OSError as exc:
            if not self._status_broken:  # once, not at every change
                self.say(
                    f"Cannot write the status file {self.status_path} ({exc.strerror or exc}): `apihub status` "
                    "will not see this hub"
                )
            self._status_broken = True


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# -- reading the status back (`apihub status`) -------------------------------------------------------------------
def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (a pid reused since is indistinguishable: the status says so)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@dataclass(frozen=True)
class HubStatus:
    """The status file of a state directory as read, and what it means now."""

    path: Path
    data: dict[str, Any] | None
    supervisor_alive: bool

    @property
    def supervisor(self) -> dict[str, Any]:
        return (self.data or {}).get("supervisor", {})

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return (self.data or {}).get("services", {})

    @property
    def running(self) -> bool:
        return self.supervisor.get("state") in LIVE_STATES and self.supervisor_alive

    @property
    def stale(self) -> bool:
        """The file says a hub runs, but its supervisor is gone (killed, or the machine restarted)."""
        return self.supervisor.get("state") in LIVE_STATES and not self.supervisor_alive

    @property
    def all_up(self) -> bool:
        if not self.running or self.supervisor.get("state") != "running" or not self.services:
            return False
        return all(s.get("state") == "up" for s in self.services.values())

    def leftovers(self) -> dict[str, int]:
        """Of a stale status: the services whose pid still runs (perhaps the gone supervisor's children)."""
        if not self.stale:
            return {}
        return {n: s["pid"] for n, s in self.services.items() if s.get("pid") and pid_alive(s["pid"])}

    def as_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "running": self.running, "stale": self.stale, **(self.data or {})}


def read_status(path: Path) -> HubStatus:
    """The status file at ``path``; data None when there is none (or it cannot be read as a status)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return HubStatus(path, None, False)
    if not isinstance(data, dict) or not isinstance(data.get("supervisor"), dict):
        return HubStatus(path, None, False)
    return HubStatus(path, data, pid_alive(data["supervisor"].get("pid")))


def _at(iso: str | None) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC") if iso else "-"
    except ValueError:
        return iso


def _ago(iso: str | None, now: datetime) -> str:
    try:
        then = datetime.fromisoformat(iso) if iso else None
    except ValueError:
        then = None
    return _at(iso) if then is None else f"{_at(iso)} ({_span((now - then).total_seconds())} ago)"


def status_lines(status: HubStatus, now: datetime | None = None) -> list[str]:
    """`apihub status` for a person: what runs, since when, its pid and restarts; or why no hub runs."""
    now = now or datetime.now(UTC)
    sup = status.supervisor
    if status.data is None:
        return [f"No hub is running here: no status file at {status.path} (APIHUB_STATE_DIR)."]
    if status.stale:
        lines = [
            f"No hub is running: the supervisor (pid {sup.get('pid')}) that wrote {status.path} is gone; the file is "
            f"stale (last updated {_ago(sup.get('updated'), now)})."
        ]
        left = status.leftovers()
        if left:
            pids = ", ".join(f"{n} pid {p}" for n, p in left.items())
            lines.append(f"Processes it started may still run ({pids}): stop them (kill PID) before `apihub up`.")
        return lines
    if not status.running:
        ended = "stopped" if sup.get("state") == "stopped" else "stopped after a failure"
        lines = [f"No hub is running: the last one {ended} {_ago(sup.get('updated'), now)}."]
        return lines + ([f"  {sup['message']}"] if sup.get("message") else [])
    lines = [f"Hub {sup.get('state')}: supervisor pid {sup.get('pid')}, since {_ago(sup.get('since'), now)}."]
    lines.append(f"{'SERVICE':10} {'STATE':11} {'PID':>8} {'RESTARTS':>8}  SINCE")
    for name, s in status.services.items():
        pid = s.get("pid") or "-"
        lines.append(
            f"{name:10} {s.get('state', '?'):11} {pid!s:>8} {s.get('restarts', 0):>8}  {_ago(s.get('since'), now)}"
        )
        if s.get("last_exit"):
            then = f"{s['last_exit']} at {_ago(s.get('last_exit_at'), now)}"
            nxt = f"; next attempt at {_at(s['next_attempt'])}" if s.get("next_attempt") else ""
            lines.append(f"{'':10} last: {then}{nxt}")
    return lines
