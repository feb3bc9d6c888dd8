"""The pass-through baseline consumer: reads a hub topic in a consumer group like a hub service and does nothing.

Same client settings as the profiler and router (services.bus.make_consumer, batches of up to 500 records,
commit after every poll), so the difference between it and a real service is the service's own work.
With ``--latency-out`` it also records, per manifest record, the manifest's ``received_at`` and the time it was consumed
(the pass-through's end-to-end latency from receipt at intake) and writes them as JSON when stopped (SIGTERM).

    python -m benchmarks.passthrough --bootstrap 127.0.0.1:9092 --topic T --group G [--latency-out F]
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from services.bus import make_consumer
from services.config import HubSettings
from services.wire import manifest_pb2


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--latency-out", default="")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard bound on the run")
    args = parser.parse_args()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    settings = HubSettings(kafka_bootstrap=args.bootstrap)
    consumer = make_consumer(settings, args.group, "bench-passthrough", max_poll_records=500)
    consumer.subscribe([args.topic])
    latencies: list[tuple[float, float]] = []  # (received_at, consumed at), wall clock
    deadline = time.monotonic() + args.max_seconds
    try:
        while not stopping.is_set() and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=100, max_records=500)
            if not polled:
                continue
            if args.latency_out:
                now = time.time()
                for batch in polled.values():
                    for record in batch:
                        m = manifest_pb2.Manifest.FromString(record.value)
                        if m.HasField("received_at"):
                            latencies.append((m.received_at.seconds + m.received_at.nanos / 1e9, now))
            consumer.commit()
    finally:
        consumer.close(autocommit=False)
        if args.latency_out:
            with open(args.latency_out, "w") as f:
                json.dump(latencies, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
