"""The console's gRPC client of the router: the only module of the console that calls the hub's services.

The console is one principal of the hub, ``console:hub`` (services.auth): ``HubGateway`` mints its token from the
hub's key ring when it starts and again before it expires, and names the officer of each call that changes a
member's data or shows a traveller in the metadata ``apihub-user``, which the router writes into the audit trail.
Every call names the member it is for; the router checks that the console may act for it, the console has already
checked that its officer belongs to that member (services.console.deps). The console reads its members' hits as
reader "console", with a cursor of its own, so it never takes a hit from the member's contact point.

A failed call raises a GatewayError (a services.errors.HubError) carrying the router's message, which names the
cause and never a traveller, and its gRPC status; each subclass says whether a retry may help (``retriable``) and
which HTTP status a page answers with (``http_status``). Pages never see a gRPC traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import grpc

from services.auth import bearer, console_token, officer
from services.config import HubSettings
from services.dispositions import ReasonPrecision
from services.errors import HubError
from services.tls import ClientTLS
from services.wire import delivery_pb2, delivery_pb2_grpc

# The console's token: short-lived (a copy that leaks is soon worthless), renewed once this much of it is left.
TOKEN_LIFETIME = timedelta(hours=1)
RENEW_WHEN_LEFT = 1 / 3
# Deadline of one unary call: the router bounds its own work well within it (Kafka timeouts, bounded scans).
CALL_TIMEOUT_S = 30.0
# The reader whose cursor the console's Subscribe and Ack move (SubscribeRequest.reader).
READER = "console"
# Initial metadata of a Subscribe stream (services.router.delivery.LOST_HITS_KEY, START_CURSOR_KEY).
LOST_HITS_KEY = "apihub-lost-hits"
START_CURSOR_KEY = "apihub-start-cursor"

Reply = TypeVar("Reply")


class GatewayError(HubError):
    """A call to the router failed: the message is the router's (or says the router could not be reached), ``code``
    the gRPC status."""

    http_status = 503

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class RouterUnavailableError(GatewayError):
    """The router or its broker cannot answer now (down, restarting, out of time): retry later."""

    retriable = True


class RouterBusyError(GatewayError):
    """A limit of the router's (calls of this member in progress, the server's load): retry in a moment."""

    retriable = True
    http_status = 429


class NotFoundError(GatewayError):
    """No such thing for this member (a hit it never received, a member not in the directory)."""

    http_status = 404


class RefusedError(GatewayError):
    """The router refused the call for this member (or an officer the call had to name)."""

    http_status = 403


class InvalidRequestError(GatewayError):
    """The router found the request invalid (a field, a limit, a cursor out of range); the message says which."""

    http_status = 422


class ConsoleCredentialError(GatewayError):
    """The router did not accept the console's own credential: the console and the router must run with the same
    key ring (APIHUB_AUTH_KEYS / APIHUB_AUTH_SECRET), and the token must not be revoked."""


_ERRORS: dict[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.UNAVAILABLE: RouterUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: RouterUnavailableError,
    grpc.StatusCode.ABORTED: RouterUnavailableError,
    grpc.StatusCode.CANCELLED: RouterUnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RouterBusyError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: RefusedError,
    grpc.StatusCode.UNAUTHENTICATED: ConsoleCredentialError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidRequestError,
}


def gateway_error(exc: grpc.RpcError) -> GatewayError:
    """The GatewayError of a failed gRPC call, with the router's message."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else ""
    if code == grpc.StatusCode.UNAVAILABLE and not details:
        details = "the hub's router cannot be reached"
    message = details or f"the hub's router answered {getattr(code, 'name', 'an error')}"
    return _ERRORS.get(code, GatewayError)(message, code)


@dataclass(frozen=True)
class AuditTrail:
    """One page of a member's audit trail, newest first, and where the next (older) page starts (None: the trail's
    oldest record was reached)."""

    records: list[delivery_pb2.AuditRecord]
    next_before: int | None

    @property
    def events(self) -> list[delivery_pb2.AuditEvent]:
        return [r.event for r in self.records]


@dataclass(frozen=True)
class OutboxLag:
    """A member's outbox (oldest kept cursor, end) and, per reader, its resume cursor and hits not acknowledged."""

    oldest_cursor: int
    end_cursor: int
    readers: list[delivery_pb2.ReaderLag] = field(default_factory=list)

    @property
    def pending(self) -> dict[str, int]:
        return {r.reader: r.pending for r in self.readers}


class Subscription:
    """A Subscribe stream as an iterator of Delivery messages (heartbeats included: ``delivery.heartbeat``); a
    failure raises a GatewayError. ``cancel()`` ends it (from any thread): the iteration then simply stops."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> Iterator[delivery_pb2.Delivery]:
        return self

    def __next__(self) -> delivery_pb2.Delivery:
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            if self._cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise gateway_error(exc) from None

    def _initial(self) -> dict[str, str]:
        try:
            return dict(self._call.initial_metadata() or ())
        except grpc.RpcError as exc:
            raise gateway_error(exc) from None

    @property
    def lost_hits(self) -> int:
        """Outbox records deleted (retention, a purge) before the console read them, as the stream opened."""
        return int(self._initial().get(LOST_HITS_KEY, "0") or 0)

    @property
    def start_cursor(self) -> int | None:
        value = self._initial().get(START_CURSOR_KEY)
        return int(value) if value else None

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()


def router_address(settings: HubSettings) -> str:
    """Where the console reaches the router: APIHUB_CONSOLE_ROUTER, else this host's delivery_listen (a wildcard
    listen address dialled on the loopback)."""
    if settings.console_router:
        return settings.console_router
    host, _, port = settings.delivery_listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def router_channel(settings: HubSettings, address: str) -> grpc.Channel:
    """A channel to the router as the hub's own clients make one (services.client.channel_for, which the console
    may not import: it carries the intake's code): TLS as APIHUB_TLS_* say (the hub's client certificate under
    mutual TLS), messages up to max_message_bytes. Raises ConfigError for unusable TLS files."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    tls = ClientTLS.from_settings(settings)
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(address, tls.credentials(), options=options)


class HubGateway:
    """The router's member services, called as the console's principal. Thread-safe: one channel, stubs shared,
    the token renewed under a lock. ``close()`` closes the channel (idempotent)."""

    def __init__(
        self,
        settings: HubSettings,
        *,
        channel: grpc.Channel | None = None,
        lifetime: timedelta = TOKEN_LIFETIME,
        timeout_s: float = CALL_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else router_channel(settings, router_address(settings))
        self._lifetime = lifetime
        self._timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0
        self._delivery = delivery_pb2_grpc.HitDeliveryStub(self._channel)
        self._watchlists = delivery_pb2_grpc.WatchlistAdminStub(self._channel)
        self._rules = delivery_pb2_grpc.RulesAdminStub(self._channel)
        self._records = delivery_pb2_grpc.MemberRecordsStub(self._channel)
        self._board = delivery_pb2_grpc.BoardAdminStub(self._channel)
        self._token_now()  # at start: a key ring the console cannot sign with fails here, not at the first page

    # -- credentials ------------------------------------------------------------------------------------------

    def _token_now(self) -> str:
        """The console's current token, minted anew once less than RENEW_WHEN_LEFT of its lifetime is left."""
        with self._lock:
            now = self._clock()
            if not self._token or now >= self._renew_at:
                self._token = console_token(self._settings, self._lifetime)
                self._renew_at = now + self._lifetime.total_seconds() * (1 - RENEW_WHEN_LEFT)
            return self._token

    def _metadata(self, user: str = "") -> list[tuple[str, str]]:
        return bearer(self._token_now()) + officer(user)

    def _unary(self, method: Callable[..., Reply], request: Any, user: str = "") -> Reply:
        try:
            return method(request, metadata=self._metadata(user), timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise gateway_error(exc) from None

    # -- the member's hits ------------------------------------------------------------------------------------

    def subscribe(self, member: str, cursor: int | None = None) -> Subscription:
        """The member's hits from ``cursor`` (None: after the console's last acknowledged one), as reader
        "console"; no deadline (the router sends heartbeats while the outbox is idle)."""
        request = delivery_pb2.SubscribeRequest(member=member, reader=READER)
        if cursor is not None:
            request.cursor = cursor
        try:
            return Subscription(self._delivery.Subscribe(request, metadata=self._metadata()))
        except grpc.RpcError as exc:
            raise gateway_error(exc) from None

    def ack(self, member: str, cursor: int) -> int:
        """The console has stored everything up to ``cursor``: its reader resumes after it. Returns that cursor."""
        request = delivery_pb2.AckRequest(member=member, cursor=cursor, reader=READER)
        return self._unary(self._delivery.Ack, request).next_cursor

    def dispose(self, member: str, user: str, hit_id: str, outcome: int, note: str = "") -> delivery_pb2.Disposition:
        """Record the officer's outcome for a hit the member received, exactly as `apihub hits dispose` does."""
        request = delivery_pb2.DisposeRequest(member=member, hit_id=hit_id, outcome=outcome, note=note)
        return self._unary(self._delivery.Dispose, request, user).disposition

    def record_view(self, member: str, user: str, hit_id: str, cursor: int | None = None) -> delivery_pb2.AuditEvent:
        """Write to the audit trail that the officer viewed the hit's traveller (NotFoundError for a hit the member
        never received). Give the hit's ``cursor`` (Delivery.cursor) where known: the router then also accepts a hit
        of a flight its delivery ledger no longer holds (departed over APIHUB_FLIGHT_STATE_DAYS ago)."""
        request = delivery_pb2.RecordViewRequest(member=member, hit_id=hit_id)
        if cursor is not None:
            request.cursor = cursor
        return self._unary(self._records.RecordView, request, user).event

    def take(self, member: str, user: str, hit_id: str, cursor: int | None = None) -> delivery_pb2.AuditEvent:
        """Write to the audit trail that the officer took the hit in hand ("taken": "I'm on it"), checked as
        record_view is (NotFoundError for a hit the member never received; give the hit's ``cursor`` where known)."""
        request = delivery_pb2.RecordTakeRequest(member=member, hit_id=hit_id)
        if cursor is not None:
            request.cursor = cursor
        return self._unary(self._records.RecordTake, request, user).event

    # -- lists and rules --------------------------------------------------------------------------------------

    def load_watchlist(
        self,
        member: str,
        user: str,
        entries: Iterable[delivery_pb2.WatchlistEntry],
        scope: int = delivery_pb2.WATCHLIST_SCOPE_REGIONAL,
    ) -> delivery_pb2.LoadWatchlistResponse:
        """Replace the member's whole watchlist; the answer's ``errors`` list entries the router refused (nothing
        is stored then)."""
        request = delivery_pb2.Watchlist(owner=member, scope=scope, entries=list(entries))
        return self._unary(self._watchlists.LoadWatchlist, request, user)

    def load_rules(self, member: str, user: str, yaml_text: str) -> delivery_pb2.LoadRulesResponse:
        """Replace the member's rule file; the answer's ``errors`` name lines the rule language refused."""
        request = delivery_pb2.RuleFile(owner=member, yaml=yaml_text)
        return self._unary(self._rules.LoadRules, request, user)

    def rule_file(self, member: str) -> delivery_pb2.GetRulesResponse:
        """The member's rule file as the hub holds it, whether it has one (``present``) and its digest."""
        return self._unary(self._records.GetRules, delivery_pb2.GetRulesRequest(member=member))

    def rules(self, member: str) -> str | None:
        """The member's rule file as the hub holds it; None when it has none (never loaded, or removed)."""
        reply = self.rule_file(member)
        return reply.yaml if reply.present else None

    def watchlist(
        self, member: str, query: str = "", offset: int = 0, limit: int = 50, user: str = ""
    ) -> delivery_pb2.ListWatchlistResponse:
        """A page of the member's current watchlist entries matching ``query`` (names, entry id, category,
        document number; case-insensitive), with the number matching, the list's size, scope and load time."""
        request = delivery_pb2.ListWatchlistRequest(member=member, query=query, offset=offset, limit=limit)
        return self._unary(self._records.ListWatchlist, request, user)

    def watchlist_entries(
        self, member: str, query: str = "", offset: int = 0, limit: int = 50, user: str = ""
    ) -> tuple[list[delivery_pb2.WatchlistEntry], int]:
        """watchlist(): the page's entries and how many match in all."""
        reply = self.watchlist(member, query, offset, limit, user)
        return list(reply.entries), reply.total

    # -- interactive checks: board policy and overrides ----------------------------------------------------------

    def load_board_policy(self, member: str, user: str, yaml_text: str) -> delivery_pb2.LoadBoardPolicyResponse:
        """Replace the member's board policy; the answer's ``errors`` name lines the policy language refused
        (nothing is stored then), else its ``digest``."""
        request = delivery_pb2.BoardPolicyFile(owner=member, yaml=yaml_text)
        return self._unary(self._board.LoadBoardPolicy, request, user)

    def board_policy(self, member: str) -> str:
        """The member's board policy file as the hub holds it ("" when it has none)."""
        return self._unary(self._board.GetBoardPolicy, delivery_pb2.GetBoardPolicyRequest(member=member)).yaml

    def override(
        self, member: str, user: str, hit_id: str, reason: str = "", revoke: bool = False
    ) -> delivery_pb2.BoardOverride:
        """The officer lets the traveller of a hit the member received board despite the member's board policy
        (``revoke``: withdraws the member's override), written to the audit trail ("overridden") in the officer's
        name. NotFoundError for a hit the member never received; InvalidRequestError for a reason the router refused
        (1 to 300 printable characters on one line) or nothing to withdraw."""
        request = delivery_pb2.OverrideRequest(member=member, hit_id=hit_id, reason=reason, revoke=revoke)
        return self._unary(self._board.Override, request, user).override

    def overrides(self, member: str, hit_id: str = "") -> list[delivery_pb2.BoardOverride]:
        """The member's board overrides (only the hit's when ``hit_id``), withdrawn ones included, newest first."""
        request = delivery_pb2.ListOverridesRequest(member=member, hit_id=hit_id)
        return list(self._unary(self._board.ListOverrides, request).overrides)

    # -- oversight ----------------------------------------------------------------------------------------------

    def audit_trail(self, member: str, before_offset: int | None = None, limit: int = 100) -> AuditTrail:
        """A page of the member's audit events, newest first, older than ``before_offset`` (None: the newest)."""
        request = delivery_pb2.AuditTrailRequest(member=member, limit=limit)
        if before_offset is not None:
            request.before_offset = before_offset
        reply = self._unary(self._records.AuditTrail, request)
        after = reply.next_before_offset if reply.HasField("next_before_offset") else None
        return AuditTrail(list(reply.records), after)

    def dispositions(self, member: str, limit: int = 0) -> list[delivery_pb2.Disposition]:
        """The member's latest disposition of each hit it disposed, newest first (at most ``limit``; 0: the
        router's most, 10,000)."""
        request = delivery_pb2.ListDispositionsRequest(member=member, limit=limit)
        return list(self._unary(self._records.ListDispositions, request).dispositions)

    def precision(self, member: str) -> list[ReasonPrecision]:
        """Per rule and watchlist entry of the member's own: hits its dispositions confirmed and refuted, most
        disposed first."""
        reply = self._unary(self._records.Precision, delivery_pb2.PrecisionRequest(member=member))
        return [ReasonPrecision(r.reason, r.confirmed, r.refuted) for r in reply.reasons]

    def outbox(self, member: str) -> OutboxLag:
        """The member's outbox and each reader's place in it: the contact point (""), "cli", "console", and
        "webhook" when the member has one."""
        reply = self._unary(self._records.OutboxLag, delivery_pb2.OutboxLagRequest(member=member))
        return OutboxLag(reply.oldest_cursor, reply.end_cursor, list(reply.readers))

    def outbox_lag(self, member: str) -> dict[str, int]:
        """Hits not yet acknowledged, per reader of the member's outbox."""
        return self.outbox(member).pending

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()
