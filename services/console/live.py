"""Live news of a member's hits for the console's open pages: a per-member fan-out of "a hit's row changed" to the
server-sent-event streams of that member's officers (services.console.pages.hits renders what changed).

The workspace's writer thread publishes (member, tick) after each commit; each open stream of that member gets the
tick on its own bounded queue, on its own event loop. A stream whose queue is full (a client that stopped reading)
is dropped rather than ever blocking the writer: its browser reconnects and resumes after the last tick it got
(the workspace's ticks make that exact). Open streams are capped per member and per officer; a stream's ``next``
answers None when it has been idle for the heartbeat interval (the page then sends a keep-alive comment). ``close``
ends every stream (shutdown) and refuses new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_SIZE = 64
MAX_PER_MEMBER = 100
MAX_PER_OFFICER = 5

STREAMS_OPEN = Gauge("apihub_console_live_streams", "Open live streams of the console's hit queue")
STREAMS_DROPPED = Counter(
    "apihub_console_live_streams_dropped", "Live streams dropped because their client stopped reading"
)

# What ``Stream.next`` answers once the stream is over (dropped, or the console is shutting down).
CLOSED = -1


class TooManyStreams(Exception):
    """The member, or the officer, has as many live streams open as allowed."""


@dataclass(eq=False)
class Stream:
    member: str
    officer: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    closed: bool = False

    async def next(self, timeout: float = HEARTBEAT_S) -> int | None:
        """The next tick published for the member; None after ``timeout`` without one; CLOSED once it is over."""
        if self.closed and self.queue.empty():
            return CLOSED
        try:
            tick = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return CLOSED if self.closed else None
        return CLOSED if tick == CLOSED else tick

    def _put(self, tick: int) -> None:
        """On the stream's loop: queue a tick, or drop the stream when its client stopped reading."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(tick)
        except asyncio.QueueFull:
            self.closed = True
            STREAMS_DROPPED.inc()
            log.info("console: a live stream of %s was dropped (its client stopped reading)", self.member)

    def _end(self) -> None:
        """On the stream's loop: the ticks already queued are still read, then CLOSED."""
        self.closed = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(CLOSED)


class Live:
    def __init__(self, max_per_member: int = MAX_PER_MEMBER, max_per_officer: int = MAX_PER_OFFICER) -> None:
        self._max_member, self._max_officer = max_per_member, max_per_officer
        self._streams: dict[str, list[Stream]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def open(self, member: str, officer: str) -> Stream:
        """A new stream of the member's news for one officer (call on the event loop that will read it)."""
        loop = asyncio.get_running_loop()
        member = member.upper()
        with self._lock:
            if self._closed:
                raise TooManyStreams("the console is shutting down")
            streams = self._streams.setdefault(member, [])
            if len(streams) >= self._max_member:
                raise TooManyStreams(f"{member} has {self._max_member} live streams open")
            if sum(1 for s in streams if s.officer == officer) >= self._max_officer:
                raise TooManyStreams(f"this officer has {self._max_officer} live streams open")
            stream = Stream(member, officer, loop)
            streams.append(stream)
        STREAMS_OPEN.inc()
        return stream

    def release(self, stream: Stream) -> None:
        with self._lock:
            streams = self._streams.get(stream.member, [])
            if stream in streams:
                streams.remove(stream)
                STREAMS_OPEN.dec()
                if not streams:
                    del self._streams[stream.member]
        stream.closed = True

    def publish(self, member: str, tick: int) -> None:
        """From any thread: tell the member's open streams that hits changed up to ``tick``. Never blocks."""
        with self._lock:
            streams = list(self._streams.get(member.upper(), ()))
        for stream in streams:
            with contextlib.suppress(RuntimeError):  # its loop is closed: the stream is gone
                stream.loop.call_soon_threadsafe(stream._put, tick)

    def count(self, member: str | None = None) -> int:
        with self._lock:
            if member is not None:
                return len(self._streams.get(member.upper(), ()))
            return sum(len(s) for s in self._streams.values())

    def close(self) -> None:
        """End every stream and refuse new ones (the console is shutting down)."""
        with self._lock:
            self._closed = True
            streams = [s for group in self._streams.values() for s in group]
        for stream in streams:
            with contextlib.suppress(RuntimeError):
                stream.loop.call_soon_threadsafe(stream._end)
