"""Settings: one frozen object per process, built at the entry point from APIHUB_* environment variables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only for the local demo and tests. A deployment sets APIHUB_AUTH_SECRET; `apihub up` warns when it does not.
DEMO_AUTH_SECRET = "pacific-apihub-local-demo-secret-not-for-production"
# The risk model's review threshold for members that set none in model_thresholds.
DEFAULT_MODEL_THRESHOLD = 0.30
# Watchlist screening bands of members that set none (screening_bands): a match scoring at least the alert band
# is an alert for a human; one in [review, alert) reaches the member marked for review; below review, nothing.
DEFAULT_SCREENING_ALERT = 0.85
DEFAULT_SCREENING_REVIEW = 0.70
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


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APIHUB_", frozen=True, extra="ignore")

    # Kafka bootstrap servers ("host:port,host:port"). Empty: `apihub up` starts a local broker on kafka_port.
    kafka_bootstrap: str = ""
    # Ports of the local single-node broker that `apihub up` / `apihub kafka start` run on loopback.
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    # Every topic name starts with this; tests give each run its own prefix.
    topic_prefix: str = "apihub"
    # Partitions of the manifests and hits topics: the most profiler/router processes that can share the work.
    partitions: int = 4
    # Where the local broker keeps its jars, data and logs, and `apihub up` its pid files.
    state_dir: Path = Path(".apihub")

    # Carrier-facing gRPC server (ManifestIntake).
    ingest_listen: str = "127.0.0.1:50051"
    # Member-facing gRPC server (HitDelivery, WatchlistAdmin).
    delivery_listen: str = "127.0.0.1:50052"
    # Prometheus /metrics ports, one per service process; 0 binds an ephemeral port, -1 disables.
    ingest_metrics_port: int = 9464
    profiler_metrics_port: int = 9465
    router_metrics_port: int = 9466
    # How long a member's outbox keeps hits it has not acknowledged (days): the longest tolerated outage.
    outbox_retention_days: int = 30
    # How long intake waits for the broker to acknowledge a manifest before answering UNAVAILABLE (seconds).
    intake_ack_timeout_seconds: float = 15.0
    # Largest manifest a carrier may send in one gRPC message or Kafka record (bytes).
    max_message_bytes: int = 16 * 1024 * 1024

    # Key that signs carrier and member tokens (HMAC-SHA256).
    auth_secret: str = DEMO_AUTH_SECRET
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

    @field_validator("auth_secret")
    @classmethod
    def _secret_not_empty(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("APIHUB_AUTH_SECRET must be at least 16 characters (it signs every token)")
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
