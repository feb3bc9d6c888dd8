"""Scoring runs in process without Kafka (frames, matching, rules, model inference): the offline `apihub screen`
and an interactive API call it directly. A fresh interpreter in which the Kafka client cannot be imported imports
the scoring modules and scores a manifest; none of them loads the bus, training code or the dev folders."""

from __future__ import annotations

import json
import subprocess
import sys

SCORING = (
    "services.profiler.scoring",
    "services.profiler.frames",
    "services.profiler.matching",
    "services.profiler.rules",
    "services.profiler.model",
)
# Module trees scoring must not load: the Kafka client and the hub's bus, training, the dev folders.
NOT_LOADED = ("kafka", "services.bus", "services.profiler.training", "synthetic", "benchmarks")

PROBE = """
import json, sys
sys.modules["kafka"] = None  # `import kafka` now raises ImportError, as where kafka-python is not installed
for name in {modules!r}:
    __import__(name)
from datetime import UTC, datetime
from services.directory import load_directory
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore
from services.wire import manifest_pb2
manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="411", manifest_id="m-1")
manifest.legs.add(origin="NAN", destination="SYD").scheduled_departure.FromDatetime(datetime(2026, 3, 1, 7, tzinfo=UTC))
manifest.travellers.add(role=manifest_pb2.TRAVELLER_ROLE_PASSENGER, surname="TAVOLA", given_names="JOSEFA")
hits = score_batch([manifest], WatchlistStore(), load_directory(), datetime(2026, 3, 1, 2, tzinfo=UTC))
print(json.dumps({{"hits": len(hits), "modules": sorted(m for m in sys.modules if sys.modules[m] is not None)}}))
"""


def test_scoring_imports_and_runs_without_kafka():
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=SCORING)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])["modules"]
    found = [m for m in loaded if any(m == tree or m.startswith(tree + ".") for tree in NOT_LOADED)]
    assert found == [], found
