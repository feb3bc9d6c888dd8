"""The soak benchmark: a very short run against a whole hub (the report's shape, not its figures), and its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.soak import MIB, Counts, Sampler, SoakPlan, _record, to_markdown

REPO = Path(__file__).resolve().parents[2]
PROCESSES = {"ingest", "profiler", "router", "broker"}


@pytest.mark.timeout(600)
def test_a_short_soak_writes_its_report(tmp_path):
    short = ["--soak", "--minutes", "0.5", "--warmup", "0.25"]  # under a minute of traffic
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *short, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode in (0, 1), run.stdout[-4000:] + run.stderr[-4000:]  # a verdict, not an error
    (result,) = tmp_path.glob("soak-*.json")
    assert result.with_suffix(".md").exists()
    record = json.loads(result.read_text())
    assert (run.returncode == 0) == record["ok"]
    assert set(record["processes"]) == PROCESSES
    for name, figures in record["processes"].items():
        assert set(figures) == {"rss_after_warmup_mib", "rss_at_end_mib", "growth", "slope_mib_per_min", "judged", "ok"}
        assert figures["judged"] == (name != "broker")
        assert figures["rss_after_warmup_mib"] > 0 and figures["rss_at_end_mib"] > 0
    assert record["plan"]["minutes"] == 0.5 and record["plan"]["rate_multiplier"] == 10
    assert record["samples"] and all(set(s["rss"]) == PROCESSES for s in record["samples"])
    assert record["traffic"]["sent"] > 0
    assert set(record["sizes"]) == {"warm-up", "end"}
    assert "apihub_router_ledger_hits{ledger=router}" in record["sizes"]["end"]
    assert "apihub_ingest_index_keys" in record["sizes"]["end"]


def _sampler(series: dict[str, list[float]]) -> Sampler:
    """Samples every 10 s of the given RSS figures (MiB)."""
    sampler = Sampler({name: 0 for name in series}, 10.0)
    length = len(next(iter(series.values())))
    for i in range(length):
        sampler.samples.append({"t": 10.0 * i, "rss": {n: int(v[i] * MIB) for n, v in series.items()}})
    return sampler


def test_a_service_growing_more_than_ten_percent_after_the_warm_up_fails(tmp_path):
    plan = SoakPlan(minutes=1.5, warmup_minutes=0.5)
    flat = [100.0] * 10
    grows = [100.0, 100, 100, 100, 104, 108, 112, 116, 120, 124]
    sampler = _sampler({"ingest": flat, "profiler": flat, "router": grows, "broker": grows})
    counts = Counts(sent=10, accepted=10)
    record = _record(plan, sampler, counts, {"warm-up": {}, "end": {}}, [], tmp_path)
    assert not record["ok"]
    assert record["processes"]["router"]["ok"] is False and record["processes"]["router"]["growth"] > 0.1
    assert record["processes"]["ingest"]["ok"] is True
    assert record["processes"]["broker"]["ok"] is None  # reported, not judged
    assert record["processes"]["router"]["slope_mib_per_min"] > 0
    assert "| router |" in to_markdown(record) and "FAILED" in to_markdown(record)


def test_a_steady_hub_passes_unless_a_service_died_or_nothing_was_accepted(tmp_path):
    plan = SoakPlan(minutes=1.5, warmup_minutes=0.5)
    steady = [100.0, 100, 100, 101, 101, 102, 103, 104, 104, 105]  # +4 % after the warm-up
    sampler = _sampler({"ingest": steady, "profiler": steady, "router": steady, "broker": [300.0] * 10})
    gauges = {"warm-up": {}, "end": {}}
    assert _record(plan, sampler, Counts(sent=5, accepted=5), gauges, [], tmp_path)["ok"]
    assert not _record(plan, sampler, Counts(sent=5, accepted=5), gauges, ["router"], tmp_path)["ok"]
    assert not _record(plan, sampler, Counts(sent=5, errors=5), gauges, [], tmp_path)["ok"]


def test_the_warm_up_must_be_shorter_than_the_soak():
    with pytest.raises(ValueError, match="warm-up"):
        SoakPlan(minutes=2, warmup_minutes=2).check()
    SoakPlan(minutes=2, warmup_minutes=1).check()
