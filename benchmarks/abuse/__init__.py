"""The abuse suite (`apihub bench --abuse`): floods, oversized and malformed inputs, a redirecting webhook, escape
sequences and cross-principal attempts against a whole hub on its own local broker.

Each attack is tried once and counted as refused cleanly, accepted with warning, accepted, crashed, hung or a
cross-principal effect; the suite fails (exit status 1) on any crash, hang or cross-principal effect, on an outcome
other than the one expected, on a service that died, on a Python traceback in a service's log, and on a name or document
number the attacks sent found in a service's log. It takes about a minute on two cores, most of it the broker's and
the services' start (`make test` runs it: tests/benchmarks/test_abuse.py); ``--full`` floods with 100 calls instead of
40.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.abuse.attacks import ATTACKS
from benchmarks.abuse.harness import FAILURES, Arena, Outcome, Result, new_workdir, timed


def run(quick: bool, out: Path | None = None, only: list[str] | None = None, say=print) -> int:
    """Run every attack (or those named in ``only``); print and return the exit status (0: all held)."""
    chosen = [a for a in ATTACKS if not only or a.name in only]
    unknown = sorted(set(only or ()) - {a.name for a in ATTACKS})
    if unknown:
        say(f"unknown attacks: {', '.join(unknown)} (known: {', '.join(a.name for a in ATTACKS)})")
        return 2
    workdir = new_workdir()
    say(f"abuse suite ({'quick' if quick else 'full'}): {len(chosen)} attacks; logs in {workdir}")
    arena = Arena(workdir, say=say)
    results: list[Result] = []
    started = time.monotonic()
    try:
        arena.start()
        for i, a in enumerate(chosen, 1):
            outcome, detail, seconds = timed(lambda a=a: a.run(arena, quick))
            result = Result(a.name, outcome, a.expect, detail, seconds)
            results.append(result)
            mark = "ok " if result.ok else "BAD"
            say(f"[{i:2}/{len(chosen)}] {mark} {a.name}: {outcome.value} ({seconds:.1f}s) - {detail}")
        dead, tracebacks, leaks = arena.dead(), arena.tracebacks(), arena.personal_data_in_logs()
    finally:
        arena.close()
    return _report(
        results,
        dead,
        tracebacks + [f"{name} (personal data)" for name in leaks],
        quick,
        out,
        time.monotonic() - started,
        say,
    )


def _report(results, dead, tracebacks, quick, out, seconds, say) -> int:
    counts = Counter(r.outcome for r in results)
    say("")
    say(f"tried {len(results)}: " + ", ".join(f"{counts.get(o, 0)} {o.value}" for o in Outcome))
    failed = [r for r in results if not r.ok]
    for r in failed:
        wanted = " or ".join(o.value for o in sorted(r.expected, key=lambda o: o.value))
        say(f"  FAILED {r.name}: {r.outcome.value}, expected {wanted} - {r.detail}")
    if dead:
        say(f"  FAILED services died: {', '.join(dead)}")
    if tracebacks:
        say(f"  FAILED tracebacks or travellers' personal data in the logs of: {', '.join(tracebacks)}")
    ok = not failed and not dead and not tracebacks and not (set(counts) & FAILURES)
    say(f"abuse suite {'passed' if ok else 'FAILED'} in {seconds:.0f}s")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"abuse-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        record = {
            "mode": "quick" if quick else "full",
            "seconds": round(seconds, 1),
            "counts": {o.value: counts.get(o, 0) for o in Outcome},
            "dead_services": dead,
            "tracebacks": tracebacks,
            "attacks": [
                {"name": r.name, "outcome": r.outcome.value, "ok": r.ok, "detail": r.detail, "seconds": r.seconds}
                for r in results
            ],
        }
        path.write_text(json.dumps(record, indent=2))
        say(f"results: {path}")
    return 0 if ok else 1
