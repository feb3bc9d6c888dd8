"""Screening speed: travellers scored per second by one profiler process against watchlists of growing size.

For each list size (default 1k, 10k, 100k, 1M synthetic entries) one process times score_batch on the same
batch of demo manifests (synthetic.traffic.DemoTraffic, 300 passengers each, booking data on 85 % of travellers
as benchmarks.model adds it), best of --repeat rounds, in the configuration a live profiler runs:

    rules      the hub's rules plus --rules member rules (default 50), generated from the starter templates
               (`apihub rules template`) for seven members, each template varied (thresholds, extra
               conditions on carriers, ports, ages, ...), compiled by the real rule parser and loaded through
               a RuleStore, so each runs only on flights in its owner's jurisdiction, as in production
    model      the risk model, trained once per run on --model-rows rows of synthetic history into a temporary
               directory, with per-member review thresholds (MODEL_THRESHOLDS); --no-model leaves it out

and reports, per size:

    baselines  the exact join (benchmarks/exact_join.py) on the batch's traveller frame, and score_batch
               with an empty store (frame, rules, model: what every batch pays whatever the list)
    fuzzy      WatchlistStore.matches alone on the same frame, and the whole score_batch with the list loaded
    stages     where score_batch's time goes, in microseconds per traveller, from its fastest round
               (scoring.STAGES: frame, watchlist, features, rules, model, hits)

plus the index build time (once per list change). The list is screened at the lowest default band, as a live
profiler with default bands does (it screens at the lowest review band of all members, and sorts alerts from
reviews afterwards): `store.matches(frame, threshold=REVIEW_THRESHOLD)` and score_batch with
`watchlist_threshold=REVIEW_THRESHOLD` (services.config.DEFAULT_SCREENING_REVIEW; the alert band,
MATCH_THRESHOLD, is higher and keeps fewer pairs). Entry names are synthetic: Pacific, Asian, European and
Arabic-like syllable compositions drawn with Zipf frequencies (few common names, a long tail), so blocks
grow with the list like real name distributions do; 2 % of the travellers are planted variants of entries
(typos, swapped fields, a year off, OCR-confused document numbers) so the matching path is exercised.

The targets (issue): at least TARGET_TRAVELLERS_PER_S travellers/s against 100k entries, and less than
TARGET_SLOWDOWN times slower at 1M entries than at 10k; both are printed and recorded when those sizes run.

--baseline REF also screens, for each size, the same list and the same traveller frame with the matcher of git
ref REF (e.g. the commit before a matcher rewrite), in the same run: a detached worktree of REF in a temporary
directory, its own WatchlistStore in a subprocess (benchmarks.screening_baseline), rounds interleaved with the
working tree's (current, baseline, current, baseline, ..., best of --repeat each), so machine noise hits both.
The baseline screens at its own default threshold (a matcher without a review band screens at its alert band,
so the two sides do not keep the same pairs: both thresholds are printed and recorded). Recorded per size: the
baseline's index build, travellers/s and matches, and the ratio current/baseline of the matcher alone
("fuzzy"); and the checks of a rewrite: ratio at BASELINE_RATIO_ENTRIES >= BASELINE_RATIO_TARGET, and time per
traveller of the current matcher alone at SLOWDOWN_SIZES[1] over SLOWDOWN_SIZES[0] < TARGET_SLOWDOWN.

    .venv/bin/python -m benchmarks.screening [--sizes 1000,10000,100000,1000000] [--manifests 50]
        [--passengers 300] [--repeat 3] [--seed 5] [--rules 50] [--no-model] [--model-rows 20000]
        [--baseline REF] [--markdown] [--out FILE.json]

Writes benchmarks/results/screening-<UTC timestamp>.json (git-ignored) unless --out names another file.
Nothing here is asserted; `apihub bench --full` runs the same curve as a section of its report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from benchmarks import screening_baseline
from benchmarks.exact_join import exact_matches
from benchmarks.model import add_bookings, best_of
from services import codec
from services.directory import Directory, load_directory
from services.profiler.frames import read_travellers
from services.profiler.model import ModelArtifact
from services.profiler.scoring import STAGES, score_batch
from services.profiler.watchlist import MATCH_THRESHOLD, REVIEW_THRESHOLD, WatchlistStore
from services.rules.language import parse_ruleset, starter_text
from services.rules.rule import Rule
from services.rules.store import RuleStore
from services.wire import delivery_pb2, hit_pb2, manifest_pb2
from synthetic.history import train_on_history
from synthetic.traffic import DemoTraffic

RESULTS = Path(__file__).parent / "results"

TARGET_TRAVELLERS_PER_S = 50_000  # at TARGET_ENTRIES
TARGET_ENTRIES = 100_000
TARGET_SLOWDOWN = 2.0  # time at SLOWDOWN_SIZES[1] over time at SLOWDOWN_SIZES[0], strictly below
SLOWDOWN_SIZES = (10_000, 1_000_000)
# --baseline: the matcher alone at BASELINE_RATIO_ENTRIES at least this share of the baseline's speed.
BASELINE_RATIO_TARGET = 0.7
BASELINE_RATIO_ENTRIES = 100_000

_SYLLABLES = {
    "pacific": "ta tu fi fa le lo ma mo na ni pa pu sa se si to va vi ka ke ho ha la lu ngo nga fe i a o u",
    "asian": "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin luo gao ng tran pham",
    "european": "schm mull bern hof lind kow nov ross fer mart and han pet iv dub er mann son sen ski ova ini",
    "arabic": "al abd mo ha sa kha na ra ta ja med san lid mir hid sir rim lil him ud ib ra yu suf",
}


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """size distinct synthetic name parts, 2-4 syllables of one origin each."""
    words: set[str] = set()
    origins = [text.split() for text in _SYLLABLES.values()]
    while len(words) < size:
        syllables = rng.choice(origins)
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).upper())
    return sorted(words)


def _zipf(np_rng: np.random.Generator, vocabulary: list[str], count: int) -> list[str]:
    ranks = np.arange(1, len(vocabulary) + 1)
    weights = 1.0 / ranks
    picks = np_rng.choice(len(vocabulary), size=count, p=weights / weights.sum())
    return [vocabulary[i] for i in picks]


def make_watchlist(size: int, seed: int) -> list[delivery_pb2.WatchlistEntry]:
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    surnames = _zipf(np_rng, _vocabulary(rng, 60_000), size)
    firsts = _zipf(np_rng, _vocabulary(rng, 8_000), size)
    seconds = _zipf(np_rng, _vocabulary(rng, 8_000), size)
    years = np_rng.integers(1945, 2008, size)
    months = np_rng.integers(1, 13, size)
    days = np_rng.integers(1, 29, size)
    numbers = np_rng.integers(10_000_000, 99_999_999, size)
    entries = []
    for i in range(size):
        given = firsts[i] if i % 3 == 0 else f"{firsts[i]} {seconds[i]}"
        entries.append(
            delivery_pb2.WatchlistEntry(
                entry_id=f"B-{i:07d}",
                surname=surnames[i],
                given_names=given,
                date_of_birth=manifest_pb2.PartialDate(year=int(years[i]), month=int(months[i]), day=int(days[i])),
                document_number=f"BX{numbers[i]}",
                category="criminal_deportee",
            )
        )
    return entries


def plant(manifests: list[manifest_pb2.Manifest], entries: list[delivery_pb2.WatchlistEntry], seed: int) -> int:
    """Turn 2 % of the travellers into variants of random entries; returns how many."""
    rng = random.Random(seed)
    planted = 0
    for manifest in manifests:
        for traveller in manifest.travellers:
            if rng.random() >= 0.02:
                continue
            entry = rng.choice(entries)
            kind = planted % 4
            traveller.surname, traveller.given_names = entry.surname, entry.given_names
            traveller.date_of_birth.CopyFrom(entry.date_of_birth)
            if kind == 0:
                traveller.surname = entry.surname[:2] + entry.surname[3:]  # a letter dropped
            elif kind == 1:
                traveller.surname, traveller.given_names = entry.given_names, entry.surname
            elif kind == 2:
                traveller.date_of_birth.year += 1
            else:
                del traveller.documents[:]
                traveller.documents.add(number=entry.document_number.replace("0", "O"))
                traveller.surname = "UNRELATED"
            planted += 1
    return planted


# -- member rules and model thresholds -------------------------------------------------------------------------

# Members whose rules are generated: each has jurisdiction over some of the demo routes (synthetic.traffic.ROUTES).
RULE_OWNERS = ("FJI", "AUS", "TON", "WSM", "NZL", "PNG", "KIR")
# Per-member review thresholds of the model; members not named get model.DEFAULT_THRESHOLD.
MODEL_THRESHOLDS = {"FJI": 0.25, "AUS": 0.40, "TON": 0.20, "WSM": 0.30, "NZL": 0.50, "PNG": 0.35, "KIR": 0.30}
_CARRIERS = ("FJ", "NZ", "PX", "OL", "IE", "NF", "ON", "QF", "VA")
_PORTS = ("NAN", "SYD", "TBU", "APW", "AKL", "RAR", "BNE", "POM", "HIR", "VLI", "NOU", "TRW", "HNL", "INU")

# Conditions a member adds to a template to fit it to its own traffic (rule language of services.rules.language).
_EXTRAS: tuple[Callable[[random.Random], dict], ...] = (
    lambda rng: {"carrier": rng.sample(_CARRIERS, rng.randint(1, 4))},
    lambda rng: {"not": {"carrier": rng.sample(_CARRIERS, rng.randint(1, 2))}},
    lambda rng: {"transit_ports": {"includes_any": rng.sample(_PORTS, rng.randint(1, 3))}},
    lambda rng: {"ports": {"includes_none": rng.sample(_PORTS, rng.randint(1, 2))}},
    lambda rng: {"destination": {"one_of": rng.sample(_PORTS, rng.randint(1, 4))}},
    lambda rng: {"origin": {"none_of": rng.sample(_PORTS, rng.randint(1, 3))}},
    lambda rng: {"age": {"between": sorted(rng.sample(range(0, 90), 2))}},
    lambda rng: {"party_size": {"at_most": rng.randint(1, 4)}},
    lambda rng: {"doc_validity_days": {"at_most": rng.randint(365, 3650)}},
    lambda rng: {"payment_form": {"none_of": ["CC"]}},
    lambda rng: {"in_transit": False},
    lambda rng: {"any": [{"one_way": True}, {"transit_count": {"at_least": rng.randint(1, 2)}}]},
    lambda rng: {"flight_number": {"none_of": [str(rng.randint(1, 999)) for _ in range(2)]}},
)


def _vary(node: object, rng: random.Random) -> object:
    """A template's condition with its thresholds moved (lead times, ages, party sizes, validity windows)."""
    if isinstance(node, list):
        return [_vary(n, rng) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "between" and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out[key] = [value[0], value[1] + rng.randint(0, 5)]
        elif key in ("at_most", "less_than") and isinstance(value, int) and not isinstance(value, bool):
            out[key] = max(1, value + rng.randint(-1, 4))
        elif key in ("at_least", "more_than") and isinstance(value, int) and not isinstance(value, bool):
            out[key] = max(1, value + rng.randint(-1, 2))
        else:
            out[key] = _vary(value, rng)
    return out


def rule_files(count: int = 50, seed: int = 5, owners: Sequence[str] = RULE_OWNERS) -> dict[str, str]:
    """Member rule files (owner -> YAML text), `count` rules in all, dealt to the owners in turn.

    Each rule is a starter template (the disabled one included, enabled) with its thresholds varied, one or
    two extra conditions and its own score; some carry validity dates. No two rules share a condition.
    """
    rng = random.Random(seed)
    templates = yaml.safe_load(starter_text())["rules"]
    files: dict[str, list[dict]] = {owner: [] for owner in owners}
    seen: set[str] = set()
    made = 0
    while made < count:
        owner, template = owners[made % len(owners)], rng.choice(templates)
        extras = [_EXTRAS[k](rng) for k in rng.sample(range(len(_EXTRAS)), rng.randint(1, 2))]
        when = {"all": [_vary(template["when"], rng), *extras]}
        key = json.dumps(when, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        rule = {k: v for k, v in template.items() if k not in ("enabled", "when")}
        rule["id"] = f"{template['id']}-V{len(files[owner]) + 1:02d}"
        rule["score"] = rng.choice([0.1, 0.15, 0.2, 0.25, 0.3])
        if rng.random() < 0.3:
            rule["valid_from"] = "2025-01-01"
        if rng.random() < 0.2:
            rule["valid_to"] = "2099-12-31"
        rule["when"] = when
        files[owner].append(rule)
        made += 1
    return {
        owner: yaml.safe_dump(
            {"owner": owner, "description": "benchmark rules from the starter templates", "rules": rules},
            sort_keys=False,
            width=120,
        )
        for owner, rules in files.items()
        if rules
    }


def rule_store(count: int = 50, seed: int = 5) -> RuleStore:
    """A RuleStore holding the hub's rules and `count` generated member rules, each file through the parser."""
    store = RuleStore()
    for owner, text in rule_files(count, seed).items():
        store.apply(parse_ruleset(text, f"benchmark rules of {owner}", member=owner))
    return store


@dataclass(frozen=True)
class Configuration:
    """What score_batch runs with: rules (hub + members), the model (or none) and the members' thresholds."""

    rules: tuple[Rule, ...]
    model: ModelArtifact | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def score(
        self,
        manifests: Sequence[manifest_pb2.Manifest],
        store: WatchlistStore,
        directory: Directory,
        now: datetime,
        stages: MutableMapping[str, float] | None = None,
    ) -> list[hit_pb2.Hit]:
        return score_batch(
            manifests,
            store,
            directory,
            now,
            self.rules,
            model=self.model,
            thresholds=self.thresholds,
            stages=stages,
            watchlist_threshold=REVIEW_THRESHOLD,  # the lowest default band, as a live profiler screens
        )


# -- the curve -------------------------------------------------------------------------------------------------


class _TripCounter(logging.Handler):
    """Counts the rule breaker's warnings (rules suspended for a batch) instead of printing each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _best_stages(repeat: int, fn: Callable[[dict], object]) -> tuple[float, object, dict[str, float]]:
    """best_of, plus the stages (seconds) of the fastest round."""
    best, result, stages = float("inf"), None, {}
    for _ in range(repeat):
        laps: dict[str, float] = {}
        started = time.perf_counter()
        out = fn(laps)
        elapsed = time.perf_counter() - started
        if elapsed < best:
            best, result, stages = elapsed, out, laps
    return best, result, stages


def _reasons(hits: Sequence[hit_pb2.Hit]) -> dict[str, int]:
    names = {
        hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
        hit_pb2.REASON_SOURCE_RULE: "rule",
        hit_pb2.REASON_SOURCE_MODEL: "model",
    }
    counts = dict.fromkeys(names.values(), 0)
    for hit in hits:
        for reason in hit.reasons:
            counts[names[reason.source]] += 1
    return counts


@dataclass(frozen=True)
class BaselineTree:
    """--baseline: the worktree of the ref whose matcher is timed beside the working tree's."""

    ref: str
    commit: str
    path: Path


def _interleaved(
    store: WatchlistStore,
    frame: pl.DataFrame,
    listed: bytes,
    tree: BaselineTree,
    repeat: int,
    say: Callable[[str], None],
) -> tuple[float, pl.DataFrame, dict]:
    """The matcher alone, rounds of the working tree's and of the baseline's in turn: (best seconds, matches of
    the working tree's fastest round, the baseline's ready and done lines)."""
    best, found = float("inf"), None
    with screening_baseline.Baseline(tree.path, listed, frame) as child:
        info = child.info
        say(
            f"    baseline {tree.ref}: list loaded in {info['load_s']:.1f} s, index built in "
            f"{info['index_build_s']:.2f} s (subprocess, services from {info['services']})"
        )
        for r in range(1, repeat + 1):
            started = time.perf_counter()
            out = store.matches(frame, threshold=REVIEW_THRESHOLD)
            elapsed = time.perf_counter() - started
            if elapsed < best:
                best, found = elapsed, out
            theirs = child.time_round()
            say(
                f"    fuzzy round {r}/{repeat}: current {elapsed:.3f} s ({out.height} matches), "
                f"baseline {theirs['seconds']:.3f} s ({theirs['matches']} matches)"
            )
        done = child.close()
    return best, found, {**info, **done}


def measure(
    size: int,
    base: list[manifest_pb2.Manifest],
    seed: int,
    repeat: int,
    directory: Directory,
    now: datetime,
    config: Configuration,
    say: Callable[[str], None] = print,
    baseline: BaselineTree | None = None,
) -> dict:
    """One row of the curve: a list of this size, the batch screened every way (and by the baseline's matcher)."""
    travellers = sum(len(m.travellers) for m in base)
    started = time.perf_counter()
    entries = make_watchlist(size, seed + size)
    manifests = [manifest_pb2.Manifest.FromString(m.SerializeToString()) for m in base]
    planted = plant(manifests, entries, seed)
    message = delivery_pb2.Watchlist(owner="FJI", entries=entries)
    del entries
    store = WatchlistStore()
    store.apply(message)
    listed = message.SerializeToString() if baseline else b""
    del message
    generated_s = time.perf_counter() - started
    started = time.perf_counter()
    index = store.index  # built once per list change
    index_s = time.perf_counter() - started
    say(f"    list generated in {generated_s:.1f} s, index built in {index_s:.2f} s; timing, best of {repeat}...")
    batch = read_travellers(manifests, features=False)
    frame = batch.frame.with_columns(documents=batch.documents)
    exact_s, _ = best_of(repeat, lambda: exact_matches(store, frame))
    say(f"    exact join: {exact_s:.3f} s")
    theirs = None
    if baseline is None:
        fuzzy_s, found = best_of(repeat, lambda: store.matches(frame, threshold=REVIEW_THRESHOLD))
    else:
        fuzzy_s, found, theirs = _interleaved(store, frame, listed, baseline, repeat, say)
        del listed
    say(f"    fuzzy (matcher alone): {fuzzy_s:.3f} s, {found.height} matches at {REVIEW_THRESHOLD:.2f}")
    empty = WatchlistStore()
    bare_s, _ = best_of(repeat, lambda: config.score(manifests, empty, directory, now))
    say(f"    score_batch without watchlist: {bare_s:.3f} s; score_batch with the list, best of {repeat}...")
    trips = _TripCounter()
    rules_log = logging.getLogger("services.profiler.rules")
    rules_log.addHandler(trips)
    try:
        batch_s, hits, stages = _best_stages(
            repeat, lambda laps: config.score(manifests, store, directory, now, stages=laps)
        )
    finally:
        rules_log.removeHandler(trips)
    return {
        "entries": size,
        "index_build_s": round(index_s, 3),
        "index_keys": len(index.keys),
        "planted": planted,
        "matches": found.height,
        "hits": len(hits),
        "reasons": _reasons(hits),
        "breaker_trips_per_batch": round(trips.count / repeat, 1),
        "exact_join_travellers_per_s": round(travellers / exact_s),
        "fuzzy_matches_travellers_per_s": round(travellers / fuzzy_s),
        "score_batch_without_watchlist_travellers_per_s": round(travellers / bare_s),
        "score_batch_travellers_per_s": round(travellers / batch_s),
        "stages_us_per_traveller": {s: round(stages.get(s, 0.0) * 1e6 / travellers, 2) for s in STAGES},
        "slowdown_vs_10k": None,
        "fuzzy_threshold": REVIEW_THRESHOLD,
        "baseline": None if theirs is None else _baseline_row(theirs, travellers, fuzzy_s),
    }


def _baseline_row(theirs: Mapping, travellers: int, fuzzy_s: float) -> dict:
    """What a row records of the baseline's matcher on its list (theirs: the subprocess's ready and done lines)."""
    best = theirs["best_s"]
    return {
        "index_build_s": round(theirs["index_build_s"], 3),
        "threshold": theirs["threshold"],
        "review_threshold": theirs["review_threshold"],
        "matcher_version": theirs["matcher_version"],
        "matches": theirs["matches"],
        "fuzzy_matches_travellers_per_s": round(travellers / best),
        "fuzzy_ratio": round(best / fuzzy_s, 3),  # current travellers/s over the baseline's
        "rounds_s": [round(s, 4) for s in theirs["rounds"]],
    }


def _slowdown(at: Mapping[int, Mapping], rate: Callable[[Mapping], int | None]) -> float | None:
    """Time per traveller at SLOWDOWN_SIZES[1] over SLOWDOWN_SIZES[0] (rates of the rows by list size)."""
    low, high = (rate(at[size]) if size in at else None for size in SLOWDOWN_SIZES)
    return round(low / high, 2) if low and high else None


def targets(rows: Sequence[Mapping]) -> dict:
    """The issue's two targets, judged on the rows measured (None where a size needed was not run)."""
    at = {r["entries"]: r for r in rows}
    rate = at.get(TARGET_ENTRIES, {}).get("score_batch_travellers_per_s")
    slowdown = _slowdown(at, lambda r: r.get("score_batch_travellers_per_s"))
    return {
        "travellers_per_s_target": TARGET_TRAVELLERS_PER_S,
        "target_entries": TARGET_ENTRIES,
        "travellers_per_s_at_target_entries": rate,
        "travellers_per_s_met": None if rate is None else rate >= TARGET_TRAVELLERS_PER_S,
        "slowdown_target": TARGET_SLOWDOWN,
        "slowdown_sizes": list(SLOWDOWN_SIZES),
        "slowdown": slowdown,
        "slowdown_met": None if slowdown is None else slowdown < TARGET_SLOWDOWN,
    }


def baseline_checks(rows: Sequence[Mapping]) -> dict:
    """--baseline: the issue's checks of a matcher rewrite, on the matcher alone ("fuzzy"), judged on the rows
    measured (None where a size needed was not run): current/baseline travellers/s at BASELINE_RATIO_ENTRIES at
    least BASELINE_RATIO_TARGET, and the current matcher's time per traveller at SLOWDOWN_SIZES[1] over
    SLOWDOWN_SIZES[0] below TARGET_SLOWDOWN (the baseline's own slowdown beside it, for comparison)."""
    at = {r["entries"]: r for r in rows}
    ratio = (at.get(BASELINE_RATIO_ENTRIES, {}).get("baseline") or {}).get("fuzzy_ratio")
    current = _slowdown(at, lambda r: r.get("fuzzy_matches_travellers_per_s"))
    theirs = _slowdown(at, lambda r: (r.get("baseline") or {}).get("fuzzy_matches_travellers_per_s"))
    return {
        "ratio_target": BASELINE_RATIO_TARGET,
        "ratio_entries": BASELINE_RATIO_ENTRIES,
        "ratio": ratio,
        "ratio_met": None if ratio is None else ratio >= BASELINE_RATIO_TARGET,
        "slowdown_target": TARGET_SLOWDOWN,
        "slowdown_sizes": list(SLOWDOWN_SIZES),
        "fuzzy_slowdown": current,
        "fuzzy_slowdown_met": None if current is None else current < TARGET_SLOWDOWN,
        "baseline_fuzzy_slowdown": theirs,
    }


def run(
    sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    *,
    manifests: int = 50,
    passengers: int = 300,
    repeat: int = 3,
    seed: int = 5,
    rules: int = 50,
    model: bool = True,
    model_rows: int = 20_000,
    baseline: str | None = None,
    say: Callable[[str], None] = print,
) -> dict:
    """The whole curve: the configuration built once, then one measure() per list size.

    baseline: a git ref whose matcher is also timed on every list (see the module docstring), or None."""
    t0 = time.perf_counter()
    commit = screening_baseline.resolve(baseline) if baseline else None  # a bad ref fails before any work
    now = datetime.now(UTC)
    traffic = DemoTraffic(seed=seed)
    base = [traffic.next_manifest(passengers=passengers) for _ in range(manifests)]
    add_bookings(base, seed)
    for manifest in base:  # as intake stores them (api_ingest.servicer): the profiler reads canonical manifests
        manifest.manifest_id = codec.manifest_id(manifest)
        manifest.received_at.FromDatetime(now)
    travellers = sum(len(m.travellers) for m in base)
    store = rule_store(rules, seed)
    artefact, train_s = None, None
    if model:
        say(f"training the risk model on {model_rows:,} rows of synthetic history...")
        with tempfile.TemporaryDirectory(prefix="apihub-screening-") as out:
            started = time.perf_counter()
            artefact = train_on_history(Path(out), model_rows, seed)
            train_s = time.perf_counter() - started
    config = Configuration(store.rules, artefact, dict(MODEL_THRESHOLDS) if model else {})
    configuration = {
        "hub_rules": len(store.rules) - sum(store.count(o) for o in store.owners),
        "member_rules": sum(store.count(o) for o in store.owners),
        "rules_by_owner": {o: store.count(o) for o in store.owners},
        "model": artefact.version if artefact else None,
        "model_train_rows": model_rows if model else None,
        "model_train_s": round(train_s, 2) if train_s is not None else None,
        "model_thresholds": dict(config.thresholds),
        "booking_data_share": 0.85,
    }
    results = {
        "benchmark": "screening",
        "started": now.isoformat(),
        "machine": {"python": platform.python_version(), "processor": platform.processor(), "cpus": _cpus()},
        "configuration": configuration,
        "manifests_per_batch": manifests,
        "travellers_per_batch": travellers,
        "repeat": repeat,
        "seed": seed,
        "screening_bands": {"review": REVIEW_THRESHOLD, "alert": MATCH_THRESHOLD, "screened_at": REVIEW_THRESHOLD},
        "baseline": None,
        "sizes": [],
    }
    say(describe(results))
    directory = load_directory()
    with contextlib.ExitStack() as stack:
        tree = None
        if baseline:
            say(f"baseline: a worktree of {baseline} ({commit[:12]})...")
            path = stack.enter_context(screening_baseline.checkout(commit))
            tree = BaselineTree(baseline, commit, path)
        for i, size in enumerate(sizes, 1):
            say(f"[{i}/{len(sizes)}] {size:,} entries (t+{time.perf_counter() - t0:.0f}s)")
            row = measure(size, base, seed, repeat, directory, now, config, say, tree)
            results["sizes"].append(row)
            if row["baseline"] and results["baseline"] is None:
                results["baseline"] = _baseline_summary(baseline, commit, row["baseline"])
            stages = row["stages_us_per_traveller"]
            say(
                f"    {row['score_batch_travellers_per_s']:,} travellers/s ({row['hits']:,} hits, "
                f"{row['matches']} watchlist matches); µs per traveller: "
                + ", ".join(f"{s} {stages[s]:.2f}" for s in STAGES)
            )
    if results["baseline"] is not None:
        results["baseline"]["checks"] = baseline_checks(results["sizes"])
    at = {r["entries"]: r["score_batch_travellers_per_s"] for r in results["sizes"]}
    for row in results["sizes"]:
        if 10_000 in at:
            row["slowdown_vs_10k"] = round(at[10_000] / row["score_batch_travellers_per_s"], 2)
    results["targets"] = targets(results["sizes"])
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _baseline_summary(ref: str, commit: str, row: Mapping) -> dict:
    threshold, review = row["threshold"], row["review_threshold"]
    band = "it has no review band" if review is None else f"its review band {review:.2f} left unused"
    return {
        "ref": ref,
        "commit": commit,
        "matcher_version": row["matcher_version"],
        "threshold": threshold,
        "review_threshold": review,
        "note": (
            f"the working tree's matcher screens at the review band {REVIEW_THRESHOLD:.2f}, as a live profiler with "
            f"default bands; {ref} at its own default threshold {threshold:.2f} ({band})"
        ),
    }


# -- output ------------------------------------------------------------------------------------------------------


def describe(results: Mapping) -> str:
    """One paragraph: the batch and the configuration measured."""
    c = results["configuration"]
    owners = ", ".join(f"{o} {n}" for o, n in c["rules_by_owner"].items())
    rules = f"{c['hub_rules']} hub rule(s) + {c['member_rules']} member rules" + (f" ({owners})" if owners else "")
    if c["model"]:
        thresholds = ", ".join(f"{m} {t:.2f}" for m, t in c["model_thresholds"].items())
        model = (
            f"risk model {c['model']} (trained on {c['model_train_rows']:,} rows in {c['model_train_s']:.1f} s; "
            f"review thresholds {thresholds}, others default)"
        )
    else:
        model = "no risk model"
    bands = results.get("screening_bands")
    screened = (
        ""
        if bands is None
        else f"; watchlist screened at the review band {bands['screened_at']:.2f} (alerts from {bands['alert']:.2f}), "
        "as a live profiler with default bands"
    )
    return (
        f"batch: {results['manifests_per_batch']} manifests, {results['travellers_per_batch']:,} travellers "
        f"(booking data on {c['booking_data_share']:.0%}); best of {results['repeat']}\n"
        f"configuration: {rules}; {model}{screened}"
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "NOT met")


def target_lines(results: Mapping) -> list[str]:
    t = results["targets"]
    low, high = t["slowdown_sizes"]
    rate = t["travellers_per_s_at_target_entries"]
    return [
        f"target: >= {t['travellers_per_s_target']:,} travellers/s at {t['target_entries']:,} entries: "
        + ("-" if rate is None else f"{rate:,}")
        + f" ({_verdict(t['travellers_per_s_met'])})",
        f"target: time at {high:,} entries / time at {low:,} < {t['slowdown_target']:.0f}x: "
        f"{_ratio(t['slowdown'])} ({_verdict(t['slowdown_met'])})",
    ]


def baseline_lines(results: Mapping) -> list[str]:
    """--baseline: the matcher alone, working tree vs the baseline ref, and the two checks (none without it)."""
    b = results.get("baseline")
    if not b:
        return []
    rows = [r for r in results["sizes"] if r.get("baseline")]
    c = b["checks"]
    low, high = c["slowdown_sizes"]
    lines = [
        f"matcher alone (WatchlistStore.matches on the same frame, rounds interleaved, best of {results['repeat']}): "
        f"working tree vs {b['ref']} ({b['commit'][:12]}); {b['note']}",
        f"{'entries':>10} {'current/s':>10} {b['ref'][:10] + '/s':>13} {'ratio':>6} {'matches':>8} "
        f"{'theirs':>7} {'index s':>8} {'theirs s':>9}",
    ]
    for r in rows:
        t = r["baseline"]
        lines.append(
            f"{r['entries']:>10,} {r['fuzzy_matches_travellers_per_s']:>10,} "
            f"{t['fuzzy_matches_travellers_per_s']:>13,} "
            f"{_ratio(t['fuzzy_ratio']):>6} {r['matches']:>8} {t['matches']:>7} {r['index_build_s']:>8.2f} "
            f"{t['index_build_s']:>9.2f}"
        )
    return lines + [
        "",
        f"check: matcher alone at {c['ratio_entries']:,} entries >= {c['ratio_target']:.2f}x {b['ref']}'s "
        f"travellers/s: {_ratio(c['ratio'])} ({_verdict(c['ratio_met'])})",
        f"check: matcher alone, time per traveller at {high:,} entries / at {low:,} < {c['slowdown_target']:.0f}x: "
        f"{_ratio(c['fuzzy_slowdown'])} ({_verdict(c['fuzzy_slowdown_met'])}; {b['ref']}: "
        f"{_ratio(c['baseline_fuzzy_slowdown'])})",
    ]


def table(results: Mapping) -> str:
    """The curve and the stage breakdown as aligned text (and the baseline's comparison, when one ran)."""
    threshold = results.get("screening_bands", {}).get("screened_at")
    lines = [
        "travellers/s (score_batch = the whole profiler scoring; no watchlist = same with an empty store"
        + ("" if threshold is None else f"; fuzzy and score_batch screen at {threshold:.2f}")
        + ")",
        f"{'entries':>10} {'index s':>8} {'matches':>8} {'hits':>6} {'exact join/s':>13} {'fuzzy only/s':>13} "
        f"{'no watchlist/s':>15} {'score_batch/s':>14} {'vs 10k':>7}",
    ]
    for r in results["sizes"]:
        lines.append(
            f"{r['entries']:>10,} {r['index_build_s']:>8.2f} {r['matches']:>8} {r['hits']:>6} "
            f"{r['exact_join_travellers_per_s']:>13,} {r['fuzzy_matches_travellers_per_s']:>13,} "
            f"{r['score_batch_without_watchlist_travellers_per_s']:>15,} {r['score_batch_travellers_per_s']:>14,} "
            f"{_ratio(r['slowdown_vs_10k']):>7}"
        )
    lines += ["", "µs per traveller in score_batch, by stage (fastest round)"]
    lines.append(f"{'entries':>10} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'total':>9}")
    for r in results["sizes"]:
        stages = r["stages_us_per_traveller"]
        lines.append(
            f"{r['entries']:>10,} "
            + " ".join(f"{stages[s]:>9.2f}" for s in STAGES)
            + f" {1e6 / r['score_batch_travellers_per_s']:>9.2f}"
        )
    lines += ["", *target_lines(results)]
    extra = baseline_lines(results)
    return "\n".join(lines + (["", *extra] if extra else []))


def markdown(results: Mapping) -> list[str]:
    """The curve and the stage breakdown as Markdown tables (README, `apihub bench --full` report)."""
    lines = [
        "| watchlist entries | index build (s) | travellers/s | time vs 10k | without watchlist (trav/s) | "
        "fuzzy screening alone (trav/s) | exact join (trav/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        lines.append(
            f"| {r['entries']:,} | {r['index_build_s']:.2f} | {r['score_batch_travellers_per_s']:,} | "
            f"{_ratio(r['slowdown_vs_10k'])} | {r['score_batch_without_watchlist_travellers_per_s']:,} | "
            f"{r['fuzzy_matches_travellers_per_s']:,} | {r['exact_join_travellers_per_s']:,} |"
        )
    lines += [
        "",
        "| watchlist entries | " + " | ".join(STAGES) + " | total (µs per traveller) |",
        "|---|" + "---|" * (len(STAGES) + 1),
    ]
    for r in results["sizes"]:
        stages = r["stages_us_per_traveller"]
        lines.append(
            f"| {r['entries']:,} | "
            + " | ".join(f"{stages[s]:.2f}" for s in STAGES)
            + f" | {1e6 / r['score_batch_travellers_per_s']:.2f} |"
        )
    b = results.get("baseline")
    if b:
        lines += [
            "",
            f"| watchlist entries | matcher alone (trav/s) | {b['ref']} (trav/s) | ratio | matches | "
            f"{b['ref']} matches |",
            "|---|---|---|---|---|---|",
        ]
        for r in results["sizes"]:
            if t := r.get("baseline"):
                lines.append(
                    f"| {r['entries']:,} | {r['fuzzy_matches_travellers_per_s']:,} | "
                    f"{t['fuzzy_matches_travellers_per_s']:,} | {_ratio(t['fuzzy_ratio'])} | {r['matches']} | "
                    f"{t['matches']} |"
                )
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screening", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--manifests", type=int, default=50, help="manifests per batch")
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--rules", type=int, default=50, help="member rules generated from the starter templates")
    parser.add_argument("--no-model", action="store_true", help="score without the risk model")
    parser.add_argument("--model-rows", type=int, default=20_000, help="rows of synthetic history to train on")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also time the matcher of git ref REF (e.g. bd59035) on the same lists and travellers, in the same run "
        "(a temporary worktree, a subprocess; see the module docstring)",
    )
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--out", type=Path, help="JSON file to write (default benchmarks/results/screening-*.json)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.baseline:
        try:
            screening_baseline.resolve(args.baseline)
        except RuntimeError as e:
            parser.error(f"--baseline: {e}")

    def say(text: str) -> None:
        print(text, flush=True)

    results = run(
        sizes,
        manifests=args.manifests,
        passengers=args.passengers,
        repeat=args.repeat,
        seed=args.seed,
        rules=args.rules,
        model=not args.no_model,
        model_rows=args.model_rows,
        baseline=args.baseline,
        say=say,
    )
    say("")
    say(table(results))
    if args.markdown:
        say("")
        say("\n".join(markdown(results)))
    path = args.out
    if path is None:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"screening-{datetime.fromisoformat(results['started']).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    say(f"written {path} (in {results['seconds']:.0f} s)")
    return results


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
