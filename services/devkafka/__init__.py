"""A real single-node Apache Kafka (KRaft) on loopback, for the quick start, the tests and CI.

The broker's jars come from Maven Central through ``pom.xml`` beside this file (cached per pom, so a
version bump fetches anew); storage is formatted once per data directory; the broker runs as a child
JVM and is stopped with SIGTERM (a controlled shutdown), then SIGKILL if it hangs.

By default the broker's client listener is plain text on loopback. Given a ``SaslSslListener`` it requires TLS and
SASL instead (and client certificates, if asked): what the tests of the hub's Kafka security settings run against.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
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
    """Resolve a pom's runtime dependencies from Maven Central into the per-user cache (once per pom content;
    its comments left out, so editing one costs no new download)."""
    content = re.sub(r"<!--.*?-->", "", pom, flags=re.DOTALL)
    libs = cache_dir() / f"{name}-{hashlib.sha256(content.encode()).hexdigest()[:12]}" / "libs"
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


def server_properties(data_dir: Path, port: int, controller_port: int, secure: SaslSslListener | None = None) -> str:
    """Combined broker+controller on loopback; replication factors of 1 because there is one node. With ``secure``,
    the client listener requires SASL_SSL instead of plain text."""
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
        # After a crash (kill -9) the controller keeps the broker's old registration until its session expires, and
        # the broker starting again on the same data waits for that: 9 s by default. One node on loopback needs
        # less: 3 s, with a heartbeat every 0.5 s, still leaves room for a busy machine.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
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
    if secure is not None:
        lines.update(secure.properties(port, controller_port))
    return "".join(f"{k}={v}\n" for k, v in lines.items())


# User names and passwords go into a JAAS line and the storage tool's SCRAM syntax: no quoting, so no quotes either.
_SASL_WORD = re.compile(r"[A-Za-z0-9._-]+")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SaslSslListener:
    """The broker's client listener as SASL_SSL: TLS with the broker's certificate, then SASL with one of PLAIN,
    SCRAM-SHA-256 and SCRAM-SHA-512 for ``users``; with ``client_auth`` "required" a client must moreover present a
    certificate issued by the ``truststore`` CAs (mutual TLS). Key material in PEM files (ssl.keystore.type=PEM)."""

    keystore: Path  # the broker's certificate chain (leaf first) and its unencrypted PKCS#8 private key
    truststore: Path  # CA certificates: of clients' certificates (and of the broker's own)
    users: Mapping[str, str]  # user name -> password
    client_auth: str = "required"  # or "requested", "none"
    # The client side of throwaway material made by dev_sasl_ssl_listener (for tests): a certificate and its key.
    client_cert: Path | None = None
    client_key: Path | None = None

    def __post_init__(self) -> None:
        for name, password in self.users.items():
            if not (_SASL_WORD.fullmatch(name) and _SASL_WORD.fullmatch(password)):
                raise LocalKafkaError("SASL user names and passwords of the local broker: letters, digits, . _ -")

    def properties(self, port: int, controller_port: int) -> dict[str, str]:
        """server.properties lines that make the client listener SASL_SSL (the controller's stays on loopback)."""
        listeners = f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        # The broker's own PLAIN identity on its inter-broker listener (the same, on one node); never handed out.
        broker = secrets.token_hex(16)
        plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in {**self.users, "broker": broker}.items())
        jaas = "org.apache.kafka.common.security"
        lines = {
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(("PLAIN", *SCRAM_MECHANISMS)),
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f'{jaas}.plain.PlainLoginModule required username="broker" password="{broker}" {plain_users};'
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore.resolve()),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore.resolve()),
            # Kafka ignores the broker-wide ssl.client.auth on SASL_SSL listeners: only the listener's own counts.
            "listener.name.sasl_ssl.ssl.client.auth": self.client_auth,
        }
        for mechanism in SCRAM_MECHANISMS:
            lines[f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"] = (
                f"{jaas}.scram.ScramLoginModule required;"
            )
        return lines

    def scram_arguments(self) -> list[str]:
        """The storage tool's --add-scram arguments: SCRAM credentials live in the cluster's metadata (KRaft)."""
        return [
            f"--add-scram={mechanism}=[name={name},password={password}]"
            for name, password in self.users.items()
            for mechanism in SCRAM_MECHANISMS
        ]


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600: key material is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_usage(x509, signs_certificates: bool):
    """A CA signs certificates (and CRLs); a leaf signs handshakes (EC keys: digital signature)."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def dev_sasl_ssl_listener(
    out: Path, users: Mapping[str, str], client: str = "apihub", days: int = 2
) -> SaslSslListener:
    """A SASL_SSL listener requiring client certificates, with throwaway key material (EC P-256, made with
    ``cryptography`` as `apihub dev certs` makes its own) written into ``out``: a CA (ca.pem), the broker's
    certificate for 127.0.0.1 and localhost with its key (broker-keystore.pem), and a client certificate with common
    name ``client`` (client.pem, client-key.pem). Not `apihub dev certs`' files: Kafka checks at start that the
    broker's certificate would pass as a client's too (it is its own inter-broker client), so it must allow both
    uses. Never for production."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apihub dev Kafka CA")])

    def issue(common_name: str, key, usages: list, sans: list, ca: bool = False):
        name = ca_name if ca else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(_key_usage(x509, signs_certificates=ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def private(key) -> bytes:
        pkcs8 = serialization.PrivateFormat.PKCS8  # the form Kafka's PEM key store reads
        return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())

    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_bytes(issue("", ca_key, [], [], ca=True))
    broker_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    hosts = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _write_private(out / "broker-keystore.pem", issue("localhost", broker_key, both, hosts) + private(broker_key))
    (out / "client.pem").write_bytes(issue(client, client_key, [ExtendedKeyUsageOID.CLIENT_AUTH], []))
    _write_private(out / "client-key.pem", private(client_key))
    return SaslSslListener(
        out / "broker-keystore.pem",
        out / "ca.pem",
        dict(users),
        client_cert=out / "client.pem",
        client_key=out / "client-key.pem",
    )


@dataclass
class LocalKafka:
    """One broker process. ``with LocalKafka(dir) as k: k.bootstrap`` starts it and stops it."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    progress: object = print
    # None: the client listener is plain text (loopback only); set, it requires SASL_SSL.
    secure: SaslSslListener | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    # Class-data archive of the broker (_class_data_sharing): the one to map, and the one this broker writes.
    _archive: Path | None = field(default=None, repr=False)
    _archiving: Path | None = field(default=None, repr=False)

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
        props.write_text(server_properties(self.data_dir, self.port, self.controller_port, self.secure))
        if self.secure is not None:
            props.chmod(0o600)  # it holds the SASL passwords
        for p in (self.port, self.controller_port):
            if _port_open(p):
                raise LocalKafkaError(
                    f"port 127.0.0.1:{p} is already in use: is another broker running (one that `apihub up` or "
                    "`apihub kafka run` started and left behind)? Stop that process, or set APIHUB_KAFKA_PORT and "
                    "APIHUB_KAFKA_CONTROLLER_PORT to free ports"
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
                *(self.secure.scram_arguments() if self.secure else []),
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
            *self._class_data_sharing(libs),
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

    def _class_data_sharing(self, libs: Path) -> list[str]:
        """JVM options for an application class-data archive of the broker (JDK CDS): loading its classes from the
        archive instead of the jars makes a start, and a restart after a crash, several seconds faster on a busy
        machine. The first broker of a classpath and JVM that stops cleanly writes the archive (to a file of its
        own, renamed into place by ``stop``), later ones map it; a JVM that cannot use it starts without it."""
        java = os.path.realpath(shutil.which("java") or "java")
        key = hashlib.sha256(f"{java}\n{libs.resolve()}".encode()).hexdigest()[:12]
        self._archive = libs.parent / f"broker-cds-{key}.jsa"
        if self._archive.exists():
            return [f"-XX:SharedArchiveFile={self._archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        self._archiving = self.data_dir / "broker-cds.partial.jsa"
        self._archiving.unlink(missing_ok=True)
        return [f"-XX:ArchiveClassesAtExit={self._archiving}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]

    def _keep_archive(self) -> None:
        partial, self._archiving = self._archiving, None
        if partial is not None and partial.exists() and partial.stat().st_size > 0 and self._archive is not None:
            os.replace(partial, self._archive)  # atomic: a broker starting now maps a whole archive or none

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
            self._keep_archive()

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
