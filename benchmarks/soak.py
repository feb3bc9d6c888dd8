"""The soak benchmark (`apihub bench --soak`): demo traffic for a long while; does the services' memory stay put?

A whole hub as separate processes on its own local broker (the abuse suite's arena, benchmarks/abuse/harness.py,
with the stock member directory), fed the demo's traffic (synthetic.traffic: carriers alternating gRPC and PAXLST,
now and then a cancelled reservation of a watchlisted passenger) at ``rate_multiplier`` times the demo's rate, while
every member follows its hits and acknowledges each, as the demo's contact points do. The resident memory (RSS) of
every process is sampled every few seconds (psutil). The figure after the warm-up and the one at the end are each the
median of the samples around that moment; the soak fails when a hub service's end figure exceeds its warm-up figure
by more than ``BOUND`` (10 %), when a service died, or when no manifest was accepted. The broker's RSS is reported,
not judged: the JVM grows its heap to its own maximum as it likes.

Per-flight state is bounded by flight age (APIHUB_FLIGHT_STATE_DAYS), and demo flights depart hours to months ahead,
so none closes during a soak: what the soak shows is that what does grow with traffic (the delivery ledger, intake's
duplicate keys) costs little, and that nothing else grows. The size gauges of those structures are read from the
services' metrics pages after the warm-up and at the end and reported beside the RSS.

Writes soak-<timestamp>.json (every sample) and soak-<timestamp>.md under benchmarks/results/ (or ``out``).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import grpc
import psutil
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.abuse.harness import Arena, new_workdir
from services import client
from services.directory import load_directory
from services.paxlst.writer import render_paxlst
from services.wire import hit_pb2, intake_pb2
from synthetic.traffic import DemoTraffic, cancelled_reservation, demo_watchlists

RESULTS = Path(__file__).resolve().parent / "results"
# `apihub up`'s demo sends one manifest every two seconds (services/cli.py, up --interval).
DEMO_RATE_PER_S = 0.5
# Most a hub service's RSS may grow from the end of the warm-up to the end of the soak.
BOUND = 0.10
SERVICES = ("ingest", "profiler", "router")
# Gauges of the structures that grow with traffic, read from the services' metrics pages (entries, not bytes).
SIZE_GAUGES = (
    "apihub_router_ledger_hits",
    "apihub_router_ledger_flights",
    "apihub_ingest_index_keys",
    "apihub_audit_unsealed_records",
    "apihub_router_streams_active",
)
MIB = 1024 * 1024


@dataclass(frozen=True)
class SoakPlan:
    minutes: float = 30.0
    warmup_minutes: float = 5.0
    rate_multiplier: float = 10.0
    sample_seconds: float = 5.0

    @property
    def rate(self) -> float:
        return DEMO_RATE_PER_S * self.rate_multiplier

    def check(self) -> None:
        if not 0 < self.warmup_minutes < self.minutes:
            raise ValueError(f"the warm-up ({self.warmup_minutes} min) must be shorter than the soak ({self.minutes})")
        if self.rate_multiplier <= 0 or self.sample_seconds <= 0:
            raise ValueError("the rate multiplier and the sampling interval must be positive")


class SoakArena(Arena):
    """The abuse suite's arena with the stock member directory (no misbehaving webhook)."""

    def _directory(self) -> Path:
        path = self.workdir / "members.yaml"
        path.write_text(resources.files("services.data").joinpath("members.yaml").read_text())
        return path


@dataclass
class Counts:
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: int = 0
    cancellations: int = 0
    hits_delivered: int = 0
    withdrawals_delivered: int = 0
    stream_restarts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class DemoLoad:
    """The demo's carriers and contact points (synthetic.demo.run_demo's mix) at a fixed rate, in threads."""

    def __init__(self, arena: Arena, rate: float):
        self._arena, self._rate = arena, rate
        self.stop = threading.Event()
        self.counts = Counts()
        self._threads: list[threading.Thread] = []
        self._tokens: dict[str, str] = {}

    def start(self) -> DemoLoad:
        s = self._arena.settings
        members = client.channel_for(s, s.delivery_listen)
        for owner, entries in demo_watchlists().items():
            client.load_watchlist(members, self._arena.token("member", owner), owner, entries)
        for member in load_directory(s.directory_file).codes:
            self._spawn(self._follow, members, member)
        self._spawn(self._feed, client.channel_for(s, s.ingest_listen))
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"soak-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _follow(self, chan: grpc.Channel, member: str) -> None:
        def seen(delivery) -> None:
            if delivery.hit.state == hit_pb2.HIT_STATE_WITHDRAWN:
                self.counts.add(withdrawals_delivered=1)
            else:
                self.counts.add(hits_delivered=1)

        follower = client.Follower(chan, self._arena.token("member", member), member)
        while not self.stop.is_set():
            try:
                follower.follow(seen, should_stop=self.stop.is_set)
            except grpc.RpcError:
                self.counts.add(stream_restarts=1)
                self.stop.wait(1)

    def _feed(self, chan: grpc.Channel) -> None:
        """One manifest every 1/rate seconds on a fixed schedule (a slow answer is caught up, not skipped)."""
        traffic = DemoTraffic()
        to_cancel: deque = deque(maxlen=100)
        started, n = time.monotonic(), 0
        while not self.stop.is_set():
            n += 1
            if to_cancel and n % 4 == 0:
                original, ref = to_cancel.popleft()
                manifest, kind = cancelled_reservation(original, ref), "cancellations"
            else:
                manifest, kind = traffic.next_manifest(), ""
                if traffic.planted:
                    to_cancel.append((manifest, traffic.planted))
            self._submit(chan, manifest, paxlst=n % 2 == 0)
            if kind:
                self.counts.add(cancellations=1)
            self.stop.wait(max(0.0, started + n / self._rate - time.monotonic()))

    def _submit(self, chan: grpc.Channel, manifest, paxlst: bool) -> None:
        token = self._tokens.get(manifest.carrier) or self._tokens.setdefault(
            manifest.carrier, self._arena.token("carrier", manifest.carrier)
        )
        try:
            if paxlst:
                receipt = client.submit_paxlst(chan, token, render_paxlst(manifest), timeout=30).receipts[0]
            else:
                receipt = client.submit(chan, token, [manifest], timeout=30)[0]
        except grpc.RpcError:
            self.counts.add(sent=1, errors=1)
            return
        status = {
            intake_pb2.RECEIPT_STATUS_ACCEPTED: "accepted",
            intake_pb2.RECEIPT_STATUS_DUPLICATE: "duplicate",
        }.get(receipt.status, "rejected")
        self.counts.add(sent=1, **{status: 1})


@dataclass
class Sampler:
    """RSS of every process, every ``interval`` seconds, from t=0 (when traffic starts)."""

    pids: dict[str, int]
    interval: float
    samples: list[dict] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)

    def run(self, seconds: float, on_sample=None) -> None:
        procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        started = time.monotonic()
        while True:
            t = time.monotonic() - started
            rss = {}
            for name, proc in procs.items():
                try:
                    rss[name] = proc.memory_info().rss
                except psutil.Error:  # gone: reported as a dead service
                    self.dead.add(name)
            self.samples.append({"t": round(t, 1), "rss": rss})
            if on_sample is not None:
                on_sample(self.samples[-1])
            if t >= seconds:
                return
            time.sleep(min(self.interval, max(0.0, seconds - t)) or 0.01)

    def around(self, name: str, at: float, width: int = 3) -> int | None:
        """Median RSS of ``name`` over the ``width`` samples nearest to time ``at``."""
        held = [s for s in self.samples if name in s["rss"]]
        nearest = sorted(held, key=lambda s: abs(s["t"] - at))[:width]
        return int(statistics.median(s["rss"][name] for s in nearest)) if nearest else None

    def slope_mib_per_min(self, name: str, after: float) -> float | None:
        """Least-squares growth of ``name``'s RSS after ``after`` seconds (MiB per minute)."""
        points = [(s["t"] / 60, s["rss"][name] / MIB) for s in self.samples if s["t"] >= after and name in s["rss"]]
        if len(points) < 2:
            return None
        return statistics.linear_regression(*zip(*points, strict=True)).slope


def size_gauges(arena: Arena) -> dict[str, float]:
    """The structure-size gauges (SIZE_GAUGES) on the services' metrics pages now; missing pages are skipped."""
    s = arena.settings
    found: dict[str, float] = {}
    for port in (s.ingest_metrics_port, s.profiler_metrics_port, s.router_metrics_port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in SIZE_GAUGES:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


def run(plan: SoakPlan, out: Path | None = RESULTS, say=print) -> int:
    """Soak a whole hub; print and write the report; 0 when every service stayed within BOUND, 1 otherwise."""
    plan.check()
    workdir = new_workdir()
    say(
        f"soak: {plan.minutes:g} min ({plan.warmup_minutes:g} warm-up) of demo traffic at {plan.rate_multiplier:g}x "
        f"the demo rate ({plan.rate:g} manifests/s); RSS every {plan.sample_seconds:g}s; logs in {workdir}"
    )
    arena = SoakArena(workdir, say=say)
    load = None
    gauges: dict[str, dict[str, float]] = {}
    try:
        arena.start()
        pids = {name: proc.pid for name, proc in arena.procs.items()} | {"broker": arena.broker.pid}
        sampler = Sampler(pids, plan.sample_seconds)
        load = DemoLoad(arena, plan.rate).start()
        warm_at, end_at = plan.warmup_minutes * 60, plan.minutes * 60

        def progress(sample: dict) -> None:
            if "warm-up" not in gauges and sample["t"] >= warm_at:
                gauges["warm-up"] = size_gauges(arena)
            if int(sample["t"]) // 60 != int(sample["t"] - plan.sample_seconds) // 60 or sample["t"] >= end_at:
                rss = ", ".join(f"{n} {v / MIB:.0f}" for n, v in sample["rss"].items())
                say(f"  {sample['t'] / 60:5.1f} min: RSS MiB {rss}; {load.counts.accepted} accepted")

        sampler.run(end_at, progress)
        gauges["end"] = size_gauges(arena)
        dead = sorted(sampler.dead | {d.split(" ")[0] for d in arena.dead()})
    finally:
        if load is not None:
            load.close()
        arena.close()
    record = _record(plan, sampler, load.counts, gauges, dead, workdir)
    return _report(record, out, say)


def _record(plan: SoakPlan, sampler: Sampler, counts: Counts, gauges: dict, dead: list[str], workdir: Path) -> dict:
    warm_at, end_at = plan.warmup_minutes * 60, sampler.samples[-1]["t"]
    processes = {}
    for name in sampler.pids:
        warm, end = sampler.around(name, warm_at), sampler.around(name, end_at)
        growth = (end - warm) / warm if warm and end else None
        judged = name in SERVICES
        processes[name] = {
            "rss_after_warmup_mib": round(warm / MIB, 1) if warm else None,
            "rss_at_end_mib": round(end / MIB, 1) if end else None,
            "growth": round(growth, 4) if growth is not None else None,
            "slope_mib_per_min": _rounded(sampler.slope_mib_per_min(name, warm_at)),
            "judged": judged,
            "ok": (growth is not None and growth <= BOUND and name not in dead) if judged else None,
        }
    counts_dict = counts.as_dict()
    ok = all(p["ok"] for p in processes.values() if p["judged"]) and not dead and counts_dict["accepted"] > 0
    return {
        "kind": "soak",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan": asdict(plan) | {"rate_per_s": plan.rate, "bound": BOUND},
        "seconds": end_at,
        "ok": ok,
        "processes": processes,
        "dead_services": dead,
        "traffic": counts_dict | {"achieved_rate_per_s": round(counts_dict["sent"] / max(end_at, 1e-9), 2)},
        "sizes": gauges,
        "logs": str(workdir),
        "samples": sampler.samples,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _report(record: dict, out: Path | None, say) -> int:
    markdown = to_markdown(record)
    say("")
    say(markdown)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (out / f"soak-{stamp}.json").write_text(json.dumps(record, indent=2))
        (out / f"soak-{stamp}.md").write_text(markdown)
        say(f"results: {out / f'soak-{stamp}.json'} and .md")
    return 0 if record["ok"] else 1


def to_markdown(record: dict) -> str:
    plan, traffic = record["plan"], record["traffic"]
    lines = [
        f"# Soak: {plan['minutes']:g} minutes at {plan['rate_multiplier']:g}x the demo rate "
        f"({'passed' if record['ok'] else 'FAILED'})",
        "",
        f"{record['at']}: {plan['warmup_minutes']:g} min warm-up, RSS sampled every {plan['sample_seconds']:g} s; "
        f"a hub service fails when its RSS at the end exceeds its RSS after the warm-up by more than "
        f"{plan['bound']:.0%} (each figure the median of the three samples nearest to it).",
        "",
        "| process | RSS after warm-up (MiB) | RSS at end (MiB) | growth | slope after warm-up (MiB/min) | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, p in record["processes"].items():
        growth = "-" if p["growth"] is None else f"{p['growth']:+.1%}"
        slope = "-" if p["slope_mib_per_min"] is None else f"{p['slope_mib_per_min']:+.3f}"
        verdict = "reported (JVM heap)" if not p["judged"] else ("ok" if p["ok"] else "FAILED")
        lines.append(
            f"| {name} | {p['rss_after_warmup_mib']} | {p['rss_at_end_mib']} | {growth} | {slope} | {verdict} |"
        )
    lines += [
        "",
        f"Traffic: {traffic['sent']} manifests sent ({traffic['achieved_rate_per_s']}/s; {traffic['cancellations']} "
        f"cancellations), {traffic['accepted']} accepted, {traffic['duplicate']} duplicate, {traffic['rejected']} "
        f"rejected, {traffic['errors']} errors; {traffic['hits_delivered']} hits and "
        f"{traffic['withdrawals_delivered']} withdrawals delivered to members ({traffic['stream_restarts']} stream "
        "restarts).",
    ]
    if record["dead_services"]:
        lines.append(f"Services that died: {', '.join(record['dead_services'])}.")
    sizes = record["sizes"]
    names = sorted(set(sizes.get("warm-up", {})) | set(sizes.get("end", {})))
    if names:
        lines += ["", "| structure (entries) | after warm-up | at end |", "|---|---:|---:|"]
        for n in names:
            lines.append(f"| {n} | {sizes.get('warm-up', {}).get(n, '-')} | {sizes.get('end', {}).get(n, '-')} |")
    lines += ["", f"Service logs: {record['logs']}", ""]
    return "\n".join(lines)
