"""The screening benchmark: its 50-rule configuration and the shape of what a run writes (no timings)."""

import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks import screening, screening_baseline
from benchmarks.model import add_bookings
from services import codec
from services.directory import load_directory
from services.profiler.frames import read_travellers
from services.profiler.scoring import STAGES, score_batch
from services.profiler.watchlist import REVIEW_THRESHOLD, WatchlistStore
from services.rules.language import parse_ruleset
from services.rules.rule import HUB_RULES
from services.wire import delivery_pb2, hit_pb2
from synthetic.traffic import DemoTraffic


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
    "fuzzy_threshold",
    "baseline",
}
BASELINE_ROW_KEYS = {
    "index_build_s",
    "threshold",
    "review_threshold",
    "matcher_version",
    "matches",
    "fuzzy_matches_travellers_per_s",
    "fuzzy_ratio",
    "rounds_s",
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
    assert row["fuzzy_threshold"] == REVIEW_THRESHOLD and row["baseline"] is None and results["baseline"] is None
    assert results["screening_bands"]["screened_at"] == REVIEW_THRESHOLD
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


def test_score_batch_and_the_matcher_screen_at_the_review_band(monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("watchlist_threshold"))
        return score_batch(*args, **kwargs)

    monkeypatch.setattr(screening, "score_batch", spy)
    config = screening.Configuration(())
    config.score(
        [DemoTraffic(seed=2).next_manifest(passengers=5)], WatchlistStore(), load_directory(), datetime.now(UTC)
    )
    assert seen == [REVIEW_THRESHOLD]


# -- --baseline: the worktree and the subprocess (no timing is asserted, only the shape of what comes back) ----


def _worktrees() -> str:
    return subprocess.run(
        ["git", "-C", str(screening_baseline.ROOT), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_checkout_adds_a_worktree_of_head_and_removes_it_also_on_error():
    with screening_baseline.checkout("HEAD") as path:
        assert (path / "services" / "profiler" / "watchlist.py").is_file()
        assert f"worktree {path}" in _worktrees()
    assert not path.exists() and f"worktree {path}" not in _worktrees()
    with pytest.raises(KeyError), screening_baseline.checkout("HEAD") as path:
        raise KeyError("boom")
    assert not path.exists() and f"worktree {path}" not in _worktrees()
    with pytest.raises(RuntimeError, match="names no commit"):
        screening_baseline.resolve("no-such-ref-anywhere")


def _tiny_list_and_frame():
    entries = screening.make_watchlist(100, seed=1)
    manifests = [DemoTraffic(seed=1).next_manifest(passengers=8)]
    screening.plant(manifests, entries, seed=1)
    manifests[0].travellers[0].surname = entries[0].surname  # one traveller surely near an entry
    manifests[0].travellers[0].given_names = entries[0].given_names
    manifests[0].travellers[0].date_of_birth.CopyFrom(entries[0].date_of_birth)
    batch = read_travellers(manifests, features=False)
    frame = batch.frame.with_columns(documents=batch.documents)
    return delivery_pb2.Watchlist(owner="FJI", entries=entries).SerializeToString(), frame


def test_baseline_subprocess_times_the_matcher_of_a_worktree():
    listed, frame = _tiny_list_and_frame()
    with screening_baseline.checkout("HEAD") as tree, screening_baseline.Baseline(tree, listed, frame) as child:
        info = child.info
        assert info["ready"] is True
        assert info["services"] == str((tree / "services").resolve())  # its own services, not the working tree's
        assert info["entries"] == 100 and info["travellers"] == frame.height
        assert info["load_s"] >= 0 and info["index_build_s"] >= 0
        assert 0 < info["threshold"] <= 1
        assert info["review_threshold"] is None or 0 < info["review_threshold"] <= info["threshold"]
        rounds = [child.time_round() for _ in range(2)]
        assert all(r["seconds"] > 0 and isinstance(r["matches"], int) and r["matches"] >= 1 for r in rounds)
        done = child.close()
    assert done["done"] is True and done["rounds"] == [r["seconds"] for r in rounds]
    assert done["best_s"] == min(done["rounds"]) and done["matches"] == rounds[-1]["matches"]


def test_baseline_subprocess_refuses_services_from_outside_the_worktree(tmp_path):
    # An empty directory as the "worktree": services can only come from the working tree (the editable install).
    listed, frame = _tiny_list_and_frame()
    with (
        pytest.raises(RuntimeError, match="not from the worktree"),
        screening_baseline.Baseline(tmp_path, listed, frame),
    ):
        pass


def test_tiny_run_with_a_baseline_records_it(tmp_path, capsys):
    out = tmp_path / "screening.json"
    argv = ["--sizes", "100", "--manifests", "1", "--passengers", "20", "--repeat", "2", "--no-model"]
    results = screening.main([*argv, "--baseline", "HEAD", "--out", str(out), "--markdown"])
    assert json.loads(out.read_text()) == results
    b = results["baseline"]
    assert b["ref"] == "HEAD" and len(b["commit"]) == 40 and 0 < b["threshold"] <= 1 and b["note"]
    assert b["checks"]["ratio"] is None and b["checks"]["ratio_met"] is None  # no 100k row in this run
    assert b["checks"]["fuzzy_slowdown"] is None and b["checks"]["fuzzy_slowdown_met"] is None
    [row] = results["sizes"]
    theirs = row["baseline"]
    assert set(theirs) == BASELINE_ROW_KEYS
    assert theirs["fuzzy_matches_travellers_per_s"] > 0 and theirs["fuzzy_ratio"] > 0
    assert len(theirs["rounds_s"]) == 2 and isinstance(theirs["matches"], int)
    printed = capsys.readouterr().out
    assert "fuzzy round 2/2: current" in printed and "check: matcher alone at 100,000 entries" in printed
    assert "| 100 |" in printed.split("HEAD (trav/s)")[1]
    tree = printed.split("services from ", 1)[1].split(")", 1)[0].removesuffix("/services")
    assert f"worktree {tree}\n" not in _worktrees() and not Path(tree).exists()  # the worktree is gone


def test_baseline_checks_judged_on_the_sizes_run():
    def row(entries, rate, theirs):
        return {
            "entries": entries,
            "fuzzy_matches_travellers_per_s": rate,
            "baseline": {"fuzzy_matches_travellers_per_s": theirs, "fuzzy_ratio": round(rate / theirs, 3)},
        }

    rows = [row(10_000, 100_000, 90_000), row(100_000, 56_000, 70_000), row(1_000_000, 40_000, 30_000)]
    c = screening.baseline_checks(rows)
    assert c["ratio"] == 0.8 and c["ratio_met"] is True
    assert c["fuzzy_slowdown"] == 2.5 and c["fuzzy_slowdown_met"] is False and c["baseline_fuzzy_slowdown"] == 3.0
    rows[1] = row(100_000, 48_000, 70_000)
    rows[2] = row(1_000_000, 51_000, 30_000)
    c = screening.baseline_checks(rows)
    assert c["ratio"] == 0.686 and c["ratio_met"] is False and c["fuzzy_slowdown_met"] is True
    c = screening.baseline_checks(rows[:1])
    assert c["ratio_met"] is None and c["fuzzy_slowdown_met"] is None and c["baseline_fuzzy_slowdown"] is None
