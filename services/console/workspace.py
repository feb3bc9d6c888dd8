"""The console's workspace: its own SQLite store of every version of every hit it read for its members, their
dispositions and who is on which, and the readers that keep it current.

The console reads each member's hits as reader "console" (HitDelivery.Subscribe through services.console.gateway),
with its own cursor, so using the console takes no hit from the member's contact point. A reader stores each version
once (de-duplicated on (hit id, version): a copy delivered again repeats its version), together with the cursor it
resumes from, in one transaction, and only then acknowledges it: a crash between the two re-reads the version, which
the store already holds. On any error it reconnects with a backoff and resumes from its own stored cursor (from the
outbox's oldest hit when it has none: a new or rebuilt workspace reads what the outbox still keeps).

A hit's state comes from its current version and its dispositions: "withdrawn" when its current (greatest) version
is a withdrawal, else "closed" once it has a disposition, else "in-progress" once an officer took it ("I'm on it"),
else "new". Dispositions recorded elsewhere (`apihub hits dispose`, another console) arrive by polling the router
(MemberRecords.ListDispositions through the gateway).

The store is bounded: hits whose current version is older than the retention (settings.outbox_retention_days, the
outbox's own) are deleted with their versions, dispositions and takes. One writer thread owns the writing connection
(every change is a short transaction on it, handed over through a bounded queue); pages read through connections of
their own (WAL: readers never wait for the writer). Every change to a hit's row takes the next number of one counter
(its ``changed`` tick, and a new hit's ``seq``): live streams (services.console.live) resume after the last tick they
sent, so a stream that reconnects misses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.bus import FailureRun
from services.dispositions import OUTCOME_NAMES
from services.follow import Backoff
from services.follow_state import version_key
from services.wire import delivery_pb2, hit_pb2

log = logging.getLogger(__name__)

# The console's reader of each member's outbox (SubscribeRequest.reader).
READER = "console"
STATES = ("new", "in-progress", "closed", "withdrawn")
SOURCES = ("watchlist", "rule", "model")
BANDS = ("alert", "review")
_SOURCE_NAMES = {
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}
# Separator of the sets kept in one column (sources, categories): never part of a category anyone types.
_SEP = "\x1f"
# Writes waiting for the writer thread at most; a reader that finds the queue full waits.
WRITE_QUEUE = 256
# How long a write may wait for the writer (seconds) before the caller gets WorkspaceError.
WRITE_TIMEOUT_S = 60.0
# How often the writer deletes what is past the retention (seconds).
EXPIRE_EVERY_S = 3600.0
# Reading connections kept open between reads.
IDLE_READERS = 8
# Rows one query returns at most (pages, live batches, export batches).
MAX_PAGE = 500

_SCHEMA = (
    # One row per hit: its current (greatest) version, flattened for the queue's filters. A withdrawal carries no
    # reasons: the row keeps the sources, categories, score and band of the last version that had them.
    """CREATE TABLE IF NOT EXISTS hits (
        seq INTEGER PRIMARY KEY,
        member TEXT NOT NULL,
        hit_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        vkey TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        withdrawn INTEGER NOT NULL,
        flight TEXT NOT NULL,
        carrier TEXT NOT NULL,
        number TEXT NOT NULL,
        departure REAL,
        origin TEXT NOT NULL,
        destination TEXT NOT NULL,
        route TEXT NOT NULL,
        sources TEXT NOT NULL,
        categories TEXT NOT NULL,
        score REAL NOT NULL,
        band TEXT NOT NULL,
        for_review INTEGER NOT NULL,
        received REAL NOT NULL,
        first_received REAL NOT NULL,
        changed INTEGER NOT NULL,
        UNIQUE (member, hit_id))""",
    "CREATE INDEX IF NOT EXISTS hits_changed ON hits (member, changed)",
    "CREATE INDEX IF NOT EXISTS hits_age ON hits (received)",
    # Every version read, the Hit as delivered (traveller as the carrier sent them, every reason).
    """CREATE TABLE IF NOT EXISTS versions (
        member TEXT NOT NULL,
        hit_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        vkey TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        withdrawn INTEGER NOT NULL,
        received REAL NOT NULL,
        hit BLOB NOT NULL,
        PRIMARY KEY (member, hit_id, vkey))""",
    # Every disposition seen (this console's, and the router's list of the member's latest ones).
    """CREATE TABLE IF NOT EXISTS dispositions (
        member TEXT NOT NULL,
        hit_id TEXT NOT NULL,
        at REAL NOT NULL,
        outcome INTEGER NOT NULL,
        user TEXT NOT NULL,
        note TEXT NOT NULL,
        PRIMARY KEY (member, hit_id, at, outcome, user))""",
    # The latest disposition of each hit: the one that counts (services.dispositions).
    """CREATE TABLE IF NOT EXISTS disposed (
        member TEXT NOT NULL,
        hit_id TEXT NOT NULL,
        at REAL NOT NULL,
        outcome INTEGER NOT NULL,
        user TEXT NOT NULL,
        note TEXT NOT NULL,
        PRIMARY KEY (member, hit_id))""",
    # Who said "I'm on it".
    """CREATE TABLE IF NOT EXISTS taken (
        member TEXT NOT NULL,
        hit_id TEXT NOT NULL,
        user TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (member, hit_id))""",
    # Where each member's reader resumes: the cursor after the last version it stored.
    "CREATE TABLE IF NOT EXISTS readers (member TEXT PRIMARY KEY, next_cursor INTEGER NOT NULL, at REAL NOT NULL)",
)

_STATE_SQL = (
    "CASE WHEN h.withdrawn THEN 'withdrawn' WHEN d.hit_id IS NOT NULL THEN 'closed' "
    "WHEN t.hit_id IS NOT NULL THEN 'in-progress' ELSE 'new' END"
)
_ROW_SQL = (
    "SELECT h.seq, h.changed, h.hit_id, h.version, h.cursor, h.withdrawn, h.carrier, h.number, h.departure, "
    "h.origin, h.destination, h.route, h.sources, h.categories, h.score, h.band, h.for_review, h.received, "
    f"h.first_received, t.user, t.at, d.outcome, d.at, d.user, d.note, {_STATE_SQL} AS state "
    "FROM hits h LEFT JOIN disposed d ON d.member = h.member AND d.hit_id = h.hit_id "
    "LEFT JOIN taken t ON t.member = h.member AND t.hit_id = h.hit_id"
)


class WorkspaceError(Exception):
    """The workspace could not do what was asked (closed, or its writer is stuck)."""


def _first(cursor: sqlite3.Cursor) -> tuple | None:
    """A query's first row, with its statement finished: a statement left running would hold its connection's
    read snapshot, and later reads on that connection would not see newer commits."""
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def _moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _ts(value) -> float | None:
    """A protobuf Timestamp as epoch seconds; None when unset."""
    return value.seconds + value.nanos / 1e9 if (value.seconds or value.nanos) else None


@dataclass(frozen=True)
class HitRow:
    """A hit as the queue shows it: its current version's flight, sources, categories, score and band, its state."""

    seq: int
    changed: int
    hit_id: str
    version: int
    cursor: int
    withdrawn: bool
    carrier: str
    number: str
    departure: datetime | None
    origin: str
    destination: str
    route: tuple[str, ...]
    sources: tuple[str, ...]
    categories: tuple[str, ...]
    score: float
    band: str
    for_review: bool
    received: datetime
    first_received: datetime
    taken_by: str
    taken_at: datetime | None
    outcome: str
    disposed_at: datetime | None
    disposed_by: str
    note: str
    state: str

    @classmethod
    def of(cls, row: tuple) -> HitRow:
        (seq, changed, hit_id, version, cursor, withdrawn, carrier, number, departure, origin, destination, route,
         sources, categories, score, band, for_review, received, first_received, taken_by, taken_at, outcome,
         disposed_at, disposed_by, note, state) = row  # fmt: skip
        return cls(
            seq=seq,
            changed=changed,
            hit_id=hit_id,
            version=version,
            cursor=cursor,
            withdrawn=bool(withdrawn),
            carrier=carrier,
            number=number,
            departure=_moment(departure),
            origin=origin,
            destination=destination,
            route=tuple(route.split()) if route else (),
            sources=tuple(s for s in sources.split(_SEP) if s),
            categories=tuple(c for c in categories.split(_SEP) if c),
            score=score,
            band=band,
            for_review=bool(for_review),
            received=_moment(received),
            first_received=_moment(first_received),
            taken_by=taken_by or "",
            taken_at=_moment(taken_at),
            outcome=OUTCOME_NAMES.get(outcome, "") if outcome is not None else "",
            disposed_at=_moment(disposed_at),
            disposed_by=disposed_by or "",
            note=note or "",
            state=state,
        )


@dataclass(frozen=True)
class Version:
    version: int
    cursor: int
    withdrawn: bool
    received: datetime
    hit: hit_pb2.Hit


@dataclass(frozen=True)
class DispositionSeen:
    at: datetime
    outcome: str
    user: str
    note: str


@dataclass(frozen=True)
class HitRecord:
    """Everything the hit page shows: the row, the current version, the version whose traveller and reasons are
    shown (the current one, or for a withdrawal the last version that had them), earlier versions (newest first)
    and every disposition seen (newest first)."""

    row: HitRow
    current: Version
    shown: Version
    earlier: list[Version]
    dispositions: list[DispositionSeen]


@dataclass(frozen=True)
class Filters:
    """The queue's filters; each None/"" matches every hit."""

    flight: str = ""  # carrier + number, e.g. "FJ911"; a prefix ("FJ") matches the carrier's flights
    day: date | None = None  # the flight's departure date in the member's time zone
    source: str = ""  # watchlist, rule, model
    category: str = ""
    band: str = ""  # alert, review
    state: str = ""  # new, in-progress, closed, withdrawn

    @classmethod
    def parse(cls, values: dict[str, str]) -> tuple[Filters, list[str]]:
        """Filters from a query string's values, and the names of those that were not understood (ignored)."""
        wrong: list[str] = []
        flight = "".join((values.get("flight") or "").split()).upper()
        if flight and not (flight.isalnum() and flight.isascii() and len(flight) <= 12):
            wrong.append("flight")
            flight = ""
        day = None
        if values.get("date"):
            try:
                day = date.fromisoformat(values["date"])
            except ValueError:
                wrong.append("date")
        category = " ".join((values.get("category") or "").split()).lower()
        if len(category) > 64 or _SEP in category:
            wrong.append("category")
            category = ""
        chosen = {}
        for name, allowed in (("source", SOURCES), ("band", BANDS), ("state", STATES)):
            value = values.get(name) or ""
            if value and value not in allowed:
                wrong.append(name)
                value = ""
            chosen[name] = value
        return cls(flight=flight, day=day, category=category, **chosen), wrong

    def as_query(self) -> dict[str, str]:
        """The filters as query-string values (only those set)."""
        values = {
            "flight": self.flight,
            "date": self.day.isoformat() if self.day else "",
            "source": self.source,
            "category": self.category,
            "band": self.band,
            "state": self.state,
        }
        return {k: v for k, v in values.items() if v}

    def where(self, time_zone: str) -> tuple[str, list[Any]]:
        """A SQL condition on the hits of _ROW_SQL (aliases h, d, t) and its parameters; "1" for no filter."""
        terms: list[str] = []
        params: list[Any] = []
        if self.flight:
            terms.append("h.flight LIKE ? ESCAPE '\\'")
            params.append(self.flight + "%")
        if self.day:
            start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=ZoneInfo(time_zone))
            terms.append("h.departure >= ? AND h.departure < ?")
            params.extend([start.timestamp(), (start + timedelta(days=1)).timestamp()])
        if self.source:
            terms.append("instr(h.sources, ?) > 0")
            params.append(f"{_SEP}{self.source}{_SEP}")
        if self.category:
            terms.append("instr(h.categories, ?) > 0")
            params.append(f"{_SEP}{self.category}{_SEP}")
        if self.band:
            terms.append("h.band = ?")
            params.append(self.band)
        if self.state:
            terms.append(f"{_STATE_SQL} = ?")
            params.append(self.state)
        return (" AND ".join(terms) or "1"), params


@dataclass(frozen=True)
class Page:
    rows: list[HitRow]
    total: int
    # The last tick of the member's hits when the page was read: a live stream resumes after it.
    tick: int


@dataclass(frozen=True)
class Change:
    """A hit's row whose tick is past a live stream's last one: whether it matches the stream's filters."""

    row: HitRow
    matches: bool


@dataclass
class _Summary:
    """What the queue keeps of a version that has reasons (a withdrawal has none)."""

    sources: str = _SEP
    categories: str = _SEP
    score: float = 0.0
    band: str = "alert"
    for_review: bool = False

    @classmethod
    def of(cls, hit: hit_pb2.Hit) -> _Summary:
        sources = sorted({_SOURCE_NAMES[r.source] for r in hit.reasons if r.source in _SOURCE_NAMES})
        categories = sorted({" ".join(r.category.split()).lower() for r in hit.reasons if r.category.strip()})
        if not hit.reasons:  # a withdrawal of a hit this workspace never held
            return cls(band="")
        return cls(
            sources=_SEP + "".join(s + _SEP for s in sources),
            categories=_SEP + "".join(c.replace(_SEP, " ") + _SEP for c in categories),
            score=hit.score,
            # Review: only review-band watchlist matches and/or the model's ranking, for a human to check first;
            # alert: a rule or an alert-band watchlist match, to act on.
            band="review" if hit.for_review else "alert",
            for_review=hit.for_review,
        )


@dataclass
class _Write:
    work: Callable[[sqlite3.Connection], Any]
    done: Future = field(default_factory=Future)


class Workspace:
    """The store. ``on_change(member, tick)`` is called (on the writer thread, after the commit) for every change
    of a hit's row: a new hit, a newer version, a disposition, a take."""

    def __init__(
        self,
        path: Path | str,
        retention_days: float,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str, int], None] | None = None,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be > 0")
        self.path = Path(path)
        self._keep_s = retention_days * 86400.0
        self._clock = clock
        self.on_change = on_change
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            # A damaged file: set aside for a look, and a new one started. The readers fill it again from what
            # the outboxes keep, the dispositions poll brings the members' dispositions back; who was on which hit
            # ("in progress") is lost.
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.replace(Path(f"{aside}{suffix}"))
            log.warning("console workspace %s is damaged (%s): set aside as %s; reading the hits again",
                        self.path, type(exc).__name__, aside.name)  # fmt: skip
            self._db = self._open()
        self._tick = _first(self._db.execute("SELECT max(coalesce(max(seq), 0), coalesce(max(changed), 0)) FROM hits"))[
            0
        ]
        self._writes: queue.Queue[_Write | None] = queue.Queue(WRITE_QUEUE)
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._closed = False
        self._expire(self._db)
        self._last_expiry = time.monotonic()
        self._writer = threading.Thread(target=self._write_loop, name="console-workspace", daemon=True)
        self._writer.start()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL (WAL): a crash of the machine may lose the last commits, but each holds its own resume cursor,
            # so the reader reads those versions again (it resumes from its stored cursor, never the acknowledged).
            db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                db.execute(statement)
            if _first(db.execute("PRAGMA quick_check"))[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
        except BaseException:
            db.close()
            raise
        return db

    # -- writing (the writer thread) -----------------------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise WorkspaceError("the workspace is closed")
        item = _Write(work)
        try:
            self._writes.put(item, timeout=WRITE_TIMEOUT_S)
            return item.done.result(timeout=WRITE_TIMEOUT_S)
        except (queue.Full, TimeoutError):
            raise WorkspaceError("the workspace's writer did not answer in time") from None

    def _write_loop(self) -> None:
        while True:
            try:
                item = self._writes.get(timeout=EXPIRE_EVERY_S)
            except queue.Empty:
                item = False
            if item is None:
                return
            if time.monotonic() - self._last_expiry >= EXPIRE_EVERY_S:
                self._last_expiry = time.monotonic()
                try:
                    self._expire(self._db)
                except sqlite3.Error as exc:
                    log.warning("console workspace: expiry failed (%s)", type(exc).__name__)
            if not item:
                continue
            changes: list[tuple[str, int]] = []
            try:
                self._db.execute("BEGIN IMMEDIATE")
                tick = self._tick
                try:
                    result = item.work(self._db)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._tick = tick
                    raise
                changes, result = result if isinstance(result, _Changed) else ([], result)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                item.done.set_exception(exc)
                continue
            # Published before the caller hears back: whatever it does next comes after the news.
            for member, tick in changes:
                if self.on_change is not None:
                    try:
                        self.on_change(member, tick)
                    except Exception as exc:  # noqa: BLE001 - a listener's failure never stops the writer
                        log.warning("console workspace: change listener failed (%s)", type(exc).__name__)
            item.done.set_result(result)

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    def store(self, member: str, delivery: delivery_pb2.Delivery) -> str | None:
        """Store one delivered version and the cursor after it; what it changed: "new" (a hit not seen before),
        "updated" (a newer version: an update or a withdrawal), "history" (an older version than the current
        one), or None (a version stored before, or a heartbeat)."""
        if delivery.heartbeat:
            return None
        member = member.upper()
        now = self._clock()

        def work(db: sqlite3.Connection):
            db.execute(
                "INSERT INTO readers (member, next_cursor, at) VALUES (?, ?, ?) ON CONFLICT (member) DO UPDATE "
                "SET next_cursor = max(next_cursor, excluded.next_cursor), at = excluded.at",
                (member, delivery.cursor + 1, now),
            )
            hit = delivery.hit
            if not hit.hit_id:
                return None
            vkey = version_key(hit)
            withdrawn = hit.state == hit_pb2.HIT_STATE_WITHDRAWN
            added = db.execute(
                "INSERT OR IGNORE INTO versions (member, hit_id, version, vkey, cursor, withdrawn, received, hit) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (member, hit.hit_id, hit.version, vkey, delivery.cursor, withdrawn, now, hit.SerializeToString()),
            ).rowcount
            if not added:
                return None
            current = _first(
                db.execute(
                    "SELECT version, cursor, sources, categories, score, band, for_review FROM hits "
                    "WHERE member = ? AND hit_id = ?",
                    (member, hit.hit_id),
                )
            )
            if current is not None and (hit.version, delivery.cursor) < (current[0], current[1]):
                return "history"
            summary = _Summary.of(hit)
            if withdrawn and current is not None:
                summary = _Summary(current[2], current[3], current[4], current[5], bool(current[6]))
            flight = hit.flight
            values = (
                hit.version, vkey, delivery.cursor, withdrawn, (flight.carrier + flight.number).upper(),
                flight.carrier, flight.number, _ts(flight.departure), flight.origin, flight.destination,
                " ".join(flight.route), summary.sources, summary.categories, summary.score, summary.band,
                summary.for_review, now,
            )  # fmt: skip
            tick = self._next_tick()
            if current is None:
                db.execute(
                    "INSERT INTO hits (version, vkey, cursor, withdrawn, flight, carrier, number, departure, origin, "
                    "destination, route, sources, categories, score, band, for_review, received, seq, member, "
                    "hit_id, first_received, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?)",
                    (*values, tick, member, hit.hit_id, now, tick),
                )
                return _Changed([(member, tick)], "new")
            db.execute(
                "UPDATE hits SET version = ?, vkey = ?, cursor = ?, withdrawn = ?, flight = ?, carrier = ?, "
                "number = ?, departure = ?, origin = ?, destination = ?, route = ?, sources = ?, categories = ?, "
                "score = ?, band = ?, for_review = ?, received = ?, changed = ? WHERE member = ? AND hit_id = ?",
                (*values, tick, member, hit.hit_id),
            )
            return _Changed([(member, tick)], "updated")

        return self._write(work)

    def record_dispositions(self, member: str, dispositions: list[delivery_pb2.Disposition]) -> int:
        """Keep dispositions of the member's hits (each once); the latest of a hit decides its state. Returns how
        many hits' latest disposition changed."""
        member = member.upper()
        usable = [d for d in dispositions if d.hit_id and d.outcome in OUTCOME_NAMES]

        def work(db: sqlite3.Connection):
            changes = []
            for d in usable:
                at = _ts(d.at) or self._clock()
                row = (member, d.hit_id, at, d.outcome, d.user, d.note)
                if not db.execute(
                    "INSERT OR IGNORE INTO dispositions (member, hit_id, at, outcome, user, note) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                ).rowcount:
                    continue
                latest = _first(
                    db.execute("SELECT at FROM disposed WHERE member = ? AND hit_id = ?", (member, d.hit_id))
                )
                if latest is not None and at < latest[0]:
                    continue
                db.execute("INSERT OR REPLACE INTO disposed (member, hit_id, at, outcome, user, note) "
                           "VALUES (?, ?, ?, ?, ?, ?)", row)  # fmt: skip
                changes.extend(self._touch(db, member, d.hit_id))
            return _Changed(changes, len(changes))

        return self._write(work) if usable else 0

    def take(self, member: str, hit_id: str, user: str) -> bool:
        """Record that ``user`` is on the hit ("in progress"); False when the member has no such hit."""
        member = member.upper()
        now = self._clock()

        def work(db: sqlite3.Connection):
            if _first(db.execute("SELECT 1 FROM hits WHERE member = ? AND hit_id = ?", (member, hit_id))) is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO taken (member, hit_id, user, at) VALUES (?, ?, ?, ?)",
                (member, hit_id, user, now),
            )
            return _Changed(self._touch(db, member, hit_id), True)

        return self._write(work)

    def forget_cursor(self, member: str) -> None:
        """Read the member's outbox again from its oldest hit (its end moved back: the outbox was made anew)."""

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM readers WHERE member = ?", (member.upper(),))

        self._write(work)

    def _touch(self, db: sqlite3.Connection, member: str, hit_id: str) -> list[tuple[str, int]]:
        tick = self._tick + 1
        if db.execute("UPDATE hits SET changed = ? WHERE member = ? AND hit_id = ?", (tick, member, hit_id)).rowcount:
            self._tick = tick
            return [(member, tick)]
        return []

    def expire(self) -> int:
        """Delete what is past the retention now (the writer also does it hourly); how many hits went."""
        return self._write(self._expire)

    def _expire(self, db: sqlite3.Connection) -> int:
        before = self._clock() - self._keep_s
        own = db.in_transaction
        if not own:
            db.execute("BEGIN IMMEDIATE")
        try:
            gone = db.execute("SELECT member, hit_id FROM hits WHERE received < ?", (before,)).fetchall()
            for table in ("versions", "taken", "dispositions", "disposed"):
                db.executemany(f"DELETE FROM {table} WHERE member = ? AND hit_id = ?", gone)
            db.execute("DELETE FROM hits WHERE received < ?", (before,))
            # Versions and dispositions of hits the workspace never held a row for (retention reached them first).
            db.execute("DELETE FROM versions WHERE received < ?", (before,))
            db.execute("DELETE FROM dispositions WHERE at < ?", (before,))
            db.execute("DELETE FROM disposed WHERE at < ?", (before,))
            if not own:
                db.execute("COMMIT")
        except BaseException:
            if not own:
                db.execute("ROLLBACK")
            raise
        if gone:
            log.info("console workspace: %d hit(s) past the retention deleted", len(gone))
        return len(gone)

    # -- reading (any thread) ------------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A reading connection of the pool (at most IDLE_READERS kept between reads)."""
        if self._closed:
            raise WorkspaceError("the workspace is closed")
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if self._closed or self._idle.qsize() >= IDLE_READERS:
                db.close()
            else:
                self._idle.put(db)

    def cursor(self, member: str) -> int | None:
        """Where the member's reader resumes: the cursor after the last version it stored; None before any."""
        with self._reading() as db:
            row = _first(db.execute("SELECT next_cursor FROM readers WHERE member = ?", (member.upper(),)))
        return None if row is None else row[0]

    def page(self, member: str, filters: Filters, time_zone: str, offset: int = 0, limit: int = 50) -> Page:
        """The member's hits matching ``filters``, newest first (as the console first read them)."""
        where, params = filters.where(time_zone)
        limit = max(1, min(limit, MAX_PAGE))
        with self._reading() as db:
            db.execute("BEGIN")  # one snapshot: the rows, their count and the tick agree
            rows = db.execute(
                f"{_ROW_SQL} WHERE h.member = ? AND {where} ORDER BY h.seq DESC LIMIT ? OFFSET ?",
                (member.upper(), *params, limit, max(offset, 0)),
            ).fetchall()
            total = _first(
                db.execute(
                    "SELECT count(*) FROM hits h LEFT JOIN disposed d ON d.member = h.member AND d.hit_id = h.hit_id "
                    f"LEFT JOIN taken t ON t.member = h.member AND t.hit_id = h.hit_id WHERE h.member = ? AND {where}",
                    (member.upper(), *params),
                )
            )[0]
            tick = _first(db.execute("SELECT coalesce(max(changed), 0) FROM hits WHERE member = ?", (member.upper(),)))[
                0
            ]
        return Page([HitRow.of(r) for r in rows], total, tick)

    def changes(self, member: str, after: int, filters: Filters, time_zone: str, limit: int = 200) -> list[Change]:
        """The member's hits changed after tick ``after``, oldest change first, each with whether it matches."""
        where, params = filters.where(time_zone)
        with self._reading() as db:
            rows = db.execute(
                f"{_ROW_SQL.replace(' AS state ', f' AS state, ({where}) AS matches ', 1)} "
                "WHERE h.member = ? AND h.changed > ? ORDER BY h.changed LIMIT ?",
                (*params, member.upper(), after, max(1, min(limit, MAX_PAGE))),
            ).fetchall()
        return [Change(HitRow.of(r[:-1]), bool(r[-1])) for r in rows]

    def row(self, member: str, hit_id: str) -> HitRow | None:
        with self._reading() as db:
            found = _first(db.execute(f"{_ROW_SQL} WHERE h.member = ? AND h.hit_id = ?", (member.upper(), hit_id)))
        return None if found is None else HitRow.of(found)

    def hit(self, member: str, hit_id: str) -> HitRecord | None:
        """The member's hit with all its versions and dispositions; None for a hit id the member has not (another
        member's hit, an unknown id: the same answer)."""
        member = member.upper()
        with self._reading() as db:
            db.execute("BEGIN")
            found = _first(db.execute(f"{_ROW_SQL} WHERE h.member = ? AND h.hit_id = ?", (member, hit_id)))
            if found is None:
                return None
            versions = [
                Version(v, c, bool(w), _moment(r), hit_pb2.Hit.FromString(blob))
                for v, c, w, r, blob in db.execute(
                    "SELECT version, cursor, withdrawn, received, hit FROM versions WHERE member = ? AND hit_id = ? "
                    "ORDER BY version DESC, cursor DESC",
                    (member, hit_id),
                )
            ]
            seen = [
                DispositionSeen(_moment(at), OUTCOME_NAMES.get(outcome, ""), user, note)
                for at, outcome, user, note in db.execute(
                    "SELECT at, outcome, user, note FROM dispositions WHERE member = ? AND hit_id = ? ORDER BY at DESC",
                    (member, hit_id),
                )
            ]
        row = HitRow.of(found)
        current = next((v for v in versions if v.version == row.version and v.cursor == row.cursor), None)
        if current is None:
            return None
        shown = current
        if current.withdrawn:
            shown = next((v for v in versions if not v.withdrawn), current)
        return HitRecord(row, current, shown, [v for v in versions if v is not current], seen)

    def export(self, member: str, filters: Filters, time_zone: str, batch: int = MAX_PAGE) -> Iterator[HitRow]:
        """Every hit of the member matching ``filters``, newest first, read in batches (bounded memory)."""
        where, params = filters.where(time_zone)
        before = None
        while True:
            condition = f"h.member = ? AND {where}" + (" AND h.seq < ?" if before is not None else "")
            with self._reading() as db:
                rows = db.execute(
                    f"{_ROW_SQL} WHERE {condition} ORDER BY h.seq DESC LIMIT ?",
                    (member.upper(), *params, *(() if before is None else (before,)), batch),
                ).fetchall()
            for r in rows:
                yield HitRow.of(r)
            if len(rows) < batch:
                return
            before = rows[-1][0]

    # -- the end -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writes.put(None)
        self._writer.join(timeout=WRITE_TIMEOUT_S)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        self._db.close()


class _Changed(tuple):
    """A write's result with the (member, tick) changes it made: (changes, result)."""

    def __new__(cls, changes: list[tuple[str, int]], result: Any):
        return super().__new__(cls, (changes, result))


# -- the readers -----------------------------------------------------------------------------------------------------

# How often the console looks for members that gained an officer, and polls the router for dispositions (seconds).
MEMBERS_EVERY_S = 5.0
DISPOSITIONS_EVERY_S = 30.0
# Versions a reader stores at most before it acknowledges them (it also does when the stream is idle).
ACK_EVERY = 100
# Dispositions asked for at each poll after a member's first (newest first).
POLL_LIMIT = 500


def _reason(exc: BaseException) -> str:
    """A failure as the logs say it: the exception's type, never its text (it may hold record contents)."""
    return type(exc).__name__


def _past_the_end(exc: BaseException) -> bool:
    """The router's answer to a cursor past the outbox's end (OUT_OF_RANGE: the outbox was made anew)."""
    code = getattr(exc, "code", None)
    code = code() if callable(code) else code
    return "OUT_OF_RANGE" in str(getattr(code, "name", code) or "") or "past the outbox's end" in str(exc)


class MemberReader:
    """Reads one member's outbox as reader "console" into the workspace: store, then acknowledge."""

    def __init__(self, member: str, gateway, workspace: Workspace, stopping: threading.Event,
                 backoff: Backoff | None = None) -> None:  # fmt: skip
        self.member = member.upper()
        self._gateway = gateway
        self._workspace = workspace
        self._stopping = stopping
        self._backoff = backoff or Backoff()
        self._stream = None
        self.opened = False
        self.failures = FailureRun(log, f"console reader of {self.member}'s hits")
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"console-reader-{self.member}", daemon=True)
        self.thread.start()

    def read_once(self) -> str:
        """Follow one Subscribe stream from the stored cursor until the hub ends it (returns why), it fails
        (raises), or stopping is set.

        Each version is stored (with the cursor after it) before it is acknowledged. Acknowledgements are
        cumulative and the reader resumes from its own stored cursor, so it acknowledges when the stream goes idle
        (the router's heartbeat), every ACK_EVERY versions while it catches up, and when the stream ends: the
        router's cursor of reader "console" (which oversight shows) follows closely without an Ack, and an audit
        event, per hit."""
        start = self._workspace.cursor(self.member)
        self.opened = False
        # No cursor yet (a new or rebuilt workspace): from the oldest hit the outbox keeps.
        stream = self._gateway.subscribe(self.member, 0 if start is None else start)
        self._stream = stream
        unacked: int | None = None
        stored = 0
        try:
            for delivery in stream:
                self.opened = True
                self.failures.succeeded()
                if not delivery.heartbeat:
                    self._workspace.store(self.member, delivery)
                    unacked, stored = delivery.cursor, stored + 1
                if unacked is not None and (delivery.heartbeat or stored >= ACK_EVERY):
                    self._gateway.ack(self.member, unacked)
                    unacked, stored = None, 0
                if self._stopping.is_set():
                    break
            why = "stopping" if self._stopping.is_set() else "the hub ended the stream"
        finally:
            self._stream = None
            for end in ("cancel", "close"):
                closing = getattr(stream, end, None)
                if closing is not None:
                    with suppress(Exception):  # the stream is over either way
                        closing()
                    break
        if unacked is not None:
            self._gateway.ack(self.member, unacked)
        return why

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                reason = self.read_once()
            except Exception as exc:  # noqa: BLE001 - every failure is retried: the reader must keep going
                if self._stopping.is_set():
                    break
                reason = _reason(exc)
                if _past_the_end(exc):
                    try:
                        self._workspace.forget_cursor(self.member)
                    except Exception as forgetting:  # noqa: BLE001 - tried again at the next failure
                        reason = _reason(forgetting)
            if self._stopping.is_set():
                break
            # A stream that worked starts the pauses again from the shortest.
            failures = 1 if self.opened else failures + 1
            self.failures.failed(reason)
            self._stopping.wait(self._backoff.delay(failures))

    def stop(self) -> None:
        stream = self._stream
        cancel = getattr(stream, "cancel", None)
        if cancel is not None:
            with suppress(Exception):  # closing at exit
                cancel()


class Readers:
    """Starts a MemberReader for every member with an enabled officer (and for members that gain one later), and
    polls the router for each such member's dispositions."""

    def __init__(self, console, workspace: Workspace, stopping: threading.Event) -> None:
        self._console = console
        self._workspace = workspace
        self._stopping = threading.Event()
        self._outer = stopping
        self.readers: dict[str, MemberReader] = {}
        # Members polled once in full (their run of failures), and those whose first poll failed.
        self._polls: dict[str, FailureRun] = {}
        self._first_failures: dict[str, FailureRun] = {}
        self._thread = threading.Thread(target=self._run, name="console-readers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def members(self) -> list[str]:
        known = set(self._console.directory.members)
        return sorted(m for m in self._console.users.members() if m in known)

    def ensure_readers(self) -> list[str]:
        """Start readers for members that have none; returns the members started."""
        started = []
        for member in self.members():
            if member not in self.readers:
                reader = MemberReader(member, self._console.gateway, self._workspace, self._stopping)
                self.readers[member] = reader
                reader.start()
                started.append(member)
        return started

    def poll_dispositions(self) -> None:
        """Take in the dispositions each member recorded elsewhere: all the router lists at the first poll of a
        member, the newest POLL_LIMIT after that (a poll's period holds far fewer)."""
        fetch = getattr(self._console.gateway, "dispositions", None)
        if fetch is None:
            return
        for member in list(self.readers):
            run = self._polls.get(member)
            try:
                found = fetch(member, limit=0 if run is None else POLL_LIMIT)
                self._workspace.record_dispositions(member, list(found))
            except Exception as exc:  # noqa: BLE001 - polled again later
                run = run or FailureRun(log, f"console's poll of {member}'s dispositions")
                run.failed(_reason(exc))
                if member not in self._polls:
                    self._first_failures[member] = run
                continue
            run = run or self._first_failures.pop(member, None) or FailureRun(log, f"console's poll of {member}")
            run.succeeded()
            self._polls[member] = run

    def _run(self) -> None:
        next_poll = 0.0
        while not (self._stopping.is_set() or self._outer.is_set()):
            try:
                self.ensure_readers()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + DISPOSITIONS_EVERY_S
                    self.poll_dispositions()
            except Exception as exc:  # noqa: BLE001 - the loop keeps the readers; it must not die
                log.warning("console readers: %s", _reason(exc))
            if self._stopping.wait(MEMBERS_EVERY_S):
                break
        self._stopping.set()

    def close(self) -> None:
        self._stopping.set()
        for reader in self.readers.values():
            reader.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        for reader in self.readers.values():
            if reader.thread is not None:
                reader.thread.join(timeout=5.0)


def workspace_path(settings) -> Path:
    return Path(settings.console_workspace or Path(settings.state_dir) / "console.sqlite")


def start_workspace(settings, console, stopping: threading.Event):
    """The console's workspace and live fan-out, with its readers started: (workspace, live, [things to close])."""
    from services.console.live import Live

    live = Live()
    workspace = Workspace(workspace_path(settings), settings.outbox_retention_days, on_change=live.publish)
    readers = Readers(console, workspace, stopping)
    readers.start()
    # Closed in reverse: the readers first (they write to the workspace), then the workspace.
    return workspace, live, [workspace, readers]


__all__ = [
    "BANDS",
    "READER",
    "SOURCES",
    "STATES",
    "Change",
    "Filters",
    "HitRecord",
    "HitRow",
    "MemberReader",
    "Page",
    "Readers",
    "Version",
    "Workspace",
    "WorkspaceError",
    "start_workspace",
]
