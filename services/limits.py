"""Every principal bounded at the gRPC layer: a server interceptor on both hub servers (intake, member delivery).

Who is calling: the principal named by the call's bearer token, verified with the hub's key
(``services.auth.verify_token``): ``carrier:FJ`` or ``member:FJI``. A call without a token, or with one that does not
verify, is *anonymous*; all anonymous callers share one, tighter, set of limits (the servicer then answers them
UNAUTHENTICATED as before: the interceptor only bounds what they can hold meanwhile).

What each principal may hold at once, on one server (settings, services.config):

- calls in progress (unary calls and streams together): APIHUB_LIMIT_{CARRIER,MEMBER,ANONYMOUS}_CALLS;
- of which streams (SubmitManifests, Subscribe, reflection, health Watch), each of which holds a server thread for
  as long as it is open: APIHUB_LIMIT_{...}_STREAMS;
- of which member configuration loads (WatchlistAdmin, RulesAdmin: each replaces the member's whole list or rule
  set, so a second one at once gains nothing and costs everybody CPU): APIHUB_LIMIT_MEMBER_ADMIN_CALLS;
- request bytes in progress: a unary call's request from its arrival until the call returns, a stream's message
  from its arrival until the handler takes the next one: APIHUB_LIMIT_{...}_BYTES.

How several principals together are kept from exhausting the server:

- The server has APIHUB_GRPC_THREADS threads and grpc's ``maximum_concurrent_rpcs`` is set to the same number, so
  a call that would need a thread when none is free is refused at once (RESOURCE_EXHAUSTED) instead of queueing
  behind streams that may stay open for hours.
- All counted calls together stay below APIHUB_LIMIT_TOTAL_CALLS, itself below the thread count: the threads above
  it are left for health checks (``grpc.health.v1.Health/Check`` is never counted nor refused here) and for
  answering refusals.
- The last APIHUB_LIMIT_RESERVED_CALLS of the total are kept for principals that hold at most one call: once the
  others together fill the shared part, a principal that already holds two or more calls is refused ("the hub is
  busy") while one that holds none (or only its Subscribe stream, and now wants to Ack) still gets in. Exhausting
  the reserve needs many distinct principals at once, each within its own limits.

A refused call gets RESOURCE_EXHAUSTED naming the limit (and its setting) and asking to retry later; refusals are
counted in ``apihub_limit_refusals`` by kind of principal, principal code and limit (codes only, never personal
data). The interceptor also decodes requests itself: bytes that are not the method's protobuf message are answered
INVALID_ARGUMENT without a traceback (grpc's own deserialisation answers INTERNAL and logs one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
from prometheus_client import Counter, Gauge

from services.auth import verify_token
from services.config import HubSettings

log = logging.getLogger(__name__)

REFUSALS = Counter(
    "apihub_limit_refusals",
    "gRPC calls refused by a limit, by kind of principal (carrier, member, anonymous), principal code and limit",
    ["kind", "principal", "limit"],
)
ACTIVE = Gauge(
    "apihub_limit_calls_active",
    "gRPC calls in progress, by kind of principal and principal code",
    ["kind", "principal"],
)
UNDECODABLE = Counter("apihub_grpc_undecodable_requests", "Requests whose protobuf could not be decoded", ["method"])

# Never counted nor refused (grpc's maximum_concurrent_rpcs still bounds them): probes must answer even when every
# principal is at its limits.
EXEMPT_METHODS = frozenset({"/grpc.health.v1.Health/Check"})
# Member configuration loads: bounded by APIHUB_LIMIT_MEMBER_ADMIN_CALLS besides the other limits.
ADMIN_PREFIXES = ("/apihub.v1.WatchlistAdmin/", "/apihub.v1.RulesAdmin/", "/apihub.v1.BoardAdmin/LoadBoardPolicy")
# A principal holding at most this many calls may still take one of the reserved slots.
RESERVE_HOLDING_AT_MOST = 1
ANONYMOUS = "anonymous"
# "console": the member console (services.console), counted per member its request names, under the member limits,
# apart from the member's own tools: officers at work never take a member's contact point's share, nor one member's
# officers another member's.
KINDS = ("carrier", "member", "console", ANONYMOUS)


@dataclass(frozen=True)
class Caller:
    """Whom a call is counted against: a verified principal, or every anonymous caller together."""

    kind: str  # "carrier", "member", "console" or "anonymous"
    code: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.code}" if self.code else "callers without a valid token (together)"


ANONYMOUS_CALLER = Caller(ANONYMOUS)


@dataclass(frozen=True)
class KindLimits:
    calls: int
    streams: int
    admin_calls: int
    bytes: int


@dataclass(frozen=True)
class Limits:
    total_calls: int
    reserved_calls: int
    kinds: dict[str, KindLimits]

    @classmethod
    def from_settings(cls, s: HubSettings) -> Limits:
        member = KindLimits(
            s.limit_member_calls, s.limit_member_streams, s.limit_member_admin_calls, s.limit_member_bytes
        )
        return cls(
            total_calls=s.limit_total_calls,
            reserved_calls=s.limit_reserved_calls,
            kinds={
                "carrier": KindLimits(
                    s.limit_carrier_calls, s.limit_carrier_streams, s.limit_carrier_calls, s.limit_carrier_bytes
                ),
                "member": member,
                "console": member,
                ANONYMOUS: KindLimits(
                    s.limit_anonymous_calls,
                    s.limit_anonymous_streams,
                    s.limit_anonymous_calls,
                    s.limit_anonymous_bytes,
                ),
            },
        )


@dataclass(frozen=True)
class Refusal:
    limit: str  # calls, streams, admin_calls, bytes, total_calls, reserved_calls
    message: str


@dataclass
class Held:
    """What one principal holds now."""

    calls: int = 0
    streams: int = 0
    admin_calls: int = 0
    bytes: int = 0


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _setting(caller: Caller, what: str) -> str:
    return f"APIHUB_LIMIT_{caller.kind.upper()}_{what.upper()}"


def _retry(caller: Caller) -> str:
    if caller.kind == ANONYMOUS:
        return "present a valid token ('authorization: Bearer <token>'), or retry later"
    return "retry later"


class Limiter:
    """The accounting: what every principal holds, and whether one more call or request fits. Thread-safe."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._lock = threading.Lock()
        self._held: dict[Caller, Held] = {}
        self._total = 0

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def holding(self, caller: Caller) -> Held:
        """A copy of what ``caller`` holds now."""
        with self._lock:
            held = self._held.get(caller, Held())
            return Held(held.calls, held.streams, held.admin_calls, held.bytes)

    def admit(self, caller: Caller, *, stream: bool = False, admin: bool = False, size: int = 0) -> Refusal | None:
        """Count one more call of ``caller`` (None), or say which limit it would pass (nothing counted)."""
        cap = self.limits.kinds[caller.kind]
        with self._lock:
            held = self._held.get(caller, Held())
            refusal = self._principal_refusal(caller, cap, held, stream, admin, size) or self._server_refusal(held)
            if refusal is not None:
                return refusal
            held.calls += 1
            held.streams += int(stream)
            held.admin_calls += int(admin)
            held.bytes += size
            self._held[caller] = held
            self._total += 1
            ACTIVE.labels(caller.kind, caller.code).inc()
        return None

    def release(self, caller: Caller, *, stream: bool = False, admin: bool = False, size: int = 0) -> None:
        with self._lock:
            held = self._held.get(caller)
            if held is None:
                return
            held.calls -= 1
            held.streams -= int(stream)
            held.admin_calls -= int(admin)
            held.bytes -= size
            self._total -= 1
            if held.calls <= 0:
                del self._held[caller]
            ACTIVE.labels(caller.kind, caller.code).dec()

    def take_bytes(self, caller: Caller, size: int, give_back: int = 0) -> Refusal | None:
        """Within a counted call: hold ``size`` more request bytes in place of ``give_back`` (a stream's previous
        message), or say the bytes limit refuses them (``give_back`` is returned either way)."""
        cap = self.limits.kinds[caller.kind].bytes
        with self._lock:
            held = self._held.get(caller)
            if held is None:
                return None
            held.bytes -= give_back
            if held.bytes + size > cap:
                return self._bytes_refusal(caller, held, size, cap)
            held.bytes += size
        return None

    def _principal_refusal(
        self, caller: Caller, cap: KindLimits, held: Held, stream: bool, admin: bool, size: int
    ) -> Refusal | None:
        if held.calls >= cap.calls:
            return Refusal(
                "calls",
                f"{caller} already has {held.calls} calls in progress, the most allowed "
                f"({_setting(caller, 'calls')}); {_retry(caller)}",
            )
        if stream and held.streams >= cap.streams:
            return Refusal(
                "streams",
                f"{caller} already has {held.streams} streams open, the most allowed "
                f"({_setting(caller, 'streams')}); close one, or {_retry(caller)}",
            )
        if admin and held.admin_calls >= cap.admin_calls:
            return Refusal(
                "admin_calls",
                f"{caller} already has {held.admin_calls} watchlist or rules load in progress, the most allowed "
                f"(APIHUB_LIMIT_MEMBER_ADMIN_CALLS); retry when it has finished",
            )
        if held.bytes + size > cap.bytes:
            return self._bytes_refusal(caller, held, size, cap.bytes)
        return None

    def _bytes_refusal(self, caller: Caller, held: Held, size: int, cap: int) -> Refusal:
        return Refusal(
            "bytes",
            f"{caller} already has {_mib(held.bytes)} of requests in progress; this one ({_mib(size)}) would pass "
            f"the limit of {_mib(cap)} ({_setting(caller, 'bytes')}); {_retry(caller)}",
        )

    def _server_refusal(self, held: Held) -> Refusal | None:
        limits = self.limits
        if self._total >= limits.total_calls:
            return Refusal(
                "total_calls",
                f"the hub has {self._total} calls in progress, its limit (APIHUB_LIMIT_TOTAL_CALLS); retry later",
            )
        if self._total >= limits.total_calls - limits.reserved_calls and held.calls > RESERVE_HOLDING_AT_MOST:
            return Refusal(
                "reserved_calls",
                f"the hub is busy: its last {limits.reserved_calls} call slots are kept for callers holding at most "
                f"{RESERVE_HOLDING_AT_MOST} call (APIHUB_LIMIT_RESERVED_CALLS), and you hold {held.calls}; "
                "retry when one of yours has finished",
            )
        return None


class _Slot:
    """One admitted call: releases what it holds exactly once (when the call returns, its response stream ends or
    is closed, or grpc reports the call over, whichever comes first)."""

    def __init__(self, limiter: Limiter | None, caller: Caller, stream: bool, admin: bool, size: int):
        self._limiter = limiter
        self.caller = caller
        self._stream, self._admin = stream, admin
        self._size = size  # bytes held now
        self._lock = threading.Lock()
        self._released = limiter is None

    def hold_bytes(self, size: int) -> Refusal | None:
        """A stream's next message: hold its bytes in place of the previous one's."""
        with self._lock:
            if self._released:
                return None
            refusal = self._limiter.take_bytes(self.caller, size, give_back=self._size)
            self._size = 0 if refusal is not None else size
            return refusal

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
            size = self._size
        self._limiter.release(self.caller, stream=self._stream, admin=self._admin, size=size)


class Received(NamedTuple):
    """A request as the tolerant deserializer hands it over: the message (None if undecodable) and its size."""

    message: Any
    size: int
    decoded: bool


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Received]:
    """A request deserializer that cannot raise: grpc answers INTERNAL and logs a traceback when one does."""

    def deserialize(data: bytes) -> Received:
        if deserializer is None:
            return Received(data, len(data), True)
        try:
            return Received(deserializer(data), len(data), True)
        except Exception:  # any failure to decode is the sender's: answered INVALID_ARGUMENT by the handler
            return Received(None, len(data), False)

    return deserialize


def message_name(deserializer: Callable[[bytes], Any] | None) -> str:
    """The protobuf type a generated deserializer (``Message.FromString``) reads, for error messages."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return f"a valid {descriptor.full_name} message" if descriptor is not None else "a valid request message"


def caller_of(context: grpc.ServicerContext, settings: HubSettings, request: object = None) -> Caller:
    header = dict(context.invocation_metadata() or ()).get("authorization", "")
    token = header[7:] if isinstance(header, str) and header.lower().startswith("bearer ") else ""
    if not token:
        return ANONYMOUS_CALLER
    try:
        principal = verify_token(settings, token)
    except Exception:  # whatever makes a token unusable; the servicer answers the caller why
        return ANONYMOUS_CALLER
    if principal.kind == "console":
        # The console acts for the member its request names (the router checks that it may).
        named = getattr(request, "member", "") or getattr(request, "owner", "")
        return Caller("console", named.strip().upper()[:3] if isinstance(named, str) else "")
    return Caller(principal.kind, principal.code) if principal.kind in KINDS else ANONYMOUS_CALLER


def _releasing(responses: Iterator, slot: _Slot) -> Iterator:
    try:
        yield from responses
    finally:
        slot.release()


class LimitInterceptor(grpc.ServerInterceptor):
    """Wraps every method handler of a server: decode safely, count the call against its principal, refuse beyond
    the limits (RESOURCE_EXHAUSTED), release when the call is over."""

    def __init__(self, settings: HubSettings, limiter: Limiter | None = None):
        self._settings = settings
        self.limiter = limiter or Limiter(Limits.from_settings(settings))

    def intercept_service(self, continuation, handler_call_details):
        # Runs on grpc's serving thread: wrap only; tokens are verified in the handler's pool thread.
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _GuardedMethod(self, handler_call_details.method, handler).handler()

    def caller(self, context: grpc.ServicerContext, request: object = None) -> Caller:
        return caller_of(context, self._settings, request)


class _GuardedMethod:
    def __init__(self, owner: LimitInterceptor, method: str, handler: grpc.RpcMethodHandler):
        self._owner = owner
        self._method = method
        self._inner = handler
        self._what = message_name(handler.request_deserializer)
        self._stream = bool(handler.request_streaming or handler.response_streaming)
        self._admin = method.startswith(ADMIN_PREFIXES)
        self._exempt = method in EXEMPT_METHODS

    def handler(self) -> grpc.RpcMethodHandler:
        inner = self._inner
        kwargs = {
            "request_deserializer": tolerant(inner.request_deserializer),
            "response_serializer": inner.response_serializer,
        }
        if inner.request_streaming and inner.response_streaming:
            return grpc.stream_stream_rpc_method_handler(self._stream_stream, **kwargs)
        if inner.request_streaming:
            return grpc.stream_unary_rpc_method_handler(self._stream_unary, **kwargs)
        if inner.response_streaming:
            return grpc.unary_stream_rpc_method_handler(self._unary_stream, **kwargs)
        return grpc.unary_unary_rpc_method_handler(self._unary_unary, **kwargs)

    # -- behaviours, one per arity -----------------------------------------------------------------------

    def _unary_unary(self, received: Received, context: grpc.ServicerContext):
        slot = self._enter_unary(received, context)
        try:
            return self._inner.unary_unary(received.message, context)
        finally:
            slot.release()

    def _unary_stream(self, received: Received, context: grpc.ServicerContext):
        slot = self._enter_unary(received, context)
        try:
            responses = self._inner.unary_stream(received.message, context)
        except BaseException:
            slot.release()
            raise
        return _releasing(responses, slot)

    def _stream_unary(self, received_iterator: Iterator[Received], context: grpc.ServicerContext):
        slot = self._enter(self._owner.caller(context), context, size=0)
        try:
            return self._inner.stream_unary(self._requests(received_iterator, context, slot), context)
        finally:
            slot.release()

    def _stream_stream(self, received_iterator: Iterator[Received], context: grpc.ServicerContext):
        slot = self._enter(self._owner.caller(context), context, size=0)
        try:
            responses = self._inner.stream_stream(self._requests(received_iterator, context, slot), context)
        except BaseException:
            slot.release()
            raise
        return _releasing(responses, slot)

    # -- steps -------------------------------------------------------------------------------------------

    def _enter_unary(self, received: Received, context: grpc.ServicerContext) -> _Slot:
        caller = self._owner.caller(context, received.message if received.decoded else None)
        if not received.decoded:
            self._undecodable(context, caller, "the request")
        return self._enter(caller, context, size=received.size)

    def _enter(self, caller: Caller, context: grpc.ServicerContext, size: int) -> _Slot:
        if self._exempt:
            return _Slot(None, caller, False, False, 0)
        limiter = self._owner.limiter
        refusal = limiter.admit(caller, stream=self._stream, admin=self._admin, size=size)
        if refusal is not None:
            self._refuse(context, caller, refusal)
        slot = _Slot(limiter, caller, self._stream, self._admin, size)
        # A response stream the client abandons may never be iterated again: grpc's end-of-call callback
        # releases the slot then.
        if not context.add_callback(slot.release):
            slot.release()
            context.abort(grpc.StatusCode.CANCELLED, "the call ended before it started")
        return slot

    def _requests(self, received_iterator: Iterator[Received], context: grpc.ServicerContext, slot: _Slot):
        for n, received in enumerate(received_iterator, 1):
            if not received.decoded:
                self._undecodable(context, slot.caller, f"message {n} of the stream")
            refusal = slot.hold_bytes(received.size)
            if refusal is not None:
                self._refuse(context, slot.caller, refusal)
            yield received.message

    def _refuse(self, context: grpc.ServicerContext, caller: Caller, refusal: Refusal) -> None:
        REFUSALS.labels(caller.kind, caller.code, refusal.limit).inc()
        log.info("refused %s for %s: %s limit", self._method, caller, refusal.limit)
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal.message)

    def _undecodable(self, context: grpc.ServicerContext, caller: Caller, which: str) -> None:
        UNDECODABLE.labels(self._method).inc()
        log.info("refused %s for %s: undecodable request", self._method, caller)
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{which} is not {self._what}: its protobuf encoding could not be decoded "
            "(a client built from the hub's .proto files sends valid ones)",
        )
