"""A real single-node Apache Kafka (KRaft) on loopback, for the quick start, the tests and CI.

The broker's jars come from Maven Central through ``pom.xml`` beside this file (cached per pom, so a
version bump fetches anew); storage is formatted once per data directory; the broker runs as a child
JVM and is stopped with SIGTERM (a controlled shutdown), then SIGKILL if it hangs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from services.errors import LocalKafkaError

log = logging.getLogger(__name__)

READY_LINE = "Kafka Server started"
# slf4j-simple: quiet by default, but keep the line that says the broker is up.
_LOGGING = [
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.logFile=System.out",
]


def _pom_text() -> str:
    return resources.files("services.devkafka").joinpath("pom.xml").read_text()


def cache_dir() -> Path:
    """Per-user cache for the broker jars: shared by every checkout and test run on the machine."""
    root = os.environ.get("APIHUB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "apihub")
    return Path(root)


def ensure_jars(progress=print) -> Path:
    """Directory holding the broker's runtime classpath; resolves it with Maven the first time."""
    if not shutil.which("java"):
        raise LocalKafkaError("Java ('java') is not on PATH: the Kafka broker needs a Java 17+ runtime")
    return resolve_classpath(_pom_text(), "kafka", "the Apache Kafka broker jars", progress)


def resolve_classpath(pom: str, name: str, what: str, progress=print) -> Path:
    """Resolve a pom's runtime dependencies from Maven Central into the per-user cache (once per pom content)."""
    libs = cache_dir() / f"{name}-{hashlib.sha256(pom.encode()).hexdigest()[:12]}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(f"Maven ('mvn') is not on PATH: it fetches {what} from Maven Central")
    progress(f"Fetching {what} from Maven Central (once per machine)...")
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(pom)
    partial = work / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [mvn, "-B", "-q", "-f", str(work / "pom.xml"), "package", f"-Dlibs.dir={partial}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise LocalKafkaError(f"Maven could not fetch {what}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    (libs / ".complete").write_text("ok\n")
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """Combined broker+controller on loopback; replication factors of 1 because there is one node."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str((data_dir / "data").resolve()),
        "num.partitions": "4",
        "default.replication.factor": "1",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "offsets.topic.replication.factor": "1",
        # Fewer partitions than the default 50: the first consumer-group join is much faster.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # The hub creates its topics explicitly, with partition counts it chose.
        "auto.create.topics.enable": "false",
        # Manifests of large cruise ships exceed the 1 MB default.
        "message.max.bytes": str(20 * 1024 * 1024),
        "replica.fetch.max.bytes": str(20 * 1024 * 1024),
        "log.retention.hours": "168",
        # A member's acknowledged cursor (a committed offset) must outlive the outbox retention.
        "offsets.retention.minutes": str(60 * 24 * 60),
        "log.segment.bytes": str(128 * 1024 * 1024),
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


@dataclass
class LocalKafka:
    """One broker process. ``with LocalKafka(dir) as k: k.bootstrap`` starts it and stops it."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    progress: object = print
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _java(self, libs: Path, *args: str, heap: str) -> list[str]:
        return ["java", f"-Xmx{heap}", "-Djava.awt.headless=true", *_LOGGING, "-cp", f"{libs}/*", *args]

    def start(self, timeout: float = 90.0) -> LocalKafka:
        libs = ensure_jars(self.progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(server_properties(self.data_dir, self.port, self.controller_port))
        for p in (self.port, self.controller_port):
            if _port_open(p):
                raise LocalKafkaError(
                    f"port 127.0.0.1:{p} is already in use: is another broker running? "
                    "(`apihub kafka stop`, or set APIHUB_KAFKA_PORT)"
                )
        if not (self.data_dir / "data" / "meta.properties").exists():
            fmt = self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                f"--cluster-id={_cluster_id()}",
                "--config",
                str(props),
                "--ignore-formatted",
                heap="512m",
            )
            result = subprocess.run(fmt, capture_output=True, text=True)
            if result.returncode != 0:
                raise LocalKafkaError(
                    f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
        cmd = self._java(
            libs,
            "-Xms256m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            f"-Dkafka.logs.dir={self.data_dir}",
            "kafka.Kafka",
            str(props),
            heap=self.heap,
        )
        out = self.log_file.open("ab")
        # Own process group, so Ctrl-C in a terminal reaches the hub first and the hub stops the broker last.
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc and self._proc.poll() is not None:
                raise LocalKafkaError(f"the Kafka broker exited with code {self._proc.returncode}:\n{self.tail()}")
            if READY_LINE in self.log_file.read_text(errors="replace") and _port_open(self.port):
                return
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(f"the Kafka broker was not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no broker log)"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, timeout)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def terminate(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if the process has not exited within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cluster_id() -> str:
    # The format KRaft expects: a base64url-encoded UUID of 22 characters (it may start with "-",
    # hence the --cluster-id=VALUE form above).
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
