"""Member-facing gRPC servicers for members' configuration: WatchlistAdmin and RulesAdmin.

A member loads its whole watchlist, or its whole rule file, at once; the servicer validates it (field-level
violations, or the rule language's problems with their lines), stores it on a compacted topic keyed by the
owner (latest wins) and answers only after the broker acknowledged it. Every profiler converges on those
topics. Both servicers write through a ConfigProducer: DeliveryServer gives them one to share.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import Counter

from services.auth import authorize_member
from services.bus import Topics, make_producer
from services.config import HubSettings
from services.directory import Directory
from services.rules.language import RulesetError, parse_ruleset
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2

log = logging.getLogger(__name__)

WATCHLISTS_LOADED = Counter("apihub_router_watchlists_loaded", "Watchlists acknowledged by the broker.")

# Bound on waiting for the broker's ack of one watchlist or rule file, so a broker outage answers UNAVAILABLE.
KAFKA_TIMEOUT_S = 10.0
# Longest an RPC waits for a new Kafka client to reach the broker before it fails UNAVAILABLE.
BOOTSTRAP_TIMEOUT_MS = 10_000

ProducerFactory = Callable[[], KafkaProducer]


class ConfigProducer:
    """The producer that stores members' configuration records, made on first use: the server starts, and
    answers health checks, while Kafka is coming up. Thread-safe; close() is idempotent."""

    def __init__(self, factory: ProducerFactory, ack_timeout_s: float = KAFKA_TIMEOUT_S):
        self._factory = factory
        self._ack_timeout_s = ack_timeout_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: HubSettings, ack_timeout_s: float = KAFKA_TIMEOUT_S) -> ConfigProducer:
        def factory() -> KafkaProducer:
            return make_producer(settings, "apihub-watchlists", bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)

        return cls(factory, ack_timeout_s)

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = self._factory()
            return self._producer

    def store(self, context: grpc.ServicerContext, topic: str, key: str, value: bytes, what: str) -> None:
        """Produce one record and wait for the broker's ack; abort the call with a clear status otherwise."""
        try:
            self._get().send(topic, key=key.encode(), value=value).get(timeout=self._ack_timeout_s)
        except MessageSizeTooLargeError:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{what} too large for one record")
        except KafkaTimeoutError:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"the broker did not acknowledge the {what} in time; nothing is promised, retry",
            )
        except KafkaError as exc:
            code = grpc.StatusCode.UNAVAILABLE if exc.retriable else grpc.StatusCode.INTERNAL
            context.abort(code, f"the broker did not store the {what} ({type(exc).__name__})")

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=KAFKA_TIMEOUT_S)


class _ConfigAdmin:
    """What both admin servicers hold. Given a ConfigProducer, a servicer shares it and leaves closing it to
    whoever made it; without one it makes its own (from producer_factory, else the settings) and closes it."""

    def __init__(
        self,
        settings: HubSettings,
        directory: Directory,
        *,
        producer: ConfigProducer | None = None,
        producer_factory: ProducerFactory | None = None,
        ack_timeout_s: float = KAFKA_TIMEOUT_S,
    ):
        self._settings = settings
        self._directory = directory
        self._topics = Topics(settings.topic_prefix)
        self._owns_producer = producer is None
        if producer is None:
            if producer_factory is None:
                producer = ConfigProducer.for_settings(settings, ack_timeout_s)
            else:
                producer = ConfigProducer(producer_factory, ack_timeout_s)
        self._producer = producer

    def close(self) -> None:
        if self._owns_producer:
            self._producer.close()


# -- WatchlistAdmin ----------------------------------------------------------------------------------------


def validate_watchlist(watchlist: delivery_pb2.Watchlist, owner: str) -> list[intake_pb2.FieldViolation]:
    """Field-level problems of a watchlist loaded by ``owner`` (already authenticated); empty when valid."""
    violations: list[intake_pb2.FieldViolation] = []

    def violation(field: str, code: str, description: str) -> None:
        violations.append(intake_pb2.FieldViolation(field=field, code=code, description=description))

    if watchlist.scope not in delivery_pb2.WatchlistScope.values():
        violation("scope", "invalid_value", f"unknown watchlist scope {watchlist.scope}")
    first_index: dict[str, int] = {}
    for i, entry in enumerate(watchlist.entries):
        entry_id = entry.entry_id.strip()
        if not entry_id:
            violation(f"entries[{i}].entry_id", "required", "every entry needs an entry_id")
        elif entry_id in first_index:
            violation(
                f"entries[{i}].entry_id",
                "duplicate",
                f"entry_id '{entry_id}' is also used by entries[{first_index[entry_id]}]",
            )
        else:
            first_index[entry_id] = i
        if not entry.surname.strip():
            violation(f"entries[{i}].surname", "required", "every entry needs a surname")
        entry_owner = entry.owner.strip().upper()
        if entry_owner and entry_owner != owner:
            violation(
                f"entries[{i}].owner",
                "owner_mismatch",
                f"entry owner '{entry_owner}' differs from the watchlist's owner '{owner}'",
            )
    return violations


def normalize_watchlist(watchlist: delivery_pb2.Watchlist, owner: str, now: datetime) -> delivery_pb2.Watchlist:
    """The record stored for a valid watchlist: owner on the list and every entry, a scope, loaded_at."""
    stored = delivery_pb2.Watchlist()
    stored.CopyFrom(watchlist)
    stored.owner = owner
    if stored.scope == delivery_pb2.WATCHLIST_SCOPE_UNSPECIFIED:
        stored.scope = delivery_pb2.WATCHLIST_SCOPE_REGIONAL
    for entry in stored.entries:
        entry.owner = owner
        entry.entry_id = entry.entry_id.strip()
    stored.loaded_at.FromDatetime(now)
    return stored


class WatchlistAdminServicer(_ConfigAdmin, delivery_pb2_grpc.WatchlistAdminServicer):
    """Stores a member's whole watchlist on the compacted watchlists topic (key = owner: latest wins)."""

    def LoadWatchlist(
        self, request: delivery_pb2.Watchlist, context: grpc.ServicerContext
    ) -> delivery_pb2.LoadWatchlistResponse:
        owner = authorize_member(context, self._settings, self._directory, request.owner)
        violations = validate_watchlist(request, owner)
        if violations:
            log.info("watchlist of %s rejected: %d violations", owner, len(violations))
            return delivery_pb2.LoadWatchlistResponse(entries=0, errors=violations)
        stored = normalize_watchlist(request, owner, datetime.now(UTC))
        self._producer.store(context, self._topics.watchlists, owner, stored.SerializeToString(), "watchlist")
        WATCHLISTS_LOADED.inc()
        log.info(
            "watchlist of %s stored: %d entries, scope %s",
            owner,
            len(stored.entries),
            delivery_pb2.WatchlistScope.Name(stored.scope),
        )
        return delivery_pb2.LoadWatchlistResponse(entries=len(stored.entries))


# -- RulesAdmin --------------------------------------------------------------------------------------------


class RulesAdminServicer(_ConfigAdmin, delivery_pb2_grpc.RulesAdminServicer):
    """Members load their own targeting rules, validated with the rule language; every profiler applies them
    from the rules topic."""

    def LoadRules(
        self, request: delivery_pb2.RuleFile, context: grpc.ServicerContext
    ) -> delivery_pb2.LoadRulesResponse:
        owner = authorize_member(context, self._settings, self._directory, request.owner)
        try:
            ruleset = parse_ruleset(request.yaml, f"rules of {owner}", owner)
        except RulesetError as exc:
            log.info("rules of %s rejected: %d problems", owner, len(exc.problems))
            errors = [
                intake_pb2.FieldViolation(field=f"line {p.line}", code="invalid_rule", description=str(p))
                for p in exc.problems
            ]
            return delivery_pb2.LoadRulesResponse(errors=errors)
        self._producer.store(context, self._topics.rules, owner, request.yaml.encode(), "rule file")
        log.info("rules of %s stored: %d enabled, digest %s", owner, len(ruleset.rules), ruleset.digest)
        return delivery_pb2.LoadRulesResponse(rules=len(ruleset.rules), digest=ruleset.digest)
