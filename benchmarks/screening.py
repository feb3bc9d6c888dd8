"""Watchlist screening speed: travellers per second against watchlists of growing size, against baselines.

For each list size (default 1k, 10k, 100k, 1M synthetic entries) one process times, on the same batch of
demo manifests (services.demo.DemoTraffic, 300 passengers each) and best of --repeat rounds:

    baseline   score_batch with an empty store (frame building + rules: what every batch pays anyway),
               and the exact join (WatchlistStore.exact_matches) on the batch's traveller frame
    fuzzy      WatchlistStore.matches on the same frame (index look-up, date/document evidence, name
               alignment of the survivors), and the whole score_batch with the list loaded

plus the index build time (once per list change). Entry names are synthetic: Pacific, Asian, European and
Arabic-like syllable compositions drawn with Zipf frequencies (few common names, a long tail), so blocks
grow with the list like real name distributions do; 2 % of the travellers are planted variants of entries
(typos, swapped fields, a year off, OCR-confused document numbers) so the matching path is exercised.

    .venv/bin/python -m benchmarks.screening [--sizes 1000,10000,100000,1000000] [--manifests 50]
        [--passengers 300] [--repeat 3] [--seed 5]

Writes benchmarks/results/screening-<UTC timestamp>.json (git-ignored). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from services.demo import DemoTraffic
from services.directory import load_directory
from services.profiler.frames import manifests_to_frame
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore, document_numbers
from services.wire import delivery_pb2, manifest_pb2

RESULTS = Path(__file__).parent / "results"

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


def _best(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(size: int, base: list, seed: int, repeat: int, directory, now: datetime) -> dict:
    """One row of the curve: a list of this size, the batch screened every way."""
    travellers = sum(len(m.travellers) for m in base)
    entries = make_watchlist(size, seed + size)
    manifests = [manifest_pb2.Manifest.FromString(m.SerializeToString()) for m in base]
    planted = plant(manifests, entries, seed)
    store = WatchlistStore()
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=entries))
    del entries
    started = time.perf_counter()
    index = store.index  # built once per list change
    index_s = time.perf_counter() - started
    frame = manifests_to_frame(manifests).with_columns(documents=document_numbers(manifests))
    exact_s, _ = _best(repeat, lambda: store.exact_matches(frame))
    fuzzy_s, found = _best(repeat, lambda: store.matches(frame))
    empty = WatchlistStore()
    rules_s, _ = _best(repeat, lambda: score_batch(manifests, empty, directory, now))
    batch_s, _ = _best(repeat, lambda: score_batch(manifests, store, directory, now))
    return {
        "entries": size,
        "index_build_s": round(index_s, 3),
        "index_keys": len(index.keys),
        "planted": planted,
        "matches": found.height,
        "exact_join_travellers_per_s": round(travellers / exact_s),
        "fuzzy_matches_travellers_per_s": round(travellers / fuzzy_s),
        "score_batch_without_watchlist_travellers_per_s": round(travellers / rules_s),
        "score_batch_travellers_per_s": round(travellers / batch_s),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screening", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--manifests", type=int, default=50, help="manifests per batch")
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    traffic = DemoTraffic(seed=args.seed)
    base = [traffic.next_manifest(passengers=args.passengers) for _ in range(args.manifests)]
    travellers = sum(len(m.travellers) for m in base)
    directory, now = load_directory(), datetime.now(UTC)
    results = {
        "benchmark": "screening",
        "started": now.isoformat(),
        "machine": {"python": platform.python_version(), "processor": platform.processor(), "cpus": _cpus()},
        "travellers_per_batch": travellers,
        "sizes": [],
    }
    print(f"batch: {args.manifests} manifests, {travellers:,} travellers; best of {args.repeat}")
    header = (
        f"{'entries':>10} {'index s':>8} {'planted':>8} {'matches':>8} {'exact join/s':>13} {'fuzzy/s':>10} "
        f"{'rules only/s':>13} {'score_batch/s':>14} {'vs 10k':>7}"
    )
    print(header)
    for size in sizes:
        row = measure(size, base, args.seed, args.repeat, directory, now)
        results["sizes"].append(row)
        ten_k = next((r for r in results["sizes"] if r["entries"] == 10_000), None)
        ratio = f"{ten_k['score_batch_travellers_per_s'] / row['score_batch_travellers_per_s']:.2f}x" if ten_k else "-"
        row["slowdown_vs_10k"] = ratio
        print(
            f"{size:>10,} {row['index_build_s']:>8.2f} {row['planted']:>8} {row['matches']:>8} "
            f"{row['exact_join_travellers_per_s']:>13,} {row['fuzzy_matches_travellers_per_s']:>10,} "
            f"{row['score_batch_without_watchlist_travellers_per_s']:>13,} "
            f"{row['score_batch_travellers_per_s']:>14,} {ratio:>7}",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"screening-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written {path}")
    return results


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
