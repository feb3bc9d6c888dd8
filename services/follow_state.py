"""What a member's tool has shown: a durable record of the (hit id, version) pairs it showed, so that neither its
own crash nor the hub's ever makes it show one version of a hit twice.

A tool shows a hit, records it here (committed to disk before the call returns), then acknowledges it. When the
acknowledgement never reached the hub (the tool was killed, the hub restarted), the hub delivers the hit again;
the tool finds it here, skips it and acknowledges it. The record is an SQLite file (the standard library's:
every write is an atomic, durable transaction, so a crash leaves the state before or after a record, never
half of one), bounded by age and by count. A file found damaged or emptied is set aside with a warning that says
what follows (versions shown before it may be shown again) and a fresh one is started. One tool process holds
the file at a time: a second one with the same file is refused (FollowStateError) rather than showing the same
hits alongside it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from services.codec import READER_NAME, READER_RULE, hit_fingerprint
from services.errors import HubError
from services.wire import hit_pb2

# Defaults of HubSettings.follow_state_days and follow_state_max_entries.
DEFAULT_KEEP_DAYS = 7.0
DEFAULT_MAX_ENTRIES = 100_000
# Records between two deletions of those older than keep_days (and when the file is opened).
_EXPIRE_EVERY = 1000
# How long opening waits for another process that holds the file before refusing (seconds).
_LOCK_WAIT_S = 0.5
# What a member code may be, where it names a file.
_MEMBER = re.compile(r"[A-Z0-9]{2,16}")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS shown (hit_id TEXT NOT NULL, version TEXT NOT NULL, shown_at REAL NOT NULL, "
    "UNIQUE (hit_id, version))",
    "CREATE INDEX IF NOT EXISTS shown_by_age ON shown (shown_at)",
)


class FollowStateError(HubError):
    """The state file cannot be used: its folder cannot be made or written, or another process holds it."""


def version_key(hit: hit_pb2.Hit) -> str:
    """What tells versions of one hit apart: its version number (Hit.version); the content's fingerprint for a copy
    routed before hits had versions (version 0)."""
    return str(hit.version) if hit.version else f"fp:{hit_fingerprint(hit)}"


def default_state_dir() -> Path:
    """The user's state folder for apihub: $XDG_STATE_HOME/apihub, or ~/.local/state/apihub."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "apihub"


def state_file_name(member: str, reader: str) -> str:
    """follow-<MEMBER>-<reader>.sqlite; follow-<MEMBER>.sqlite for the member's contact point (reader "")."""
    if reader and not READER_NAME.fullmatch(reader):
        raise ValueError(f"reader must be {READER_RULE}, or empty for the member's contact point")
    if not _MEMBER.fullmatch(member.upper()):
        raise ValueError("member must be a code of letters and digits (ISO 3166-1 alpha-3)")
    return f"follow-{member.upper()}{'-' + reader if reader else ''}.sqlite"


class ShownLog:
    """The (hit id, version) pairs a tool has shown: in ``path`` (durable), or in memory when ``path`` is None (a
    record for the life of one process). Keeps those shown in the last ``keep_days`` days, at most
    ``max_entries`` of them (the oldest go first). ``warn`` receives the one line said about a damaged file."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        keep_days: float = DEFAULT_KEEP_DAYS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        warn: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.time,
    ):
        if keep_days <= 0 or max_entries < 1:
            raise ValueError("keep_days must be > 0 and max_entries >= 1")
        self.path = path
        self._keep_s, self._max, self._clock = keep_days * 86400, max_entries, clock
        self._db = self._open(path, warn) if path is not None else _connect(":memory:")
        self._count = self._db.execute("SELECT count(*) FROM shown").fetchone()[0]
        self._since_expiry = 0
        self._expire()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: tuple[str, str]) -> bool:
        hit_id, version = key
        found = self._db.execute("SELECT 1 FROM shown WHERE hit_id = ? AND version = ?", (hit_id, version))
        return found.fetchone() is not None

    def add(self, hit_id: str, version: str) -> None:
        """Record a version as shown; on disk when this returns."""
        with self._db:  # one transaction: the record and any trimming it needs, or nothing
            added = self._db.execute(
                "INSERT OR IGNORE INTO shown (hit_id, version, shown_at) VALUES (?, ?, ?)",
                (hit_id, version, self._clock()),
            ).rowcount
            self._count += added
            if self._count > self._max:
                self._drop_oldest(self._count - self._max)
        self._since_expiry += added
        if self._since_expiry >= _EXPIRE_EVERY:
            self._expire()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ShownLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- bounds --------------------------------------------------------------------------------------------------

    def _expire(self) -> None:
        with self._db:
            gone = self._db.execute("DELETE FROM shown WHERE shown_at < ?", (self._clock() - self._keep_s,)).rowcount
            self._count -= gone
            if self._count > self._max:
                self._drop_oldest(self._count - self._max)
        self._since_expiry = 0

    def _drop_oldest(self, how_many: int) -> None:
        self._count -= self._db.execute(
            "DELETE FROM shown WHERE rowid IN (SELECT rowid FROM shown ORDER BY shown_at, rowid LIMIT ?)", (how_many,)
        ).rowcount

    # -- the file ------------------------------------------------------------------------------------------------

    @staticmethod
    def _open(path: Path, warn: Callable[[str], None]) -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FollowStateError(f"state file {path}: cannot make its folder: {exc.strerror or exc}") from None
        emptied = path.exists() and path.stat().st_size == 0
        try:
            db = None if emptied else _connect(path)
            damage = "the file is empty" if emptied else _damage(db)
        except sqlite3.DatabaseError as exc:
            db, damage = None, str(exc)
            if "locked" in damage:
                raise FollowStateError(
                    f"state file {path} is in use by another process (another `apihub hits follow` of this member "
                    "and reader?): stop it, or give this one another --reader or --state"
                ) from None
        if damage is None:
            return db
        if db is not None:
            db.close()
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        try:
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{path}{suffix}")
                if part.exists():
                    part.replace(Path(f"{aside}{suffix}"))
        except OSError as exc:
            raise FollowStateError(f"state file {path} is damaged ({damage}) and cannot be set aside: {exc}") from None
        warn(
            f"state file {path} is damaged ({damage}): set aside as {aside.name}, starting a new one; hits shown "
            "before may be shown once more"
        )
        try:
            return _connect(path)
        except sqlite3.DatabaseError as exc:
            raise FollowStateError(f"state file {path}: {exc}") from None


def _connect(where: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions by ``with db:``), every commit synced to disk, the file held
    by this process alone; the schema made. Raises sqlite3.DatabaseError (damaged file, locked) and OSError."""
    try:
        db = sqlite3.connect(where, timeout=_LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:  # e.g. a folder that cannot be written
        raise FollowStateError(f"state file {where}: {exc}") from None
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")  # takes the file's lock now, kept until closed (locking_mode)
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("COMMIT")
        db.isolation_level = "DEFERRED"  # `with db:` then commits or rolls back what it wraps
    except BaseException:
        db.close()
        raise
    return db


def _damage(db: sqlite3.Connection) -> str | None:
    """What SQLite's own check finds wrong with the file, or None."""
    rows = db.execute("PRAGMA quick_check").fetchall()
    problems = [row[0] for row in rows if row[0] != "ok"]
    return "; ".join(problems[:3]) or None
