"""The profiler's in-memory tables (watchlists, rules, board policies, overrides), shared by two kinds of reader.

The batch loop (one thread, services.profiler.worker) and the interactive checks (gRPC threads,
services.profiler.check) score with the same lists and rules. Each table is a services.bus.TableReader over a
compacted topic; its consumer is not thread-safe, so one thread of its own catches the tables up (``TableSync``):
a caller asks and waits, bounded, for a catch-up that started after it asked (so many checks arriving together
cost one catch-up, not one each, and none waits past its deadline when the broker does not answer).
Applying a record changes the stores, scoring reads them: ``TableLock`` lets any number of readers score at once
and a record be applied only when none is.

What ``sync()`` guarantees is the TableReader's: every record the broker acknowledged on a table before the call
is applied when it returns True (a watchlist loaded, or an override given, before a check arrives is in force
for that check).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from services.bus import TableReader


class TableLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after it (no starvation of
    the tables thread under a steady stream of checks)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def reading(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the tables for reading; TimeoutError when a table was being applied for longer than timeout_s."""
        with self._cond:
            if not self._cond.wait_for(lambda: not (self._writing or self._writers_waiting), timeout_s):
                raise TimeoutError("the profiler's tables are being applied")
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def guard(self, apply: Callable[..., None]) -> Callable[..., None]:
        """``apply`` (a TableReader callback) run under the write lock."""

        def guarded(*args) -> None:
            with self.writing():
                apply(*args)

        return guarded


class TableSync:
    """Catches every table up in one thread of its own; ``sync()`` asks for a catch-up and waits (bounded) for one
    that started after the call. ``ready`` is set once a first catch-up of all of them completed.

    The catch-up runs in its own thread so that a caller's wait is bounded by its own timeout even when the broker
    does not answer (a KafkaConsumer call can block far longer than a check may wait): the caller stops waiting,
    the thread goes on. A catch-up that fails makes the callers waiting for it raise its error (KafkaError); the
    thread tries again, after a pause, while someone asks.
    """

    RETRY_PAUSE_S = 0.5
    CATCH_UP_TIMEOUT_S = 30.0

    def __init__(
        self,
        readers: Sequence[TableReader],
        clock: Callable[[], float] = time.monotonic,
        after: Callable[[], None] | None = None,
    ) -> None:
        """``after`` runs in the thread after each catch-up that completed, before its callers are told (the
        profiler builds its watchlist index there, once, rather than in the first screening after a change)."""
        self._readers = list(readers)
        self._after = after
        self._clock = clock
        self._cond = threading.Condition()
        self._wanted: float | None = None  # the latest time a catch-up was asked for
        self._completed: float | None = None  # start time of the last catch-up that completed
        self._failed: tuple[float, Exception] | None = None  # start time and error of the last that failed
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def sync(self, timeout_s: float, stopping: threading.Event | None = None) -> bool:
        """Wait until every table's records up to its end as of now are applied. False when that did not happen
        within timeout_s, or stopping (or close()) came first; the error of a catch-up that failed is raised."""
        asked = self._clock()
        deadline = asked + max(timeout_s, 0.0)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="profiler-tables", daemon=True)
                self._thread.start()
            self._wanted = asked if self._wanted is None else max(self._wanted, asked)
            self._cond.notify_all()
            while self._completed is None or self._completed < asked:
                if self._failed is not None and self._failed[0] >= asked:
                    raise self._failed[1]
                left = deadline - self._clock()
                if left <= 0 or self._closing.is_set() or (stopping is not None and stopping.is_set()):
                    return False
                self._cond.wait(min(left, 0.1))  # wakes to look at ``stopping`` too
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing.is_set() and (
                    self._wanted is None or (self._completed is not None and self._wanted <= self._completed)
                ):
                    self._cond.wait()
                if self._closing.is_set():
                    return
                started = self._clock()
            try:
                for reader in self._readers:
                    if not reader.catch_up(self.CATCH_UP_TIMEOUT_S, stopping=self._closing):
                        return  # closing
                if self._after is not None:
                    self._after()
            except Exception as exc:  # noqa: BLE001 - handed to the callers waiting for this catch-up
                with self._cond:
                    self._failed = (started, exc)
                    self._cond.notify_all()
                self._closing.wait(self.RETRY_PAUSE_S)
                continue
            with self._cond:
                self._completed = started
                self.ready.set()
                self._cond.notify_all()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread (the readers are the owner's to close, after this)."""
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
