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
            "(--quick: smaller floods, about 3 minutes)",
        ),
    ] = False,
    attack: Annotated[
        list[str] | None, typer.Option("--attack", help="With --abuse: run only this attack (repeatable)")
    ] = None,
) -> None:
    """Benchmark the hub on a local broker (throughput, latency, scale-out, baselines) and answer the
    regional-hub cost question; writes report.md, PNG plots and results.json under benchmarks/results/."""
    if quick and full:
        raise typer.BadParameter("choose --quick or --full")
    if abuse:
        from benchmarks.abuse import run as run_abuse

        say = lambda s: console.print(s, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        raise typer.Exit(run_abuse(not full, out, attack, say=say))
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
