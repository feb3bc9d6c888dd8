"""Duplicate detection at intake: every key of every accepted manifest, shared through a compacted topic.

Each ingest process reads the whole index at start-up (it does not listen until then: server.py) and follows
it, so a resend reaching any instance is recognised. Keys are recorded with the manifest's own records and in
the same acknowledgement; a manifest whose ack arrives after the carrier was told UNAVAILABLE is recorded
when the ack arrives, so the carrier's retry is answered "duplicate", not stored twice.

Memory is bounded: a key is kept for flight_state_days after it was stored (its record's timestamp; the index
records no departure) and at most intake_index_max_keys keys are held, the oldest dropped first. A resend after
that is stored again, under the same manifest id (services.codec.manifest_id), and screened again; the router's
ledger does not send an unchanged hit twice, and ignores the hits of a flight closed meanwhile.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from services.bus import TableReader, Topics
from services.config import HubSettings

INDEX_KEYS = Gauge("apihub_ingest_index_keys", "Duplicate-detection keys intake holds in memory")
INDEX_EVICTED = Counter(
    "apihub_ingest_index_evicted",
    "Duplicate-detection keys dropped from memory: stored more than APIHUB_FLIGHT_STATE_DAYS ago (age), or the "
    "most held reached (count)",
    ["reason"],
)


class IntakeIndex:
    def __init__(
        self, settings: HubSettings, reader: TableReader | None = None, *, clock: Callable[[], float] = time.time
    ):
        # key -> (manifest id, when stored: epoch seconds), oldest first.
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_age_s = settings.flight_state_days * 86400.0
        self._max_keys = settings.intake_index_max_keys
        self._clock = clock
        self._lock = threading.Lock()  # the follower thread applies while gRPC threads look up and remember
        ref = weakref.ref(self)
        INDEX_KEYS.set_function(lambda: len(ref() or ()))
        self._reader = reader or TableReader(
            settings, Topics(settings.topic_prefix).intake_index, self._apply, "apihub-ingest-index"
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._known)

    def _apply(self, key: bytes | None, value: bytes | None, record=None) -> None:
        if key is None:
            return
        with self._lock:
            if value is None:
                self._known.pop(key.decode(), None)
                return
            stamp = getattr(record, "timestamp", -1)
            self._put(key.decode(), value.decode(), stamp / 1000 if stamp is not None and stamp >= 0 else None)

    def _put(self, key: str, manifest_id: str, stored: float | None) -> None:
        """Hold a key (under the lock), then drop what is past the bounds: both from the oldest end, so cheap."""
        now = self._clock()
        stored = now if stored is None else stored
        if stored < now - self._max_age_s:
            INDEX_EVICTED.labels(reason="age").inc()  # read back from the topic, already past its time
            self._known.pop(key, None)
            return
        self._known[key] = (manifest_id, stored)
        self._known.move_to_end(key)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while len(self._known) > self._max_keys:
            self._known.popitem(last=False)
            INDEX_EVICTED.labels(reason="count").inc()
        # Keys arrive about in the order they were stored (partitions interleave): the oldest end is checked.
        while self._known:
            oldest = next(iter(self._known))
            if self._known[oldest][1] >= now - self._max_age_s:
                break
            del self._known[oldest]
            INDEX_EVICTED.labels(reason="age").inc()

    def start(self) -> IntakeIndex:
        """Load the whole index, then follow it in a background thread."""
        self._reader.catch_up(timeout_s=120)
        self._thread = threading.Thread(
            target=self._reader.follow, args=(self._stopping,), name="intake-index", daemon=True
        )
        self._thread.start()
        return self

    def lookup(self, keys: list[str]) -> str | None:
        """The manifest id already stored under any of these keys, or None."""
        with self._lock:
            for key in keys:
                found = self._known.get(key)
                if found:
                    return found[0]
        return None

    def remember(self, keys: list[str], manifest_id: str) -> None:
        """Record locally what this process just stored (the topic brings it to the others)."""
        with self._lock:
            for key in keys:
                self._put(key, manifest_id, None)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._reader.close()
