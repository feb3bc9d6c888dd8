"""Settings: one frozen object per process, built at the entry point from APIHUB_* environment variables."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only for the local demo and tests. A deployment sets APIHUB_AUTH_SECRET; `apihub up` warns when it does not.
DEMO_AUTH_SECRET = "pacific-apihub-local-demo-secret-not-for-production"
# The risk model's review threshold for members that set none in model_thresholds.
DEFAULT_MODEL_THRESHOLD = 0.30
# Watchlist screening bands of members that set none (screening_bands): a match scoring at least the alert band
# is an alert for a human; one in [review, alert) reaches the member marked for review; below review, nothing.
DEFAULT_SCREENING_ALERT = 0.85
DEFAULT_SCREENING_REVIEW = 0.70
# Threads of the profiler's check server kept for health checks and refusals (the others take checks).
CHECK_SPARE_THREADS = 16
# The two bands a member may set in screening_bands.
SCREENING_BAND_FIELDS = ("alert", "review")
# Members' dispositions as training labels (services.profiler.training): the weight of one disposition row against
# one synthetic row, and the most of the total training weight they may carry together. Here, not in training.py,
# so that `apihub model train --help` states them without loading scikit-learn.
DEFAULT_LABEL_WEIGHT = 10.0
MAX_LABEL_WEIGHT_SHARE = 0.25
# The settings naming PEM files for gRPC TLS (servers' and clients').
TLS_FILES = (
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "tls_ca_file",
    "tls_client_cert_file",
    "tls_client_key_file",
)
# The settings of the Kafka connection that name files or hold the password: empty means unset.
KAFKA_SECRET_SETTINGS = (
    "kafka_ssl_ca_file",
    "kafka_ssl_cert_file",
    "kafka_ssl_key_file",
    "kafka_sasl_password",
    "kafka_sasl_password_file",
)


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APIHUB_", frozen=True, extra="ignore")

    # Kafka bootstrap servers ("host:port,host:port"). Empty: `apihub up` starts a local broker on kafka_port.
    kafka_bootstrap: str = ""
    # Ports of the local single-node broker that `apihub up` / `apihub kafka run` run on loopback.
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    # Every topic name starts with this; tests give each run its own prefix.
    topic_prefix: str = "apihub"
    # Partitions of the manifests and hits topics: the most profiler/router processes that can share the work.
    partitions: int = 4
    # Copies of every topic the hub creates: 1 for the local single-node broker, 3 on a real cluster. Kafka cannot
    # change an existing topic's replication factor in place: `apihub topics` reports a mismatch (reassign the
    # partitions with Kafka's kafka-reassign-partitions.sh).
    kafka_replication_factor: int = 1
    # Copies that must hold a record before the broker acknowledges it (the hub writes with acks=all), set on every
    # topic as min.insync.replicas; 0: one less than the replication factor (at least 1), so one broker may be down.
    kafka_min_insync_replicas: int = 0
    # Where the local broker keeps its jars, data and logs, and `apihub up` the services' logs (logs/) and its
    # status file (status.json, read by `apihub status`).
    state_dir: Path = Path(".apihub")

    # Carrier-facing gRPC server (ManifestIntake).
    ingest_listen: str = "127.0.0.1:50051"
    # Member-facing gRPC server (HitDelivery, WatchlistAdmin).
    delivery_listen: str = "127.0.0.1:50052"
    # Carrier-facing interactive API (InteractiveCheck), served by each profiler process.
    check_listen: str = "127.0.0.1:50053"
    # The longest an interactive check takes: past it (or past the carrier's own gRPC deadline, whichever is
    # sooner) the answer is each member's fallback directive, never a silent OK to board.
    check_deadline_ms: int = 2000
    # Checks one carrier may make per second (a token bucket of check_burst travellers): a carrier cannot probe
    # the lists by checking made-up travellers at speed, nor slow another carrier's check-in.
    check_rate_per_carrier: float = 200.0
    check_burst: int = 400
    # Threads of the profiler's check server: checks are many and short, each waits for its batch (a thread each).
    check_grpc_threads: int = 256
    # Checks one carrier may have in progress at once (its check-in desks asking together), in place of
    # limit_carrier_calls on the profiler's check server (at most what the server's threads leave: see there).
    check_carrier_calls: int = 96
    # The profiler screens the checks waiting together, one batch at a time; under load a batch starts once its first
    # check has waited this long (a bigger batch costs little more than a small one: far less CPU per check, so the
    # answers stay fast when checks pour in); a check after a quiet spell is screened at once. 0: never wait.
    check_gather_ms: int = 100
    # Travellers in one check (a check-in party, or one iAPI message).
    check_max_travellers: int = 200
    # CUSRES ERC codes of each directive for iAPI (PAXLST) senders. 0Z (OK to board) and 1Z (no board) are the
    # codes observed in public iAPI profiles; the other two are this hub's choice: configure them per the
    # carriers' implementation guide.
    iapi_erc_codes: dict[str, str] = {
        "OK_TO_BOARD": "0Z",
        "DO_NOT_BOARD": "1Z",
        "CONTACT_AUTHORITY": "2Z",
        "INSUFFICIENT_DATA": "4Z",
    }
    # Members' profiling units' web console (HTTP; HTTPS with the TLS settings below): `apihub serve console`.
    console_listen: str = "127.0.0.1:8080"
    # Console sign-in sessions end after this long without a request, and in any case this long after sign-in.
    console_session_idle_minutes: float = 30.0
    console_session_max_hours: float = 12.0
    # Sign-in attempts per user name and per client address in a minute before the console answers "too many".
    console_sign_in_per_minute: int = 10
    # Where the console reaches the router's member services ("host:port"). Unset: this host's delivery_listen.
    console_router: str = ""
    # The console's own store of the hits it read for its members (SQLite). Unset: console.sqlite in state_dir.
    console_workspace: Path | None = None
    # Prometheus /metrics ports, one per service process; 0 binds an ephemeral port, -1 disables.
    ingest_metrics_port: int = 9464
    profiler_metrics_port: int = 9465
    router_metrics_port: int = 9466
    console_metrics_port: int = 9468
    # `apihub up`'s supervisor (apihub_supervisor_up, _restarts_total, _started_seconds per service); a port in use
    # is reported and the hub runs without the page.
    supervisor_metrics_port: int = 9467
    # `apihub up` restarts a service (or the local broker) that exits: after supervisor_backoff_seconds, doubled
    # for each restart it had within supervisor_restart_window_seconds, at most supervisor_backoff_max_seconds. A
    # service that exits again when it has had supervisor_restart_budget restarts within the window stops the whole
    # hub (exit status 1); 0 never restarts.
    supervisor_backoff_seconds: float = 1.0
    supervisor_backoff_max_seconds: float = 30.0
    supervisor_restart_budget: int = 5
    supervisor_restart_window_seconds: float = 300.0
    # Address the /metrics pages listen on. They have no authentication, so loopback by default: set 0.0.0.0 (or
    # one interface's address) only where the network in front of them restricts who can scrape, as inside the
    # docker-compose network, where Prometheus scrapes the services.
    metrics_host: str = "127.0.0.1"
    # Retention of personal data (days). The hub sets it on its topics when it creates them, and applies a change
    # to existing ones whenever it starts (`apihub up`, the router) and on `apihub topics`. Kafka deletes whole log
    # segments, so data outlives its retention on disk by up to topic_segment_hours. `apihub purge` deletes earlier.
    # Travellers as received (raw), canonical manifests and hits.
    traveller_retention_days: int = 30
    # How long a member's outbox keeps hits it has not acknowledged (days): the longest tolerated outage. Also the
    # dead letters (hits a webhook never accepted). Duplicate keys (intake index) and delivery records are kept for
    # the longer of this and traveller_retention_days: they must outlive what they describe.
    outbox_retention_days: int = 30
    # A member's webhook failing (no 2xx) for less than this (seconds) keeps its hits: they are tried again, in order,
    # until the endpoint answers. Past it, each hit's attempts (8, half a minute at most) end in the dead-letter
    # topic, so an endpoint gone for good does not hold the outbox for ever. Default: a day (within the outbox's
    # retention).
    webhook_give_up_seconds: float = 86_400.0
    # The audit trail (ids, events, no personal data): five years. -1 keeps it until an operator purges it.
    audit_retention_days: int = 1826
    # Members' dispositions: hit id, member, outcome and the hit's reasons (labels for training and precision).
    # -1 keeps them until an operator purges them.
    disposition_retention_days: int = 1826
    # Dispositions' free-text notes: `apihub purge --expired-notes` (run it daily) re-publishes older dispositions
    # without their note and deletes the originals. Not shorter than disposition_retention_days (or -1): the notes
    # simply go with their dispositions.
    disposition_note_retention_days: int = 365
    # How often the topics start a new log segment (hours): Kafka deletes only whole segments that are past the
    # retention (or below a purge's new log start), so this bounds how long deleted data stays on disk.
    topic_segment_hours: int = 24
    # Per-flight state held in memory by the long-running services (the router's delivery ledger; intake's duplicate
    # keys), in days. A flight whose departure date (UTC) is more than this many days past is closed: the router drops
    # what it held about it and ignores hits and withdrawals that still arrive for it (a late amendment reaches no
    # member; apihub_router_closed_flight_hits counts them). Intake forgets duplicate keys stored this long ago (a
    # resend after that is stored again under the same manifest id). The compacted topics (deliveries,
    # intake-index) stay the source of truth; keep this within their retention (the longer of
    # traveller_retention_days and outbox_retention_days), which is what a restarted service can rebuild from.
    flight_state_days: int = 14
    # Most delivery records of flights without a departure date (age unknown) the router keeps in memory; the least
    # recently recorded go first (apihub_router_ledger_evicted{reason="count"}). Accepted manifests always have one.
    flight_state_undated_max: int = 100_000
    # Most duplicate-detection keys intake keeps in memory (two per manifest); the oldest go first.
    intake_index_max_keys: int = 1_000_000
    # How long intake waits for the broker to acknowledge a manifest before answering UNAVAILABLE (seconds).
    intake_ack_timeout_seconds: float = 15.0
    # `apihub submit`: the deadline of each call it makes (one JSON manifest, a bulk stream of at most 500, or one
    # PAXLST interchange), in seconds. A call past it leaves its files unacknowledged (exit status 3): send them again.
    submit_timeout_seconds: float = 60.0
    # Largest manifest a carrier may send in one gRPC message or Kafka record (bytes).
    max_message_bytes: int = 16 * 1024 * 1024
    # Intake limits of one manifest (services/edge/cleaning.py). More travellers or more legs: the manifest is
    # rejected with an error naming the field and the limit (it cannot be screened as a whole; the carrier sends it
    # in parts). The largest cruise ships carry about 9,500 people with their crew. More documents on one traveller:
    # the first ones are kept and the receipt warns.
    max_manifest_travellers: int = 20_000
    max_manifest_legs: int = 250
    max_traveller_documents: int = 20

    # Limits of each gRPC server (intake, member delivery: each its own), services/limits.py. Threads of the server;
    # grpc refuses a call at once (maximum_concurrent_rpcs) rather than queue it when all are busy. Every open stream
    # (SubmitManifests, Subscribe) holds one for as long as it is open.
    grpc_threads: int = 128
    # Calls in progress at once for all principals together (health checks not counted): below grpc_threads, so
    # the threads above it always answer health checks and refusals.
    limit_total_calls: int = 96
    # Of limit_total_calls, the last ones are kept for principals that hold at most one call: when the others fill
    # the rest, a carrier or member that holds none (or only its Subscribe stream, to Ack) still gets in.
    limit_reserved_calls: int = 32
    # Per carrier (by token): calls in progress (unary and streams together), of which streams, and bytes of
    # requests in progress (at least max_message_bytes, so one largest manifest always fits).
    limit_carrier_calls: int = 8
    limit_carrier_streams: int = 4
    limit_carrier_bytes: int = 32 * 1024 * 1024
    # Per member: the same, and watchlist or rule file loads in progress (each replaces the whole list or rule set).
    limit_member_calls: int = 8
    limit_member_streams: int = 4
    limit_member_admin_calls: int = 1
    limit_member_bytes: int = 32 * 1024 * 1024
    # All calls without a valid token together (reflection, health Watch; the others are refused UNAUTHENTICATED).
    limit_anonymous_calls: int = 4
    limit_anonymous_streams: int = 2
    limit_anonymous_bytes: int = 1024 * 1024

    # Key that signs carrier and member tokens (JWT, HS256) when APIHUB_AUTH_KEYS is not set: a key ring of this
    # one key, whose id is APIHUB_AUTH_KEY_ID ("default" when unset). At least 16 characters; 32 bytes or more
    # recommended (RFC 7518; PyJWT warns below that).
    auth_secret: str = DEMO_AUTH_SECRET
    # Key ring, for rotation (JSON {"k2": "new secret", "k1": "old secret"}, keys as APIHUB_AUTH_SECRET): each key
    # verifies the tokens that name it (their header's kid), and APIHUB_AUTH_KEY_ID signs new tokens and the audit
    # seals. Set, it replaces APIHUB_AUTH_SECRET (list that secret as "default" to keep its tokens valid); a key
    # removed from the ring invalidates every token it signed. Empty: APIHUB_AUTH_SECRET alone.
    auth_keys: dict[str, str] = {}
    # Id of the key that signs: one of APIHUB_AUTH_KEYS (may stay empty when the ring holds one key), or the id
    # given to APIHUB_AUTH_SECRET. Empty: "default".
    auth_key_id: str = ""
    # Lifetime of a new token in days (`apihub dev token --expires` overrides it for one token).
    token_lifetime_days: float = 90.0
    # Clock difference tolerated between the issuer and the hub when checking a token's expiry and issue time (s).
    token_leeway_seconds: float = 60.0
    # Router: how often it seals the audit trail (seconds; also once when it stops); 0: this router process does
    # not seal (another one must, or `apihub audit verify` reports the records as unsealed).
    audit_seal_seconds: float = 30.0
    # Member directory (YAML); empty: the PIDC directory shipped with the hub.
    directory_file: Path | None = None
    # Sharing policy (YAML): arrangements under which owners of entries and rules receive hits outside their
    # jurisdiction; empty: the demo policy shipped with the hub.
    sharing_file: Path | None = None

    # Profiler: most manifests scored in one batch, and how long a poll waits for a batch to fill.
    profiler_max_batch: int = 500
    profiler_poll_ms: int = 100
    # Rule breaker: a rule flagging more than this share of one flight (of at least min travellers) is
    # suspended for the batch and reported, instead of flooding members with hits.
    breaker_max_share: float = 0.30
    breaker_min_travellers: int = 20
    # Risk model artefact (a directory written by `apihub model train`); empty: no model, rules and lists only.
    model_path: Path | None = None
    # Per-member review thresholds for the model's probability (JSON, e.g. {"FJI": 0.25}); members not listed
    # use DEFAULT_MODEL_THRESHOLD. The profiler raises a model reason at the lowest threshold among the members
    # with jurisdiction over the flight; the router hands each member only the reasons that reach its own.
    model_thresholds: dict[str, float] = {}
    # Per-member watchlist screening bands (JSON, e.g. {"FJI": {"alert": 0.9, "review": 0.75}}; either may be left
    # out): a match scoring at least the member's alert band reaches it as an alert, one at least its review band
    # reaches it marked for review, anything lower does not reach it. Members not listed, and bands left out, use
    # DEFAULT_SCREENING_ALERT and DEFAULT_SCREENING_REVIEW; 0 < review <= alert <= 1. The profiler screens at the
    # lowest review band of all (lowest_screening_review); the router hands each member only the matches that
    # reach its own, each marked with its band.
    screening_bands: dict[str, dict[str, float]] = {}
    # How common each name part is among the travellers screened (CSV part,per_100k; '#' lines are comments):
    # a name-only match on common parts needs corroboration. Unset: the region's table shipped with the hub
    # (services/data/traveller_names.csv). Every profiler process must use the same file to score alike.
    traveller_names_file: Path | None = None
    # Router: how often an idle Subscribe stream sends a heartbeat (seconds).
    heartbeat_seconds: float = 1.0
    # `apihub hits follow` (services.follow): the record of the hit versions it has shown, so none is shown twice
    # across crashes and restarts; one SQLite file per member and reader, follow-<MEMBER>-<reader>.sqlite, in this
    # folder (`--state FILE` names another). Unset: the user's state folder, $XDG_STATE_HOME/apihub or
    # ~/.local/state/apihub. It keeps the (hit id, version) pairs shown in the last follow_state_days days, at
    # most follow_state_max_entries of them (the oldest go first): a version delivered again after that is shown.
    follow_state_dir: Path | None = None
    follow_state_days: float = 7.0
    follow_state_max_entries: int = 100_000
    # `apihub hits follow` reconnects when the hub restarts or the connection drops: after follow_retry_seconds,
    # doubling up to follow_retry_max_seconds, and from follow_retry_seconds again after a stream that worked.
    follow_retry_seconds: float = 1.0
    follow_retry_max_seconds: float = 30.0

    # Members' rule files (RulesAdmin, `apihub rules`), checked in this order before any rule is built, so a file
    # costs at most what these allow: its size in bytes (UTF-8), then while its YAML is read, nesting of lists and
    # mappings (the file itself is level 1; at most 100), rules in one member's file, items in any one list (or
    # keys in one mapping), and conditions in the file (the keys under every rule's `when:`: fields, operators,
    # all/any/not). Anchors, aliases and YAML tags are refused whatever the limits.
    rules_max_bytes: int = 256 * 1024
    rules_max_depth: int = 32
    rules_max_rules: int = 500
    rules_max_list_items: int = 1000
    rules_max_conditions: int = 5000
    # Rule files the member-facing server checks at once (each member has at most one in check at a time): a
    # load beyond that waits a moment, then is answered RESOURCE_EXHAUSTED, so parsing never holds the server's CPU.
    rules_parse_concurrency: int = 2
    # Largest watchlist CSV that `apihub watchlist load` and `apihub screen --watchlist` read (bytes).
    watchlist_file_max_bytes: int = 64 * 1024 * 1024

    # TLS of the two gRPC servers. Both set: they listen with TLS only (PEM files: the certificate chain, leaf
    # first, and its unencrypted private key). Unset: plain text, for local development only (a server listening
    # on a non-loopback address in plain text logs a warning). `apihub dev certs` writes throwaway ones.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Mutual TLS: set, every client must present a certificate issued by one of these CAs (PEM). A member whose
    # directory entry lists cert_sha256 must moreover present one of those certificates.
    tls_client_ca_file: Path | None = None
    # Clients (`apihub submit`, `watchlist load`, `hits`, `rules load`, `apihub up`'s own): connect with TLS,
    # verifying the hub's certificate against these CAs (PEM). Unset, with tls true or a client certificate:
    # the system's trust roots.
    tls_ca_file: Path | None = None
    # Clients: the certificate chain and key presented to a hub that requires mutual TLS (implies TLS).
    tls_client_cert_file: Path | None = None
    tls_client_key_file: Path | None = None
    # Clients: use TLS even without the files above (a hub whose certificate the system's roots trust).
    tls: bool = False
    # Clients: the name the hub's certificate must carry, when it differs from the host dialled (tests, tunnels).
    tls_server_name: str = ""

    # How every Kafka client of the hub connects to the brokers (services.bus.kafka_client_options). PLAINTEXT, the
    # default, is for the local broker on loopback only; a real cluster wants SSL (TLS), SASL_SSL (TLS plus a user
    # name and password), or SASL_PLAINTEXT (credentials and data in the clear: a closed network only).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # TLS (SSL, SASL_SSL): the CAs that issued the brokers' certificates (PEM). Unset: the system's trust roots.
    kafka_ssl_ca_file: Path | None = None
    # Mutual TLS, for brokers that require client certificates: the hub's certificate chain (leaf first) and its
    # unencrypted private key (PEM).
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    # Whether a broker's certificate must carry the host name (or IP address) the hub dials. The certificate chain
    # is verified either way; turn this off only for brokers reached by an address their certificates lack.
    kafka_ssl_check_hostname: bool = True
    # SASL (SASL_PLAINTEXT, SASL_SSL): the mechanism, the hub's user name and its password. The password comes from
    # APIHUB_KAFKA_SASL_PASSWORD or, better, a file (APIHUB_KAFKA_SASL_PASSWORD_FILE, e.g. a mounted secret: read
    # whenever a client connects, a trailing newline ignored); exactly one of the two. It is never logged.
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None

    # Failover of the consumer groups (profiler, router): how long a group waits for a process gone silent (killed,
    # hung, cut off) before it hands that process's partitions to the others (ms); consumers heartbeat every third
    # of it. Brokers accept 6000 to 1800000 by default (group.min.session.timeout.ms, group.max.session.timeout.ms).
    # 6 s: the survivor of two resumes a killed one's partitions within about 10 s.
    kafka_session_timeout_ms: int = 6000
    # Longest a group consumer may spend on one batch between two polls (ms) before the group takes it for stuck
    # and gives its partitions to another: well above the longest batch (the profiler may wait 30 s for its lists
    # and rules, a flush and a commit 30 s each, plus scoring). A rebalance waits this long at most for a member
    # busy with a batch; a dead member is noticed after kafka_session_timeout_ms whatever this says.
    kafka_max_poll_interval_ms: int = 300_000
    # This process's name in its consumer groups (Kafka static membership, group.instance.id): a process restarted
    # under the same name takes its partitions back at once, without a rebalance or a wait for the old session.
    # Empty: the host name, the service and the lowest slot no other process of that group on this host holds,
    # e.g. "hubhost-profiler-0" (services/instances.py). Set it (letters, digits, ".", "_", "-"), e.g. to a pod
    # name, where hosts share a name. Two processes of one group must never share one: Kafka fences the older.
    instance_id: str = ""

    @field_validator("auth_secret")
    @classmethod
    def _secret_not_empty(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("APIHUB_AUTH_SECRET must be at least 16 characters (it signs every token)")
        return value

    @model_validator(mode="after")
    def _key_ring_fits(self) -> HubSettings:
        keys, kid = self.auth_keys, self.auth_key_id
        for name, secret in keys.items():
            if not name.strip() or len(name) > 64 or any(c.isspace() for c in name):
                raise ValueError(f"APIHUB_AUTH_KEYS: key id {name[:64]!r} must be 1-64 characters without spaces")
            if len(secret) < 16:  # as APIHUB_AUTH_SECRET, so that secret can join a ring
                raise ValueError(f"APIHUB_AUTH_KEYS: key {name} must be at least 16 characters (it signs tokens)")
        if keys and kid and kid not in keys:
            raise ValueError(f"APIHUB_AUTH_KEY_ID={kid} is not one of APIHUB_AUTH_KEYS ({', '.join(sorted(keys))})")
        if len(keys) > 1 and not kid:
            raise ValueError("APIHUB_AUTH_KEYS holds several keys: set APIHUB_AUTH_KEY_ID to the one that signs")
        if any(c.isspace() for c in kid) or len(kid) > 64:
            raise ValueError("APIHUB_AUTH_KEY_ID must be at most 64 characters without spaces")
        if not 0 < self.token_lifetime_days <= 36500:
            raise ValueError(f"APIHUB_TOKEN_LIFETIME_DAYS must be in (0, 36500], got {self.token_lifetime_days}")
        if not 0 <= self.token_leeway_seconds <= 3600:
            raise ValueError(f"APIHUB_TOKEN_LEEWAY_SECONDS must be in [0, 3600], got {self.token_leeway_seconds}")
        if self.audit_seal_seconds < 0:
            raise ValueError(f"APIHUB_AUDIT_SEAL_SECONDS must be 0 (no sealer) or more, got {self.audit_seal_seconds}")
        return self

    @model_validator(mode="after")
    def _group_membership_fits(self) -> HubSettings:
        session, poll = self.kafka_session_timeout_ms, self.kafka_max_poll_interval_ms
        if not 1000 <= session <= 1_800_000:
            raise ValueError(f"APIHUB_KAFKA_SESSION_TIMEOUT_MS must be in [1000, 1800000], got {session}")
        if poll < session:
            raise ValueError(
                f"APIHUB_KAFKA_MAX_POLL_INTERVAL_MS ({poll}) must be at least APIHUB_KAFKA_SESSION_TIMEOUT_MS "
                f"({session})"
            )
        name = self.instance_id
        if name and (len(name) > 200 or not re.fullmatch(r"[A-Za-z0-9._-]+", name)):
            raise ValueError(f"APIHUB_INSTANCE_ID must be 1-200 letters, digits, '.', '_' or '-', got {name[:200]!r}")
        return self

    @field_validator("traveller_retention_days", "outbox_retention_days", "topic_segment_hours")
    @classmethod
    def _bounded_retention(cls, value: int) -> int:
        # Personal data of travellers is never kept without a limit.
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

    @field_validator("flight_state_days", "flight_state_undated_max", "intake_index_max_keys")
    @classmethod
    def _bounded_state(cls, value: int) -> int:
        # What the services hold in memory is bounded: no 0 or negative "unbounded".
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

    @field_validator("audit_retention_days", "disposition_retention_days", "disposition_note_retention_days")
    @classmethod
    def _retention_or_forever(cls, value: int) -> int:
        if value < 1 and value != -1:
            raise ValueError(f"must be at least 1 (days), or -1 to keep until purged; got {value}")
        return value

    @field_validator(
        "follow_state_days", "follow_state_max_entries", "follow_retry_seconds", "follow_retry_max_seconds"
    )
    @classmethod
    def _follow_positive(cls, value: float) -> float:
        # A record of what was shown is bounded, and a reconnection waits: no 0 or negative "unbounded" or "at once".
        if value <= 0:
            raise ValueError(f"must be more than 0, got {value}")
        return value

    @field_validator("submit_timeout_seconds")
    @classmethod
    def _positive_deadline(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"must be more than 0 (seconds), got {value}")
        return value

    @model_validator(mode="after")
    def _replicas_fit(self) -> HubSettings:
        rf, isr = self.kafka_replication_factor, self.kafka_min_insync_replicas
        if rf < 1:
            raise ValueError(f"APIHUB_KAFKA_REPLICATION_FACTOR must be at least 1, got {rf}")
        if not 0 <= isr <= rf:
            raise ValueError(
                f"APIHUB_KAFKA_MIN_INSYNC_REPLICAS must be between 0 (derived) and the replication factor {rf}, "
                f"got {isr}"
            )
        return self

    @model_validator(mode="after")
    def _restart_policy_fits(self) -> HubSettings:
        first, most = self.supervisor_backoff_seconds, self.supervisor_backoff_max_seconds
        if not 0 < first <= most:
            raise ValueError(
                f"APIHUB_SUPERVISOR_BACKOFF_SECONDS ({first}) must be above 0 and at most "
                f"APIHUB_SUPERVISOR_BACKOFF_MAX_SECONDS ({most})"
            )
        if (budget := self.supervisor_restart_budget) < 0:
            raise ValueError(f"APIHUB_SUPERVISOR_RESTART_BUDGET must be 0 or more, got {budget}")
        if self.supervisor_restart_window_seconds <= 0:
            raise ValueError("APIHUB_SUPERVISOR_RESTART_WINDOW_SECONDS must be above 0")
        return self

    @property
    def min_insync_replicas(self) -> int:
        """min.insync.replicas of every topic: as set, or one less than the replication factor (at least 1)."""
        return self.kafka_min_insync_replicas or max(1, self.kafka_replication_factor - 1)

    @property
    def notes_kept_shorter(self) -> bool:
        """Whether dispositions' notes go before the dispositions themselves (purge strips them)."""
        notes, outcomes = self.disposition_note_retention_days, self.disposition_retention_days
        return notes != -1 and (outcomes == -1 or notes < outcomes)

    @field_validator("max_manifest_travellers", "max_manifest_legs", "max_traveller_documents")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1; got {value}")
        return value

    @field_validator("screening_bands", mode="before")
    @classmethod
    def _screening_bands_fit(cls, value: Any) -> dict[str, dict[str, float]]:
        return validate_screening_bands(value)

    @field_validator(*TLS_FILES, mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # APIHUB_TLS_CERT_FILE= (set but empty, as compose files do) means no file, not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _tls_files_fit_together(self) -> HubSettings:
        for cert, key in (("tls_cert_file", "tls_key_file"), ("tls_client_cert_file", "tls_client_key_file")):
            if (getattr(self, cert) is None) != (getattr(self, key) is None):
                have, lack = (cert, key) if getattr(self, cert) is not None else (key, cert)
                raise ValueError(
                    f"APIHUB_{have.upper()} is set but APIHUB_{lack.upper()} is not: a certificate needs its key"
                )
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                "APIHUB_TLS_CLIENT_CA_FILE (mutual TLS) needs the servers' own certificate: "
                "set APIHUB_TLS_CERT_FILE and APIHUB_TLS_KEY_FILE too"
            )
        for name in TLS_FILES:
            path = getattr(self, name)
            if path is None:
                continue
            try:
                with open(path, "rb") as f:
                    f.read(1)
            except OSError as exc:
                raise ValueError(f"APIHUB_{name.upper()}={path}: cannot read it ({exc.strerror})") from None
        return self

    @model_validator(mode="after")
    def _grpc_limits_fit(self) -> HubSettings:
        """The gRPC limits (services/limits.py) must leave threads for health checks and fit one largest message."""
        names = [n for n in type(self).model_fields if n.startswith("limit_")] + ["grpc_threads"]
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"APIHUB_{name.upper()} must be at least 1, not {getattr(self, name)}")
        if self.limit_total_calls >= self.grpc_threads:
            raise ValueError(
                f"APIHUB_LIMIT_TOTAL_CALLS ({self.limit_total_calls}) must be below APIHUB_GRPC_THREADS "
                f"({self.grpc_threads}): the threads above it answer health checks and refusals"
            )
        if self.limit_reserved_calls >= self.limit_total_calls:
            raise ValueError("APIHUB_LIMIT_RESERVED_CALLS must be below APIHUB_LIMIT_TOTAL_CALLS")
        if self.check_grpc_threads <= CHECK_SPARE_THREADS:
            raise ValueError(f"APIHUB_CHECK_GRPC_THREADS must be above {CHECK_SPARE_THREADS}")
        if self.check_carrier_calls < 1:
            raise ValueError(f"APIHUB_CHECK_CARRIER_CALLS must be at least 1, not {self.check_carrier_calls}")
        for kind in ("carrier", "member", "anonymous"):
            if getattr(self, f"limit_{kind}_streams") > getattr(self, f"limit_{kind}_calls"):
                name = f"APIHUB_LIMIT_{kind.upper()}"
                raise ValueError(f"{name}_STREAMS must not exceed {name}_CALLS (streams are calls too)")
        for kind in ("carrier", "member"):
            if getattr(self, f"limit_{kind}_bytes") < self.max_message_bytes:
                raise ValueError(
                    f"APIHUB_LIMIT_{kind.upper()}_BYTES must be at least APIHUB_MAX_MESSAGE_BYTES "
                    f"({self.max_message_bytes}), or the largest allowed message is always refused"
                )
        return self

    @model_validator(mode="after")
    def _bounds_and_files_usable(self) -> HubSettings:
        if not 1 <= self.rules_max_depth <= 100:
            raise ValueError(f"APIHUB_RULES_MAX_DEPTH must be between 1 and 100, not {self.rules_max_depth}")
        for name in (
            "rules_max_bytes",
            "rules_max_rules",
            "rules_max_list_items",
            "rules_max_conditions",
            "rules_parse_concurrency",
            "watchlist_file_max_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"APIHUB_{name.upper()} must be at least 1")
        # The member directory and sharing policy: a clear message at start, not a traceback where one is read.
        for name in ("directory_file", "sharing_file"):
            path = getattr(self, name)
            if path is None:
                continue
            try:
                with open(path, "rb") as f:
                    f.read(1)
            except OSError as exc:
                raise ValueError(f"APIHUB_{name.upper()}={path}: cannot read it ({exc.strerror})") from None
        return self

    @field_validator(*KAFKA_SECRET_SETTINGS, mode="before")
    @classmethod
    def _kafka_empty_is_unset(cls, value):
        # As for the TLS files: a variable set but empty (as compose files do) means unset.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _kafka_names_upper_case(cls, value):
        # sasl_ssl, scram-sha-512: spelt as Kafka's own client properties accept them.
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _kafka_security_fits(self) -> HubSettings:
        problem = kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def screening_band(self, member: str) -> tuple[float, float]:
        """(alert, review) of one member: its own screening bands, or the defaults for what it did not set."""
        return member_screening_band(self.screening_bands, member)

    @property
    def lowest_screening_review(self) -> float:
        """The lowest review band of every member (configured ones and the default): what the profiler screens at."""
        return lowest_screening_review(self.screening_bands)

    @property
    def server_tls(self) -> bool:
        """Whether the gRPC servers listen with TLS."""
        return self.tls_cert_file is not None

    @property
    def client_tls(self) -> bool:
        """Whether clients connect with TLS."""
        return self.tls or self.tls_ca_file is not None or self.tls_client_cert_file is not None

    @property
    def uses_local_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"


def kafka_security_problem(s: HubSettings) -> str | None:
    """Why the Kafka connection settings cannot work together, or None. The files they name are read only when a
    client connects (services.bus.kafka_client_options), so a secret mounted later, or rotated, is picked up."""
    protocol, env = s.kafka_security_protocol, "APIHUB_KAFKA_SECURITY_PROTOCOL"
    if protocol != "PLAINTEXT" and s.uses_local_kafka:
        return (
            f"{env}={protocol} needs APIHUB_KAFKA_BOOTSTRAP (the brokers to connect to): the local broker that "
            "`apihub up` starts speaks plain text on loopback"
        )
    if (s.kafka_ssl_cert_file is None) != (s.kafka_ssl_key_file is None):
        have, lack = ("CERT", "KEY") if s.kafka_ssl_cert_file is not None else ("KEY", "CERT")
        return (
            f"APIHUB_KAFKA_SSL_{have}_FILE is set but APIHUB_KAFKA_SSL_{lack}_FILE is not: a certificate needs its key"
        )
    tls_files = [name for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file") if getattr(s, name) is not None]
    if tls_files and protocol not in ("SSL", "SASL_SSL"):
        return f"APIHUB_{tls_files[0].upper()} is set but {env}={protocol} does not use TLS: set it to SSL or SASL_SSL"
    sasl_settings = ("kafka_sasl_username", "kafka_sasl_password", "kafka_sasl_password_file")
    sasl = [name for name in sasl_settings if getattr(s, name)]
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        if sasl:
            return (
                f"APIHUB_{sasl[0].upper()} is set but {env}={protocol} does not authenticate with SASL: "
                "set it to SASL_SSL or SASL_PLAINTEXT"
            )
        return None
    if not s.kafka_sasl_username.strip():
        return f"{env}={protocol} needs the hub's user name: set APIHUB_KAFKA_SASL_USERNAME"
    if s.kafka_sasl_password is None and s.kafka_sasl_password_file is None:
        return f"{env}={protocol} needs a password: set APIHUB_KAFKA_SASL_PASSWORD_FILE (or APIHUB_KAFKA_SASL_PASSWORD)"
    if s.kafka_sasl_password is not None and s.kafka_sasl_password_file is not None:
        return "APIHUB_KAFKA_SASL_PASSWORD and APIHUB_KAFKA_SASL_PASSWORD_FILE are both set: keep one of them"
    return None


def validate_screening_bands(value: Any) -> dict[str, dict[str, float]]:
    """screening_bands as given (JSON already decoded), checked: member codes upper-cased, only alert and review,
    numbers with 0 < review <= alert <= 1 once the defaults fill what a member left out. Raises ValueError naming
    the member and the band."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError('expected a JSON object of member -> bands, e.g. {"FJI": {"alert": 0.9, "review": 0.75}}')
    bands: dict[str, dict[str, float]] = {}
    for raw_member, given in value.items():
        member = str(raw_member).strip().upper()
        if not member:
            raise ValueError("a member code is empty")
        if member in bands:
            raise ValueError(f"{member} is listed twice")
        if not isinstance(given, Mapping):
            raise ValueError(f'{member}: expected an object like {{"alert": 0.9, "review": 0.75}}, got {given!r}')
        unknown = sorted(str(k) for k in given if k not in SCREENING_BAND_FIELDS)
        if unknown:
            raise ValueError(f"{member}: unknown band {', '.join(unknown)} (the bands are alert and review)")
        checked: dict[str, float] = {}
        for name in SCREENING_BAND_FIELDS:
            if name not in given:
                continue
            number = given[name]
            # bool is an int to Python, but true is no score.
            if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                raise ValueError(f"{member}: {name} must be a number in (0, 1], got {number!r}")
            if not 0.0 < number <= 1.0:
                raise ValueError(f"{member}: {name} must be in (0, 1], got {number}")
            checked[name] = float(number)
        alert, review = member_screening_band({member: checked}, member)
        if review > alert:
            source = {name: "" if name in checked else " (the default)" for name in SCREENING_BAND_FIELDS}
            raise ValueError(
                f"{member}: review {review}{source['review']} is above alert {alert}{source['alert']}; "
                "the review band must not exceed the alert band"
            )
        bands[member] = checked
    return bands


def member_screening_band(bands: Mapping[str, Mapping[str, float]], member: str) -> tuple[float, float]:
    """(alert, review) of one member in screening_bands, the defaults filling what it did not set."""
    own = bands.get(member.upper(), {})
    return own.get("alert", DEFAULT_SCREENING_ALERT), own.get("review", DEFAULT_SCREENING_REVIEW)


def lowest_screening_review(bands: Mapping[str, Mapping[str, float]]) -> float:
    """The lowest review band among the configured members and the default (members that set none)."""
    return min([DEFAULT_SCREENING_REVIEW, *(member_screening_band(bands, m)[1] for m in bands)])
