"""The fault suite (`apihub bench --chaos`): faults in the middle of traffic against a whole hub on its own local
broker (the abuse suite's arena, benchmarks/abuse/harness.py), and what members were shown because of them.

Scenarios (benchmarks/chaos/scenarios.py), in this order, each with its own traffic of demo manifests, amendments
and withdrawals: baseline (no fault: the control of the suite's own counting); kill -9 of ingest, of the profiler,
of the router (each started again at once by the suite), of all three together; a member's `hits follow` stopped,
then started again; a member's webhook answering 503 for a while; kill -9 of the profiler and the router under
`apihub up`, whose supervisor starts them again; a second profiler, then the first killed for good; kill -9 of the
broker, started again on its data (last: what a broker crash leaves behind spoils no other scenario). For each:
manifests accepted, hit versions expected and delivered, lost, shown twice, leaked, the time to the next hit and the
worst wait (reported, never asserted). The suite prints a table, writes benchmarks/results/chaos-<time>.json and
.md, and exits 1 on any loss, repeat or leak, or when the hub did not recover from a fault.

``--quick`` (what `make test` runs, tests/benchmarks/test_chaos.py): baseline, kill-all (each service's kill at
once), member-offline and webhook-failing (20 s each), two-profilers and kill-broker, with shorter traffic; time
budget: about 4 minutes on two cores (3 measured), most of it the broker's starts and the services' restarts. The
full run adds each service's kill alone and the kills under `apihub up`, and its member and webhook outages last
minutes (about 25 minutes).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.abuse.harness import HOOK_SECRET_ENV, Arena
from benchmarks.chaos.counting import (
    DEDUPLICATED_CHANNELS,
    Expected,
    Submission,
    expected_deliveries,
    first_showings,
    next_hit_after,
    owner_of,
    recovered,
    repeats,
    running_at,
    tally,
    waits,
)
from benchmarks.chaos.members import CLI_MEMBER, WEBHOOK_MEMBER, CliMember, Desk, GrpcMembers, WebhookEndpoint
from benchmarks.chaos.report import SAMPLES, Row, table, write
from benchmarks.chaos.scenarios import FULL, QUICK, SCENARIOS, Fault, Scenario, Stage
from benchmarks.chaos.traffic import Carrier, Screen, plan_traffic
from services.devkafka import terminate

# The webhook member's signing secret inside the arena (throwaway: a loopback endpoint of the suite's own).
HOOK_SECRET = "chaos-suite-webhook-secret"
# After the last scenario, the longest wait for a hit still missing from any scenario (seconds).
FINAL_SETTLE_S = 20.0
# Flight numbers of scenario k start at FIRST_FLIGHT + k * FLIGHTS_PER_SCENARIO: no two manifests share a flight.
FIRST_FLIGHT, FLIGHTS_PER_SCENARIO = 1000, 2000


@dataclass
class Ran:
    scenario: Scenario
    fault: Fault
    start: float
    submissions: list[Submission]
    expected: dict[Expected, float]


def run(quick: bool, out: Path | None = None, only: list[str] | None = None, say=print) -> int:
    """Run the scenarios (those named in ``only``, after the baseline; else the mode's); print the table, write
    the report; return the exit status (0: nothing lost, repeated or leaked; 1: something was; 2: bad names)."""
    unknown = sorted(set(only or ()) - {s.name for s in SCENARIOS})
    if unknown:
        say(f"unknown faults: {', '.join(unknown)} (known: {', '.join(s.name for s in SCENARIOS)})")
        return 2
    chosen = [s for s in SCENARIOS if s.name == "baseline" or (s.name in only if only else s.quick or not quick)]
    timing = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="apihub-chaos-"))
    say(f"fault suite ({'quick' if quick else 'full'}): {', '.join(s.name for s in chosen)}; logs in {workdir}")
    (workdir / "sharing.yaml").write_text("arrangements: []\n")  # no sharing: jurisdiction decides who gets a hit
    desk = Desk()
    endpoint = WebhookEndpoint(desk, WEBHOOK_MEMBER, HOOK_SECRET)
    arena = Arena(
        workdir,
        say=say,
        webhook=endpoint,
        webhook_member=WEBHOOK_MEMBER,
        prefix="chaos",
        extra_env={"APIHUB_SHARING_FILE": str(workdir / "sharing.yaml"), HOOK_SECRET_ENV: HOOK_SECRET},
    )
    started = time.monotonic()
    followers, stage, ran = None, None, []
    try:
        arena.start()
        directory = _directory(arena)
        _load_watchlists(arena)
        members = _grpc_members(directory)
        followers = GrpcMembers(desk, members, arena.settings, _member_token(arena), workdir / "member-state")
        followers.start()
        cli = CliMember(desk, CLI_MEMBER, {**arena.env, "APIHUB_TOKEN": arena.token("member", CLI_MEMBER)}, workdir)
        cli.start()
        stage = Stage(arena, cli, endpoint, timing, say)
        stage.watch()
        screen = Screen(arena.settings, directory)
        for k, scenario in enumerate(chosen):
            ran.append(_run_scenario(stage, scenario, k, screen, desk, directory))
        # Each scenario waited for its own hits: a short last chance for any that came late.
        _settle(desk, [e for r in ran for e in r.expected], FINAL_SETTLE_S)
        rows = _rows(ran, desk, stage, directory)
    finally:
        if stage is not None:
            stage.close()
            stage.cli.close()
            if stage.up is not None:
                terminate(stage.up, 60)
        if followers is not None:
            followers.stop()
        arena.close()
    tools = _tool_stats(followers, workdir)
    return _finish(rows, tools, quick, out, time.monotonic() - started, only, say)


def _directory(arena: Arena):
    from services.directory import parse_directory

    path = arena.workdir / "members.yaml"
    return parse_directory(path.read_text(), str(path))


def _load_watchlists(arena: Arena) -> None:
    from services import client
    from synthetic.traffic import demo_watchlists

    for owner, entries in demo_watchlists().items():
        client.load_watchlist(arena.delivery(), arena.token("member", owner), owner, entries)


def _grpc_members(directory) -> list[str]:
    """Every member but the two followed otherwise: a leak may reach anyone, so everyone listens."""
    return [code for code in directory.codes if code not in (CLI_MEMBER, WEBHOOK_MEMBER)]


def _member_token(arena: Arena):
    return lambda member: arena.token("member", member)


def _run_scenario(stage: Stage, scenario: Scenario, k: int, screen: Screen, desk: Desk, directory) -> Ran:
    timing, say = stage.timing, stage.say
    plan = plan_traffic(timing.manifests, FIRST_FLIGHT + k * FLIGHTS_PER_SCENARIO, 100 + k, screen)
    say(f"[{scenario.name}] {scenario.about}")
    start = time.monotonic()
    arena = stage.arena
    carrier = Carrier(
        plan, arena.settings.ingest_listen, lambda code: arena.token("carrier", code), timing.interval, timing.give_up
    )
    carrier.start()
    time.sleep(timing.warm)
    fault = scenario.inject(stage)
    say(f"  {fault.note}")
    # Traffic goes on for a while after the hub accepts manifests again, so that its recovery shows.
    deadline = time.monotonic() + timing.give_up
    while time.monotonic() < deadline and not any((p.record.receipt_at or 0) > fault.since for p in plan):
        time.sleep(0.2)
    time.sleep(timing.after)
    carrier.stop()
    carrier.join()
    submissions = [p.record for p in plan if p.record.status != "not sent"]
    expected = expected_deliveries(submissions, lambda route: directory.jurisdiction(list(route)))
    done = _settle(desk, list(expected), timing.settle)
    if scenario.restore is not None:
        scenario.restore(stage)
    say(
        f"  {sum(s.held for s in submissions)} manifests accepted; {done} of {len(expected)} expected hit versions "
        f"shown after {time.monotonic() - start:.0f}s"
    )
    return Ran(scenario, fault, start, submissions, expected)


def _settle(desk: Desk, expected: list[Expected], limit: float) -> int:
    """Wait until every expected hit version was shown, or ``limit`` seconds; how many were."""
    deadline = time.monotonic() + limit
    while True:
        seen = first_showings(desk.shown())
        done = sum(e in seen for e in expected)
        if done == len(expected) or time.monotonic() >= deadline:
            return done
        time.sleep(0.5)


def _rows(ran: list[Ran], desk: Desk, stage: Stage, directory) -> list[Row]:
    shown = desk.shown()
    windows = [(r.scenario.name, r.start) for r in ran]
    hit_owner = {e.hit_id: r.scenario.name for r in ran for e in r.expected}
    again = repeats(shown)

    def entitled(member: str, route: tuple[str, ...]) -> bool:
        return member in directory.jurisdiction(list(route))

    rows = []
    for r in ran:
        name = r.scenario.name
        mine = [s for s in shown if owner_of(s, hit_owner, windows) == name]
        counted = tally(r.expected, mine, entitled)
        repeated = [s for s in again if running_at(s.at, windows) == name]
        twice = [s for s in repeated if s.channel not in DEDUPLICATED_CHANNELS]
        f = r.fault
        waited = [] if f.none else waits(f.since, mine, r.expected, r.submissions, f.member)
        rows.append(
            Row(
                scenario=name,
                about=r.scenario.about,
                fault=f.note,
                accepted=sum(s.held for s in r.submissions),
                duplicates=sum(s.status == "duplicate" for s in r.submissions),
                unconfirmed=sum(s.status == "unconfirmed" for s in r.submissions),
                refused=sum(s.status == "rejected" or s.status.startswith("failed") for s in r.submissions),
                expected=counted.expected,
                delivered=counted.delivered,
                lost=len(counted.lost),
                shown_twice=len(twice),
                leaked=len(counted.leaked),
                extra=len(counted.extra),
                redelivered=len(repeated) - len(twice),
                next_hit_s=None if f.none else next_hit_after(f.since, mine, r.expected, f.member),
                worst_wait_s=max(waited)[0] if waited else None,
                tool_restarts=sum(running_at(at, windows) == name for at, _ in desk.restarts),
                recovered=f.none or recovered(f.since, mine, r.expected, f.member),
                service_exits=[f"{p} ({c})" for at, p, c in stage.exits if running_at(at, windows) == name],
                samples={
                    "lost": [f"{e.member} {e.hit_id} {e.kind}" for e in counted.lost[:SAMPLES]],
                    "shown_twice": [f"{s.member} {s.hit_id} {s.version} ({s.channel})" for s in twice[:SAMPLES]],
                    "leaked": [f"{s.member} {s.hit_id} {'-'.join(s.route)}" for s in counted.leaked[:SAMPLES]],
                    # What waited longest after the fault: the hub, a member tool's reconnection, or a carrier.
                    "slowest": [f"{w:.1f}s {what}" for w, what in sorted(waited, reverse=True)[:3]],
                },
            )
        )
    return rows


def _tool_stats(followers: GrpcMembers | None, workdir: Path) -> dict[str, int]:
    """What the members' tools counted over the run, summed: versions shown, repeats they skipped as shown before
    (deliveries the hub made again), hits the hub said were lost, reconnections. `hits follow` prints its counts
    on stderr as it exits (one line per run of it, in its log)."""
    counts: list[dict[str, int]] = list(followers.stats.values()) if followers is not None else []
    log = workdir / f"follow-{CLI_MEMBER}.log"
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        with contextlib.suppress(ValueError, AttributeError):
            stats = json.loads(line).get("stats")
            if isinstance(stats, dict):
                counts.append({k: v for k, v in stats.items() if isinstance(v, int)})
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def _finish(rows: list[Row], tools: dict[str, int], quick: bool, out: Path | None, seconds: float, only, say) -> int:
    say("")
    for line in table(rows):
        say(line)
    ok = all(r.ok for r in rows)
    for r in rows:
        for what, samples in r.samples.items():
            if samples:
                say(f"  {r.scenario} {what}: {', '.join(samples)}")
    if tools:
        say("members' tools: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(tools.items())))
    verdict = "passed" if ok else "FAILED (hits lost, shown twice or leaked, or a hub that did not recover)"
    say(f"fault suite {verdict} in {seconds:.0f}s")
    if out is not None:
        command = "apihub bench --chaos" + (" --quick" if quick else "") + "".join(f" --fault {n}" for n in only or ())
        json_path, md_path = write(rows, out, "quick" if quick else "full", seconds, command, tools)
        say(f"results: {json_path} and {md_path.name}")
    return 0 if ok else 1
