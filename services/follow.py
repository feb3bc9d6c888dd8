"""Following a member's hits (HitDelivery.Subscribe + Ack), the one way every member tool does it: `apihub hits
follow`, the demo, the console to come.

Each delivery is shown (handed to the tool's handler), recorded as shown (services.follow_state: durable when the
tool gives a file), then acknowledged. A version delivered again (the hub restarted before the Ack was stored, the
tool was killed between showing and acknowledging, the router replayed a batch) is found in that record, skipped
and acknowledged: no version of a hit is shown twice. With a Backoff the follower reconnects when the hub restarts
or the connection drops (1 s doubling to 30 s, back to 1 s after a stream that worked), and stops only on errors
that retrying cannot fix (credentials, permissions, an unknown member, a bad request). It counts what the member
would otherwise not know: versions skipped as already shown, and hits lost (deleted from the outbox by retention
or a purge before this reader got them, as the hub says when a stream opens).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import grpc

from services.auth import bearer
from services.follow_state import ShownLog, version_key
from services.wire import delivery_pb2, delivery_pb2_grpc

# Errors that the same request will meet again however long one waits: following stops with them.
RETRY_NEVER = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# Initial metadata of a Subscribe stream (services.router.delivery): outbox records deleted before this reader got
# them, and the cursor the stream starts at.
LOST_HITS_KEY = "apihub-lost-hits"
START_CURSOR_KEY = "apihub-start-cursor"
# Bound on one Ack call (seconds).
ACK_TIMEOUT_S = 10.0


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM wait until the block is done, then take effect as they would have: a hit shown
    is always recorded as shown. Only in the main thread, where Python runs signal handlers (elsewhere a signal
    cannot interrupt the block anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if caught:
            signal.raise_signal(caught[0])


@dataclass(frozen=True)
class Backoff:
    """Pauses between attempts to reconnect: first_s, doubling up to max_s."""

    first_s: float = 1.0
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.max_s, self.first_s * 2 ** max(failures - 1, 0))


@dataclass
class FollowStats:
    """What a follower did: versions shown, versions delivered again and skipped as already shown, hits lost
    (deleted from the outbox before this reader got them), and reconnections."""

    shown: int = 0
    repeats_skipped: int = 0
    lost: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Follower:
    """Streams one member's hits for one reader (SubscribeRequest.reader: "" the member's contact point, "cli",
    "console": each its own acknowledged cursor), showing each version once.

    ``shown``: the record of versions shown (a ShownLog on a file survives restarts; None: one in memory for this
    follower's life). ``backoff``: reconnect with these pauses; None: any error ends ``follow()`` by raising it
    and a stream the hub ends ends it quietly (as for a one-off read). ``notify`` gets one line per change of
    the connection's state (lost, back) and per loss the hub reports.
    """

    chan: grpc.Channel
    token: str
    member: str
    ack: bool = True
    reader: str = ""
    shown: ShownLog | None = None
    backoff: Backoff | None = None
    notify: Callable[[str], None] = lambda line: None
    stats: FollowStats = field(default_factory=FollowStats)

    def __post_init__(self) -> None:
        self._stub = delivery_pb2_grpc.HitDeliveryStub(self.chan)
        self._resume: int | None = None  # where the next stream starts; None: the acknowledged position
        self._last_hit = time.monotonic()
        self._streams = 0  # streams opened (that answered)
        self._opened = False  # whether the current stream answered
        self._down = False  # whether the last stream failed (a line was said)

    def follow(
        self,
        handle: Callable[[delivery_pb2.Delivery], None],
        idle_exit: float | None = None,
        cursor: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Call ``handle`` for each version of a hit not shown before; return how many. Ends when ``should_stop()``
        says so or after ``idle_exit`` seconds without a hit. ``cursor``: start there instead of at this reader's
        acknowledged position (later reconnections resume after the last hit delivered)."""
        if self.shown is None:
            self.shown = ShownLog()
        self._resume, self._last_hit = cursor, time.monotonic()
        done = lambda: should_stop() or (idle_exit is not None and time.monotonic() - self._last_hit >= idle_exit)  # noqa: E731
        shown_before, failures = self.stats.shown, 0
        while True:
            self._opened = False
            try:
                if self._one_stream(handle, done):
                    break
                reason = "the hub ended the stream"
            except grpc.RpcError as exc:
                if self.backoff is None and exc.code() == grpc.StatusCode.CANCELLED:
                    break  # the stream was cancelled: as before, the end of a one-off read
                if self.backoff is None or exc.code() in RETRY_NEVER:
                    raise
                reason = f"{exc.code().name}: {exc.details()}"
            if self.backoff is None:
                break
            failures = 1 if self._opened else failures + 1
            if not self._down:
                state = "connection to the hub lost" if self._opened or self._streams else "cannot reach the hub"
                self.notify(f"{state} ({reason}); reconnecting")
                self._down = True
            if self._pause(self.backoff.delay(failures), done):
                break
        return self.stats.shown - shown_before

    def _one_stream(self, handle, done: Callable[[], bool]) -> bool:
        """Follow one Subscribe stream: True when ``done()`` ended it, False when the hub ended it; RpcError when
        it failed."""
        request = delivery_pb2.SubscribeRequest(member=self.member, reader=self.reader)
        if self._resume is not None:
            request.cursor = self._resume
        call = self._stub.Subscribe(request, metadata=bearer(self.token))
        try:
            self._read_metadata(call.initial_metadata())
            for delivery in call:
                self._connected()
                if not delivery.heartbeat:
                    self._take(delivery, handle)
                if done():
                    return True
            return False
        finally:
            call.cancel()

    def _read_metadata(self, metadata) -> None:
        values = dict(metadata or ())
        if START_CURSOR_KEY in values:
            self._connected()
            if self._resume is None or int(values[START_CURSOR_KEY]) > self._resume:
                self._resume = int(values[START_CURSOR_KEY])  # where a reconnection resumes if nothing comes
        lost = int(values.get(LOST_HITS_KEY, 0) or 0)
        if lost > 0:
            self.stats.lost += lost
            self.notify(
                f"{lost} hit(s) of {self.member} were deleted from the outbox (retention or a purge) before this "
                "reader got them"
            )

    def _connected(self) -> None:
        if self._opened:
            return
        self._opened = True
        if self._streams:
            self.stats.reconnects += 1
        if self._down:
            self.notify("connected to the hub again")
            self._down = False
        self._streams += 1

    def _take(self, delivery: delivery_pb2.Delivery, handle) -> None:
        """Show a version not shown before and record it; skip one shown before; then acknowledge either."""
        hit = delivery.hit
        key = (hit.hit_id, version_key(hit)) if hit.hit_id else None
        if key is not None and key in self.shown:
            self.stats.repeats_skipped += 1
        else:
            with signals_deferred():  # Ctrl-C or SIGTERM between showing and recording would show it again
                handle(delivery)
                self.stats.shown += 1
                if key is not None:
                    self.shown.add(*key)
        self._resume, self._last_hit = delivery.cursor + 1, time.monotonic()
        if self.ack:
            request = delivery_pb2.AckRequest(member=self.member, cursor=delivery.cursor, reader=self.reader)
            self._stub.Ack(request, metadata=bearer(self.token), timeout=ACK_TIMEOUT_S)

    @staticmethod
    def _pause(seconds: float, done: Callable[[], bool]) -> bool:
        """Wait ``seconds``; True as soon as ``done()`` says to stop instead."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if done():
                return True
            time.sleep(min(0.1, max(until - time.monotonic(), 0)))
        return done()
