"""Member-facing gRPC servicers for members' configuration: WatchlistAdmin and RulesAdmin.

A member loads its whole watchlist, or its whole rule file, at once; the servicer validates it (field-level
violations, or the rule language's problems with their lines), stores it on a compacted topic keyed by the
owner (latest wins) and answers only after the broker acknowledged it. Every profiler converges on those
topics. Both servicers write through a ConfigProducer: DeliveryServer gives them one to share.

A rule file is checked within bounds (services.rules.source: size first, then nesting and counts while it is
read), by at most one call per member at a time and APIHUB_RULES_PARSE_CONCURRENCY calls in all (ParseGate), so
no member can occupy the server's CPU with parses.

A stored load is written to the audit trail first ("watchlist-loaded", "rules-loaded", with the officer the
console names in ``apihub-user``), through the recorder DeliveryServer gives the servicers (the HitDelivery
servicer's): the trail may hold a load whose storing then failed (the call answered UNAVAILABLE), never lacks one
that was stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import grpc
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import Counter

from services.auth import authorize_member_call
from services.bus import Topics, make_producer
from services.config import HubSettings
from services.directory import Directory
from services.router.delivery import audit_event
from services.rules.language import RuleLimits, RulesetError, RuleSourceError, parse_ruleset
from services.rules.source import check_size
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2

log = logging.getLogger(__name__)

WATCHLISTS_LOADED = Counter("apihub_router_watchlists_loaded", "Watchlists acknowledged by the broker.")

# Bound on waiting for the broker's ack of one watchlist or rule file, so a broker outage answers UNAVAILABLE.
KAFKA_TIMEOUT_S = 10.0
# Longest an RPC waits for a new Kafka client to reach the broker before it fails UNAVAILABLE.
BOOTSTRAP_TIMEOUT_MS = 10_000
# Longest a rule file waits for one of the server's parse slots before RESOURCE_EXHAUSTED: a bounded parse takes
# well under this, so only a server busy with other members' files answers so.
PARSE_WAIT_S = 2.0

ProducerFactory = Callable[[], KafkaProducer]
# Writes one audit event and waits for the broker, or aborts the call (HitDeliveryServicer.record).
AuditRecorder = Callable[[grpc.ServicerContext, delivery_pb2.AuditEvent], None]


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
        audit: AuditRecorder | None = None,
    ):
        self._settings = settings
        # None (unit tests of the servicer alone): loads are not written to the trail.
        self._audit = audit
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

    def _audited(self, context: grpc.ServicerContext, event: str, owner: str, detail: str, user: str) -> None:
        if self._audit is not None:
            self._audit(context, audit_event(event, owner, detail=detail, user=user))


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
        caller = authorize_member_call(context, self._settings, self._directory, request.owner, needs_user=True)
        owner = caller.member
        violations = validate_watchlist(request, owner)
        if violations:
            log.info("watchlist of %s rejected: %d violations", owner, len(violations))
            return delivery_pb2.LoadWatchlistResponse(entries=0, errors=violations)
        stored = normalize_watchlist(request, owner, datetime.now(UTC))
        scope = delivery_pb2.WatchlistScope.Name(stored.scope).removeprefix("WATCHLIST_SCOPE_").lower()
        self._audited(context, "watchlist-loaded", owner, f"{len(stored.entries)} entries, {scope}", caller.user)
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


class ParseBusyError(Exception):
    """No parse slot for this call; the message says why (for RESOURCE_EXHAUSTED)."""


class ParseGate:
    """At most one rule file in check per member, and at most ``concurrency`` in all."""

    def __init__(self, concurrency: int, wait_s: float = PARSE_WAIT_S):
        self._slots = threading.BoundedSemaphore(concurrency)
        self._wait_s = wait_s
        self._members: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, member: str) -> Iterator[None]:
        """Hold the member's slot and one of the server's for the block; raises ParseBusyError without them."""
        with self._lock:
            if member in self._members:
                raise ParseBusyError(
                    f"a rule file of {member} is already being checked: wait for its answer, then retry"
                )
            self._members.add(member)
        try:
            if not self._slots.acquire(timeout=self._wait_s):
                raise ParseBusyError("the hub is checking other members' rule files: retry in a moment")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._members.discard(member)


class RulesAdminServicer(_ConfigAdmin, delivery_pb2_grpc.RulesAdminServicer):
    """Members load their own targeting rules, validated with the rule language; every profiler applies them
    from the rules topic. A file over a limit (APIHUB_RULES_*), not plain YAML, or using YAML the language does
    not allow is refused INVALID_ARGUMENT naming the problem and its line; rules that do not validate come back
    as the response's errors."""

    def __init__(self, *args, parse_gate: ParseGate | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._limits = RuleLimits.from_settings(self._settings)
        self._gate = parse_gate or ParseGate(self._settings.rules_parse_concurrency)

    def LoadRules(
        self, request: delivery_pb2.RuleFile, context: grpc.ServicerContext
    ) -> delivery_pb2.LoadRulesResponse:
        caller = authorize_member_call(context, self._settings, self._directory, request.owner, needs_user=True)
        owner = caller.member
        source = f"rules of {owner}"
        try:
            check_size(request.yaml, source, self._limits)  # before taking a slot: a huge file costs nothing
            with self._gate.admit(owner):
                ruleset = parse_ruleset(request.yaml, source, owner, self._limits)
        except ParseBusyError as exc:
            log.info("rules of %s not checked: %s", owner, exc)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except RuleSourceError as exc:
            log.info("rules of %s refused: %s", owner, exc.problems[0])
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RulesetError as exc:
            log.info("rules of %s rejected: %d problems", owner, len(exc.problems))
            errors = [
                intake_pb2.FieldViolation(field=f"line {p.line}", code="invalid_rule", description=str(p))
                for p in exc.problems
            ]
            return delivery_pb2.LoadRulesResponse(errors=errors)
        self._audited(context, "rules-loaded", owner, f"{len(ruleset.rules)} rules, {ruleset.digest}", caller.user)
        self._producer.store(context, self._topics.rules, owner, request.yaml.encode(), "rule file")
        log.info("rules of %s stored: %d enabled, digest %s", owner, len(ruleset.rules), ruleset.digest)
        return delivery_pb2.LoadRulesResponse(rules=len(ruleset.rules), digest=ruleset.digest)
