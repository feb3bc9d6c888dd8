"""The screening quality report: the matcher on generated and real data, tuning and held-out parts, the naive
baseline beside it, and the headline targets of issue #10 checked.

Screening sets (sources.ScreeningSet) are screened once at the review band (WatchlistStore.matches); both
bands are computed from the scores. Per part: recall per date class and name class (classes.py) at the alert
band, at the review band and for the naive matcher (naive.py); precision at each band (true matches over
all matches at or above it: a match to a wrong entry, or of a traveller on no list, is false); false alerts
per 10,000 innocent travellers (an innocent with any match at or above the band). Generated sets: every figure
is the mean over the seeds of the part (tuning and held-out seeds differ), with a line per seed.

Pair sets (sources.PairSet) are scored on names alone (matching's name score; the naive score is
token_sort_ratio / 100): the threshold with the best F1 on the tuning part is applied to the held-out part.

The report quotes no name or date of the data, only counts and rates (it goes into public notes);
--misses prints missed pairs of the tuning part for developers, never of the held-out part.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.quality import classes, naive, sources
from benchmarks.quality.split import HELD_OUT, HELD_OUT_PERCENT, PARTS, TUNING
from services import config
from services.profiler import matching
from services.profiler.watchlist import WatchlistStore
from services.wire import delivery_pb2

SEEDS = {TUNING: (11, 12, 13, 14, 15), HELD_OUT: (101, 102, 103, 104, 105)}
# Generated set sizes of a full run (per seed: 8,400 listed travellers with the generator's 21 variant types,
# 18,400 entries, 112,400 travellers): 5 + 5 seeds take about 2 minutes on 2 cores (measured: 114 s, 11-14 s a
# seed; the naive matcher about 1 s of it). The report prints its own timing.
DEFAULT_SIZES = {"per_variant": 400, "background": 10_000, "decoys": 2_000, "innocents": 100_000}

# Headline targets (issue #10).
SAME_DATE_RECALL = 0.99
NEAR_DATE_RECALL = 0.95
FALSE_ALERTS_PER_10K = 1.0
PAIR_F1 = 0.80

_THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.01), 2)


@dataclass(frozen=True)
class Options:
    source_names: tuple[str, ...] = sources.ALL_SOURCES
    parts: tuple[str, ...] = PARTS
    seeds: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(SEEDS))
    per_variant: int = DEFAULT_SIZES["per_variant"]
    background: int = DEFAULT_SIZES["background"]
    decoys: int = DEFAULT_SIZES["decoys"]
    innocents: int = DEFAULT_SIZES["innocents"]
    alert: float = config.DEFAULT_SCREENING_ALERT
    review: float = config.DEFAULT_SCREENING_REVIEW
    misses: int = 0
    data: Path = sources.DATA


@dataclass
class Target:
    name: str
    source: str
    part: str
    passed: bool
    value: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.source:<13}{self.part:<10}{self.name}: {self.value}"


# -- screening sets -----------------------------------------------------------------------------------------


@dataclass
class Screened:
    """A screening set after screening: its travellers, the matches (at or above the review band), the naive
    matcher's matches, and one row per listed traveller with its classes and how its true entry fared."""

    travellers: pl.DataFrame
    matches: pl.DataFrame  # t, entry_id, score
    naive: pl.DataFrame  # t, entry_id, naive
    truths: pl.DataFrame  # t, part, kind, truth, t_*/e_* names and dates, date_class, ..., score, naive_found
    entries: int
    store: WatchlistStore
    seconds: float


def screen(screening: sources.ScreeningSet, review: float) -> Screened:
    started = time.perf_counter()
    store = WatchlistStore()
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=screening.entries))
    travellers = screening.travellers
    matches = store.matches(travellers, None, threshold=review).select("traveller_index", "entry_id", "score")
    baseline = naive.naive_matches(
        travellers.select("traveller_index", "surname_key", "given_key", "dob"), store.entries
    )
    entry_side = store.entries.select(
        "entry_id",
        e_surname="surname_key",
        e_given="given_key",
        e_dob="dob",
        e_document=matching.document_canonical_expr(pl.col("document_number")),
    ).with_columns(e_comma=pl.col("entry_id").is_in(list(screening.entry_commas)))
    listed = (
        travellers.filter(pl.col("truth").is_not_null())
        .select(
            "traveller_index",
            "part",
            "kind",
            "truth",
            t_surname="surname_key",
            t_given="given_key",
            t_dob="dob",
            t_comma="comma",
            t_documents=pl.col("documents").list.eval(matching.document_canonical_expr(pl.element())),
        )
        .join(entry_side, left_on="truth", right_on="entry_id", how="left")
        .with_columns(pl.col(c).fill_null("") for c in ("e_surname", "e_given", "e_dob", "e_document"))
        .with_columns(pl.col("e_comma").fill_null(False), pl.col("t_comma").fill_null(False))
        .with_columns(
            # The entry's document number among the traveller's (OCR-normalised): found by the document.
            document=(pl.col("e_document").str.len_chars() >= 5)
            & pl.col("t_documents").list.contains(pl.col("e_document")).fill_null(False)
        )
    )
    classified = classes.classify_frame(listed)
    own = matches.group_by("traveller_index", "entry_id").agg(pl.col("score").max()).rename({"entry_id": "truth"})
    found = baseline.select("traveller_index", truth="entry_id", naive_found=pl.lit(True)).unique(
        ["traveller_index", "truth"]
    )
    truths = (
        classified.join(own, on=["traveller_index", "truth"], how="left")
        .join(found, on=["traveller_index", "truth"], how="left")
        .with_columns(pl.col("naive_found").fill_null(False))
    )
    return Screened(travellers, matches, baseline, truths, len(screening.entries), store, time.perf_counter() - started)


def _recall_row(frame: pl.DataFrame, alert: float, review: float) -> dict[str, Any]:
    n = frame.height
    if not n:
        return {"travellers": 0, "with_document": 0, "recall_alert": None, "recall_review": None, "naive_recall": None}
    score = frame["score"].fill_null(-1.0)
    return {
        "travellers": n,
        "with_document": int(frame["document"].sum()),
        "recall_alert": float((score >= alert).sum()) / n,
        "recall_review": float((score >= review).sum()) / n,
        "naive_recall": float(frame["naive_found"].sum()) / n,
    }


def screening_metrics(screened: Screened, part: str, alert: float, review: float) -> dict[str, Any]:
    """Every figure of one part of a screened set (see the module docstring)."""
    travellers = screened.travellers.filter(pl.col("part") == part)
    truths = screened.truths.filter(pl.col("part") == part)
    labels = travellers.select("traveller_index", "kind", "truth")
    ours = screened.matches.join(labels, on="traveller_index")
    baseline = screened.naive.join(labels, on="traveller_index")
    innocents = int((travellers["kind"] == sources.INNOCENT).sum())

    def row(frame: pl.DataFrame) -> dict[str, Any]:
        return _recall_row(frame, alert, review)

    by_class = {f"date:{c}": row(truths.filter(pl.col("date_class") == c)) for c in classes.DATE_CLASSES}
    exploded = truths.explode("name_classes")
    by_class |= {f"name:{c}": row(exploded.filter(pl.col("name_classes") == c)) for c in classes.NAME_CLASSES}
    kinds = sorted(set(truths["kind"].drop_nulls().to_list()))

    def banded(frame: pl.DataFrame, column: str, threshold: float) -> dict[str, Any]:
        hits = frame.filter(pl.col(column) >= threshold)
        true = int((hits["entry_id"] == hits["truth"]).fill_null(False).sum())
        alerted = hits.filter(pl.col("kind") == sources.INNOCENT)["traveller_index"].n_unique()
        return {
            "matches": hits.height,
            "false_matches": hits.height - true,
            "precision": true / hits.height if hits.height else None,
            "innocents_alerted": alerted,
            "false_alerts_per_10k": 10_000 * alerted / innocents if innocents else None,
        }

    return {
        "entries": screened.entries,
        "travellers": travellers.height,
        "listed": truths.height,
        "innocents": innocents,
        "other_unlisted": travellers.height - truths.height - innocents,
        "classes": by_class,
        "summary": {
            "all listed": row(truths),
            "same date": row(truths.filter(pl.col("date_class") == "same")),
            "same or near-miss date": row(truths.filter(pl.col("near"))),
        },
        "kinds": {k: row(truths.filter(pl.col("kind") == k)) for k in kinds},
        "bands": {
            "alert": banded(ours, "score", alert),
            "review": banded(ours, "score", review),
            "naive": banded(baseline, "naive", 0.0),
        },
    }


def mean_of(values: list[Any]) -> Any:
    """Element-wise mean of equally shaped metric dicts (None skipped; all None stays None)."""
    first = values[0]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: mean_of([v[k] for v in values if k in v]) for k in keys}
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None if all(v is None for v in values) else first
    return sum(numbers) / len(numbers)


# -- pair sets ----------------------------------------------------------------------------------------------


def score_pair_set(pairs: sources.PairSet) -> pl.DataFrame:
    """The pairs with ours (matching's name score, no dates, no documents) and naive scores, and the name
    classes of every pair."""
    frame = pairs.pairs
    if frame.is_empty():
        return frame.with_columns(ours=pl.lit(None, pl.Float64), naive=pl.lit(None, pl.Float64))
    scored = matching.score_pairs(
        frame.select(
            t_surname="t_surname",
            t_given="t_given",
            t_dob=pl.lit(""),
            t_documents=pl.lit([], pl.List(pl.String)),
            e_surname="e_surname",
            e_given="e_given",
            e_dob=pl.lit(""),
            e_document=pl.lit(""),
        )
    )
    full = lambda s, g: (pl.col(s) + " " + pl.col(g)).str.strip_chars()  # noqa: E731
    names = frame.select(t=full("t_surname", "t_given"), e=full("e_surname", "e_given"))
    classified = classes.classify_frame(frame.with_columns(t_dob=pl.lit(""), e_dob=pl.lit(""))).select("name_classes")
    return pl.concat(
        [
            frame,
            scored.select(ours="name_score"),
            pl.DataFrame({"naive": naive.pair_scores(names["t"].to_list(), names["e"].to_list())}),
            classified,
        ],
        how="horizontal",
    )


def _prf(frame: pl.DataFrame, column: str, threshold: float) -> dict[str, Any]:
    predicted = frame[column] >= threshold
    actual = frame["is_match"]
    tp = int((predicted & actual).sum())
    fp = int((predicted & ~actual).sum())
    fn = int((~predicted & actual).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"pairs": frame.height, "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def best_threshold(frame: pl.DataFrame, column: str) -> float:
    """The threshold of the 0.01 grid with the best F1 on these pairs (the highest of equals)."""
    best, chosen = -1.0, 1.0
    for threshold in _THRESHOLDS:
        f1 = _prf(frame, column, float(threshold))["f1"] or 0.0
        if f1 >= best:
            best, chosen = f1, float(threshold)
    return chosen


def pair_metrics(scored: pl.DataFrame) -> dict[str, Any]:
    """Per scorer: the tuning part's best-F1 threshold and P/R/F1 of each part there; recall per name class
    of the matching pairs."""
    tuning = scored.filter(pl.col("part") == TUNING)
    result: dict[str, Any] = {
        "split": {
            part: {
                "pairs": scored.filter(pl.col("part") == part).height,
                "matching": int(scored.filter(pl.col("part") == part)["is_match"].sum()),
                "clusters": scored.filter(pl.col("part") == part)["cluster"].n_unique(),
            }
            for part in PARTS
        }
    }
    for column in ("ours", "naive"):
        threshold = best_threshold(tuning, column) if tuning.height else None
        entry: dict[str, Any] = {"threshold": threshold}
        for part in PARTS:
            rows = scored.filter(pl.col("part") == part)
            if threshold is None or rows.is_empty():
                entry[part] = None
                continue
            figures = _prf(rows, column, threshold)
            positives = rows.filter("is_match").explode("name_classes")
            figures["classes"] = {
                c: {
                    "pairs": (sel := positives.filter(pl.col("name_classes") == c)).height,
                    "recall": float((sel[column] >= threshold).sum()) / sel.height if sel.height else None,
                }
                for c in classes.NAME_CLASSES
            }
            entry[part] = figures
        result[column] = entry
    return result


# -- formatting ---------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 3, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _n(value: float | None, width: int = 11) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width},.0f}" if float(value).is_integer() or value >= 100 else f"{value:>{width},.1f}"


def format_screening(metrics: dict[str, Any], alert: float, review: float) -> list[str]:
    """The class table, the bands and the precision / false alert lines of one part (a seed mean or not)."""
    header = f"{'class':<28}{'travellers':>11}{'document':>9}{'alert':>8}{'review':>8}{'naive':>8}"
    lines = [
        f"recall at the alert band ({alert:.2f}), the review band ({review:.2f}) and of the naive matcher; document: "
        "travellers carrying the entry's document number (OCR-normalised), which alone can find them",
        header,
    ]

    def table(rows: dict[str, dict[str, Any]], prefix: str = "") -> None:
        for name, row in rows.items():
            if not row["travellers"]:
                continue
            lines.append(
                f"{prefix + name:<28}{_n(row['travellers'])}{_n(row['with_document'], 9)}{_f(row['recall_alert'])}"
                f"{_f(row['recall_review'])}"
                f"{_f(row['naive_recall'])}"
            )

    table({k.replace(":", " "): v for k, v in metrics["classes"].items() if k.startswith("date:")})
    table({k.replace(":", " "): v for k, v in metrics["classes"].items() if k.startswith("name:")})
    table(metrics["summary"])
    if len(metrics["kinds"]) > 1:
        lines += ["", "by generator variant type", header]
        table(metrics["kinds"])
    bands = metrics["bands"]
    lines += [
        "",
        f"{'':<28}{'alert':>11}{'review':>11}{'naive':>11}",
        f"{'precision':<28}" + "".join(_f(bands[b]["precision"], 4, 11) for b in ("alert", "review", "naive")),
        f"{'matches':<28}" + "".join(_n(bands[b]["matches"]) for b in ("alert", "review", "naive")),
        f"{'false matches':<28}" + "".join(_n(bands[b]["false_matches"]) for b in ("alert", "review", "naive")),
        f"{'innocents alerted':<28}" + "".join(_n(bands[b]["innocents_alerted"]) for b in ("alert", "review", "naive")),
        f"{'false alerts / 10k innocents':<28}"
        + "".join(_f(bands[b]["false_alerts_per_10k"], 2, 11) for b in ("alert", "review", "naive")),
    ]
    return lines


_SEED_HEADER = (
    f"{'seed':>6}{'listed':>8}{'recall':>8}{'review':>8}{'naive':>8}{'same':>8}{'near':>8}"
    f"{'prec':>8}{'naive':>8}{'FA/10k':>8}{'review':>8}{'naive':>8}{'s':>7}"
)


def format_seed(seed: int | str, metrics: dict[str, Any], seconds: float) -> str:
    summary, bands = metrics["summary"], metrics["bands"]
    return (
        f"{seed:>6}{_n(metrics['listed'], 8)}{_f(summary['all listed']['recall_alert'])}"
        f"{_f(summary['all listed']['recall_review'])}{_f(summary['all listed']['naive_recall'])}"
        f"{_f(summary['same date']['recall_alert'])}{_f(summary['same or near-miss date']['recall_alert'])}"
        f"{_f(bands['alert']['precision'], 4)}{_f(bands['naive']['precision'], 4)}"
        f"{_f(bands['alert']['false_alerts_per_10k'], 2)}{_f(bands['review']['false_alerts_per_10k'], 2)}"
        f"{_f(bands['naive']['false_alerts_per_10k'], 2)}{seconds:>7.1f}"
    )


def format_pairs(metrics: dict[str, Any], parts: tuple[str, ...]) -> list[str]:
    lines = [
        "threshold with the best F1 on the tuning part, applied to each part (name score alone; naive: "
        "token_sort_ratio / 100)",
        f"{'scorer':<8}{'threshold':>10}{'part':>10}{'pairs':>7}{'P':>8}{'R':>8}{'F1':>8}{'TP':>6}{'FP':>6}{'FN':>6}",
    ]
    for column in ("ours", "naive"):
        entry = metrics[column]
        for part in parts:
            figures = entry.get(part)
            if not figures:
                continue
            lines.append(
                f"{column:<8}{_f(entry['threshold'], 2, 10)}{part:>10}{figures['pairs']:>7}"
                f"{_f(figures['precision'])}{_f(figures['recall'])}{_f(figures['f1'])}"
                f"{figures['tp']:>6}{figures['fp']:>6}{figures['fn']:>6}"
            )
    lines += ["", "recall of the matching pairs per name class at those thresholds"]
    lines.append(f"{'class':<20}" + "".join(f"{p + ' pairs':>16}{'ours':>7}{'naive':>7}" for p in parts))
    for c in classes.NAME_CLASSES:
        cells = []
        for part in parts:
            ours = (metrics["ours"].get(part) or {}).get("classes", {}).get(c)
            base = (metrics["naive"].get(part) or {}).get("classes", {}).get(c)
            if not ours:
                cells.append(f"{'-':>16}{'-':>7}{'-':>7}")
                continue
            cells.append(f"{ours['pairs']:>16}{_f(ours['recall'], 3, 7)}{_f(base and base['recall'], 3, 7)}")
        if any(((metrics["ours"].get(p) or {}).get("classes", {}).get(c) or {}).get("pairs") for p in parts):
            lines.append(f"{c:<20}" + "".join(cells))
    return lines


# -- targets ------------------------------------------------------------------------------------------------


def screening_targets(source: str, part: str, metrics: dict[str, Any], generated: bool) -> list[Target]:
    summary = metrics["summary"]
    targets = []
    for name, key, floor in (
        ("recall on same-date people at the alert band", "same date", SAME_DATE_RECALL),
        ("recall on same or near-miss dates at the alert band", "same or near-miss date", NEAR_DATE_RECALL),
    ):
        value = summary[key]["recall_alert"]
        targets.append(
            Target(
                f"{name} >= {floor:.2f}",
                source,
                part,
                value is not None and value >= floor,
                f"{_f(value).strip()} ({_n(summary[key]['travellers'], 0).strip()} travellers)",
            )
        )
    # Against the naive matcher: every hit counts (a review-band hit reaches the member), and the naive
    # matcher's hits carry no band; its false alerts are printed beside ours at that band.
    rows = {k: v for k, v in metrics["classes"].items() if v["travellers"]}
    below = [k for k, v in rows.items() if v["recall_review"] < v["naive_recall"]]
    detail = "; ".join(
        f"{k} {rows[k]['recall_review']:.3f} < {rows[k]['naive_recall']:.3f} ({_n(rows[k]['travellers'], 0).strip()})"
        for k in below
    )
    at_alert = sum(v["recall_alert"] >= v["naive_recall"] for v in rows.values())
    bands = metrics["bands"]
    false_alerts = (
        f"; false alerts /10k: ours {_f(bands['review']['false_alerts_per_10k'], 2).strip()}, "
        f"naive {_f(bands['naive']['false_alerts_per_10k'], 2).strip()}"
        if bands["review"]["false_alerts_per_10k"] is not None
        else ""
    )
    targets.append(
        Target(
            "recall at the review band not below the naive matcher's in any class",
            source,
            part,
            not below,
            f"{len(rows) - len(below)} of {len(rows)} classes ({at_alert} at the alert band)"
            + (f"; below: {detail}" if detail else "")
            + false_alerts,
        )
    )
    if generated:
        value = metrics["bands"]["alert"]["false_alerts_per_10k"]
        targets.append(
            Target(
                f"false alerts per 10,000 innocents at the alert band <= {FALSE_ALERTS_PER_10K:g} (mean over seeds)",
                source,
                part,
                value is not None and value <= FALSE_ALERTS_PER_10K,
                _f(value, 2).strip(),
            )
        )
    return targets


def pair_targets(source: str, metrics: dict[str, Any]) -> list[Target]:
    ours, base = metrics["ours"], metrics["naive"]
    held = ours.get(HELD_OUT)
    if not held:
        return []
    value = held["f1"]
    naive_f1 = (base.get(HELD_OUT) or {}).get("f1")
    return [
        Target(
            f"F1 > {PAIR_F1:.2f} at the tuning part's best-F1 threshold",
            source,
            HELD_OUT,
            value is not None and value > PAIR_F1,
            f"F1 {_f(value).strip()} at {ours['threshold']:.2f} (P {_f(held['precision']).strip()}, "
            f"R {_f(held['recall']).strip()}); naive F1 {_f(naive_f1).strip()} at {base['threshold']:.2f}",
        )
    ]


# -- misses (developers only: the tuning part) ---------------------------------------------------------------


def screening_misses(screened: Screened, alert: float, review: float, limit: int) -> list[str]:
    """Listed travellers of the tuning part not found at the alert band, with names, dates, classes and the
    pair's score (scored alone when screening did not return it: blocking missed it or it is below review)."""
    missed = screened.truths.filter((pl.col("part") == TUNING) & (pl.col("score").fill_null(-1.0) < alert)).head(limit)
    lines = []
    for row in missed.iter_rows(named=True):
        score = row["score"]
        if score is None:
            pair = matching.score_pair(
                matching.Person(row["t_surname"], row["t_given"], row["t_dob"]),
                matching.Person(row["e_surname"], row["e_given"], row["e_dob"]),
                screened.store.index.rarity,
            )
            shown = f"{pair.score:.2f} ({'not a candidate' if pair.score >= review else 'below the review band'})"
        else:
            shown = f"{score:.2f}"
        lines.append(
            f"  {row['kind'] or '-'}: traveller {row['t_surname']} / {row['t_given']} {row['t_dob'] or '-'}"
            f"  entry {row['e_surname']} / {row['e_given']} {row['e_dob'] or '-'}  date {row['date_class']}"
            f"  names {','.join(row['name_classes'])}  score {shown}"
            f"  naive {'found' if row['naive_found'] else 'missed'}"
        )
    return lines


def pair_misses(scored: pl.DataFrame, metrics: dict[str, Any], limit: int) -> list[str]:
    threshold = metrics["ours"]["threshold"]
    if threshold is None:
        return []
    tuning = scored.filter(pl.col("part") == TUNING)
    wrong = tuning.filter(pl.col("is_match") != (pl.col("ours") >= threshold)).head(limit)
    return [
        f"  {'missed' if row['is_match'] else 'false'}: {row['t_surname']} / {row['t_given']}  vs  "
        f"{row['e_surname']} / {row['e_given']}  ours {row['ours']:.2f}  naive {row['naive']:.2f}"
        f"  names {','.join(row['name_classes'])}"
        for row in wrong.iter_rows(named=True)
    ]


# -- the report ---------------------------------------------------------------------------------------------


def _section(title: str) -> list[str]:
    return ["", title, "=" * len(title)]


def run(options: Options, out: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the report, printing it as each source finishes; returns everything as a JSON-ready dict."""

    def emit(lines: Iterable[str]) -> None:
        for line in lines:
            out(line)
        if out is print:
            sys.stdout.flush()

    alert, review = options.alert, options.review
    result: dict[str, Any] = {
        "matcher": matching.MATCHER_VERSION,
        "alert": alert,
        "review": review,
        "naive": {"token_sort_ratio": naive.NAIVE_RATIO, "birth_years": naive.NAIVE_YEARS},
        "held_out_percent": HELD_OUT_PERCENT,
        "parts": list(options.parts),
        "sources": {},
        "targets": [],
    }
    targets: list[Target] = []
    misses: list[str] = []
    emit(
        [
            f"Screening quality: matcher {matching.MATCHER_VERSION}, alert band {alert:.2f}, review band {review:.2f}; "
            f"naive baseline: token_sort_ratio >= {naive.NAIVE_RATIO} and birth years within "
            f"{naive.NAIVE_YEARS} (a missing year passes)",
            f"parts: {', '.join(options.parts)}; real data split by a fixed hash ({HELD_OUT_PERCENT} % held out), "
            "generated sets by seed",
        ]
    )
    started_all = time.perf_counter()

    if sources.GENERATED in options.source_names:
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "sizes": {
                "per_variant": options.per_variant,
                "background": options.background,
                "decoys": options.decoys,
                "innocents": options.innocents,
            },
            "split": {part: list(options.seeds[part]) for part in PARTS},
            "parts": {},
        }
        for part in options.parts:
            seeds = options.seeds[part]
            per_seed = []
            for seed in seeds:
                seed_started = time.perf_counter()
                screening = sources.generated(
                    seed, part, options.per_variant, options.background, options.decoys, options.innocents
                )
                screened = screen(screening, review)
                metrics = screening_metrics(screened, part, alert, review)
                if options.misses and part == TUNING and len(misses) < options.misses:
                    missed = screening_misses(screened, alert, review, options.misses - len(misses))
                    misses += [f"  generated seed {seed}"] + missed if missed else []
                per_seed.append({"seed": seed, "seconds": time.perf_counter() - seed_started, "metrics": metrics})
            mean = mean_of([s["metrics"] for s in per_seed])
            entry["parts"][part] = {"seeds": per_seed, "mean": mean}
            lines = _section(f"generated, {part} part: seeds {','.join(map(str, seeds))}, mean over the seeds")
            lines.append(
                f"per seed: {_n(mean['entries'], 0).strip()} entries, {_n(mean['travellers'], 0).strip()} travellers "
                f"({_n(mean['listed'], 0).strip()} listed, {_n(mean['innocents'], 0).strip()} innocents, "
                f"{_n(mean['other_unlisted'], 0).strip()} decoys)"
            )
            lines += format_screening(mean, alert, review)
            lines += [
                "",
                "per seed (recall: all listed at the alert band; same / near: same-date and same-or-near-"
                "miss-date recall at the alert band; prec: precision at the alert band; FA/10k: false alerts "
                "per 10,000 innocents)",
                _SEED_HEADER,
            ]
            lines += [format_seed(s["seed"], s["metrics"], s["seconds"]) for s in per_seed]
            lines.append(format_seed("mean", mean, sum(s["seconds"] for s in per_seed) / len(per_seed)))
            emit(lines)
            targets += screening_targets(sources.GENERATED, part, mean, generated=True)
        entry["seconds"] = time.perf_counter() - started
        emit([f"generated: {entry['seconds']:.1f} s"])
        result["sources"][sources.GENERATED] = entry

    if sources.UN_SANCTIONS in options.source_names:
        started = time.perf_counter()
        try:
            screening = sources.un_sanctions(options.data)
        except FileNotFoundError as missing:
            emit(_section("un_sanctions") + [f"skipped: {Path(missing.filename).name} is not in {options.data}"])
            screening = None
        if screening is not None:
            screened = screen(screening, review)
            travellers = screening.travellers
            split = {
                part: {
                    "listed": int(((travellers["part"] == part) & travellers["truth"].is_not_null()).sum()),
                    "innocents": int(((travellers["part"] == part) & (travellers["kind"] == sources.INNOCENT)).sum()),
                }
                for part in PARTS
            }
            entry = {"entries": len(screening.entries), "split": split, "notes": list(screening.notes), "parts": {}}
            lines = _section("un_sanctions: UN consolidated list people, corrupted copies as travellers")
            lines.append(
                f"list {len(screening.entries):,} entries; split: "
                + "; ".join(f"{p} {split[p]['listed']:,} listed, {split[p]['innocents']:,} innocents" for p in PARTS)
                + "".join(f"; {note}" for note in screening.notes)
            )
            for part in options.parts:
                metrics = screening_metrics(screened, part, alert, review)
                entry["parts"][part] = metrics
                lines += ["", f"-- {part} part --"] + format_screening(metrics, alert, review)
                targets += screening_targets(sources.UN_SANCTIONS, part, metrics, generated=False)
            if options.misses and len(misses) < options.misses:
                missed = screening_misses(screened, alert, review, options.misses - len(misses))
                misses += ["  un_sanctions"] + missed if missed else []
            entry["seconds"] = time.perf_counter() - started
            lines.append(f"un_sanctions: {entry['seconds']:.1f} s")
            emit(lines)
            result["sources"][sources.UN_SANCTIONS] = entry

    for source, load in ((sources.NAME_BENCH_SOURCE, sources.name_bench), (sources.ALIASES_SOURCE, sources.aliases)):
        if source not in options.source_names:
            continue
        started = time.perf_counter()
        try:
            pairs = load(options.data)
        except FileNotFoundError as missing:
            pairs, reason = None, f"{Path(missing.filename).name} is not in {options.data}"
        else:
            reason = f"{sources.ALIASES} is not in {options.data}"
        if pairs is None:
            emit(_section(source) + [f"skipped: {reason}"])
            continue
        scored = score_pair_set(pairs)
        metrics = pair_metrics(scored)
        metrics["seconds"] = time.perf_counter() - started
        split = metrics["split"]
        lines = _section(f"{source}: labelled name pairs (names only)")
        lines.append(
            "split by cluster: "
            + "; ".join(
                f"{p} {split[p]['pairs']:,} pairs ({split[p]['matching']:,} matching) in {split[p]['clusters']:,} "
                "clusters"
                for p in PARTS
            )
        )
        lines += format_pairs(metrics, options.parts)
        lines.append(f"{source}: {metrics['seconds']:.1f} s")
        emit(lines)
        if HELD_OUT in options.parts:
            targets += pair_targets(source, metrics)
        if options.misses and len(misses) < options.misses:
            missed = pair_misses(scored, metrics, options.misses - len(misses))
            misses += [f"  {source}"] + missed if missed else []
        result["sources"][source] = metrics

    result["targets"] = [t.__dict__ for t in targets]
    result["seconds"] = time.perf_counter() - started_all
    lines = _section("targets") + [t.line() for t in targets]
    lines.append(f"{sum(t.passed for t in targets)} of {len(targets)} targets met; report {result['seconds']:.1f} s")
    emit(lines)
    if misses:
        emit(
            _section("missed pairs of the tuning part (developers only: names and dates, not for publication)") + misses
        )
    return result


def write_json(result: dict[str, Any], path: Path) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(result), indent=1) + "\n")
