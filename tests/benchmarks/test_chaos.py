"""The fault suite: its quick version against a whole hub (part of `make test`), and how it counts, tested on made-up
delivery logs: a loss, a repeat and a leak are each found, and what the hub rightly does not send is not a loss."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.abuse import harness
from benchmarks.abuse.harness import Arena
from benchmarks.chaos.counting import (
    AMENDED,
    FIRST,
    WITHDRAWN,
    Expected,
    Shown,
    Submission,
    expected_deliveries,
    next_hit_after,
    owner_of,
    recovered,
    repeats,
    tally,
    waits,
    worst_wait,
)
from benchmarks.chaos.report import Row, table
from benchmarks.chaos.scenarios import SCENARIOS
from benchmarks.chaos.traffic import AMENDED_LOCATOR, Screen, plan_traffic
from services.config import HubSettings
from services.directory import load_directory

REPO = Path(__file__).resolve().parents[2]
# Jurisdiction of the made-up routes below: NAN is Fiji's, TBU Tonga's, AKL New Zealand's.
PORTS = {"NAN": "FJI", "TBU": "TON", "AKL": "NZL"}


def jurisdiction(route):
    return {PORTS[p] for p in route if p in PORTS}


def entitled(member, route):
    return member in jurisdiction(route)


def shown(at, member, hit_id, kind=FIRST, version="v1", route=("NAN", "TBU"), channel="grpc"):
    return Shown(at, member, channel, hit_id, version, kind, route)


@pytest.mark.timeout(900)
def test_quick_fault_suite_holds(tmp_path):
    """Every quick scenario (baseline, kill-all, member-offline, webhook-failing, two-profilers, kill-broker) ran
    with traffic that raised hits; none lost, shown twice or leaked; the hub recovered from each fault. Recovery
    times are in the report, not asserted. Time budget: about 3 minutes on two cores (4 at most)."""
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--chaos", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-4000:]
    (result_file,) = tmp_path.glob("chaos-*.json")
    assert len(list(tmp_path.glob("chaos-*.md"))) == 1
    record = json.loads(result_file.read_text())
    assert [s["scenario"] for s in record["scenarios"]] == [s.name for s in SCENARIOS if s.quick]
    for s in record["scenarios"]:
        assert s["ok"] and s["recovered"], s
        assert s["expected"] > 0 and s["delivered"] == s["expected"], s
        assert s["lost"] == s["shown_twice"] == s["leaked"] == 0, s
    assert record["totals"]["lost"] == record["totals"]["shown_twice"] == record["totals"]["leaked"] == 0


def test_expected_hits_only_for_held_manifests_and_only_to_members_with_jurisdiction():
    held = Submission(0, FIRST, ("h1",), ("NAN", "TBU"), receipt_at=5.0, status="accepted")
    retried = Submission(1, AMENDED, ("h1",), ("NAN", "TBU"), after=0, receipt_at=7.0, status="duplicate")
    never = Submission(2, FIRST, ("h2",), ("AKL", "NAN"), status="unconfirmed")
    refused = Submission(3, WITHDRAWN, ("h1",), ("NAN", "TBU"), after=0, status="rejected")
    nobody = Submission(4, FIRST, ("h3",), ("SYD", "BNE"), receipt_at=9.0, status="accepted")
    expected = expected_deliveries([held, retried, never, refused, nobody], jurisdiction)
    assert expected == {
        Expected("FJI", "h1", FIRST): 5.0,
        Expected("TON", "h1", FIRST): 5.0,
        Expected("FJI", "h1", AMENDED): 7.0,
        Expected("TON", "h1", AMENDED): 7.0,
    }


def test_a_loss_a_repeat_and_a_leak_are_each_found():
    expected = {Expected("FJI", "h1", FIRST): 1.0, Expected("TON", "h1", FIRST): 1.0}
    log = [
        shown(2.0, "FJI", "h1"),
        shown(3.0, "FJI", "h1"),  # the same version again: shown twice
        shown(2.5, "NZL", "h1"),  # New Zealand has no port on NAN-TBU: a leak
    ]
    counted = tally(expected, log, entitled)
    assert counted.lost == [Expected("TON", "h1", FIRST)]
    assert [s.member for s in counted.leaked] == ["NZL"]
    assert counted.delivered == 1 and counted.expected == 2 and counted.extra == []
    assert repeats(log) == [log[1]]


def test_nothing_is_wrong_when_every_version_is_shown_once():
    expected = {Expected(m, "h1", k): 1.0 for m in ("FJI", "TON") for k in (FIRST, AMENDED, WITHDRAWN)}
    log = [
        shown(2.0 + i, m, "h1", kind=k, version=f"v{v}")
        for i, (m, (k, v)) in enumerate(
            (m, kv) for m in ("FJI", "TON") for kv in ((FIRST, 1), (AMENDED, 2), (WITHDRAWN, 3))
        )
    ]
    counted = tally(expected, log, entitled)
    assert counted.lost == counted.leaked == counted.extra == []
    assert counted.delivered == 6
    assert repeats(log) == []


def test_a_new_version_is_not_a_repeat_and_a_repeat_is_per_member():
    log = [
        shown(1.0, "FJI", "h1", version="fp:aa"),
        shown(2.0, "FJI", "h1", version="fp:bb"),  # an update: another version
        shown(3.0, "TON", "h1", version="fp:aa"),  # another member's copy
        shown(4.0, "TON", "h1", version="fp:aa", channel="webhook"),  # a repeat, at a webhook
    ]
    again = repeats(log)
    assert [(s.member, s.channel) for s in again] == [("TON", "webhook")]


def test_unannounced_hits_are_extra_not_lost_nor_leaked():
    counted = tally({}, [shown(1.0, "FJI", "h9")], entitled)
    assert counted.extra and not counted.leaked and not counted.lost


def test_recovery_counts_from_the_fault_only_hits_raised_after_it():
    expected = {Expected("FJI", "old", FIRST): 4.0, Expected("FJI", "new", FIRST): 12.0}
    log = [shown(10.5, "FJI", "old"), shown(13.0, "FJI", "new")]
    # A hit already on its way when the hub was killed (at 10) proves nothing: the next is the one raised after it.
    assert next_hit_after(10.0, log, expected) == pytest.approx(3.0)
    assert recovered(10.0, log, expected)
    # The old hit waited 0.5 s after the fault, the new one 1 s after its receipt; a receipt waited 6 s.
    receipt = Submission(0, FIRST, ("new",), ("NAN",), first_try=9.0, receipt_at=16.0, status="accepted")
    assert worst_wait(10.0, log, expected, [receipt]) == pytest.approx(6.0)
    assert worst_wait(10.0, log, expected) == pytest.approx(1.0)
    assert sorted(waits(10.0, log, expected, [receipt])) == [
        (pytest.approx(0.5), "FJI grpc"),
        (pytest.approx(1.0), "FJI grpc"),
        (pytest.approx(6.0), "carrier receipt"),
    ]
    # Nothing raised after the fault was shown: the hub did not recover.
    assert not recovered(10.0, log[:1], expected)
    assert next_hit_after(10.0, log[:1], expected) is None


def test_a_members_recovery_is_its_own_next_hit():
    expected = {Expected("FJI", "a", FIRST): 1.0, Expected("TON", "b", FIRST): 1.0}
    log = [shown(2.0, "TON", "b"), shown(30.0, "FJI", "a")]
    assert next_hit_after(20.0, log, expected, member="FJI") == pytest.approx(10.0)
    assert recovered(20.0, log, expected, member="TON")  # owed nothing more after the fault
    assert not recovered(20.0, log[:1], expected, member="FJI")  # owed a hit, never shown


def test_a_showing_belongs_to_the_scenario_of_its_hit_else_to_the_one_running():
    windows = [("baseline", 0.0), ("kill-router", 100.0)]
    owner = {"h1": "baseline"}
    assert owner_of(shown(150.0, "FJI", "h1"), owner, windows) == "baseline"
    assert owner_of(shown(150.0, "FJI", "h9"), owner, windows) == "kill-router"


def test_a_row_fails_on_a_loss_a_repeat_a_leak_or_no_recovery():
    def row(**changes):
        base = dict(scenario="kill-router", about="", fault="", accepted=10, duplicates=0, unconfirmed=0, refused=0)
        base |= dict(expected=5, delivered=5, lost=0, shown_twice=0, leaked=0, extra=0, redelivered=0)
        base |= dict(next_hit_s=1.0, worst_wait_s=2.0, tool_restarts=0)
        return Row(**(base | changes))

    assert row().ok
    assert not row(lost=1).ok and not row(shown_twice=1).ok and not row(leaked=1).ok
    assert not row(recovered=False, next_hit_s=None).ok
    assert row(extra=3, redelivered=2, duplicates=1).ok  # reported, not failures
    lines = table([row(), row(lost=2)])
    assert "FAILED" not in lines[1] and "FAILED" in lines[-1]


def test_planned_traffic_raises_exactly_its_planted_travellers():
    screen = Screen(HubSettings(), load_directory())
    plan = plan_traffic(60, 5000, 7, screen)
    originals = [p for p in plan if p.record.kind == FIRST]
    assert len(originals) == 60
    assert len({p.manifest.flight_number for p in originals}) == 60  # each manifest its own flight
    flagged = screen.flagged([p.manifest for p in originals])
    for p, refs in zip(originals, flagged, strict=True):
        assert len(refs) == len(p.record.hit_ids) <= 1  # only the planted traveller, if any
    changes = [p for p in plan if p.record.kind != FIRST]
    assert {p.record.kind for p in changes} == {AMENDED, WITHDRAWN}
    for p in changes:
        origin = plan[p.record.after]
        assert origin.record.kind == FIRST and origin.record.seq < p.record.seq
        assert p.record.hit_ids == origin.record.hit_ids
    amended = [p for p in changes if p.record.kind == AMENDED]
    assert all(t.reservation_locator == AMENDED_LOCATOR for p in amended for t in p.manifest.travellers)


def test_the_arena_restarts_a_process_as_it_started_it(tmp_path, monkeypatch):
    started = []

    class FakeProcess:
        def __init__(self, args, env, **_kwargs):
            started.append((args[-1], env.get("APIHUB_PROFILER_METRICS_PORT")))
            self.returncode = None

        def poll(self):
            return self.returncode

        def send_signal(self, _sig):
            self.returncode = -9

        def wait(self, _timeout=None):
            return self.returncode

    monkeypatch.setattr(harness.subprocess, "Popen", FakeProcess)
    arena = Arena(tmp_path)
    arena.env = {"APIHUB_PROFILER_METRICS_PORT": "9465"}
    arena._spawn("profiler")
    arena.spawn_second("profiler-2", "profiler")
    with pytest.raises(RuntimeError):
        arena.restart("profiler-2")  # still running
    arena.kill("profiler-2")
    arena.restart("profiler-2")
    assert started[0] == ("profiler", "9465")
    assert started[1][0] == started[2][0] == "profiler" and started[1] == started[2]
    assert started[1][1] != "9465"  # its own metrics port, kept across the restart
