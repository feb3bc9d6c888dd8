"""Kafka: topic names, topic creation, and producer/consumer factories with the hub's settings.

Kafka is the only shared state between the services: manifests, hits, per-member outboxes, and the
compacted watchlist topic that every profiler process converges on.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from kafka.structs import TopicPartition

from services.config import HubSettings
from services.errors import BrokerUnavailableError, ConfigError
from services.tls import record_certificate_expiry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def raw(self) -> str:
        """Bytes exactly as received, keyed by manifest id: trace and replay."""
        return f"{self.prefix}.raw.v1"

    @property
    def manifests(self) -> str:
        """Canonical Manifest, keyed by flight key, so a flight's versions stay in order in one partition."""
        return f"{self.prefix}.manifests.v1"

    @property
    def watchlists(self) -> str:
        """Compacted: one Watchlist record per owner member; the latest replaces the previous one."""
        return f"{self.prefix}.watchlists.v1"

    @property
    def rules(self) -> str:
        """Compacted: one member's rule file (YAML) per owner; the latest replaces the previous one."""
        return f"{self.prefix}.rules.v1"

    @property
    def board_policies(self) -> str:
        """Compacted: one member's board policy file (YAML) for interactive checks per owner; the latest replaces."""
        return f"{self.prefix}.board-policies.v1"

    @property
    def overrides(self) -> str:
        """Compacted and expiring: members' board overrides (BoardOverride), keyed MEMBER/hit id."""
        return f"{self.prefix}.overrides.v1"

    @property
    def console_users(self) -> str:
        """Compacted: the member console's officers (key MEMBER/username; JSON with an argon2 password hash)."""
        return f"{self.prefix}.console-users.v1"

    @property
    def deliveries(self) -> str:
        """Compacted: the router's DeliveryRecord per hit id (who got which version of it)."""
        return f"{self.prefix}.deliveries.v1"

    @property
    def intake_index(self) -> str:
        """Compacted: duplicate-detection keys of accepted manifests -> manifest id."""
        return f"{self.prefix}.intake-index.v1"

    @property
    def dispositions(self) -> str:
        """Members' outcomes for hits, keyed by hit id."""
        return f"{self.prefix}.dispositions.v1"

    @property
    def dead_letters(self) -> str:
        """Hits a member's webhook never accepted after every retry, with the member and the error as headers."""
        return f"{self.prefix}.deadletter.v1"

    @property
    def audit(self) -> str:
        """Append-only trail of deliveries, acknowledgements and dispositions, keyed by member."""
        return f"{self.prefix}.audit.v1"

    @property
    def hits(self) -> str:
        """Unrouted hits from the profiler, keyed by hit id."""
        return f"{self.prefix}.hits.v1"

    def outbox(self, member: str) -> str:
        """One member's durable queue; its single partition's offset is the member's cursor."""
        return f"{self.prefix}.outbox.{member.upper()}.v1"

    def outbox_member(self, topic: str) -> str | None:
        """The member whose outbox this topic is (outbox() read backwards), or None: finds the outboxes of
        members that have left the directory, whose hits are still personal data."""
        head, tail = f"{self.prefix}.outbox.", ".v1"
        if topic.startswith(head) and topic.endswith(tail) and len(topic) > len(head) + len(tail):
            return topic[len(head) : -len(tail)]
        return None

    def member_group(self, member: str, reader: str = "") -> str:
        """Consumer group whose committed offset on the outbox is the member's acknowledged cursor: its contact
        point's (reader ""), or one of its tools' (reader "cli", "console": each its own cursor)."""
        group = f"{self.prefix}.member.{member.upper()}"
        return f"{group}.reader.{reader}" if reader else group

    def webhook_group(self, member: str) -> str:
        """Consumer group of the member's webhook dispatcher: its committed offset is what the member answered."""
        return f"{self.prefix}.webhook.{member.upper()}"


DAY_MS = 24 * 3600 * 1000


def retention_ms(days: int) -> str:
    """A retention in days as Kafka's retention.ms (-1: kept until deleted)."""
    return "-1" if days == -1 else str(days * DAY_MS)


def topic_specs(settings: HubSettings, members: list[str]) -> dict[str, dict]:
    """Every topic the hub uses, with explicit partition counts, replication and configs (retention included)."""
    t = Topics(settings.topic_prefix)
    s = settings
    common = {
        "min.insync.replicas": str(s.min_insync_replicas),
        # Kafka deletes whole segments: a segment per day bounds how long expired or purged data stays on disk.
        "segment.ms": str(s.topic_segment_hours * 3600 * 1000),
    }
    big = {**common, "max.message.bytes": str(s.max_message_bytes + 1024 * 1024)}
    travellers = {**big, "retention.ms": retention_ms(s.traveller_retention_days)}
    # A member offline for a while must still find every unacknowledged hit when it returns.
    outbox = {**big, "retention.ms": retention_ms(s.outbox_retention_days)}
    # Delivery records and duplicate keys must outlive the hits and manifests they describe.
    table = {
        **common,
        "cleanup.policy": "compact,delete",
        "retention.ms": retention_ms(max(s.traveller_retention_days, s.outbox_retention_days)),
    }
    # Members' current watchlists and rule files: configuration, replaced by the next load, never expired.
    current = {**big, "cleanup.policy": "compact"}

    def spec(partitions: int, configs: dict[str, str]) -> dict:
        return {"num_partitions": partitions, "replication_factor": s.kafka_replication_factor, "configs": configs}

    specs: dict[str, dict] = {
        t.raw: spec(s.partitions, travellers),
        t.manifests: spec(s.partitions, travellers),
        t.hits: spec(s.partitions, travellers),
        t.watchlists: spec(1, current),
        t.rules: spec(1, current),
        t.console_users: spec(1, current),
        t.board_policies: spec(1, current),
        # Overrides are about one traveller on one flight (a hit id, an officer's reason): kept like the other tables
        # of travellers' flights (retention, and `apihub purge` tombstones them), not like configuration.
        t.overrides: spec(1, table),
        t.deliveries: spec(s.partitions, table),
        t.intake_index: spec(s.partitions, table),
        t.dead_letters: spec(1, outbox),
        # Outcomes outlive their free-text notes: `apihub purge` strips the notes (services.purge).
        t.dispositions: spec(1, {**common, "retention.ms": retention_ms(s.disposition_retention_days)}),
        # Oversight needs the trail (ids only, no personal data) for years.
        t.audit: spec(1, {**common, "retention.ms": retention_ms(s.audit_retention_days)}),
    }
    for member in members:
        specs[t.outbox(member)] = spec(1, outbox)
    return specs


@dataclass
class TopicReport:
    """What ensure_topics did: topics created, configs changed on existing topics (old value, new value), and what
    it could not do (names and config keys only: nothing personal)."""

    created: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, tuple[str | None, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        said = [f"created {name}" for name in self.created]
        for name, keys in sorted(self.changed.items()):
            said += [f"changed {name}: {k} {readable(k, was)} -> {readable(k, now)}" for k, (was, now) in keys.items()]
        return said + [f"not done: {problem}" for problem in self.problems]


def readable(key: str, value: str | None) -> str:
    """A config value as Kafka has it, with days or hours beside milliseconds."""
    if value is None:
        return "(unset)"
    if key.endswith(".ms") and value.lstrip("-").isdigit():
        ms = int(value)
        if ms == -1:
            return "-1 (forever)"
        if ms and ms % DAY_MS == 0:
            return f"{value} ({ms // DAY_MS} days)"
        if ms and ms % 3_600_000 == 0:
            return f"{value} ({ms // 3_600_000} hours)"
    return value


def ensure_topics(settings: HubSettings, members: list[str]) -> list[str]:
    """Create the hub's topics that do not exist yet and apply the settings to those that do (retention,
    replicas); return the names created. apply_topic_specs says what changed."""
    return apply_topic_specs(settings, members).created


def apply_topic_specs(settings: HubSettings, members: list[str]) -> TopicReport:
    """Create missing topics; set the configs of topic_specs on existing ones where they differ (a changed
    retention applies at once); report replication factors that differ (Kafka cannot change them in place)."""
    specs = topic_specs(settings, members)
    report = TopicReport()
    admin = make_admin(settings, "apihub-admin")
    try:
        existing = set(admin.list_topics())
        missing = {name: spec for name, spec in specs.items() if name not in existing}
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                # Another process created some of them first: fine, they exist (with the same specs).
                log.info("some topics were created concurrently")
            report.created = sorted(missing)
        present = {name: spec for name, spec in specs.items() if name in existing}
        if present:
            try:
                _align_configs(admin, present, report)
                _check_replication(admin, present, settings.kafka_replication_factor, report)
            except KafkaError as exc:  # e.g. no DescribeConfigs/AlterConfigs right: the hub still runs, and says so
                report.problems.append(f"settings not applied to existing topics ({type(exc).__name__}: {exc})")
    finally:
        admin.close()
    for line in report.lines():
        (log.warning if line.startswith("not done") else log.info)("topics: %s", line)
    return report


def _align_configs(admin: KafkaAdminClient, specs: dict[str, dict], report: TopicReport) -> None:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, list(spec["configs"])) for name, spec in specs.items()]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    wanted: dict[str, dict[str, str]] = {}
    for name, spec in specs.items():
        now = {key: (entry or {}).get("value") for key, entry in described.get(name, {}).items()}
        differ = {key: value for key, value in spec["configs"].items() if now.get(key) != value}
        if differ:
            wanted[name] = differ
            report.changed[name] = {key: (now.get(key), value) for key, value in differ.items()}
    if not wanted:
        return
    # Incremental (SET per key): the topic's other configs stay as they are.
    outcome = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs) for name, configs in wanted.items()],
        raise_on_unknown=False,
    ).get("topic", {})
    for name in wanted:
        result = outcome.get(name, "no answer")
        if result != "OK":
            report.changed.pop(name, None)
            report.problems.append(f"{name}: configs not changed ({result})")


def _check_replication(admin: KafkaAdminClient, specs: dict[str, dict], factor: int, report: TopicReport) -> None:
    for topic in admin.describe_topics(list(specs)):
        have = sorted({len(p.get("replica_nodes") or []) for p in topic.get("partitions") or []})
        if have and have != [factor]:
            report.problems.append(
                f"{topic['name']}: replication factor {'/'.join(map(str, have))}, settings say {factor} "
                "(Kafka cannot change it in place: reassign the partitions with kafka-reassign-partitions.sh)"
            )


# -- connecting: every Kafka client the hub makes gets its connection options here ------------------------------
class KafkaUnreachableError(BrokerUnavailableError, KafkaTimeoutError):
    """No broker completed a connection in time: down, not speaking the configured protocol, or refusing the hub's
    certificate or credentials (the message says which when kafka-python reported why). A HubError, so commands
    print it, and a KafkaTimeoutError, so the workers' handling of a broker outage retries it."""

    def __str__(self) -> str:
        return Exception.__str__(self)  # the message alone, without KafkaError's "ClassName: " prefix


class _Secret(str):
    """The SASL password, a str as kafka-python needs it, shown as *** wherever a repr of the client's
    configuration is logged (KafkaAdminClient logs its configuration at debug level)."""

    def __repr__(self) -> str:
        return "'***'"


def kafka_client_options(settings: HubSettings) -> dict[str, Any]:
    """How every Kafka client of the hub connects: bootstrap servers, security protocol, TLS and SASL, as the
    settings say. ConfigError, naming the setting, when a file they name cannot be used (HubSettings has already
    refused settings that do not fit together). Files are read on every call: a rotated secret is picked up."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = kafka_ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = _Secret(kafka_sasl_password(settings))
    return options


def _ssl_reason(exc: OSError) -> str:
    reason = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
    return str(reason or exc)


def _no_key_password() -> str:
    # Called by OpenSSL only for an encrypted key; without it OpenSSL would prompt on the terminal (a hung service).
    raise ConfigError("APIHUB_KAFKA_SSL_KEY_FILE: the private key is encrypted; the hub needs it unencrypted (PEM)")


def kafka_ssl_context(settings: HubSettings) -> ssl.SSLContext:
    """TLS to the brokers: their certificates verified against APIHUB_KAFKA_SSL_CA_FILE (or the system's roots),
    host names checked unless turned off, the hub's own certificate presented when set (mutual TLS)."""
    ca = settings.kafka_ssl_ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except OSError as exc:  # ssl.SSLError included: a file without a certificate
        reason = _ssl_reason(exc)
        raise ConfigError(f"APIHUB_KAFKA_SSL_CA_FILE={ca}: no readable PEM CA certificate ({reason})") from None
    if ca is not None:
        record_certificate_expiry("kafka_ca", ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.kafka_ssl_check_hostname
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(cert, key, password=_no_key_password)
        except OSError as exc:  # unreadable, not PEM, or a key that is not the certificate's
            raise ConfigError(
                f"APIHUB_KAFKA_SSL_CERT_FILE={cert} / APIHUB_KAFKA_SSL_KEY_FILE={key}: cannot use them as the hub's "
                f"certificate and its unencrypted key ({_ssl_reason(exc)})"
            ) from None
        record_certificate_expiry("kafka_client", cert)
    return context


def kafka_sasl_password(settings: HubSettings) -> str:
    """The SASL password: APIHUB_KAFKA_SASL_PASSWORD_FILE's content (one trailing newline is no part of it), or
    APIHUB_KAFKA_SASL_PASSWORD. Never logged, never in an error message."""
    path = settings.kafka_sasl_password_file
    if path is None:
        secret = settings.kafka_sasl_password
        return secret.get_secret_value() if secret is not None else ""
    env = f"APIHUB_KAFKA_SASL_PASSWORD_FILE={path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{env}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{env}: not UTF-8 text") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError(f"{env}: the file is empty")
    return password


def unreachable_message(settings: HubSettings, cause: BaseException | None) -> str:
    """What to tell an operator whose Kafka client could not connect: where, how, why (when known), what to check."""
    protocol = settings.kafka_security_protocol
    how = protocol
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        how += f", SASL {settings.kafka_sasl_mechanism} as user '{settings.kafka_sasl_username}'"
    head = f"cannot connect to Kafka at {settings.bootstrap} ({how})"
    if isinstance(cause, SaslAuthenticationFailedError):
        return (
            f"{head}: the broker refused the hub's credentials; check APIHUB_KAFKA_SASL_USERNAME, the password "
            "(APIHUB_KAFKA_SASL_PASSWORD_FILE or APIHUB_KAFKA_SASL_PASSWORD) and APIHUB_KAFKA_SASL_MECHANISM"
        )
    if isinstance(cause, UnsupportedSaslMechanismError):
        return f"{head}: {cause.args[0] if cause.args else cause}; set APIHUB_KAFKA_SASL_MECHANISM to one of them"
    text = str(cause) if cause is not None else ""
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"{head}: the broker's certificate is not trusted ({text}); check APIHUB_KAFKA_SSL_CA_FILE, and that the "
            "certificate names the host dialled (APIHUB_KAFKA_BOOTSTRAP, APIHUB_KAFKA_SSL_CHECK_HOSTNAME)"
        )
    if "CERTIFICATE_REQUIRED" in text or "BAD_CERTIFICATE" in text or "UNKNOWN_CA" in text:
        return (
            f"{head}: the broker refused the hub's client certificate, or its absence ({text}); check "
            "APIHUB_KAFKA_SSL_CERT_FILE and APIHUB_KAFKA_SSL_KEY_FILE"
        )
    last = f" (last error: {text})" if text else ""
    if "ECONNREFUSED" in text or "Connection refused" in text:
        return f"{head}: nothing accepts connections there{last}: is the broker running at APIHUB_KAFKA_BOOTSTRAP?"
    checks = f"does its listener there speak {protocol} (APIHUB_KAFKA_SECURITY_PROTOCOL)"
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        checks += (
            ", and accept the hub's SASL user and password (APIHUB_KAFKA_SASL_USERNAME, APIHUB_KAFKA_SASL_PASSWORD_FILE"
            " or APIHUB_KAFKA_SASL_PASSWORD, APIHUB_KAFKA_SASL_MECHANISM)"
        )
    if "disconnected" in text:
        # A broker refusing a password answers and closes at once; kafka-python 3.0 loses the answer in the close,
        # so a wrong password looks like any other closed connection here. The broker's log says which it was.
        return f"{head}: the broker closed the connection{last}: {checks}? The broker's log says why it closed it."
    return f"{head}: no broker completed a connection{last}: is it running, and {checks}?"


class _BootstrapFailures(logging.Handler):
    """kafka-python logs why each bootstrap connection failed, then raises a bare timeout: this keeps the last
    reason, so the error can say "refused the credentials" rather than "timed out"."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._last: BaseException | None = None
        self._refused: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        # Not the final timeout, logged last: it says only that time ran out.
        reasons = (a for a in args if isinstance(a, BaseException) and not isinstance(a, KafkaTimeoutError))
        self._last = next(reasons, self._last)
        if isinstance(self._last, SaslAuthenticationFailedError | UnsupportedSaslMechanismError):
            self._refused = self._last

    @property
    def last(self) -> BaseException | None:
        """Why connecting failed: the broker's refusal of the credentials if it was ever seen (later attempts then
        end in closed connections or time-outs that say less), else the last error."""
        return self._refused or self._last


_CONNECTIONS_LOG = logging.getLogger("kafka.net.manager")


def _connect(client_class, settings: HubSettings, options: dict[str, Any]):
    """client_class(**options); KafkaUnreachableError saying why when no broker could be reached in time."""
    failures = _BootstrapFailures()
    _CONNECTIONS_LOG.addHandler(failures)
    try:
        return client_class(**options)
    except KafkaTimeoutError as exc:  # kafka-python's bootstrap ran out of time
        raise KafkaUnreachableError(unreachable_message(settings, failures.last)) from exc
    finally:
        _CONNECTIONS_LOG.removeHandler(failures)


def make_admin(settings: HubSettings, client_id: str, **overrides) -> KafkaAdminClient:
    """Admin client (topics, configs, offsets) connecting as the settings say; no broker: an error within 10 s."""
    options = dict(
        **kafka_client_options(settings),
        client_id=client_id,
        bootstrap_timeout_ms=10_000,
        reconnect_backoff_max_ms=2_000,
    )
    options.update(overrides)
    return _connect(KafkaAdminClient, settings, options)


def make_producer(settings: HubSettings, client_id: str, **overrides) -> KafkaProducer:
    """Idempotent, acks=all producer that batches (linger) and accepts manifest-sized records."""
    options = dict(
        **kafka_client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=settings.max_message_bytes + 1024 * 1024,
        # A send that cannot reach the broker fails within this time instead of hanging a caller.
        max_block_ms=10_000,
        request_timeout_ms=10_000,
        delivery_timeout_ms=20_000,
        bootstrap_timeout_ms=10_000,
        # Find a restarted broker within seconds, not the client's default of up to 30 s.
        reconnect_backoff_max_ms=2_000,
    )
    options.update(overrides)
    return _connect(KafkaProducer, settings, options)


def group_options(settings: HubSettings) -> dict[str, int]:
    """How a group consumer keeps its membership: a silent member loses its partitions after the session timeout
    (kafka-python's default, 45 s, held a dead profiler's partitions for most of a minute), heartbeats every third
    of it, and a batch may hold the consumer between polls for max_poll_interval."""
    session = settings.kafka_session_timeout_ms
    return {
        "session_timeout_ms": session,
        "heartbeat_interval_ms": max(session // 3, 100),
        "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
    }


def make_consumer(settings: HubSettings, group_id: str | None, client_id: str, **overrides) -> KafkaConsumer:
    """Consumer that never auto-commits: offsets are committed only after outputs are acknowledged. A group
    consumer that subscribes (the profiler, the router) passes ``group_instance_id`` (services.instances) to be
    a static member: its replacement takes its partitions back at once."""
    options = dict(
        **kafka_client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The broker answers a fetch as soon as one byte is there (fetch.min.bytes=1), so a long wait costs
        # no latency; it only bounds idle polling. 50 ms here made every idle outbox stream 20 fetches/s and
        # the router half a core at no load (and p99 receipt-to-delivery 193 -> 155 ms at 1,000 travellers/s).
        fetch_max_wait_ms=500,
        max_partition_fetch_bytes=settings.max_message_bytes + 1024 * 1024,
        bootstrap_timeout_ms=10_000,
        reconnect_backoff_max_ms=2_000,
        **(group_options(settings) if group_id is not None else {}),
    )
    options.update(overrides)
    return _connect(KafkaConsumer, settings, options)


class FailureRun:
    """A run of failures of one repeated action, logged as state changes rather than a line per retry: the first
    failure (a warning), a reminder while it lasts (after a minute, then at three times the time elapsed, at most
    hourly), and the recovery, saying how long it lasted and how many attempts failed. Reasons are exception type
    names or the caller's own words, never record contents."""

    def __init__(self, logger: logging.Logger, what: str, first_reminder_s: float = 60.0, clock=time.monotonic):
        self._log = logger
        self.what = what
        self._first_reminder_s = first_reminder_s
        self._clock = clock
        self._since: float | None = None
        self._attempts = 0
        self._remind_at = 0.0

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, reason: str) -> None:
        now = self._clock()
        self._attempts += 1
        if self._since is None:
            self._since, self._remind_at = now, now + self._first_reminder_s
            self._log.warning("%s failed (%s); retrying", self.what, reason)
        elif now >= self._remind_at:
            lasted = now - self._since
            self._remind_at = now + min(2 * lasted, 3600.0)
            self._log.warning(
                "%s still failing after %.0fs (%d attempts, last: %s)", self.what, lasted, self._attempts, reason
            )

    def succeeded(self) -> None:
        if self._since is None:
            return
        self._log.info(
            "%s works again after %.0fs (%d failed attempts)", self.what, self._clock() - self._since, self._attempts
        )
        self._since, self._attempts = None, 0


def await_topic_metadata(
    consumer: KafkaConsumer, topic: str, stopping: threading.Event, backoff_s: float = 1.0
) -> bool:
    """Wait until the consumer knows the topic's partitions; call before the first poll of a group consumer.

    kafka-python 3.0.12 otherwise joins the group before it has the topic's metadata, gets an empty
    assignment, and rebalances again once the metadata arrives; if that second rebalance straddles the end
    of a poll's timer, the consumer stays joined with no partitions and never consumes (seen in the
    end-to-end test about one run in five). Returns False if ``stopping`` was set first.
    """
    run = FailureRun(log, f"metadata of topic {topic}")
    while not stopping.is_set():
        try:
            if consumer.partitions_for_topic(topic):
                run.succeeded()
                return True
            run.failed("the topic has no partitions yet")
        except KafkaError as exc:
            run.failed(type(exc).__name__)
        stopping.wait(backoff_s)
    return False


class TableReader:
    """Reads a compacted topic from the beginning into memory and catches up to its end on demand.

    Every process that needs a table (watchlists, delivery records, duplicate keys) reads all of it with
    no consumer group, so all instances converge; ``catch_up()`` before acting on an input guarantees that
    whatever was acknowledged on the table before the input was read has been applied.
    """

    def __init__(self, settings: HubSettings, topic: str, apply, client_id: str, consumer=None, poll_ms: int = 100):
        self._topic = topic
        self._apply = apply  # apply(key: bytes | None, value: bytes | None, record) -> None
        self._poll_ms = poll_ms
        self._consumer = consumer or make_consumer(settings, None, client_id)
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic} does not exist: create the hub's topics (apihub topics)")
        self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)

    def catch_up(self, timeout_s: float = 30.0, stopping: threading.Event | None = None) -> bool:
        """Apply records up to the end offsets read now; False if ``stopping`` was set first."""
        end = self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < end[tp] for tp in self._partitions):
            if stopping is not None and stopping.is_set():
                return False
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{self._topic} did not catch up within {timeout_s:.0f}s")
            for batch in self._consumer.poll(timeout_ms=self._poll_ms).values():
                for record in batch:
                    self._apply(record.key, record.value, record)
        return True

    def follow(self, stopping: threading.Event) -> None:
        """Apply new records as they arrive until ``stopping`` is set (run it in its own thread)."""
        run = FailureRun(log, f"reading {self._topic}")
        while not stopping.is_set():
            try:
                for batch in self._consumer.poll(timeout_ms=200).values():
                    for record in batch:
                        self._apply(record.key, record.value, record)
            except KafkaError as exc:
                run.failed(type(exc).__name__)
                stopping.wait(1.0)
            else:
                run.succeeded()

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def read_to_end(settings: HubSettings, topic: str, client_id: str, idle_polls: int = 5):
    """Every record of a topic, from the beginning to its current end (no group, nothing committed): for
    operators' read-back commands. The end is where ``idle_polls`` polls in a row return nothing."""
    consumer = make_consumer(settings, None, client_id)
    consumer.subscribe([topic])
    idle = 0
    try:
        while idle < idle_polls:
            polled = consumer.poll(timeout_ms=200)
            idle = 0 if polled else idle + 1
            for batch in polled.values():
                yield from batch
    finally:
        consumer.close()
