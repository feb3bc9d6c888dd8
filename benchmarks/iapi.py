"""The interactive-API benchmark (`apihub bench --iapi`): check-in checks at a fixed rate beside the batch path.

Target (issue 15, a benchmark, never a timed test): p99 <= 300 ms per check at 200 checks/s with a 100,000-entry
watchlist on the machine at hand, with the batch path's figures from the same run beside it.

A whole hub as separate processes on its own local broker (the abuse suite's arena, benchmarks/abuse/harness.py,
with the stock member directory; the profiler serves InteractiveCheck on its own port). Every member loads a board
policy (``bench_policy``: do-not-board for a watchlist match at 0.90 or more, contact-authority at 0.80 or more, of
anyone's lists, and date of birth and document number required), the demo's watchlists are loaded, and every member
follows its hits. Then, while the batch path runs steadily (the throughput benchmark's Pacific traffic, one unary
submission every 1/``batch_rate`` s through intake), two measured phases of checks, each after a warm-up:

1. **baseline**: the check load against the profiler holding only the demo's watchlists (20 entries): the same
   processes, broker, batch load and traveller mix, without the big list. The ratio of the two phases is what the
   100,000 entries cost a check, which is what the target is about; a gRPC health round trip to the same server
   (a few a second, all through both phases) is recorded as the transport floor.
2. **watchlist**: after NZL loads a ``watchlist_entries``-entry regional list (benchmarks.screening.make_watchlist,
   the screening benchmark's generator) through the router's WatchlistAdmin, as a member does, and the profiler
   applied it (its apihub_profiler_watchlist_entries gauge).

Checks are open loop: one traveller per check, as at check-in, each sent at its scheduled time as a gRPC future
(a slow answer never delays the next send) and timed from its *scheduled* send time, so a sender that fell behind
counts against the hub (no coordinated omission). The travellers are the Pacific traffic's passengers (loadgen,
air only), of 12 carriers in the proportions of their flights; benchmarks.screening.plant turns about 2 % of them
into variants of entries of the big list (in both phases: in the baseline they match nothing). Each carrier's check
bucket is raised (APIHUB_CHECK_RATE_PER_CARRIER, APIHUB_CHECK_BURST) so the bucket is not what is measured; the
refusals it made are counted all the same.

Reported per phase: checks/s answered, latency p50/p95/p99/max from the scheduled send, fallbacks and their causes
(the profiler's apihub_check_fallbacks counter), errors by gRPC code, directives, the profiler's own timing of a
check (its histogram), the health floor, the batch path (manifests/s accepted, receipt -> hit delivered at a member
p50/p99; interactive hits' check -> delivered beside it), CPU and peak RSS of every process (psutil), and the CPU
other processes on the machine used meanwhile. Verdict: passed when, in the watchlist phase, p99 <= 300 ms, at least
97 % of the offered checks were answered, and none failed or fell back.

Writes iapi-<timestamp>.json and .md under benchmarks/results/ (or ``out``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import threading
import time
import urllib.request
from collections import Counter as Tally
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.abuse.harness import Arena, new_workdir
from benchmarks.loadgen import PacificTraffic, TrafficMix
from benchmarks.pipeline import Meter
from services import client
from services.auth import bearer
from services.devkafka import free_port
from services.directory import load_directory
from services.launcher import wait_healthy
from services.wire import check_pb2, check_pb2_grpc, delivery_pb2, hit_pb2, intake_pb2, manifest_pb2
from synthetic.traffic import demo_watchlists

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P99_S = 0.300
TARGET_RATE = 200.0
CLIENT_TIMEOUT_NOTE = "IapiPlan.client_timeout_s, 5 s"
# Share of the offered checks that must be answered for the rate to count as sustained.
SUSTAINED_SHARE = 0.97
# The member whose list is the big one (regional scope: it screens every traveller). Not one of the demo's list
# owners, whose lists the batch traffic plants people from: a load replaces the owner's whole list.
LIST_OWNER = "NZL"
DIRECTIVES = {
    check_pb2.DIRECTIVE_OK_TO_BOARD: "OK_TO_BOARD",
    check_pb2.DIRECTIVE_DO_NOT_BOARD: "DO_NOT_BOARD",
    check_pb2.DIRECTIVE_CONTACT_AUTHORITY: "CONTACT_AUTHORITY",
    check_pb2.DIRECTIVE_INSUFFICIENT_DATA: "INSUFFICIENT_DATA",
}
# Counters of the profiler's metrics page read before and after each phase (their difference is the phase's).
PROFILER_COUNTERS = (
    "apihub_check_requests_total",
    "apihub_check_fallbacks_total",
    "apihub_check_rate_limited_total",
    "apihub_check_answers_total",
    "apihub_check_seconds_bucket",
    "apihub_check_seconds_sum",
    "apihub_check_seconds_count",
)


@dataclass(frozen=True)
class IapiPlan:
    seconds: float = 60.0  # measured load of each phase
    rate: float = TARGET_RATE  # checks per second
    watchlist_entries: int = 100_000
    batch_rate: float = 2.0  # manifests per second through intake
    health_rate: float = 5.0  # health round trips per second (the transport floor)
    client_timeout_s: float = 5.0  # the carrier's own gRPC deadline (the hub's is check_deadline_ms, 2 s)
    seed: int = 15
    # Profiler processes, each serving checks on its own port (docker-compose runs 2); the load generator spreads the
    # checks over them in turn, as a gRPC load balancer in front of them would.
    profilers: int = 1

    @property
    def warmup_seconds(self) -> float:
        """Checks before each measured phase (not judged): 15 s, or a quarter of a short phase (at least 2 s)."""
        return max(2.0, min(15.0, self.seconds / 4))

    def check(self) -> None:
        if self.seconds <= 0 or self.rate <= 0 or self.batch_rate < 0 or self.watchlist_entries < 1:
            raise ValueError("--seconds and --check-rate must be positive, --watchlist-entries at least 1")
        if not 1 <= self.profilers <= 4:
            raise ValueError("--profilers must be 1 to 4")


def bench_policy(member: str) -> str:
    """The board policy every member loads for the benchmark (services/data/board_policy.yaml's shape)."""
    return f"""version: 1
member: {member}
fallback: CONTACT_AUTHORITY
require: [date_of_birth, document_number]
do_not_board:
  - watchlist: {{min_score: 0.90, owners: any}}
  - document: {{categories: [document_fraud], owners: any}}
contact_authority:
  - watchlist: {{min_score: 0.80, owners: any}}
messages:
  DO_NOT_BOARD: "DO NOT BOARD - CALL {member} IMMIGRATION"
  CONTACT_AUTHORITY: "CALL {member} IMMIGRATION BEFORE BOARDING"
"""


class IapiArena(Arena):
    """The abuse suite's arena with the stock member directory and the profilers' check ports."""

    # Each profiler process's check address and metrics port (the first is the arena's own profiler).
    checkers: list[tuple[str, int]] = field(default_factory=list)

    def start_profilers(self, count: int) -> None:
        """The arena's profiler, and count - 1 more in the same consumer group, each with its own check port."""
        s = self.settings
        self.checkers = [(s.check_listen, s.profiler_metrics_port)]
        for n in range(2, count + 1):
            address, metrics = f"127.0.0.1:{free_port()}", free_port()
            self._spawn(
                f"profiler-{n}",
                "profiler",
                {"APIHUB_CHECK_LISTEN": address, "APIHUB_PROFILER_METRICS_PORT": str(metrics)},
            )
            self.checkers.append((address, metrics))
        for address, _ in self.checkers:
            wait_healthy(address, timeout=120)

    def _directory(self) -> Path:
        path = self.workdir / "members.yaml"
        path.write_text(resources.files("services.data").joinpath("members.yaml").read_text())
        return path


# -- the checks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    carrier: str
    request: check_pb2.CheckRequest
    planted: bool


def make_checks(count: int, seed: int, run: str, entries: list[delivery_pb2.WatchlistEntry]) -> list[Check]:
    """``count`` one-traveller checks of the Pacific traffic's passengers (air only), about 2 % of the travellers
    turned into variants of ``entries`` (benchmarks.screening.plant), in a shuffled order."""
    from benchmarks.screening import plant

    traffic = PacificTraffic(seed=seed, mix=TrafficMix(cruise_share=0.0, amendment_share=0.0), run=run)
    checks: list[Check] = []
    n = 0
    while len(checks) < count:
        m = traffic.next_manifest()
        before = [t.SerializeToString() for t in m.travellers]
        plant([m], entries, seed + n)
        for t, was in zip(m.travellers, before, strict=True):
            if t.role != manifest_pb2.TRAVELLER_ROLE_PASSENGER:
                continue
            n += 1
            one = manifest_pb2.Manifest(
                carrier=m.carrier,
                transport_mode=m.transport_mode,
                flight_number=m.flight_number,
                function=manifest_pb2.MESSAGE_FUNCTION_ORIGINAL,
                message_ref=f"{run}{n:07d}",
                revision=1,
            )
            one.legs.extend(m.legs)
            one.travellers.append(t)
            one.sent_at.GetCurrentTime()
            checks.append(Check(m.carrier, check_pb2.CheckRequest(manifest=one), t.SerializeToString() != was))
    random.Random(seed).shuffle(checks)
    return checks[:count]


@dataclass
class Outcome:
    """One check (or health probe): when it was due, how late it was sent, when it was answered and how."""

    due: float  # seconds since the phase's start
    lag: float = 0.0  # sent - due
    latency: float | None = None  # answered - due
    code: str = ""  # "" answered, else the gRPC status code's name
    fallback: bool = False
    directives: tuple[int, ...] = ()
    planted: bool = False


class OpenLoop:
    """Sends ``make(i)`` (a grpc future) at ``rate`` per second for ``seconds``, open loop, and times each answer from
    its scheduled send time; ``read(future)`` turns an answer into (fallback, directives)."""

    def __init__(self, rate: float, seconds: float, make: Callable[[int], grpc.Future], read=None) -> None:
        self._rate, self._seconds, self._make, self._read = rate, seconds, make, read
        self.outcomes: list[Outcome] = []
        self._pending = 0
        self._cond = threading.Condition()

    def run(self, grace: float) -> list[Outcome]:
        count = int(self._rate * self._seconds)
        start = time.perf_counter()
        for i in range(count):
            due = i / self._rate
            delay = start + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            outcome = Outcome(due=due, lag=time.perf_counter() - start - due)
            self.outcomes.append(outcome)
            with self._cond:
                self._pending += 1
            try:
                future = self._make(i)
            except Exception as exc:  # noqa: BLE001 - a send that cannot start counts as an error
                outcome.code = type(exc).__name__
                self._finished()
                continue
            future.add_done_callback(lambda f, o=outcome: self._done(f, o, start))
        with self._cond:
            self._cond.wait_for(lambda: self._pending == 0, timeout=grace)
        return self.outcomes

    def _done(self, future: grpc.Future, outcome: Outcome, start: float) -> None:
        answered = time.perf_counter()
        try:
            answer = future.result()
        except grpc.RpcError as exc:
            outcome.code = exc.code().name if exc.code() else "UNKNOWN"
        except Exception as exc:  # noqa: BLE001 - cancelled, or anything else: an error of the check
            outcome.code = type(exc).__name__
        else:
            outcome.latency = answered - start - outcome.due
            if self._read is not None:
                outcome.fallback, outcome.directives = self._read(answer)
        self._finished()

    def _finished(self) -> None:
        with self._cond:
            self._pending -= 1
            if not self._pending:
                self._cond.notify_all()


def _read_check(answer: check_pb2.CheckResponse) -> tuple[bool, tuple[int, ...]]:
    return answer.fallback, tuple(a.directive for a in answer.answers)


# -- the batch path -----------------------------------------------------------------------------------------------


@dataclass
class Delivered:
    received_at: float  # the hit's manifest_received_at (wall clock)
    delivered_at: float
    interactive: bool


@dataclass
class Submitted:
    at: float  # wall clock
    status: str  # accepted, duplicate, rejected, error


class BatchPath:
    """The batch path in the background: Pacific traffic through intake at ``rate`` manifests/s (unary gRPC, a few
    sender threads, fixed schedule), and every member following its hits (delivery time - receipt = latency)."""

    def __init__(self, arena: Arena, rate: float, seed: int) -> None:
        self._arena, self._rate, self._seed = arena, rate, seed
        self.stop = threading.Event()
        self.submitted: list[Submitted] = []
        self.travellers: list[tuple[float, int]] = []  # (wall clock, travellers) of accepted manifests
        self.delivered: list[Delivered] = []
        self.stream_restarts = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> BatchPath:
        s = self._arena.settings
        members = client.channel_for(s, s.delivery_listen)
        for member in load_directory(s.directory_file).codes:
            self._spawn(self._follow, members, member)
        if self._rate > 0:
            self._spawn(self._feed, client.channel_for(s, s.ingest_listen))
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"iapi-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _follow(self, chan: grpc.Channel, member: str) -> None:
        def seen(delivery: delivery_pb2.Delivery) -> None:
            hit, now = delivery.hit, time.time()
            received = hit.manifest_received_at
            if hit.state == hit_pb2.HIT_STATE_WITHDRAWN or not received.seconds:
                return
            with self._lock:
                self.delivered.append(Delivered(received.seconds + received.nanos / 1e9, now, hit.interactive))

        follower = client.Follower(chan, self._arena.token("member", member), member, ack=False)
        while not self.stop.is_set():
            try:
                follower.follow(seen, should_stop=self.stop.is_set)
            except grpc.RpcError:
                with self._lock:
                    self.stream_restarts += 1
                self.stop.wait(1)

    def _feed(self, chan: grpc.Channel) -> None:
        traffic = PacificTraffic(seed=self._seed, run="IAPIBATCH")
        tokens: dict[str, str] = {}
        with ThreadPoolExecutor(4, thread_name_prefix="iapi-batch") as pool:
            started, n = time.monotonic(), 0
            while not self.stop.is_set():
                manifest = traffic.next_manifest()
                token = tokens.get(manifest.carrier) or tokens.setdefault(
                    manifest.carrier, self._arena.token("carrier", manifest.carrier)
                )
                pool.submit(self._submit, chan, token, manifest)
                n += 1
                self.stop.wait(max(0.0, started + n / self._rate - time.monotonic()))

    def _submit(self, chan: grpc.Channel, token: str, manifest: manifest_pb2.Manifest) -> None:
        try:
            receipt = client.submit(chan, token, [manifest], timeout=30)[0]
            status = {
                intake_pb2.RECEIPT_STATUS_ACCEPTED: "accepted",
                intake_pb2.RECEIPT_STATUS_DUPLICATE: "duplicate",
            }.get(receipt.status, "rejected")
        except grpc.RpcError:
            status = "error"
        now = time.time()
        with self._lock:
            self.submitted.append(Submitted(now, status))
            if status == "accepted":
                self.travellers.append((now, len(manifest.travellers)))

    def window(self, lo: float, hi: float) -> dict:
        """The batch path's figures for manifests submitted (and hits received) between lo and hi (wall clock)."""
        with self._lock:
            statuses = Tally(s.status for s in self.submitted if lo <= s.at < hi)
            travellers = sum(n for at, n in self.travellers if lo <= at < hi)
            checks = [
                d.delivered_at - d.received_at for d in self.delivered if lo <= d.received_at < hi and d.interactive
            ]
            batch = [
                d.delivered_at - d.received_at for d in self.delivered if lo <= d.received_at < hi and not d.interactive
            ]
            restarts = self.stream_restarts
        seconds = hi - lo
        return {
            "offered_manifests_per_s": self._rate,
            "submitted": sum(statuses.values()),
            "statuses": dict(statuses),
            "accepted_manifests_per_s": round(statuses.get("accepted", 0) / seconds, 3) if seconds else None,
            "accepted_travellers_per_s": round(travellers / seconds, 1) if seconds else None,
            "hits_delivered": len(batch),
            "receipt_to_hit_ms": _latency_ms(batch),
            "interactive_hits_delivered": len(checks),
            "check_to_hit_ms": _latency_ms(checks),
            "stream_restarts": restarts,
        }


# -- measuring ----------------------------------------------------------------------------------------------------


def _percentile(ordered: list[float], p: float) -> float:
    rank = max(1, -(-int(p * 10) * len(ordered) // 1000))
    return ordered[min(len(ordered), rank) - 1]


def _latency_ms(values: list[float]) -> dict:
    """Nearest-rank p50/p95/p99, max and mean in ms (None without values)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None, "n": 0}
    ordered = sorted(values)
    out = {f"p{p}": round(_percentile(ordered, p) * 1000, 1) for p in (50, 95, 99)}
    mean = sum(ordered) / len(ordered)
    return out | {"max": round(ordered[-1] * 1000, 1), "mean": round(mean * 1000, 1), "n": len(ordered)}


def profiler_counters(arena: Arena, port: int | None = None) -> dict[str, float]:
    """The check counters of the profilers' metrics pages (summed over the processes; one page when ``port`` names
    it), by name and labels (PROFILER_COUNTERS)."""
    ports = [port] if port is not None else [m for _, m in arena.checkers] or [arena.settings.profiler_metrics_port]
    found: dict[str, float] = {}
    for each in ports:
        _add_counters(each, found)
    return found


def _add_counters(port: int, found: dict[str, float]) -> None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in PROFILER_COUNTERS or sample.name == "apihub_profiler_watchlist_entries":
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "carrier")
                name = sample.name + (f"{{{labels}}}" if labels else "")
                found[name] = found.get(name, 0.0) + sample.value


def _diff(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    return {
        k[len(prefix) :].strip("{}") or "all": after[k] - before.get(k, 0.0)
        for k in sorted(after)
        if k.startswith(prefix) and after[k] - before.get(k, 0.0)
    }


def _server_side(before: dict[str, float], after: dict[str, float]) -> dict:
    """The profiler's own timing of the phase's checks (apihub_check_seconds: arrival -> answer, server side)."""
    count = after.get("apihub_check_seconds_count", 0) - before.get("apihub_check_seconds_count", 0)
    total = after.get("apihub_check_seconds_sum", 0) - before.get("apihub_check_seconds_sum", 0)
    buckets = _diff(before, after, "apihub_check_seconds_bucket")
    under = next((v for k, v in buckets.items() if k == "le=0.3"), None)
    return {
        "checks": int(count),
        "mean_ms": round(total / count * 1000, 1) if count else None,
        "share_within_300ms": round(under / count, 4) if count and under is not None else None,
        "buckets": {k.removeprefix("le="): int(v) for k, v in buckets.items()},
    }


def other_cpu(ours: set[int]) -> dict[int, tuple[float, str]]:
    """CPU seconds so far of every process not started by this run, with a short command line."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        if proc.info["pid"] in ours or proc.info["cpu_times"] is None:
            continue
        t = proc.info["cpu_times"]
        cmd = " ".join(proc.info["cmdline"] or [])
        found[proc.info["pid"]] = (t.user + t.system, cmd[:90])
    return found


def _others(before: dict[int, tuple[float, str]], after: dict[int, tuple[float, str]], seconds: float) -> list[dict]:
    """Processes not of this run that used at least 2 % of a core during the phase, busiest first."""
    rows = []
    for pid, (cpu, cmd) in after.items():
        used = cpu - before.get(pid, (0.0, ""))[0]
        if seconds and used / seconds >= 0.02:
            rows.append({"pid": pid, "cpu_cores": round(used / seconds, 2), "command": cmd})
    return sorted(rows, key=lambda r: -r["cpu_cores"])[:8]


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every process, short-lived ones included)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def _our_pids(arena: Arena) -> set[int]:
    pids = {os.getpid()}
    for pid in [p.pid for p in arena.procs.values()] + [arena.broker.pid]:
        pids.add(pid)
        with contextlib.suppress(psutil.Error):
            pids.update(c.pid for c in psutil.Process(pid).children(recursive=True))
    return pids


def _own_cpu() -> float:
    """CPU seconds of this process alone (the Meter counts a process's children, and the hub's are this one's)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def _own_figures(me: psutil.Process, before: float, wall: float) -> dict:
    used = _own_cpu() - before
    return {
        "cpu_seconds": round(used, 3),
        "cpu_cores": round(used / wall, 3) if wall else None,
        "peak_rss_mb": round(me.memory_info().rss / 2**20, 1),  # at the end (the generator's list sits there)
    }


def summarise_checks(outcomes: list[Outcome], seconds: float) -> dict:
    """Rate, latency from the scheduled send, errors, fallbacks and directives of one phase's outcomes."""
    answered = [o for o in outcomes if not o.code]
    directives = Tally(DIRECTIVES.get(d, str(d)) for o in answered for d in o.directives)
    planted = [o for o in answered if o.planted]
    return {
        "offered": len(outcomes),
        "offered_per_s": round(len(outcomes) / seconds, 1) if seconds else None,
        "answered": len(answered),
        "answered_per_s": round(len(answered) / seconds, 1) if seconds else None,
        "latency_ms": _latency_ms([o.latency for o in answered if o.latency is not None]),
        "send_lag_ms": _latency_ms([o.lag for o in outcomes]),
        "errors": dict(Tally(o.code for o in outcomes if o.code)),
        "fallbacks": sum(1 for o in answered if o.fallback),
        "directives": dict(directives),
        "planted": len(planted),
        "planted_not_ok": sum(1 for o in planted if any(d != check_pb2.DIRECTIVE_OK_TO_BOARD for d in o.directives)),
    }


# -- the run ------------------------------------------------------------------------------------------------------


class Phases:
    """The two measured phases on one arena (the check stub, tokens, counters, the batch path)."""

    def __init__(self, arena: Arena, plan: IapiPlan, batch: BatchPath, say) -> None:
        self.arena, self.plan, self.batch, self.say = arena, plan, batch, say
        s = arena.settings
        addresses = [address for address, _ in arena.checkers] or [s.check_listen]
        self._stubs = [check_pb2_grpc.InteractiveCheckStub(client.channel_for(s, a)) for a in addresses]
        self._health = health_pb2_grpc.HealthStub(client.channel_for(s, addresses[0]))
        self._tokens: dict[str, tuple] = {}

    def _metadata(self, carrier: str) -> tuple:
        if carrier not in self._tokens:
            self._tokens[carrier] = tuple(bearer(self.arena.token("carrier", carrier)))
        return self._tokens[carrier]

    def _loop(self, checks: list[Check], seconds: float) -> tuple[OpenLoop, Callable[[], list[Outcome]]]:
        plan = self.plan
        for c in checks:
            self._metadata(c.carrier)

        def make(i: int) -> grpc.Future:
            c = checks[i % len(checks)]
            return self._stubs[i % len(self._stubs)].CheckTravellers.future(
                c.request, metadata=self._tokens[c.carrier], timeout=plan.client_timeout_s
            )

        loop = OpenLoop(plan.rate, seconds, make, _read_check)

        def run() -> list[Outcome]:
            outcomes = loop.run(grace=plan.client_timeout_s + 5)
            for i, o in enumerate(outcomes):
                o.planted = checks[i % len(checks)].planted
            return outcomes

        return loop, run

    def _health_loop(self, seconds: float) -> OpenLoop:
        request = health_pb2.HealthCheckRequest(service="")
        return OpenLoop(
            self.plan.health_rate,
            seconds,
            lambda _i: self._health.Check.future(request, timeout=self.plan.client_timeout_s),
        )

    def measure(self, name: str, checks: list[Check]) -> dict:
        plan = self.plan
        warm = int(plan.rate * plan.warmup_seconds)
        self.say(f"  {name}: {plan.warmup_seconds:g} s warm-up, then {plan.seconds:g} s at {plan.rate:g} checks/s")
        _, warm_run = self._loop(checks[:warm], plan.warmup_seconds)
        warm_outcomes = warm_run()
        measured = checks[warm:] or checks
        _, run = self._loop(measured, plan.seconds)
        health = self._health_loop(plan.seconds)
        health_thread = threading.Thread(target=health.run, args=(plan.client_timeout_s + 5,), daemon=True)
        pids = {name: proc.pid for name, proc in self.arena.procs.items()}
        pids["broker"] = self.arena.broker.pid
        ours = _our_pids(self.arena)
        counters_before, others_before = profiler_counters(self.arena), other_cpu(ours)
        busy_before = _machine_busy()
        lo = time.time()
        me, own_before = psutil.Process(), _own_cpu()
        with Meter(pids) as meter:
            health_thread.start()
            outcomes = run()
            health_thread.join(plan.client_timeout_s + 10)
        hi = lo + plan.seconds
        counters_after, others_after = profiler_counters(self.arena), other_cpu(ours)
        busy = (_machine_busy() - busy_before) / meter.wall if meter.wall else None
        # Let the hits of the phase's last manifests reach the members before the batch window is read.
        time.sleep(min(10.0, max(2.0, plan.seconds / 6)))
        checks_summary = summarise_checks(outcomes, plan.seconds)
        phase = {
            "checks": checks_summary,
            "warm_up": {
                k: v for k, v in summarise_checks(warm_outcomes, plan.warmup_seconds).items() if k != "send_lag_ms"
            },
            "profiler": {
                "fallback_causes": _diff(counters_before, counters_after, "apihub_check_fallbacks_total"),
                "outcomes": _diff(counters_before, counters_after, "apihub_check_requests_total"),
                "rate_limited": sum(_diff(counters_before, counters_after, "apihub_check_rate_limited_total").values()),
                "answers": _diff(counters_before, counters_after, "apihub_check_answers_total"),
                "check_seconds": _server_side(counters_before, counters_after),
                "watchlist_entries": _diff({}, counters_after, "apihub_profiler_watchlist_entries"),
            },
            "health_floor_ms": _latency_ms([o.latency for o in health.outcomes if o.latency is not None]),
            "health_errors": dict(Tally(o.code for o in health.outcomes if o.code)),
            "batch": self.batch.window(lo, hi),
            "processes": meter.result() | {"load generator": _own_figures(me, own_before, meter.wall)},
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "other_processes": _others(others_before, others_after, meter.wall),
            "machine_busy_cores": None if busy is None else round(busy, 2),
        }
        lat = checks_summary["latency_ms"]
        self.say(
            f"    {checks_summary['answered_per_s']}/s answered; p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} "
            f"max {lat['max']} ms; {checks_summary['fallbacks']} fallbacks, {sum(checks_summary['errors'].values())} "
            f"errors; batch {phase['batch']['accepted_manifests_per_s']} manifests/s, hit p99 "
            f"{phase['batch']['receipt_to_hit_ms']['p99']} ms"
        )
        return phase


def load_big_list(arena: Arena, entries: list[delivery_pb2.WatchlistEntry], probe: Check, say) -> dict:
    """The big list loaded as a member loads one (WatchlistAdmin), waited for until the profiler applied it, then
    one check at a time until one is screened (not the fallback): the profiler builds its blocking index of the list
    lazily, at the first screening after a change, and that first screening is timed here, with no other checks in
    flight, rather than inside the measured phase."""
    s = arena.settings
    chan = client.channel_for(s, s.delivery_listen)
    t0 = time.monotonic()
    answer = client.load_watchlist(chan, arena.token("member", LIST_OWNER), LIST_OWNER, entries, timeout=300)
    stored = time.monotonic() - t0
    if answer.errors:
        raise RuntimeError(f"the {LIST_OWNER} list was refused: {answer.errors[0]}")
    gauge = f"apihub_profiler_watchlist_entries{{owner={LIST_OWNER}}}"
    checkers = arena.checkers or [(s.check_listen, s.profiler_metrics_port)]
    applied = None
    while time.monotonic() - t0 < 600:
        if all(profiler_counters(arena, port).get(gauge) == len(entries) for _, port in checkers):
            applied = time.monotonic() - t0
            break
        time.sleep(0.5)
    if applied is None:
        raise RuntimeError(f"the profilers did not apply the {len(entries)}-entry list within 10 minutes")
    metadata = bearer(arena.token("carrier", probe.carrier))
    screened, tries = None, 0
    for address, _ in checkers:  # each profiler's first screening after the load, alone
        stub = check_pb2_grpc.InteractiveCheckStub(client.channel_for(s, address))
        first = None
        while first is None and time.monotonic() - t0 < 600:
            tries += 1
            started = time.monotonic()
            try:
                answer = stub.CheckTravellers(probe.request, metadata=metadata, timeout=120)
            except grpc.RpcError:
                time.sleep(1)
                continue
            if not answer.fallback:
                first = time.monotonic() - started
        screened = first if screened is None or first is None else max(screened, first)
    say(
        f"  {LIST_OWNER} list of {len(entries):,} entries stored in {stored:.1f} s, applied at {applied:.1f} s; "
        f"first screened check after it: {screened or 0:.1f} s ({tries} tries)"
    )
    return {
        "owner": LIST_OWNER,
        "entries": len(entries),
        "stored_s": round(stored, 2),
        "applied_s": round(applied, 2),
        "first_screened_check_s": None if screened is None else round(screened, 2),
        "first_screened_check_tries": tries,
    }


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(plan: IapiPlan, out: Path | None = RESULTS, say=print) -> int:
    """Run both phases on a fresh hub; print and write the report; 0 when the target was met, 1 otherwise."""
    from benchmarks.screening import make_watchlist

    plan.check()
    workdir = new_workdir()
    say(
        f"iapi: {plan.rate:g} checks/s for {plan.seconds:g} s per phase (baseline, then a "
        f"{plan.watchlist_entries:,}-entry list) beside {plan.batch_rate:g} manifests/s of batch traffic; "
        f"logs in {workdir}"
    )
    at = machine()
    entries = make_watchlist(plan.watchlist_entries, plan.seed)
    per_phase = int(plan.rate * (plan.warmup_seconds + plan.seconds))
    baseline_checks = make_checks(per_phase, plan.seed, "IAPIA", entries)
    listed_checks = make_checks(per_phase, plan.seed + 1, "IAPIW", entries)
    arena = IapiArena(
        workdir,
        say=say,
        prefix="iapi",
        extra_env={
            "APIHUB_CHECK_LISTEN": f"127.0.0.1:{free_port()}",
            # Raised so the per-carrier bucket is not what is measured (its refusals are counted all the same).
            "APIHUB_CHECK_RATE_PER_CARRIER": str(max(10_000.0, plan.rate * 10)),
            "APIHUB_CHECK_BURST": str(int(max(20_000, plan.rate * 20))),
        },
    )
    batch = None
    phases: dict[str, dict] = {}
    loaded: dict = {}
    try:
        arena.start()
        arena.start_profilers(plan.profilers)
        s = arena.settings
        members_chan = client.channel_for(s, s.delivery_listen)
        codes = load_directory(s.directory_file).codes
        for member in codes:
            answer = client.load_board_policy(members_chan, arena.token("member", member), member, bench_policy(member))
            if answer.errors:
                raise RuntimeError(f"the benchmark's board policy of {member} was refused: {answer.errors[0]}")
        for owner, listed in demo_watchlists().items():
            client.load_watchlist(members_chan, arena.token("member", owner), owner, listed)
        batch = BatchPath(arena, plan.batch_rate, plan.seed).start()
        measured = Phases(arena, plan, batch, say)
        phases["baseline"] = measured.measure("baseline (the demo's 20 entries)", baseline_checks)
        loaded = load_big_list(arena, entries, listed_checks[-1], say)
        phases["watchlist"] = measured.measure(f"with the {plan.watchlist_entries:,}-entry list", listed_checks)
        dead = arena.dead()
    finally:
        if batch is not None:
            batch.close()
        arena.close()
    record = _record(plan, at, phases, loaded, dead, workdir)
    return _report(record, out, say)


def _profilers_text(plan: dict) -> str:
    count = plan.get("profilers", 1)
    if count > 1:
        return f"{count} profilers each with its check server, the checks sent to them in turn"
    return "profiler with its check server"


def verdict(phase: dict, plan: IapiPlan) -> dict:
    checks = phase["checks"]
    p99 = checks["latency_ms"]["p99"]
    reasons = []
    if p99 is None or p99 > TARGET_P99_S * 1000:
        reasons.append(f"p99 {p99} ms > {TARGET_P99_S * 1000:.0f} ms")
    if checks["answered"] < SUSTAINED_SHARE * checks["offered"]:
        reasons.append(f"{checks['answered']} of {checks['offered']} checks answered (< {SUSTAINED_SHARE:.0%})")
    if checks["errors"]:
        reasons.append(f"errors {checks['errors']}")
    if checks["fallbacks"]:
        reasons.append(f"{checks['fallbacks']} fallbacks")
    if plan.rate < TARGET_RATE or plan.watchlist_entries < 100_000:
        reasons.append(f"not the target's load ({plan.rate:g} checks/s, {plan.watchlist_entries:,} entries)")
    return {"ok": not reasons, "reasons": reasons}


def command(plan: IapiPlan) -> str:
    return (
        f"apihub bench --iapi --seconds {plan.seconds:g} --check-rate {plan.rate:g} --watchlist-entries "
        f"{plan.watchlist_entries} --batch-rate {plan.batch_rate:g}"
        + (f" --profilers {plan.profilers}" if plan.profilers > 1 else "")
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _record(plan: IapiPlan, at: dict, phases: dict, loaded: dict, dead: list[str], workdir: Path) -> dict:
    listed, base = phases.get("watchlist"), phases.get("baseline")
    judged = verdict(listed, plan) if listed else {"ok": False, "reasons": ["the watchlist phase did not run"]}
    if dead:
        judged = {"ok": False, "reasons": [*judged["reasons"], f"services died: {', '.join(dead)}"]}
    ratios = {}
    if listed and base:
        for p in ("p50", "p95", "p99"):
            ratios[p] = _ratio(listed["checks"]["latency_ms"][p], base["checks"]["latency_ms"][p])
    return {
        "kind": "iapi",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command(plan),
        "plan": asdict(plan) | {"warmup_seconds": plan.warmup_seconds},
        "target": {"p99_ms": TARGET_P99_S * 1000, "checks_per_s": TARGET_RATE, "watchlist_entries": 100_000},
        "bucket": "APIHUB_CHECK_RATE_PER_CARRIER raised to "
        f"{max(10_000.0, plan.rate * 10):g}/s and APIHUB_CHECK_BURST to {int(max(20_000, plan.rate * 20))}, "
        "load spread over the traffic's carriers",
        "machine": at,
        "ok": judged["ok"],
        "verdict": judged,
        "latency_ratio_to_baseline": ratios,
        "watchlist_load": loaded,
        "phases": phases,
        "dead_services": dead,
        "logs": str(workdir),
    }


def _report(record: dict, out: Path | None, say) -> int:
    markdown = to_markdown(record)
    say("")
    say(markdown)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (out / f"iapi-{stamp}.json").write_text(json.dumps(record, indent=2))
        (out / f"iapi-{stamp}.md").write_text(markdown)
        say(f"results: {out / f'iapi-{stamp}.json'} and .md")
    return 0 if record["ok"] else 1


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _pair(latency: dict) -> str:
    return f"{_ms(latency['p50'])} / {_ms(latency['p99'])}"


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in d.items()) if d else "none"


def _notes(phases: dict) -> list[str]:
    """What the error codes and fallback causes of the run mean (only those that occurred)."""
    codes = {code for p in phases.values() for code in p["checks"]["errors"]}
    causes = {cause for p in phases.values() for cause in p["profiler"]["fallback_causes"]}
    limited = sum(p["profiler"]["rate_limited"] for p in phases.values())
    notes = []
    if "RESOURCE_EXHAUSTED" in codes:
        why = (
            "the per-carrier check bucket refused some (rate-limited above)"
            if limited
            else "not the check bucket (nothing rate-limited): the hub's per-principal limit of calls in progress "
            "(services.limits: APIHUB_CHECK_CARRIER_CALLS per carrier, 96 by default, and the server's calls in "
            "progress for all carriers together) refused checks when that many were unanswered, i.e. answers were "
            "slower than the arrivals"
        )
        notes.append(f"- RESOURCE_EXHAUSTED: {why}.")
    if "DEADLINE_EXCEEDED" in codes:
        notes.append(
            f"- DEADLINE_EXCEEDED: no answer within the carrier's own deadline ({CLIENT_TIMEOUT_NOTE}): the call "
            "waited for a server thread or for the profiler's CPU longer than that."
        )
    if causes:
        notes.append(
            "- Fallback causes are the profiler's apihub_check_fallbacks counter over the phase (its help text says "
            "what each cause means: loading = the tables' first load after a start, tables = not caught up in time, "
            "broker = the check's records not acknowledged, deadline = screening ran out of time; the budget is the "
            "sooner of APIHUB_CHECK_DEADLINE_MS, 2 s, and the carrier's deadline). The counter also counts checks "
            "whose carrier had already given up (DEADLINE_EXCEEDED above), so it may exceed the fallbacks received."
        )
    return ["Notes:", "", *notes] if notes else []


def to_markdown(record: dict) -> str:
    plan, phases, box = record["plan"], record["phases"], record["machine"]
    verdict_text = "passed" if record["ok"] else "FAILED"
    lines = [
        f"# Interactive API: {plan['rate']:g} checks/s with a {plan['watchlist_entries']:,}-entry watchlist "
        f"({verdict_text})",
        "",
        f"{record['at']}. Target (issue 15): p99 <= {record['target']['p99_ms']:.0f} ms per check at "
        f"{record['target']['checks_per_s']:g} checks/s with a {record['target']['watchlist_entries']:,}-entry "
        f"watchlist. Command: `{record.get('command', 'apihub bench --iapi')}`. Verdict: **{verdict_text}**"
        + (f" ({'; '.join(record['verdict']['reasons'])})" if record["verdict"]["reasons"] else "")
        + ".",
        "",
        f"Machine: {box['cpus']} CPUs, {box['memory_gb']} GB, {box['platform']}, Python {box['python']}; load "
        f"average at start {box['load_average_at_start']}. "
        f"A whole hub as separate processes (ingest, {_profilers_text(plan)}, router) on a local single-node broker. "
        "Open-loop checks (one traveller each, gRPC futures, latency from the scheduled send time), "
        f"{plan['seconds']:g} s measured per phase after {plan['warmup_seconds']:g} s of warm-up, beside "
        f"{plan['batch_rate']:g} manifests/s of Pacific batch traffic through intake. {record['bucket']}.",
        "",
        "Baseline (same run, same processes and batch load): the same check load before the big list is loaded "
        "(the demo's 20 entries only); the gRPC health round trip to the check server is the transport floor.",
        "",
        "| | " + " | ".join(phases) + " |",
        "|---|" + "---:|" * len(phases),
    ]

    def row(label: str, get) -> None:
        cells = []
        for phase in phases.values():
            try:
                cells.append(get(phase))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("watchlist entries (profiler)", lambda p: _counts(p["profiler"]["watchlist_entries"]))
    row("checks offered /s", lambda p: f"{p['checks']['offered_per_s']}")
    row("checks answered /s", lambda p: f"{p['checks']['answered_per_s']}")
    for q in ("p50", "p95", "p99", "max"):
        row(f"check latency {q} (ms)", lambda p, q=q: _ms(p["checks"]["latency_ms"][q]))
    row("sender lag p99 (ms)", lambda p: _ms(p["checks"]["send_lag_ms"]["p99"]))
    row("profiler's own mean per check (ms)", lambda p: _ms(p["profiler"]["check_seconds"]["mean_ms"]))
    row("profiler: share within 300 ms", lambda p: f"{p['profiler']['check_seconds']['share_within_300ms']}")
    row("fallbacks (causes)", lambda p: f"{p['checks']['fallbacks']} ({_counts(p['profiler']['fallback_causes'])})")
    row("errors", lambda p: _counts(p["checks"]["errors"]))
    row("rate-limited", lambda p: f"{p['profiler']['rate_limited']:g}")
    row("directives", lambda p: _counts(p["checks"]["directives"]))
    row("planted checks (not OK)", lambda p: f"{p['checks']['planted']} ({p['checks']['planted_not_ok']})")
    row("health floor p50 / p99 (ms)", lambda p: _pair(p["health_floor_ms"]))
    row("batch: manifests/s accepted", lambda p: f"{p['batch']['accepted_manifests_per_s']}")
    row("batch: travellers/s accepted", lambda p: f"{p['batch']['accepted_travellers_per_s']}")
    row("batch: submissions", lambda p: _counts(p["batch"]["statuses"]))
    row(
        "batch: receipt -> hit at member p50 / p99 (ms)",
        lambda p: (
            f"{_ms(p['batch']['receipt_to_hit_ms']['p50'])} / {_ms(p['batch']['receipt_to_hit_ms']['p99'])} "
            f"({p['batch']['hits_delivered']} hits)"
        ),
    )
    row(
        "check -> interactive hit at member p50 / p99 (ms)",
        lambda p: (
            f"{_ms(p['batch']['check_to_hit_ms']['p50'])} / {_ms(p['batch']['check_to_hit_ms']['p99'])} "
            f"({p['batch']['interactive_hits_delivered']} hits)"
        ),
    )
    names = sorted({n for p in phases.values() for n in p.get("processes", {})})
    for name in names:
        row(
            f"{name}: CPU cores / peak RSS MB",
            lambda p, n=name: f"{p['processes'][n]['cpu_cores']} / {p['processes'][n]['peak_rss_mb']}",
        )
    row(
        "machine busy cores (all processes) / of which not this run's",
        lambda p: (
            f"{p['machine_busy_cores']} / "
            f"{round(p['machine_busy_cores'] - sum(v['cpu_cores'] or 0 for v in p['processes'].values()), 2)}"
        ),
    )
    row("load average at end", lambda p: f"{p['load_average_at_end']}")
    ratios = record["latency_ratio_to_baseline"]
    if ratios:
        lines += [
            "",
            "Latency with the list over the baseline: "
            + ", ".join(f"{p} {'-' if r is None else f'{r:.2f}x'}" for p, r in ratios.items())
            + ".",
        ]
    loaded = record["watchlist_load"]
    if loaded:
        lines += [
            "",
            f"The {loaded['entries']:,}-entry regional list of {loaded['owner']} (screening.make_watchlist): "
            f"stored through WatchlistAdmin in {loaded['stored_s']} s, applied by the profiler "
            f"{loaded['applied_s']} s after the call began; then one check at a time until one was screened (not "
            f"the fallback): {loaded.get('first_screened_check_s')} s for that check, "
            f"{loaded.get('first_screened_check_tries')} tries (the profiler builds its blocking index of the lists at "
            "the first screening after a change). None "
            "of this is inside a measured phase.",
        ]
    others = {r["command"]: r for p in phases.values() for r in p.get("other_processes", [])}
    if others:
        lines += ["", "Other processes on the machine during the phases (at least 2 % of a core):", ""]
        for name, phase in phases.items():
            for r in phase.get("other_processes", []):
                lines.append(f"- {name}: {r['cpu_cores']} cores: `{r['command']}`")
    notes = _notes(phases)
    if notes:
        lines += ["", *notes]
    if record["dead_services"]:
        lines += ["", f"Services that died: {', '.join(record['dead_services'])}."]
    lines += ["", f"Service logs: {record['logs']}", ""]
    return "\n".join(lines)
