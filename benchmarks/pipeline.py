"""Stage and end-to-end benchmarks of the hub through a real local broker, services run as subprocesses.

A ``Lab`` owns one LocalKafka in a temp dir and every process started for the run; ``close()`` stops them all
(services first, broker last) and is called from ``finally`` by the suite. Each measurement uses its own topic
prefix, so consumer groups and backlogs never mix between measurements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from kafka.admin import NewTopic
from kafka.structs import TopicPartition

from benchmarks.loadgen import pace, travellers_of
from services import client
from services.auth import issue_token
from services.bus import Topics, ensure_topics, make_admin, make_consumer, make_producer
from services.codec import flight_key, manifest_id
from services.config import HubSettings
from services.devkafka import LocalKafka, free_port, terminate
from services.directory import load_directory
from services.launcher import wait_healthy
from services.paxlst.writer import render_paxlst
from services.wire import delivery_pb2, manifest_pb2
from synthetic.traffic import demo_watchlists


def percentiles(values: list[float], points=(50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles; None when there are no values."""
    if not values:
        return {f"p{p}": None for p in points}
    ordered = sorted(values)
    out = {}
    for p in points:
        rank = max(1, -(-p * len(ordered) // 100))
        out[f"p{p}"] = ordered[min(len(ordered), rank) - 1]
    return out


@dataclass
class Meter:
    """CPU seconds and peak RSS of a set of processes over a window (psutil)."""

    pids: dict[str, int]
    interval: float = 0.5
    _start: dict[str, float] = field(default_factory=dict)
    _peak: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _cpu(self, pid: int) -> float:
        try:
            p = psutil.Process(pid)
            total = p.cpu_times().user + p.cpu_times().system
            for child in p.children(recursive=True):
                try:
                    t = child.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return 0.0

    def _sample_rss(self) -> None:
        for name, pid in self.pids.items():
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            self._peak[name] = max(self._peak.get(name, 0), rss)

    def __enter__(self) -> Meter:
        self._start = {n: self._cpu(p) for n, p in self.pids.items()}
        self._t0 = time.perf_counter()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sample_rss()

        self._sample_rss()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self.wall = time.perf_counter() - self._t0
        self.cpu_seconds = {n: max(0.0, self._cpu(p) - self._start[n]) for n, p in self.pids.items()}

    def result(self) -> dict:
        return {
            name: {
                "cpu_seconds": round(self.cpu_seconds[name], 3),
                "cpu_cores": round(self.cpu_seconds[name] / self.wall, 3) if self.wall else None,
                "peak_rss_mb": round(self._peak.get(name, 0) / 2**20, 1),
            }
            for name in self.pids
        }


class Lab:
    """One broker and the processes of one benchmark run."""

    def __init__(self, workdir: Path, say=print):
        self.workdir = workdir
        self.say = say
        self.broker: LocalKafka | None = None
        self.procs: list[subprocess.Popen] = []
        self.members = load_directory().codes
        # The key ring that signs the lab's tokens (services.auth.KeyRing.of): APIHUB_AUTH_KEYS or _SECRET.
        self.secret = HubSettings()

    def start(self) -> Lab:
        self.broker = LocalKafka(self.workdir / "kafka", free_port(), free_port(), progress=self.say).start()
        return self

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    def settings(self, tag: str) -> HubSettings:
        return HubSettings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=f"b{tag}{uuid.uuid4().hex[:6]}",
            ingest_listen=f"127.0.0.1:{free_port()}",
            delivery_listen=f"127.0.0.1:{free_port()}",
            ingest_metrics_port=-1,
            profiler_metrics_port=-1,
            router_metrics_port=-1,
            console_listen=f"127.0.0.1:{free_port()}",
            console_metrics_port=-1,
        )

    def topics(self, settings: HubSettings) -> None:
        ensure_topics(settings, self.members)

    def create_topic(self, name: str, partitions: int = 4) -> None:
        admin = make_admin(HubSettings(kafka_bootstrap=self.bootstrap), "bench-admin")
        try:
            admin.create_topics([NewTopic(name, partitions, 1, topic_configs={"max.message.bytes": "18874368"})])
        finally:
            admin.close()

    def _env(self, s: HubSettings) -> dict:
        return {
            **os.environ,
            "APIHUB_KAFKA_BOOTSTRAP": s.bootstrap,
            "APIHUB_TOPIC_PREFIX": s.topic_prefix,
            "APIHUB_INGEST_LISTEN": s.ingest_listen,
            "APIHUB_DELIVERY_LISTEN": s.delivery_listen,
            "APIHUB_INGEST_METRICS_PORT": "-1",
            "APIHUB_PROFILER_METRICS_PORT": "-1",
            "APIHUB_ROUTER_METRICS_PORT": "-1",
            "APIHUB_CONSOLE_LISTEN": s.console_listen,
            "APIHUB_CONSOLE_METRICS_PORT": "-1",
            "APIHUB_PARTITIONS": str(s.partitions),
        }

    def spawn(self, args: list[str], settings: HubSettings, log_name: str) -> subprocess.Popen:
        log = (self.workdir / f"{log_name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, *args], env=self._env(settings), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def service(self, name: str, settings: HubSettings, index: int = 0) -> subprocess.Popen:
        proc = self.spawn(["-m", "services.cli", "serve", name], settings, f"{settings.topic_prefix}-{name}{index}")
        if name == "ingest":
            wait_healthy(settings.ingest_listen)
        elif name == "router":
            wait_healthy(settings.delivery_listen)
        return proc

    def passthrough(self, settings: HubSettings, topic: str, group: str, latency_out: Path | None = None):
        args = ["-m", "benchmarks.passthrough", "--bootstrap", self.bootstrap, "--topic", topic, "--group", group]
        if latency_out:
            args += ["--latency-out", str(latency_out)]
        return self.spawn(args, settings, f"{settings.topic_prefix}-passthrough")

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> None:
        terminate(proc, timeout)

    def close(self) -> None:
        for proc in self.procs:
            try:
                self.stop(proc)
            except Exception:
                proc.kill()
        self.procs.clear()
        if self.broker:
            self.broker.stop()
            self.broker = None

    # -- data --------------------------------------------------------------------------------------------------

    def load_watchlists(self, settings: HubSettings) -> None:
        """The demo watchlists written straight to the compacted topic (what WatchlistAdmin would write)."""
        producer = make_producer(settings, "bench-watchlists")
        topics = Topics(settings.topic_prefix)
        for owner, entries in demo_watchlists().items():
            wl = delivery_pb2.Watchlist(owner=owner, scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL, entries=entries)
            producer.send(topics.watchlists, key=owner.encode(), value=wl.SerializeToString())
        producer.flush(30)
        producer.close()

    def prefill_manifests(self, settings: HubSettings, manifests: list[manifest_pb2.Manifest]) -> None:
        """Canonical manifests produced straight to the manifests topic, as intake would have written them."""
        producer = make_producer(settings, "bench-prefill")
        topic = Topics(settings.topic_prefix).manifests
        futures = []
        for m in manifests:
            c = manifest_pb2.Manifest()
            c.CopyFrom(m)
            c.manifest_id = manifest_id(c)
            c.received_at.GetCurrentTime()
            futures.append(producer.send(topic, key=flight_key(c).encode(), value=c.SerializeToString()))
        producer.flush(120)
        for f in futures:
            f.get(timeout=60)
        producer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    settings = HubSettings(kafka_bootstrap=bootstrap)
    consumer = make_consumer(settings, None, "bench-offsets")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


# A drain rate measured over fewer offset samples than this (under a second: consumers commit whole batches,
# so committed offsets move in steps) is flagged coarse in the report.
COARSE_BELOW_SAMPLES = 20


def drain(bootstrap: str, topic: str, group: str, timeout: float) -> dict:
    """Watch ``group``'s committed offsets on ``topic`` until they reach the end offsets read now.

    Rate = records committed between 10 % and 90 % of the backlog over that window's time: excludes process
    start-up and group join (before), and the tail where only the last partition is still busy (after).
    """
    ends = end_offsets(bootstrap, topic)
    total = sum(ends.values())
    admin = make_admin(HubSettings(kafka_bootstrap=bootstrap), "bench-drain")
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                offsets = admin.list_group_offsets(group).get(group) or {}
            except Exception:  # the group has not committed yet, or a coordinator moved: sample again
                offsets = {}
            done = sum(
                min(max(o.offset, 0), ends.get(tp.partition, 0)) for tp, o in offsets.items() if tp.topic == topic
            )
            samples.append((time.perf_counter(), done))
            if done >= total:
                break
            time.sleep(0.05)
    finally:
        admin.close()
    lo, hi = 0.1 * total, 0.9 * total
    # Last sample at or below 10 % (start-up and join before it) to the first at or above 90 %.
    first = next((smp for smp in reversed(samples) if smp[1] <= lo), None)
    last = next((smp for smp in samples if smp[1] >= hi), None)
    rate = (last[1] - first[1]) / (last[0] - first[0]) if first and last and last[0] > first[0] else None
    # Samples 50 ms apart of offsets committed batch by batch: a backlog drained within a few of them gives a
    # rate to within a factor, no better.
    window = sum(1 for smp in samples if first and last and first[0] <= smp[0] <= last[0])
    return {
        "records": total,
        "completed": samples[-1][1] if samples else 0,
        "records_per_s": rate,
        "window_samples": window,
        "coarse": rate is not None and window < COARSE_BELOW_SAMPLES,
    }


# -- stages --------------------------------------------------------------------------------------------------


def _new_versions(manifests: list, tag: str) -> list:
    out = []
    for m in manifests:
        c = manifest_pb2.Manifest()
        c.CopyFrom(m)
        c.message_ref = f"{tag}{m.message_ref}"[:35]
        out.append(c)
    return out


def intake_stage(lab: Lab, manifests: list, concurrency: int = 8, say=print) -> dict:
    """Travellers/s through gRPC intake (unary, bulk stream, PAXLST) and the direct-producer baseline."""
    s = lab.settings("in")
    lab.topics(s)
    proc = lab.service("ingest", s)
    travellers = travellers_of(manifests)
    tokens = {c: issue_token(lab.secret, "carrier", c) for c in {m.carrier for m in manifests}}
    chan = client.channel(s.ingest_listen)
    results: dict[str, dict] = {}

    def run(name: str, fn) -> None:
        with Meter({"ingest": proc.pid}) as meter:
            t0 = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t0
        results[name] = {"seconds": elapsed, "travellers_per_s": travellers / elapsed, "cpu": meter.result()}
        say(f"    intake {name}: {travellers / elapsed:,.0f} travellers/s")

    def baseline() -> None:
        producer = make_producer(s, "bench-baseline")
        topics = Topics(s.topic_prefix)
        futures = []
        for m in manifests:
            c = manifest_pb2.Manifest()
            c.CopyFrom(m)
            raw = c.SerializeToString()
            c.manifest_id = manifest_id(c)
            c.received_at.GetCurrentTime()
            futures.append(producer.send(topics.raw, key=c.manifest_id.encode(), value=raw))
            futures.append(producer.send(topics.manifests, key=flight_key(c).encode(), value=c.SerializeToString()))
        for f in futures:
            f.get(timeout=60)
        producer.close()

    rejected: dict[str, int] = {}

    def count(name: str, receipts) -> None:
        rejected[name] = rejected.get(name, 0) + sum(1 for r in receipts if r.status != 1)

    def unary(batch, name="grpc_unary") -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            replies = pool.map(lambda m: client.submit(chan, tokens[m.carrier], [m], 120), batch)
            count(name, [r for rs in replies for r in rs])

    def stream(batch) -> None:
        by_carrier: dict[str, list] = {}
        for m in batch:
            by_carrier.setdefault(m.carrier, []).append(m)
        for carrier, ms in by_carrier.items():
            count("grpc_stream", client.submit(chan, tokens[carrier], ms, timeout=600))

    def paxlst(batch) -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            replies = pool.map(lambda item: client.submit_paxlst(chan, tokens[item[0]], item[1], timeout=120), batch)
            count("paxlst", [r for reply in replies for r in reply.receipts])

    try:
        unary(_new_versions(manifests[:10], "W"), "warmup")
        run("baseline_producer", baseline)
        unary_batch = _new_versions(manifests, "U")
        run("grpc_unary", lambda: unary(unary_batch))
        stream_batch = _new_versions(manifests, "S")
        run("grpc_stream", lambda: stream(stream_batch))
        # Rendering EDIFACT is the carrier's work, not the hub's: done before the clock starts.
        edi = [(m.carrier, render_paxlst(m)) for m in _new_versions(manifests, "P")]
        run("paxlst", lambda: paxlst(edi))
    finally:
        lab.stop(proc)
    base = results["baseline_producer"]["travellers_per_s"]
    for r in results.values():
        r["ratio_to_baseline"] = r["travellers_per_s"] / base
    for name, n in rejected.items():
        if name in results:
            results[name]["not_accepted"] = n
    return {"travellers": travellers, "manifests": len(manifests), "paths": results}


def drain_stage(lab: Lab, manifests: list, profilers: int, passthrough: bool, timeout: float, say=print) -> dict:
    """Profiler (``profilers`` processes, one group) or pass-through consumers draining a manifest backlog."""
    s = lab.settings(f"p{profilers}{'t' if passthrough else ''}")
    lab.topics(s)
    lab.load_watchlists(s)
    lab.prefill_manifests(s, manifests)
    topics = Topics(s.topic_prefix)
    if passthrough:
        procs = [lab.passthrough(s, topics.manifests, f"{s.topic_prefix}.profiler") for _ in range(profilers)]
    else:
        procs = [lab.service("profiler", s, i) for i in range(profilers)]
    try:
        pids = {f"consumer{i}": p.pid for i, p in enumerate(procs)}
        pids["broker"] = lab.broker.pid
        with Meter(pids) as meter:
            d = drain(lab.bootstrap, topics.manifests, f"{s.topic_prefix}.profiler", timeout)
    finally:
        for p in procs:
            lab.stop(p)
    per_manifest = travellers_of(manifests) / len(manifests)
    d["travellers_per_s"] = d["records_per_s"] * per_manifest if d["records_per_s"] else None
    d["cpu"] = meter.result()
    d["processes"] = profilers
    d["settings"] = s
    label = "pass-through" if passthrough else "profiler"
    rate = f"{d['travellers_per_s']:,.0f}" if d["travellers_per_s"] else "n/a"
    say(f"    {label} x{profilers}: {rate} travellers/s ({d['completed']}/{d['records']} manifests)")
    return d


def router_stage(lab: Lab, s: HubSettings, passthrough: bool, timeout: float, say=print) -> dict:
    """Router (or pass-through) draining the hits the profiler stage left on ``s``'s hits topic."""
    topics = Topics(s.topic_prefix)
    group = f"{s.topic_prefix}.router" if not passthrough else f"{s.topic_prefix}.router-passthrough"
    proc = lab.passthrough(s, topics.hits, group) if passthrough else lab.service("router", s)
    try:
        with Meter({"router": proc.pid, "broker": lab.broker.pid}) as meter:
            d = drain(lab.bootstrap, topics.hits, group, timeout)
    finally:
        lab.stop(proc)
    d["cpu"] = meter.result()
    label = "pass-through" if passthrough else "router"
    say(f"    {label} on hits: {d['records_per_s'] or 0:,.0f} hits/s ({d['completed']}/{d['records']})")
    return d


def end_to_end(lab: Lab, manifests: list, loads: list[float], step_seconds: float, say=print) -> dict:
    """Receipt → hit delivered at a member, at fixed offered loads (manifests/s), with the pass-through
    consumer measuring receipt → record consumed on the same manifests at the same time."""
    s = lab.settings("e2e")
    lab.topics(s)
    lab.load_watchlists(s)
    ingest = lab.service("ingest", s)
    profiler = lab.service("profiler", s)
    router = lab.service("router", s)
    topics = Topics(s.topic_prefix)
    pt_file = lab.workdir / f"{s.topic_prefix}-passthrough.json"
    pt = lab.passthrough(s, topics.manifests, f"{s.topic_prefix}.passthrough", pt_file)
    hits: list[tuple[float, float]] = []  # (manifest received_at, delivered at), wall clock
    lock = threading.Lock()
    stop = threading.Event()
    chan = client.channel(s.delivery_listen)

    def follow(member: str) -> None:
        def got(d) -> None:
            r = d.hit.manifest_received_at
            if r.seconds:
                with lock:
                    hits.append((r.seconds + r.nanos / 1e9, time.time()))

        f = client.Follower(chan, issue_token(lab.secret, "member", member), member, ack=False)
        while not stop.is_set():
            try:
                f.follow(got, should_stop=stop.is_set)
            except Exception:
                stop.wait(0.5)

    followers = [threading.Thread(target=follow, args=(m,), daemon=True) for m in lab.members]
    for t in followers:
        t.start()
    ingest_chan = client.channel(s.ingest_listen)
    tokens = {c: issue_token(lab.secret, "carrier", c) for c in {m.carrier for m in manifests}}
    pids = {"ingest": ingest.pid, "profiler": profiler.pid, "router": router.pid, "broker": lab.broker.pid}
    steps = []
    try:
        # Warm-up: the profiler's first batch loads polars and the watchlists.
        warm = _new_versions(manifests[:5], "WU")
        for m in warm:
            client.submit(ingest_chan, tokens[m.carrier], [m], timeout=60)
        time.sleep(3)
        for i, rate in enumerate(loads):
            batch = _new_versions(manifests, f"L{i}")
            travellers_per_manifest = travellers_of(batch) / len(batch)
            window_start = time.time()
            with Meter(pids) as meter:
                run = pace(
                    batch,
                    lambda m: client.submit(ingest_chan, tokens[m.carrier], [m], timeout=60),
                    rate,
                    step_seconds,
                    timeout=60,
                )
                # Let the pipeline finish the step's work (bounded), so CPU covers it.
                settle = time.monotonic() + min(30.0, step_seconds)
                seen = -1
                while time.monotonic() < settle:
                    time.sleep(1.0)
                    with lock:
                        n = len(hits)
                    if n == seen:
                        break
                    seen = n
            window_end = window_start + run.elapsed
            with lock:
                step_hits = [d - r for r, d in hits if window_start <= r <= window_end]
            offered = rate * travellers_per_manifest
            accepted = run.completed * travellers_per_manifest
            cpu = meter.result()
            cpu_total = sum(v["cpu_seconds"] for v in cpu.values())
            step = {
                "offered_manifests_per_s": rate,
                "offered_travellers_per_s": offered,
                "accepted_travellers_per_s": accepted / run.elapsed if run.elapsed else 0,
                "sent": run.completed,
                "errors": run.errors,
                "send_lag_p99_s": percentiles([a - b for a, b in zip(run.sent, run.due, strict=False)])["p99"],
                "hits": len(step_hits),
                "latency_s": percentiles(step_hits),
                "latencies_s": step_hits,
                "window": [window_start, window_end],
                "cpu": cpu,
                "travellers_per_cpu_second": accepted / cpu_total if cpu_total else None,
            }
            steps.append(step)
            lat = step["latency_s"]
            say(
                f"    e2e at {offered:,.0f} travellers/s offered: accepted {step['accepted_travellers_per_s']:,.0f}/s,"
                f" {len(step_hits)} hits, p50 {_ms(lat['p50'])} p95 {_ms(lat['p95'])} p99 {_ms(lat['p99'])}"
            )
    finally:
        stop.set()
        lab.stop(pt)
        for p in (ingest, router, profiler):
            lab.stop(p)
    # The pass-through latency per step: manifest records whose receipt fell in the step's window.
    pairs = json.loads(pt_file.read_text()) if pt_file.exists() else []
    for step in steps:
        lo, hi = step["window"]
        lat = [d - r for r, d in pairs if lo <= r <= hi]
        step["passthrough_latency_s"] = percentiles(lat)
        step["passthrough_latencies_s"] = lat
    return {"steps": steps}


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1000:,.0f} ms"
