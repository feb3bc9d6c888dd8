"""Risk model speed: travellers per second scored with the model and without it, in the same run.

One process, one batch of demo manifests (synthetic.traffic.DemoTraffic) to which booking data is added (lead
time, form of payment, one-way, locators: demo manifests carry none), best of --repeat rounds of:

    without model   score_batch with the hub rules and an empty watchlist store
    with model      the same plus the risk model (every member at the default review threshold)
    model alone     add_features + ModelArtifact.score (one predict_proba) on the batch's frame

The model is trained first on --rows of synthetic history (seconds) into a temporary directory.

    .venv/bin/python -m benchmarks.model [--manifests 50] [--passengers 300] [--repeat 3] [--rows 50000]

Writes benchmarks/results/model-<UTC timestamp>.json (git-ignored). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.directory import load_directory
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore
from services.wire import hit_pb2, manifest_pb2
from synthetic.history import train_on_history
from synthetic.traffic import DemoTraffic

RESULTS = Path(__file__).parent / "results"


def add_bookings(manifests: list[manifest_pb2.Manifest], seed: int) -> None:
    """Booking data on 85 % of travellers, drawn like the synthetic history's population."""
    rng = random.Random(seed)
    for manifest in manifests:
        departure = manifest.legs[0].scheduled_departure.ToDatetime().date()
        for n, traveller in enumerate(manifest.travellers):
            if rng.random() >= 0.85:
                continue
            booked = departure - timedelta(days=min(330, int(rng.expovariate(1 / 40))))
            traveller.reservation_locator = f"L{n // rng.choice([1, 1, 2, 3]):05d}"
            traveller.booking.booking_date.CopyFrom(
                manifest_pb2.PartialDate(year=booked.year, month=booked.month, day=booked.day)
            )
            traveller.booking.payment_form = rng.choices(["CC", "CA", "IN", "MS"], [0.8, 0.06, 0.09, 0.05])[0]
            traveller.booking.one_way = rng.random() < 0.3


def best_of(repeat: int, fn) -> tuple[float, object]:
    """Seconds of the fastest of `repeat` calls of fn, and its result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model", description=__doc__.split("\n")[0])
    parser.add_argument("--manifests", type=int, default=50, help="manifests per batch")
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of synthetic history to train on")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    traffic = DemoTraffic(seed=args.seed)
    manifests = [traffic.next_manifest(passengers=args.passengers) for _ in range(args.manifests)]
    add_bookings(manifests, args.seed)
    travellers = sum(len(m.travellers) for m in manifests)
    directory, now, store = load_directory(), datetime.now(UTC), WatchlistStore()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        model = train_on_history(Path(out), args.rows, args.seed)
        train_s = time.perf_counter() - started

    without_s, _ = best_of(args.repeat, lambda: score_batch(manifests, store, directory, now))
    with_s, hits = best_of(args.repeat, lambda: score_batch(manifests, store, directory, now, model=model))
    frame = manifests_to_frame(manifests)
    alone_s, _ = best_of(args.repeat, lambda: model.score(add_features(frame, manifests)))
    model_hits = sum(any(r.source == hit_pb2.REASON_SOURCE_MODEL for r in h.reasons) for h in hits)
    results = {
        "benchmark": "model",
        "started": now.isoformat(),
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "model": model.version,
        "train_rows": args.rows,
        "train_s": round(train_s, 2),
        "evaluation": dict(model.metadata["evaluation"]),
        "travellers_per_batch": travellers,
        "score_batch_without_model_travellers_per_s": round(travellers / without_s),
        "score_batch_with_model_travellers_per_s": round(travellers / with_s),
        "features_and_predict_proba_travellers_per_s": round(travellers / alone_s),
        "slowdown_with_model": round(with_s / without_s, 2),
        "travellers_with_model_reason": model_hits,
    }
    print(f"batch: {args.manifests} manifests, {travellers:,} travellers; best of {args.repeat}")
    print(f"model {model.version} trained on {args.rows:,} rows in {train_s:.1f} s")
    for key in (
        "score_batch_without_model_travellers_per_s",
        "score_batch_with_model_travellers_per_s",
        "features_and_predict_proba_travellers_per_s",
    ):
        print(f"  {key:<48} {results[key]:>12,}")
    print(f"  slowdown with the model: {results['slowdown_with_model']}x; {model_hits} travellers put up for review")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"model-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written {path}")
    return results


if __name__ == "__main__":
    main()
