"""The faults, each injected in the middle of traffic: kill -9 of a service (restarted by the suite itself at once,
as a supervisor would), of all three, of the profiler and the router under `apihub up` (its supervisor restarts
them), of the broker (started again on its data); a member's tool stopped and started again; a member's webhook
answering 503 for a while; a second profiler, then one of the two killed for good.

A fault returns when it is over (the killed process started again, the member back); the suite keeps the traffic
going around it. Meanwhile a watchdog starts again any service that exits by itself (noted in the report), so that
a service dying of a fault shows as what it costs, not as a suite that stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.abuse.harness import Arena
from benchmarks.chaos.members import CliMember, WebhookEndpoint
from services.devkafka import free_port, terminate
from services.launcher import wait_healthy

SERVICES = ("ingest", "profiler", "router")


@dataclass(frozen=True)
class Timing:
    """How long each part of a scenario lasts (seconds) and how fast carriers send."""

    interval: float  # between two manifests of the carrier
    warm: float  # traffic before the fault
    after: float  # traffic after the fault is over
    member_outage: float  # a member's tool stopped
    webhook_outage: float  # a member's webhook answering 503
    join: float  # traffic while a second profiler joins, before one of the two is killed
    settle: float  # the longest wait, after the traffic, for every expected hit
    give_up: float  # the longest a carrier retries one manifest the hub does not answer
    manifests: int  # original manifests planned per scenario (the traffic stops before they run out)


QUICK = Timing(
    interval=0.3, warm=5, after=10, member_outage=20, webhook_outage=20, join=8, settle=120, give_up=60, manifests=400
)
FULL = Timing(
    interval=0.2,
    warm=20,
    after=40,
    member_outage=120,
    webhook_outage=180,
    join=15,
    settle=240,
    give_up=120,
    manifests=1500,
)


@dataclass(frozen=True)
class Fault:
    """What a scenario did: when the fault began, and when recovery is measured from (the kill; for a member's
    fault, the moment it came back); ``member``: the one member affected, None for the whole hub."""

    at: float
    since: float
    member: str | None = None
    note: str = ""
    none: bool = False  # the baseline: no fault at all


@dataclass
class Stage:
    """What the scenarios act on: the arena's processes, the CLI member, the webhook endpoint."""

    arena: Arena
    cli: CliMember
    endpoint: WebhookEndpoint
    timing: Timing
    say: Callable[[str], None]
    # Faults and the watchdog take turns: a fault's kill and restart never race the watchdog's restart.
    lock: threading.Lock = field(default_factory=threading.Lock)
    left_dead: set[str] = field(default_factory=set)  # killed on purpose and not to be started again
    up: subprocess.Popen | None = None  # `apihub up`, while a scenario runs the services under it
    exits: list[tuple[float, str, int]] = field(default_factory=list)  # (when, process, status): exited by itself
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        threading.Thread(target=self._watchdog, daemon=True, name="chaos-watchdog").start()

    def close(self) -> None:
        self._stop.set()

    def _watchdog(self) -> None:
        last: dict[str, float] = {}
        while not self._stop.wait(1.0):
            with self.lock:
                for name, proc in list(self.arena.procs.items()):
                    code = proc.poll()
                    if code is None or name in self.left_dead or time.monotonic() - last.get(name, 0) < 5:
                        continue
                    self.exits.append((time.monotonic(), name, code))
                    self.say(f"  {name} exited by itself (status {code}): started again")
                    last[name] = time.monotonic()
                    self.arena.restart(name)


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    inject: Callable[[Stage], Fault]
    quick: bool  # part of the quick run (`make test`)
    # Puts the arena back as the other scenarios expect it, once the scenario's hits are counted.
    restore: Callable[[Stage], None] | None = None


def _kill(stage: Stage, names: tuple[str, ...]) -> Fault:
    with stage.lock:
        at = time.monotonic()
        for name in names:
            stage.arena.kill(name)
        for name in names:
            stage.arena.restart(name)
    return Fault(at, at, note=f"kill -9 of {', '.join(names)}; started again at once")


def _baseline(stage: Stage) -> Fault:
    now = time.monotonic()
    return Fault(now, now, none=True, note="no fault: checks the suite's own expectations")


def _broker(stage: Stage) -> Fault:
    with stage.lock:
        at = time.monotonic()
        stage.arena.kill_broker()
        stage.arena.start_broker()
    return Fault(at, at, note=f"kill -9 of the broker; it was ready again {time.monotonic() - at:.1f}s later")


def _member_offline(stage: Stage) -> Fault:
    member = stage.cli.member
    at = time.monotonic()
    stage.cli.stop()
    time.sleep(stage.timing.member_outage)
    back = time.monotonic()
    stage.cli.start()
    return Fault(at, back, member, f"`hits follow` of {member} stopped for {back - at:.0f}s, then started again")


def _webhook_failing(stage: Stage) -> Fault:
    member = stage.endpoint.member
    refused = stage.endpoint.answers[503]
    at = time.monotonic()
    stage.endpoint.failing.set()
    time.sleep(stage.timing.webhook_outage)
    stage.endpoint.failing.clear()
    back = time.monotonic()
    refused = stage.endpoint.answers[503] - refused
    return Fault(at, back, member, f"webhook of {member} answered 503 for {back - at:.0f}s ({refused} POSTs)")


def _two_profilers(stage: Stage) -> Fault:
    stage.arena.spawn_second("profiler-2", "profiler")
    time.sleep(stage.timing.join)  # both share the manifests' partitions by now (the group rebalanced)
    with stage.lock:
        at = time.monotonic()
        stage.arena.kill("profiler")
        stage.left_dead.add("profiler")
    return Fault(at, at, note="a second profiler joined; then the first was killed (-9) and not started again")


def _children(up: subprocess.Popen, service: str) -> list[int]:
    """Pids of the `apihub serve SERVICE` processes `apihub up` runs."""
    import psutil

    found = []
    for child in psutil.Process(up.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.cmdline()[-2:] == ["serve", service]:
                found.append(child.pid)
    return found


def _supervised(stage: Stage) -> Fault:
    """The arena's services stopped; `apihub up --no-demo` runs them instead, on the arena's broker and addresses;
    then kill -9 of its profiler and router, which its supervisor (services.supervisor) starts again."""
    arena = stage.arena
    with stage.lock:
        for name in SERVICES:
            stage.left_dead.add(name)
            terminate(arena.procs[name], 20)
    env = {
        **arena.env,
        "APIHUB_STATE_DIR": str(arena.workdir / "up"),
        "APIHUB_SUPERVISOR_METRICS_PORT": str(free_port()),
    }
    with (arena.workdir / "up.log").open("ab") as log:
        stage.up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--no-demo"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    wait_healthy(arena.settings.ingest_listen, 120)
    wait_healthy(arena.settings.delivery_listen, 120)
    time.sleep(stage.timing.join)  # the consumers joined their groups; traffic flows
    killed = {name: _children(stage.up, name) for name in ("profiler", "router")}
    at = time.monotonic()
    for pids in killed.values():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    deadline = at + 120
    while time.monotonic() < deadline:  # until the supervisor started both again
        if all(set(_children(stage.up, name)) - set(pids) for name, pids in killed.items()):
            break
        time.sleep(0.2)
    return Fault(
        at,
        at,
        note=f"under `apihub up`: kill -9 of profiler and router; started again {time.monotonic() - at:.1f}s later",
    )


def _unsupervised(stage: Stage) -> None:
    """`apihub up` stopped (SIGTERM: it stops its services); the arena's own services started again."""
    if stage.up is not None:
        terminate(stage.up, 60)
        stage.up = None
    with stage.lock:
        for name in SERVICES:
            stage.left_dead.discard(name)
            stage.arena.restart(name)
    wait_healthy(stage.arena.settings.ingest_listen, 120)
    wait_healthy(stage.arena.settings.delivery_listen, 120)


SCENARIOS: list[Scenario] = [
    Scenario("baseline", "no fault (the control)", _baseline, True),
    Scenario("kill-ingest", "kill -9 of ingest", lambda s: _kill(s, ("ingest",)), False),
    Scenario("kill-profiler", "kill -9 of the profiler", lambda s: _kill(s, ("profiler",)), False),
    Scenario("kill-router", "kill -9 of the router", lambda s: _kill(s, ("router",)), False),
    Scenario("kill-all", "kill -9 of ingest, profiler and router together", lambda s: _kill(s, SERVICES), True),
    Scenario("member-offline", "a member's `hits follow` stopped, then back", _member_offline, True),
    Scenario("webhook-failing", "a member's webhook answering 503, then 200", _webhook_failing, True),
    Scenario(
        "supervised",
        "kill -9 of profiler and router under `apihub up`, whose supervisor starts them again",
        _supervised,
        False,
        restore=_unsupervised,
    ),
    Scenario("two-profilers", "two profilers, one killed for good", _two_profilers, True),
    # Last: what a broker crash leaves behind (a client that never recovers, say) spoils no other scenario.
    Scenario("kill-broker", "kill -9 of the broker", _broker, True),
]
