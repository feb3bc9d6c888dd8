"""python -m benchmarks.quality --report: the screening quality report (benchmarks/quality/report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.quality import report, sources
from benchmarks.quality.split import HELD_OUT, PARTS, TUNING
from services import config


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def _sources(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in sources.ALL_SOURCES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown sources {unknown}; known: {', '.join(sources.ALL_SOURCES)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=(
            "Screening quality on generated and real data: recall per date and name class at the alert and review "
            "bands beside a naive matcher, precision, false alerts per 10,000 innocents, and the headline targets, "
            "on a tuning and a held-out part (generated sets: different seeds; real data: a fixed hash split)."
        ),
        epilog=(
            "Sources: generated (benchmarks/quality/generator.py), un_sanctions (un_untreated.csv, un_treated.csv, "
            "negatives_global.csv), name_bench (name_bench_cases.csv), aliases (aliases.csv), all in "
            "benchmarks/quality/data; a source whose files are absent is skipped with a note. The printed report "
            "quotes no name or date of the data (only --misses does)."
        ),
    )
    p.add_argument("--report", action="store_true", help="run the report (without it: print this help)")
    p.add_argument(
        "--sources",
        type=_sources,
        metavar="LIST",
        default=sources.ALL_SOURCES,
        help=f"comma-separated sources to measure (default all: {','.join(sources.ALL_SOURCES)})",
    )
    p.add_argument("--part", choices=(*PARTS, "both"), default="both", help="which part to report (default both)")
    seeds = report.SEEDS
    p.add_argument(
        "--seeds-tuning",
        type=_ints,
        metavar="SEEDS",
        default=seeds[TUNING],
        help=f"generated sets of the tuning part (default {','.join(map(str, seeds[TUNING]))})",
    )
    p.add_argument(
        "--seeds-held-out",
        type=_ints,
        metavar="SEEDS",
        default=seeds[HELD_OUT],
        help=f"generated sets of the held-out part (default {','.join(map(str, seeds[HELD_OUT]))}); never tune on them",
    )
    sizes = report.DEFAULT_SIZES
    p.add_argument(
        "--innocents",
        type=int,
        default=sizes["innocents"],
        help="innocent travellers per generated set (default %(default)s)",
    )
    p.add_argument(
        "--entries-per-variant",
        type=int,
        default=sizes["per_variant"],
        help="listed travellers (each with its entry) per generator variant type (default %(default)s)",
    )
    p.add_argument(
        "--background",
        type=int,
        default=sizes["background"],
        help="entries per generated set that nobody travels as (default %(default)s)",
    )
    p.add_argument(
        "--decoys", type=int, default=sizes["decoys"], help="decoy travellers of each decoy type (default %(default)s)"
    )
    p.add_argument(
        "--alert",
        type=float,
        default=config.DEFAULT_SCREENING_ALERT,
        help="alert band (default services.config.DEFAULT_SCREENING_ALERT, %(default)s)",
    )
    p.add_argument(
        "--review",
        type=float,
        default=config.DEFAULT_SCREENING_REVIEW,
        help="review band (default services.config.DEFAULT_SCREENING_REVIEW, %(default)s)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument(
        "--misses",
        type=int,
        default=0,
        metavar="N",
        help="print up to N missed pairs of the tuning part with names and dates (developers only: not for notes)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=sources.DATA,
        metavar="DIR",
        help="directory of the data files (default %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.report:
        p.print_help()
        return 0
    if not 0 < args.review <= args.alert <= 1:
        p.error("bands must satisfy 0 < review <= alert <= 1")
    options = report.Options(
        source_names=args.sources,
        parts=PARTS if args.part == "both" else (args.part,),
        seeds={TUNING: args.seeds_tuning, HELD_OUT: args.seeds_held_out},
        per_variant=args.entries_per_variant,
        background=args.background,
        decoys=args.decoys,
        innocents=args.innocents,
        alert=args.alert,
        review=args.review,
        misses=args.misses,
        data=args.data,
    )
    result = report.run(options)
    if args.json:
        report.write_json(result, args.json)
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
