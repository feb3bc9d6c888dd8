"""`apihub bench`: the benchmark suite in one command (typer).

`apihub bench ARGS` runs ``app`` below with ARGS (services/cli.py imports this module only then: the hub's install
and its Docker image hold no benchmarks); standalone: ``python -m benchmarks.cli --quick``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# The suite (matplotlib, polars, the pipeline) loads only when a benchmark runs: `apihub` itself stays quick.
RESULTS = Path(__file__).resolve().parent / "results"
# What the benchmarks need beyond the hub's own dependencies: pyproject's `bench` extra (`make setup` installs it).
BENCH_EXTRA = ("matplotlib", "psutil")

console = Console()


def _parse(assume: list[str]) -> dict[str, float]:
    out = {}
    for item in assume:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--assume needs key=value, got {item!r}")
        out[key.strip()] = float(value)
    return out


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A few minutes (the default)")] = False,
    full: Annotated[bool, typer.Option("--full", help="Longer runs, more load steps, bigger ships")] = False,
    assume: Annotated[
        list[str] | None,
        typer.Option("--assume", help="Override a cost-model assumption, e.g. price_per_vcpu_hour=0.06 (repeatable)"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for results/<timestamp>/")] = RESULTS,
    abuse: Annotated[
        bool,
        typer.Option(
            "--abuse",
            help="Run the abuse suite instead: floods, oversized and malformed inputs, a redirecting webhook, "
            "escape sequences, cross-principal attempts; fails on any crash, hang or cross-principal effect "
            "(about a minute; --full: larger floods)",
        ),
    ] = False,
    attack: Annotated[
        list[str] | None, typer.Option("--attack", help="With --abuse: run only this attack (repeatable)")
    ] = None,
    chaos: Annotated[
        bool,
        typer.Option(
            "--chaos",
            help="Run the fault suite instead: kill -9 of each service and of the broker, a member offline, a "
            "failing webhook, two profilers with one killed, in the middle of traffic; fails on any hit lost, shown "
            "twice or leaked (about 25 minutes; --quick: fewer scenarios, shorter outages, about 3 minutes)",
        ),
    ] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="With --chaos: run only this scenario, after the baseline (repeatable; a wrong name lists them)",
        ),
    ] = None,
    soak: Annotated[
        bool,
        typer.Option(
            "--soak",
            help="Run the soak instead: demo traffic on a whole hub, RSS of every process sampled; fails when a "
            "service's RSS at the end exceeds its RSS after the warm-up by more than 10 %",
        ),
    ] = False,
    minutes: Annotated[float, typer.Option("--minutes", help="With --soak: how long in all (minutes)")] = 30.0,
    warmup: Annotated[float, typer.Option("--warmup", help="With --soak: the warm-up (minutes)")] = 5.0,
    rate_multiplier: Annotated[
        float, typer.Option("--rate-multiplier", help="With --soak: times the demo's rate (one manifest every 2 s)")
    ] = 10.0,
    iapi: Annotated[
        bool,
        typer.Option(
            "--iapi",
            help="Run the interactive-API benchmark instead: open-loop check-in checks at --check-rate beside the "
            "batch path, against the profiler without and then with a --watchlist-entries list; passes when p99 <= "
            "300 ms at 200 checks/s with 100,000 entries (about 5 minutes)",
        ),
    ] = False,
    seconds: Annotated[
        float, typer.Option("--seconds", help="With --iapi: measured seconds of each phase (after a warm-up)")
    ] = 60.0,
    check_rate: Annotated[float, typer.Option("--check-rate", help="With --iapi: checks per second")] = 200.0,
    watchlist_entries: Annotated[
        int, typer.Option("--watchlist-entries", help="With --iapi: entries of the big watchlist")
    ] = 100_000,
    batch_rate: Annotated[
        float, typer.Option("--batch-rate", help="With --iapi: batch manifests per second through intake meanwhile")
    ] = 2.0,
    profilers: Annotated[
        int,
        typer.Option(
            "--profilers", help="With --iapi: profiler processes serving checks (docker-compose runs 2), in turn"
        ),
    ] = 1,
) -> None:
    """Benchmark the hub on a local broker (throughput, latency, scale-out, baselines) and answer the
    regional-hub cost question; writes report.md, PNG plots and results.json under benchmarks/results/."""
    if quick and full:
        raise typer.BadParameter("choose --quick or --full")
    if abuse:
        from benchmarks.abuse import run as run_abuse

        say = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        raise typer.Exit(run_abuse(not full, out, attack, say=say))
    if chaos:
        from benchmarks.chaos import run as run_chaos
        from services.errors import HubError

        say = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        try:
            # The full run unless --quick (about 25 minutes; --quick is what `make test` runs).
            raise typer.Exit(run_chaos(quick, out, fault, say=say))
        except HubError as exc:  # no broker, no Java, a service that would not start: the reason, no traceback
            typer.echo(f"apihub bench --chaos: {exc}", err=True)
            raise typer.Exit(2) from None
    if iapi:
        from benchmarks.iapi import IapiPlan
        from benchmarks.iapi import run as run_iapi
        from services.errors import HubError

        plan = IapiPlan(
            seconds=seconds,
            rate=check_rate,
            watchlist_entries=watchlist_entries,
            batch_rate=batch_rate,
            profilers=profilers,
        )
        try:
            plan.check()
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        say = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        try:
            raise typer.Exit(run_iapi(plan, out, say=say))
        except HubError as exc:  # no broker, no Java, a service that would not start: the reason, no traceback
            typer.echo(f"apihub bench --iapi: {exc}", err=True)
            raise typer.Exit(2) from None
    if soak:
        from benchmarks.soak import SoakPlan
        from benchmarks.soak import run as run_soak
        from services.errors import HubError

        plan = SoakPlan(minutes=minutes, warmup_minutes=warmup, rate_multiplier=rate_multiplier)
        try:
            plan.check()
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        say = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        try:
            raise typer.Exit(run_soak(plan, out, say=say))
        except HubError as exc:  # no broker, no Java, a service that would not start: the reason, no traceback
            typer.echo(f"apihub bench --soak: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        from benchmarks.suite import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in BENCH_EXTRA:
            raise
        typer.echo(
            f"apihub bench: {exc.name} is missing: the benchmarks need the bench extra "
            "(`pip install -e '.[dev,bench]'`, what `make setup` installs)",
            err=True,
        )
        raise typer.Exit(2) from None
    run("full" if full else "quick", _parse(assume or []), out, say=lambda s: console.print(s, highlight=False))


app = typer.Typer(add_completion=False)
app.command()(bench)

if __name__ == "__main__":
    app()
