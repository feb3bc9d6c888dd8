"""The screening benchmark: its 50-rule configuration and the shape of what a run writes (no timings)."""

import json
import logging
from datetime import UTC, datetime

import pytest

from benchmarks import screening
from benchmarks.model import add_bookings
from services import codec
from services.demo import DemoTraffic
from services.directory import load_directory
from services.profiler.rules import HUB_RULES
from services.profiler.ruleset import parse_ruleset
from services.profiler.scoring import STAGES, score_batch
from services.profiler.watchlist import WatchlistStore
from services.wire import hit_pb2


def test_rule_generator_yields_50_valid_distinct_rules_across_owners():
    files = screening.rule_files(50, seed=5)
    parsed = {owner: parse_ruleset(text, f"rules of {owner}", member=owner) for owner, text in files.items()}
    assert sum(len(rs.rules) for rs in parsed.values()) == 50
    assert all(rs.owner == owner and not rs.disabled for owner, rs in parsed.items())

    rules = screening.rule_store(50, seed=5).rules
    assert rules[: len(HUB_RULES)] == HUB_RULES
    members = rules[len(HUB_RULES) :]
    assert len(members) == 50
    owners = {r.owner for r in members}
    assert len(owners) >= 5 and owners <= set(screening.RULE_OWNERS)
    assert max(sum(r.owner == o for r in members) for o in owners) <= 50 // len(owners) + 1  # dealt evenly
    # Distinct rules, not one expression 50 times: ids, conditions, and templates and scores varied.
    assert len({r.column for r in members}) == 50
    assert len({str(r.expression) for r in members}) == 50
    templates = {r.id.rsplit("-V", 1)[0] for r in members}
    assert len(templates) >= 6
    assert len({r.score for r in members}) >= 3
    assert any(r.valid_from or r.valid_to for r in members)


def test_rule_generator_is_repeatable():
    assert screening.rule_files(50, seed=5) == screening.rule_files(50, seed=5)
    assert screening.rule_files(50, seed=5) != screening.rule_files(50, seed=6)
    assert screening.rule_files(0) == {}
    assert sum(len(parse_ruleset(t, member=o).rules) for o, t in screening.rule_files(9).items()) == 9


def test_generated_rules_flag_only_flights_in_their_owners_jurisdiction(caplog):
    traffic = DemoTraffic(seed=3)
    manifests = [traffic.next_manifest(passengers=120) for _ in range(20)]
    add_bookings(manifests, 3)
    for m in manifests:
        m.manifest_id = codec.manifest_id(m)
    directory = load_directory()
    by_id = {m.manifest_id: m for m in manifests}
    rules = screening.rule_store(50, seed=5).rules
    caplog.set_level(logging.ERROR, logger="services.profiler.rules")  # breaker warnings are not the point here
    hits = score_batch(manifests, WatchlistStore(), directory, datetime.now(UTC), rules)
    reasons = [(h, r) for h in hits for r in h.reasons if r.source == hit_pb2.REASON_SOURCE_RULE and r.owner]
    assert len({r.owner for _, r in reasons}) >= 3  # the rules do flag, for several members
    for hit, reason in reasons:
        assert reason.owner in directory.jurisdiction(codec.route_of(by_id[hit.manifest_id]))


ROW_KEYS = {
    "entries",
    "index_build_s",
    "index_keys",
    "planted",
    "matches",
    "hits",
    "reasons",
    "breaker_trips_per_batch",
    "exact_join_travellers_per_s",
    "fuzzy_matches_travellers_per_s",
    "score_batch_without_watchlist_travellers_per_s",
    "score_batch_travellers_per_s",
    "stages_us_per_traveller",
    "slowdown_vs_10k",
}


@pytest.mark.parametrize("model", [True, False])
def test_tiny_run_writes_the_expected_json(tmp_path, capsys, model):
    out = tmp_path / "screening.json"
    argv = ["--sizes", "100", "--manifests", "1", "--passengers", "20", "--repeat", "1", "--model-rows", "2000"]
    screening.main([*argv, "--out", str(out), "--markdown", *([] if model else ["--no-model"])])
    results = json.loads(out.read_text())
    assert {"benchmark", "started", "machine", "configuration", "travellers_per_batch", "sizes", "targets"} <= set(
        results
    )
    config = results["configuration"]
    assert config["member_rules"] == 50 and config["hub_rules"] == len(HUB_RULES)
    assert sum(config["rules_by_owner"].values()) == 50
    assert (config["model"] is not None) == model
    assert config["model_thresholds"] == (screening.MODEL_THRESHOLDS if model else {})
    [row] = results["sizes"]
    assert set(row) == ROW_KEYS
    assert row["entries"] == 100
    assert set(row["stages_us_per_traveller"]) == set(STAGES)
    assert set(row["reasons"]) == {"watchlist", "rule", "model"}
    assert row["slowdown_vs_10k"] is None  # no 10k row in this run
    assert results["targets"]["travellers_per_s_met"] is None and results["targets"]["slowdown_met"] is None
    printed = capsys.readouterr().out
    assert "[1/1] 100 entries" in printed and "| watchlist entries |" in printed and "target:" in printed


def test_targets_judged_on_the_sizes_run():
    rows = [
        {"entries": 10_000, "score_batch_travellers_per_s": 60_000},
        {"entries": 100_000, "score_batch_travellers_per_s": 50_000},
        {"entries": 1_000_000, "score_batch_travellers_per_s": 29_000},
    ]
    t = screening.targets(rows)
    assert t["travellers_per_s_at_target_entries"] == 50_000 and t["travellers_per_s_met"] is True
    assert t["slowdown"] == 2.07 and t["slowdown_met"] is False
    rows[2]["score_batch_travellers_per_s"] = 31_000
    assert screening.targets(rows)["slowdown_met"] is True
    assert screening.targets(rows[:1])["travellers_per_s_met"] is None


def test_full_report_has_the_screening_section(tmp_path):
    from benchmarks import report, suite

    out = tmp_path / "screening.json"
    argv = ["--sizes", "100", "--manifests", "1", "--passengers", "20", "--repeat", "1", "--model-rows", "2000"]
    curve = screening.main([*argv, "--out", str(out)])
    results = {
        "mode": "full",
        "started": "2026-11-30T00:00:00+00:00",
        "kafka_version": "4.3.1",
        "machine": {"cpus": 2, "memory_gb": 8.0, "platform": "linux", "python": "3.11"},
        "raw_kafka": {"error": "not run in this test"},
        "end_to_end": {"steps": []},
        "screening": curve,
    }
    # Neither target is judged on a 100-entry run, so the headline gets no screening line.
    assert suite._screening_headline(curve) is None
    results["headline"] = []
    path = report.write(results, tmp_path)
    text = path.read_text()
    assert "## Screening curve (one profiler process, no Kafka)" in text
    assert "| 100 |" in text and "* Target: >= 50,000 travellers/s" in text
    assert (tmp_path / "screening.png").exists()
    assert suite.PLANS["full"].screening_sizes == (1_000, 10_000, 100_000, 1_000_000)
    assert suite.PLANS["quick"].screening_sizes == ()  # --quick stays short


def test_screening_headline_states_both_targets():
    from benchmarks import suite

    rows = [
        {"entries": 10_000, "score_batch_travellers_per_s": 60_000},
        {"entries": 100_000, "score_batch_travellers_per_s": 43_000},
        {"entries": 1_000_000, "score_batch_travellers_per_s": 31_000},
    ]
    line = suite._screening_headline(
        {"targets": screening.targets(rows), "configuration": {"member_rules": 50, "model": "risk-x"}}
    )
    assert line == (
        "Screening in one profiler process (50 member rules, the risk model): 43,000 travellers/s against 100,000 "
        "watchlist entries (target 50,000: not met); 1.94× the time per traveller at 1,000,000 entries as at "
        "10,000 (target below 2×: met)."
    )
