"""The whole benchmark suite in one run: baselines, stages, scale-out, end to end, cost model, report.

    .venv/bin/python -m benchmarks.cli --quick      (what `apihub bench --quick` runs)

Every process it starts (broker, services, pass-through consumers) is stopped in ``finally``; every load
loop is bounded in count and time; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from benchmarks import cost, kafka_perf, pipeline, report, screening
from benchmarks.loadgen import PacificTraffic, TrafficMix, travellers_of
from services.codec import manifest_id

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    mode: str
    intake_manifests: int
    backlog_manifests: int
    max_cruise_passengers: int
    profiler_processes: tuple[int, ...]
    e2e_loads: tuple[float, ...]  # manifests per second
    e2e_step_seconds: float
    raw_records: int
    drain_timeout: float
    # Watchlist sizes of the screening curve (benchmarks.screening: one profiler process, no Kafka); () skips it.
    screening_sizes: tuple[int, ...] = ()


PLANS = {
    "quick": Plan("quick", 120, 1500, 2500, (1, 2, 4), (2.0, 10.0, 30.0), 15.0, 3000, 120.0),
    "full": Plan(
        "full",
        400,
        5000,
        5000,
        (1, 2, 4),
        (2.0, 5.0, 10.0, 20.0, 40.0, 60.0),
        30.0,
        20000,
        300.0,
        screening_sizes=(1_000, 10_000, 100_000, 1_000_000),
    ),
}


def machine() -> dict:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "java": java[0] if java else "?",
    }


def _raw_kafka(lab: pipeline.Lab, manifests: list, records: int, say) -> dict:
    sizes = []
    for m in manifests[:200]:
        m2 = type(m)()
        m2.CopyFrom(m)
        m2.manifest_id = manifest_id(m2)
        m2.received_at.GetCurrentTime()
        sizes.append(len(m2.SerializeToString()))
    size = int(sum(sizes) / len(sizes))
    per_record = travellers_of(manifests[:200]) / len(sizes)
    try:
        libs = kafka_perf.tools_classpath(say)
        topic = f"bperf{uuid.uuid4().hex[:6]}"
        lab.create_topic(topic, 4)
        producer = kafka_perf.producer_perf(libs, lab.bootstrap, topic, records, size)
        consumer = kafka_perf.consumer_perf(libs, lab.bootstrap, topic, records)
    except Exception as exc:  # the suite still reports the hub's own figures
        say(f"    raw Kafka baseline failed: {exc}")
        return {"error": str(exc)[:500], "travellers_per_record": per_record}
    say(
        f"    raw Kafka: producer {producer['records_per_s']:,.0f} rec/s "
        f"({producer['records_per_s'] * per_record:,.0f} travellers/s), consumer {consumer['records_per_s']:,.0f} rec/s"
    )
    return {"producer": producer, "consumer": consumer, "travellers_per_record": per_record}


def _capacity(steps: list[dict]) -> tuple[float, str]:
    """Travellers per CPU-second of the whole pipeline (services + broker) at the highest sustained step."""
    ok = [
        s
        for s in steps
        if s["accepted_travellers_per_s"] >= 0.9 * s["offered_travellers_per_s"]
        and s["travellers_per_cpu_second"]
        and (s["latency_s"]["p95"] or 0) < 5.0
    ]
    if not ok:
        return 1000.0, "no sustained end-to-end step: default of 1,000 travellers/s per core assumed"
    best = max(ok, key=lambda s: s["offered_travellers_per_s"])
    return best["travellers_per_cpu_second"], (
        f"measured: travellers accepted per CPU-second of ingest + profiler + router + broker at the highest "
        f"sustained end-to-end step ({best['offered_travellers_per_s']:,.0f} travellers/s offered); conservative, "
        "since idle polling is counted"
    )


def _screening(sizes: tuple[int, ...], say) -> dict:
    """The screening curve (benchmarks.screening.run, default configuration), after the broker has stopped."""
    try:
        return screening.run(sizes, say=lambda text: say(f"    {text}"))
    except Exception as exc:  # the suite still reports everything else
        say(f"    screening curve failed: {exc}")
        return {"error": str(exc)[:500]}


def _screening_headline(s: dict) -> str | None:
    t = s.get("targets")
    if not t:
        return None
    parts = []
    if t["travellers_per_s_at_target_entries"] is not None:
        parts.append(
            f"{t['travellers_per_s_at_target_entries']:,} travellers/s against {t['target_entries']:,} watchlist "
            f"entries (target {t['travellers_per_s_target']:,}: {'met' if t['travellers_per_s_met'] else 'not met'})"
        )
    if t["slowdown"] is not None:
        low, high = t["slowdown_sizes"]
        parts.append(
            f"{t['slowdown']:.2f}× the time per traveller at {high:,} entries as at {low:,} "
            f"(target below {t['slowdown_target']:.0f}×: {'met' if t['slowdown_met'] else 'not met'})"
        )
    if not parts:
        return None
    c = s["configuration"]
    return (
        f"Screening in one profiler process ({c['member_rules']} member rules"
        + (", the risk model" if c["model"] else "")
        + "): "
        + "; ".join(parts)
        + "."
    )


def _headline(r: dict) -> list[str]:
    out = []
    raw = r.get("raw_kafka") or {}
    intake = r["intake"]["paths"]
    base = intake["baseline_producer"]["travellers_per_s"]
    if "producer" in raw:
        raw_t = raw["producer"]["records_per_s"] * raw["travellers_per_record"]
        out.append(
            f"Pass-through producer (hub client settings, 2 records per manifest) {base:,.0f} travellers/s = "
            f"{base / raw_t:.2f}× Kafka's ProducerPerformance ({raw_t:,.0f} travellers/s at the same record size)."
        )
    out.append(
        "Intake vs pass-through producer: "
        + ", ".join(
            f"{k} {v['travellers_per_s']:,.0f}/s ({v['ratio_to_baseline']:.2f}×)"
            for k, v in intake.items()
            if k != "baseline_producer"
        )
        + "."
    )
    pt = r["passthrough_drain"]
    scale = r["scale_out"]
    if pt.get("travellers_per_s") and scale and scale[0]["travellers_per_s"]:
        one = scale[0]["travellers_per_s"]
        out.append(
            f"Profiler (1 process) {one:,.0f} travellers/s = {one / pt['travellers_per_s']:.3f}× the pass-through "
            f"consumer ({pt['travellers_per_s']:,.0f}/s{', coarse' if pt.get('coarse') else ''})."
        )
        if "consumer" in raw:
            raw_c = raw["consumer"]["records_per_s"] * raw["travellers_per_record"]
            out.append(
                f"Pass-through consumer = {pt['travellers_per_s'] / raw_c:.2f}× Kafka's ConsumerPerformance "
                f"({raw_c:,.0f} travellers/s)"
                + (" — coarse: the backlog drained in a few samples." if pt.get("coarse") else ".")
            )
        out.append(
            "Scale-out: "
            + ", ".join(
                f"{s['processes']} processes {s['travellers_per_s'] or 0:,.0f}/s "
                f"({(s['travellers_per_s'] or 0) / one:.2f}×{', coarse' if s.get('coarse') else ''})"
                for s in scale
            )
            + f" on {r['machine']['cpus']} cores."
        )
    rt = r.get("router") or {}
    if rt.get("passthrough", {}).get("records_per_s") and rt["router"].get("records_per_s"):
        out.append(
            f"Router {rt['router']['records_per_s']:,.0f} hits/s = "
            f"{rt['router']['records_per_s'] / rt['passthrough']['records_per_s']:.3f}× pass-through on the hits topic"
            + (", coarse." if rt["router"].get("coarse") or rt["passthrough"].get("coarse") else ".")
        )
    steps = r["end_to_end"]["steps"]
    if steps:
        s = steps[-1]
        lat, ptl = s["latency_s"], s["passthrough_latency_s"]
        if lat["p95"] and ptl["p95"]:
            out.append(
                f"End to end at {s['offered_travellers_per_s']:,.0f} travellers/s offered: hit at member p50/p95/p99 "
                f"{lat['p50'] * 1000:,.0f}/{lat['p95'] * 1000:,.0f}/{lat['p99'] * 1000:,.0f} ms vs pass-through "
                f"{ptl['p50'] * 1000:,.0f}/{ptl['p95'] * 1000:,.0f}/{ptl['p99'] * 1000:,.0f} ms "
                f"(p95 ratio {lat['p95'] / ptl['p95']:.1f}×)."
            )
    screened = _screening_headline(r.get("screening") or {})
    if screened:
        out.append(screened)
    c = r.get("cost")
    if c:
        a = c["answer"]
        out.append(
            f"Cost (compute): one regional hub ${a['regional_cost']:,.0f}/yr vs one deployment per member "
            f"${a['per_member_cost']:,.0f}/yr ({a['per_member_cost'] / a['regional_cost']:.0f}×) for "
            f"{a['members']} members; ${a['cost_per_1000_regional']:.3f} vs ${a['cost_per_1000_per_member']:.2f} per "
            f"1,000 travellers; headroom {a['headroom']:,.0f}× today's regional peak "
            f"({a['regional_peak_per_s']:.1f}/s)."
        )
    return out


def run(mode: str = "quick", assume: dict[str, float] | None = None, out_root: Path = RESULTS, say=print) -> Path:
    plan = PLANS[mode]
    started = datetime.now(UTC)
    out = out_root / started.strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "mode": mode,
        "started": started.isoformat(),
        "plan": asdict(plan),
        "machine": machine(),
        "kafka_version": "4.3.1",
    }
    t0 = time.perf_counter()
    steps = 9 if plan.screening_sizes else 8

    def step(i: int, text: str) -> None:
        say(f"[{i}/{steps}] {text} (t+{time.perf_counter() - t0:.0f}s)")

    step(1, "Generating synthetic Pacific traffic (seeded)")
    mix = TrafficMix(max_cruise_passengers=plan.max_cruise_passengers)
    manifests = PacificTraffic(seed=2018, mix=mix, run="BN").take(plan.backlog_manifests)
    results["traffic"] = {
        "manifests": len(manifests),
        "travellers": travellers_of(manifests),
        "cruise_manifests": sum(1 for m in manifests if m.transport_mode == 2),
        "amendments": sum(1 for m in manifests if m.function != 1),
        "max_travellers_in_one_manifest": max(len(m.travellers) for m in manifests),
        "seed": 2018,
    }
    say(f"    {len(manifests)} manifests, {results['traffic']['travellers']:,} travellers")
    with tempfile.TemporaryDirectory(prefix="apihub-bench-") as tmp:
        lab = pipeline.Lab(Path(tmp), say=say)
        try:
            step(2, "Starting a local Apache Kafka broker")
            lab.start()
            step(3, "Raw Kafka baseline (ProducerPerformance / ConsumerPerformance)")
            results["raw_kafka"] = _raw_kafka(lab, manifests, plan.raw_records, say)
            step(4, "Intake: pass-through producer, gRPC unary, gRPC stream, PAXLST")
            results["intake"] = pipeline.intake_stage(lab, manifests[: plan.intake_manifests], say=say)
            step(5, "Profiler drain and scale-out against the pass-through consumer")
            pt = pipeline.drain_stage(lab, manifests, 1, True, plan.drain_timeout, say=say)
            scale = [
                pipeline.drain_stage(lab, manifests, n, False, plan.drain_timeout, say=say)
                for n in plan.profiler_processes
            ]
            step(6, "Router drain against the pass-through consumer")
            hub_settings = scale[0]["settings"]
            results["router"] = {
                "passthrough": pipeline.router_stage(lab, hub_settings, True, plan.drain_timeout, say=say),
                "router": pipeline.router_stage(lab, hub_settings, False, plan.drain_timeout, say=say),
            }
            for d in [pt, *scale]:
                d.pop("settings", None)
            results["passthrough_drain"], results["scale_out"] = pt, scale
            step(7, "End to end at fixed offered loads (receipt -> hit at member)")
            results["end_to_end"] = pipeline.end_to_end(
                lab, manifests, list(plan.e2e_loads), plan.e2e_step_seconds, say=say
            )
        finally:
            say("    stopping services and broker...")
            lab.close()
    # Measurements are saved before any analysis, so a failure below never loses them.
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if plan.screening_sizes:
        sizes = ", ".join(f"{s:,}" for s in plan.screening_sizes)
        step(8, f"Screening curve: one profiler process, member rules and model, watchlists of {sizes} entries")
        results["screening"] = _screening(plan.screening_sizes, say)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    step(steps, "Cost model and report")
    members, assumptions = cost.load(overrides=None)
    capacity, basis = _capacity(results["end_to_end"]["steps"])
    overrides = {"capacity_per_core": capacity, **(assume or {})}
    members, assumptions = cost.load(overrides=overrides)
    ans = cost.answer(members, assumptions)
    results["cost"] = {
        "answer": asdict(ans),
        "capacity_basis": basis if "capacity_per_core" not in (assume or {}) else "overridden with --assume",
        "assumptions": {k: v for k, v in asdict(assumptions).items() if k != "sources"},
        "sources": assumptions.sources,
        "members": [asdict(m) for m in members],
        "sensitivity": cost.sensitivity(members, assumptions),
    }
    results["headline"] = _headline(results)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    path = report.write(results, out)
    say("")
    for h in results["headline"]:
        say(f"  * {h}")
    say(f"\nReport: {path}  (finished in {results['seconds']:.0f}s)")
    return path
