"""The interactive-API benchmark: a few seconds at a low rate with a tiny list against a whole hub (the report's
shape and that answers came back, never its figures), and how it counts on made-up outcomes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from benchmarks.iapi import TARGET_RATE, IapiPlan, OpenLoop, Outcome, bench_policy, summarise_checks, verdict
from services.board.policy import parse_policy
from services.wire import check_pb2

REPO = Path(__file__).resolve().parents[2]
PHASE_KEYS = {
    "checks",
    "warm_up",
    "profiler",
    "health_floor_ms",
    "health_errors",
    "batch",
    "processes",
    "load_average_at_end",
    "other_processes",
    "machine_busy_cores",
}
LATENCY_KEYS = {"p50", "p95", "p99", "max", "mean", "n"}


@pytest.mark.timeout(600)
def test_a_short_run_writes_its_report_and_checks_are_answered(tmp_path):
    short = ["--iapi", "--seconds", "3", "--check-rate", "5", "--watchlist-entries", "300", "--batch-rate", "0.5"]
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *short, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode in (0, 1), run.stdout[-4000:] + run.stderr[-4000:]  # a verdict, not an error
    (result,) = tmp_path.glob("iapi-*.json")
    assert result.with_suffix(".md").exists()
    record = json.loads(result.read_text())
    # Not the target's load: never a pass, whatever the figures.
    assert run.returncode == 1 and not record["ok"]
    assert any("not the target's load" in r for r in record["verdict"]["reasons"])
    assert set(record["phases"]) == {"baseline", "watchlist"}
    assert record["watchlist_load"]["entries"] == 300 and record["watchlist_load"]["owner"] == "NZL"
    for name, phase in record["phases"].items():
        assert set(phase) == PHASE_KEYS, name
        checks = phase["checks"]
        assert checks["offered"] == 15 and checks["answered"] > 0, (name, checks)
        assert set(checks["latency_ms"]) == LATENCY_KEYS and checks["latency_ms"]["p99"] is not None
        assert sum(checks["directives"].values()) == checks["answered"]  # one traveller per check
        assert phase["profiler"]["check_seconds"]["checks"] > 0  # the profiler's own counters were read
        assert {"profiler", "ingest", "router", "broker", "load generator"} <= set(phase["processes"])
        assert phase["batch"]["submitted"] > 0 and "receipt_to_hit_ms" in phase["batch"]
        assert phase["health_floor_ms"]["n"] > 0
        assert phase["machine_busy_cores"] > 0
    assert record["phases"]["watchlist"]["profiler"]["watchlist_entries"]["owner=NZL"] == 300
    assert set(record["latency_ratio_to_baseline"]) == {"p50", "p95", "p99"}
    assert "| check latency p99 (ms) |" in result.with_suffix(".md").read_text()


def test_latency_counts_from_the_scheduled_send_time_not_from_a_late_send():
    """A reply answered 50 ms after the send counts the send's lateness too (no coordinated omission)."""
    sent: list[Future] = []

    def make(_i: int) -> Future:
        future: Future = Future()
        sent.append(future)
        return future

    loop = OpenLoop(rate=100.0, seconds=0.05, make=make, read=lambda a: (False, (a,)))

    def answer_later() -> None:
        while len(sent) < 5:
            time.sleep(0.001)
        time.sleep(0.1)
        for f in sent:
            f.set_result(check_pb2.DIRECTIVE_OK_TO_BOARD)

    threading.Thread(target=answer_later, daemon=True).start()
    outcomes = loop.run(grace=5)
    assert len(outcomes) == 5 and all(not o.code for o in outcomes)
    # The first was due at 0 and answered after the last send (40 ms) plus 100 ms.
    assert outcomes[0].latency >= 0.13
    assert outcomes[-1].latency < outcomes[0].latency  # due later, answered at the same moment


def test_errors_fallbacks_and_directives_are_counted_and_judged():
    ok, dnb = check_pb2.DIRECTIVE_OK_TO_BOARD, check_pb2.DIRECTIVE_DO_NOT_BOARD
    outcomes = [Outcome(due=i / 10, latency=0.05, directives=(ok,)) for i in range(95)]
    outcomes += [Outcome(due=9.5, latency=0.2, directives=(dnb,), planted=True)]
    outcomes += [Outcome(due=9.6, latency=2.1, fallback=True, directives=(check_pb2.DIRECTIVE_CONTACT_AUTHORITY,))]
    outcomes += [Outcome(due=9.7, code="RESOURCE_EXHAUSTED") for _ in range(3)]
    summary = summarise_checks(outcomes, 10.0)
    assert (summary["offered"], summary["answered"], summary["fallbacks"]) == (100, 97, 1)
    assert summary["errors"] == {"RESOURCE_EXHAUSTED": 3}
    assert summary["directives"] == {"OK_TO_BOARD": 95, "DO_NOT_BOARD": 1, "CONTACT_AUTHORITY": 1}
    assert (summary["planted"], summary["planted_not_ok"]) == (1, 1)
    assert summary["latency_ms"]["p50"] == 50.0 and summary["latency_ms"]["max"] == 2100.0
    judged = verdict({"checks": summary}, IapiPlan())
    assert not judged["ok"] and len(judged["reasons"]) == 3  # p99, errors, fallbacks (97 % were answered)
    fine = summarise_checks(outcomes[:95], 10.0)
    assert verdict({"checks": fine}, IapiPlan(rate=TARGET_RATE))["ok"]
    assert not verdict({"checks": fine}, IapiPlan(rate=50))["ok"]  # not the target's load


def test_the_benchmark_policy_is_a_valid_board_policy():
    policy = parse_policy(bench_policy("FJI"), "bench", "FJI")
    assert policy.fallback == check_pb2.DIRECTIVE_CONTACT_AUTHORITY
