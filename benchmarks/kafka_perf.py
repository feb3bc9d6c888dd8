"""Raw-Kafka baseline: Apache Kafka's own ProducerPerformance and ConsumerPerformance against the same broker.

The tools live in the ``kafka-tools`` artifact, not in the broker's classpath (checked with ``unzip -l`` on the
cached broker jars: no ``ProducerPerformance.class``). ``kafka-tools-pom.xml`` beside this file resolves them with
Maven into the same per-user cache as the broker jars (keyed by the pom's hash), once per machine.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

from services.devkafka import ensure_jars, resolve_classpath

POM = Path(__file__).resolve().parent / "kafka-tools-pom.xml"
_LOGGING = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.logFile=System.err"]
PRODUCER_CLASS = "org/apache/kafka/tools/ProducerPerformance.class"


def _has_class(libs: Path, entry: str) -> bool:
    for jar in libs.glob("*.jar"):
        try:
            with zipfile.ZipFile(jar) as z:
                if entry in z.namelist():
                    return True
        except zipfile.BadZipFile:
            continue
    return False


def tools_classpath(progress=print) -> Path:
    """Directory with kafka-tools and its dependencies: the broker's if it has them, else resolved once."""
    broker_libs = ensure_jars(progress)
    if _has_class(broker_libs, PRODUCER_CLASS):
        return broker_libs
    return resolve_classpath(POM.read_text(), "kafka-tools", "org.apache.kafka:kafka-tools", progress)


def _java(libs: Path, main: str, *args: str, timeout: float) -> str:
    cmd = ["java", "-Xmx512m", *_LOGGING, "-cp", f"{libs}/*", main, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{main} failed ({result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return result.stdout


def producer_perf(libs: Path, bootstrap: str, topic: str, records: int, record_size: int, timeout: float = 300) -> dict:
    """ProducerPerformance with the hub's producer settings (acks=all, idempotent, linger 5 ms, 256 KB batches)."""
    out = _java(
        libs,
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "linger.ms=5",
        "batch.size=262144",
        "max.request.size=17825792",
        timeout=timeout,
    )
    # Final line: "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, p50 ..."
    last = [line for line in out.splitlines() if "records sent" in line][-1]
    rate = float(re.search(r"([\d.]+) records/sec", last).group(1))
    mb = float(re.search(r"\(([\d.]+) MB/sec\)", last).group(1))
    pct = dict(re.findall(r"(\d+(?:\.\d+)?) ms (\d+th)", last))
    lat = {k: float(v) for v, k in pct.items()}
    return {"records": records, "record_bytes": record_size, "records_per_s": rate, "mb_per_s": mb, "latency_ms": lat}


def consumer_perf(libs: Path, bootstrap: str, topic: str, records: int, timeout: float = 300) -> dict:
    """ConsumerPerformance reading ``records`` from the start of ``topic`` (CSV-style one-line output)."""
    out = _java(
        libs,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(records),
        "--timeout",
        "60000",
        "--hide-header",
        timeout=timeout,
    )
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
    # fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    row = [c.strip() for c in out.strip().splitlines()[-1].split(",")]
    return {
        "records": int(float(row[4])),
        "mb_per_s": float(row[3]),
        "records_per_s": float(row[5]),
        "fetch_records_per_s": float(row[9]) if len(row) > 9 else None,
    }
