"""Duplicate detection at intake: every key of every accepted manifest, shared through a compacted topic.

Each ingest process reads the whole index at start-up (it answers NOT_SERVING until then) and follows it,
so a resend reaching any instance is recognised. Keys are recorded with the manifest's own records and in
the same acknowledgement; a manifest whose ack arrives after the carrier was told UNAVAILABLE is recorded
when the ack arrives, so the carrier's retry is answered "duplicate", not stored twice.
"""

from __future__ import annotations

import threading

from services.bus import TableReader, Topics
from services.config import HubSettings


class IntakeIndex:
    def __init__(self, settings: HubSettings, reader: TableReader | None = None):
        self._known: dict[str, str] = {}
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
        if value is None:
            self._known.pop(key.decode(), None)
        else:
            self._known[key.decode()] = value.decode()

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
        for key in keys:
            found = self._known.get(key)
            if found:
                return found
        return None

    def remember(self, keys: list[str], manifest_id: str) -> None:
        """Record locally what this process just stored (the topic brings it to the others)."""
        for key in keys:
            self._known[key] = manifest_id

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._reader.close()
