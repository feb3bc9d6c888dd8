"""Intake throughput: travellers per second through gRPC into a real Kafka, against a pass-through baseline.

The baseline produces the same two records per manifest (raw and canonical) straight to the same broker with
the same producer settings, waiting for every ack: what intake would cost with no gRPC, validation or
receipts. The ingest server runs in its own process, as in production; client and server share the machine.

    .venv/bin/python -m benchmarks.intake [--manifests 400] [--passengers 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from services import client
from services.auth import issue_token
from services.bus import Topics, ensure_topics, make_producer
from services.codec import flight_key, manifest_id
from services.config import HubSettings
from services.devkafka import LocalKafka, free_port
from services.launcher import wait_healthy
from synthetic.traffic import DemoTraffic

RESULTS = Path(__file__).resolve().parent / "results"


def _manifests(count: int, passengers: int) -> list:
    traffic = DemoTraffic(seed=99)
    out = []
    for _ in range(count):
        m = traffic.next_manifest(passengers=passengers)
        m.carrier = "FJ"
        out.append(m)
    return out


def _as_new_versions(manifests: list, run: str) -> list:
    """The same manifests under fresh message references: each run stores new versions, not duplicates."""
    out = []
    for m in manifests:
        copy = type(m)()
        copy.CopyFrom(m)
        copy.message_ref = f"{run}-{m.message_ref}"
        out.append(copy)
    return out


def baseline(settings: HubSettings, manifests: list) -> float:
    """Seconds to produce raw + canonical records for every manifest and have them all acknowledged."""
    topics = Topics(settings.topic_prefix)
    producer = make_producer(settings, "bench-baseline")
    started = time.perf_counter()
    futures = []
    for m in manifests:
        raw = m.SerializeToString()
        m.manifest_id = manifest_id(m)
        futures.append(producer.send(topics.raw, key=m.manifest_id.encode(), value=raw))
        futures.append(producer.send(topics.manifests, key=flight_key(m).encode(), value=m.SerializeToString()))
        m.manifest_id = ""
    for f in futures:
        f.get(timeout=60)
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def unary(address: str, token: str, manifests: list, concurrency: int) -> float:
    chan = client.channel(address)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        receipts = list(pool.map(lambda m: client.submit(chan, token, [m])[0], manifests))
    elapsed = time.perf_counter() - started
    assert all(r.status == 1 for r in receipts), "a benchmark manifest was not accepted"
    return elapsed


def stream(address: str, token: str, manifests: list) -> float:
    chan = client.channel(address)
    started = time.perf_counter()
    receipts = client.submit(chan, token, manifests, timeout=600)
    elapsed = time.perf_counter() - started
    assert all(r.status == 1 for r in receipts), "a benchmark manifest was not accepted"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=int, default=400, help="manifests per run (default 400)")
    parser.add_argument("--passengers", type=int, default=300, help="passengers per manifest (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="unary calls in flight (default 8)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        external = os.environ.get("APIHUB_BENCH_KAFKA")
        broker = None if external else LocalKafka(Path(tmp) / "kafka", free_port(), free_port()).start()
        bootstrap = external or broker.bootstrap
        settings = HubSettings(
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bench{uuid.uuid4().hex[:8]}",
            ingest_listen=f"127.0.0.1:{free_port()}",
            ingest_metrics_port=-1,
        )
        ensure_topics(settings, [])
        env = {
            **os.environ,
            "APIHUB_KAFKA_BOOTSTRAP": bootstrap,
            "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
            "APIHUB_INGEST_LISTEN": settings.ingest_listen,
            "APIHUB_INGEST_METRICS_PORT": "-1",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "ingest"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(settings.ingest_listen)
            token = issue_token(settings, "carrier", "FJ")
            manifests = _manifests(args.manifests, args.passengers)
            travellers = sum(len(m.travellers) for m in manifests)
            print(f"{len(manifests)} manifests, {travellers} travellers; warming up...", flush=True)
            unary(settings.ingest_listen, token, _as_new_versions(manifests[:20], "warmup"), args.concurrency)
            timings = {}
            for name, run in (
                ("baseline_producer", lambda: baseline(settings, manifests)),
                (
                    "grpc_unary",
                    lambda: unary(
                        settings.ingest_listen, token, _as_new_versions(manifests, "unary"), args.concurrency
                    ),
                ),
                ("grpc_stream", lambda: stream(settings.ingest_listen, token, _as_new_versions(manifests, "stream"))),
            ):
                print(f"  {name}...", end=" ", flush=True)
                timings[name] = run()
                print(f"{travellers / timings[name]:,.0f} travellers/s", flush=True)
        finally:
            server.terminate()
            server.wait(30)
            if broker:
                broker.stop()

    rates = {k: travellers / v for k, v in timings.items()}
    report = {
        "benchmark": "intake",
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "manifests": len(manifests),
        "passengers_per_manifest": args.passengers,
        "travellers": travellers,
        "seconds": timings,
        "travellers_per_second": rates,
        "ratio_to_baseline": {k: v / rates["baseline_producer"] for k, v in rates.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"intake-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2))
    print("\n| path | travellers/s | ratio to pass-through |\n|---|---|---|")
    for k, v in rates.items():
        print(f"| {k} | {v:,.0f} | {report['ratio_to_baseline'][k]:.2f} |")
    print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
