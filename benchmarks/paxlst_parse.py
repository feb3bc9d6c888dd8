"""PAXLST parse throughput on one core: travellers per second, against splitting the bytes into segments.

Builds N interchanges of one PAXLST message each (synthetic 300-passenger manifests from DemoTraffic, written by
the PAXLST writer), then times, in interleaved rounds on one pinned core:

  split       data.split(b"'"): the floor any reader pays (baseline)
  tokenise    decode + our tokeniser (segments with offsets, escapes resolved)
  pydifact    pydifact's Parser.parse, the maintained reference tokeniser (a subset; it is slow)
  parse       parse_paxlst: envelope, mapping to Manifests, field locations
  validate    parse_paxlst + validate_manifest on every manifest

    .venv/bin/python -m benchmarks.paxlst_parse [--interchanges 50] [--passengers 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from services.edge.validation import validate_manifest
from services.paxlst.reader import parse_paxlst
from services.paxlst.syntax import tokenise
from services.paxlst.writer import render_paxlst
from synthetic.traffic import DemoTraffic

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 20_000  # travellers/s parsed per core (issue 3)


def _interchanges(count: int, passengers: int) -> tuple[list[bytes], int]:
    traffic = DemoTraffic(seed=42)
    manifests = [traffic.next_manifest(passengers=passengers) for _ in range(count)]
    data = [render_paxlst(m, interchange_ref=f"B{i:06d}") for i, m in enumerate(manifests)]
    return data, sum(len(m.travellers) for m in manifests)


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _stages(data: list[bytes], sample: list[bytes]) -> dict[str, tuple[Callable[[], None], list[bytes]]]:
    def split() -> None:
        for d in data:
            d.split(b"'")

    def tok() -> None:
        for d in data:
            tokenise(d.decode())

    def parse() -> None:
        for d in data:
            parse_paxlst(d)

    def parse_validate() -> None:
        for d in data:
            for msg in parse_paxlst(d).messages:
                if msg.manifest is not None:
                    validate_manifest(msg.manifest)

    stages = {"split": (split, data), "tokenise": (tok, data)}
    try:
        from pydifact.parser import Parser
    except ImportError:
        Parser = None
    if Parser is not None and sample:

        def pydifact() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for d in sample:
                    for _ in Parser().parse(d.decode()):
                        pass

        stages["pydifact"] = (pydifact, sample)
    stages["parse"] = (parse, data)
    stages["parse+validate"] = (parse_validate, data)
    return stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interchanges", type=int, default=50, help="interchanges to parse per round (default 50)")
    parser.add_argument("--passengers", type=int, default=300, help="passengers per manifest (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per stage; best is reported (default 5)")
    parser.add_argument(
        "--pydifact", type=int, default=5, help="interchanges for the pydifact reference (default 5; 0 skips it)"
    )
    args = parser.parse_args()

    pinned = _pin_one_core()
    data, travellers = _interchanges(args.interchanges, args.passengers)
    per_interchange = travellers / len(data)
    sample = data[: args.pydifact]
    accepted = sum(1 for d in data for m in parse_paxlst(d).messages if m.manifest is not None)
    assert accepted == len(data), "a benchmark interchange was rejected"
    print(f"{len(data)} interchanges, {travellers} travellers, {sum(map(len, data)) / 1e6:.1f} MB; {pinned}")

    stages = _stages(data, sample)
    seconds: dict[str, list[float]] = {name: [] for name in stages}
    for run, _ in stages.values():
        run()  # warm-up: caches (time zones, airport table), allocator
    for _ in range(args.rounds):
        for name, (run, _) in stages.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)

    rates = {}
    for name, (_, inputs) in stages.items():
        count = per_interchange * len(inputs)
        rates[name] = {
            "best": count / min(seconds[name]),
            "median": count / statistics.median(seconds[name]),
        }
    baseline = rates["split"]["best"]
    report = {
        "benchmark": "paxlst_parse",
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "core": pinned,
        },
        "interchanges": len(data),
        "passengers_per_manifest": args.passengers,
        "travellers": travellers,
        "bytes": sum(map(len, data)),
        "rounds": args.rounds,
        "seconds": seconds,
        "travellers_per_second": rates,
        "ratio_to_split_baseline": {k: v["best"] / baseline for k, v in rates.items()},
        "target_travellers_per_second": TARGET,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"paxlst_parse-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2))
    print("\n| stage | travellers/s (best) | median | ratio to split |\n|---|---|---|---|")
    for name, rate in rates.items():
        ratio = report["ratio_to_split_baseline"][name]
        print(f"| {name} | {rate['best']:,.0f} | {rate['median']:,.0f} | {ratio:.4f} |")
    verdict = "meets" if rates["parse+validate"]["best"] >= TARGET else "misses"
    print(f"\nparse+validate {verdict} the target of {TARGET:,} travellers/s per core")
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
