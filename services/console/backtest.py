"""A member's rule file backtested in the console: what each rule would flag on recent flights of the member's
jurisdiction, as `apihub rules test` shows it for manifest files.

The manifests come from the hub's manifests topic (Topics(prefix).manifests), bounded: records of the last
RECENT_HOURS hours, at most MAX_MANIFESTS of them (the newest). Only flights whose route touches the member's
jurisdiction (Directory.jurisdiction) are kept, so an officer never sees another member's travellers; of each
flight, the version that stands (the latest screened one, less the travellers later versions took off; nothing of a
cancelled flight), as the hits the member would hold. The rules are evaluated with the platform's one
implementation (services.rules.evaluate, which the profiler runs), without the breaker for the counts; the flights
on which the live breaker would suspend a rule are counted beside them.

Bounded in time and in number: each backtest runs in its own thread under a deadline (DEADLINE_S; its Kafka reading
stops there too), one per officer at a time and at most BACKTESTS_AT_ONCE in the whole console. The travellers
flagged are named by the carrier's passenger reference (or position) only, never by name or document, and nothing
of them is logged.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl
from kafka import TopicPartition
from kafka.errors import KafkaError

from services import codec
from services.bus import Topics, make_consumer
from services.directory import Directory
from services.errors import BrokerUnavailableError
from services.rules.evaluate import DEFAULT_BREAKER, apply_breaker, evaluate_rules, removes_travellers, rule_frame
from services.rules.language import RuleSet
from services.rules.rule import Rule
from services.wire import manifest_pb2

log = logging.getLogger(__name__)

# Which manifests a backtest reads: those the hub received in the last RECENT_HOURS hours, at most MAX_MANIFESTS
# (the newest) of them. (Module constants rather than settings for now: /tmp/h14/h3-requests.md.)
RECENT_HOURS = 72
MAX_MANIFESTS = 5_000
# A backtest answers within this many seconds (reading and evaluating), or the officer is told it took too long.
DEADLINE_S = 30.0
# Backtests running at once in the console (one per officer at a time besides).
BACKTESTS_AT_ONCE = 2
# Travellers shown per rule.
SAMPLE_SIZE = 10
# Kafka: one poll's wait, and the bytes one fetch may bring from a partition (manifests are small; bounded memory).
POLL_MS = 200
FETCH_BYTES = 4 * 1024 * 1024


class BacktestError(Exception):
    """A backtest that could not run or finish. ``message`` is an English msgid for the console's catalogue, its
    %(name)s placeholders filled from ``values``."""

    def __init__(self, message: str, **values) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


class BacktestBusy(BacktestError):
    """The officer's previous backtest, or the console's cap, leaves no room for this one now."""


class BacktestTimedOut(BacktestError):
    """The deadline passed before the backtest finished."""


# -- reading the manifests topic ------------------------------------------------------------------------------


@dataclass
class Reading:
    """What a bounded read of the manifests topic gave."""

    manifests: list[manifest_pb2.Manifest] = field(default_factory=list)
    # Records read, and those that did not decode as a Manifest (skipped).
    records: int = 0
    undecodable: int = 0
    # Older records of the window were left unread (MAX_MANIFESTS), or the deadline stopped the reading.
    capped: bool = False
    stopped: bool = False


def read_recent_manifests(
    settings, since: datetime, limit: int, deadline: float, consumer=None, topic: str | None = None
) -> Reading:
    """The manifests the hub received since ``since``, the newest ``limit`` of them at most (per partition an equal
    share), read from the manifests topic with no consumer group (nothing committed) until its end as it was when
    the read began, or until ``deadline`` (time.monotonic())."""
    topic = topic or Topics(settings.topic_prefix).manifests
    reading = Reading()
    try:
        consumer = consumer or make_consumer(
            settings, None, "apihub-console-backtest", max_partition_fetch_bytes=FETCH_BYTES
        )
    except KafkaError as exc:
        raise BrokerUnavailableError(f"the hub's broker cannot be read now ({type(exc).__name__}); try again") from None
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return reading
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        end = consumer.end_offsets(tps)
        beginning = consumer.beginning_offsets(tps)
        found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        share = max(1, math.ceil(limit / len(tps)))
        for tp in tps:
            start = found[tp].offset if found.get(tp) is not None else end[tp]
            newest = max(beginning[tp], end[tp] - share)
            if start < newest:
                reading.capped = True
            consumer.seek(tp, max(start, newest, beginning[tp]))
        while any(consumer.position(tp) < end[tp] for tp in tps) and len(reading.manifests) < limit:
            if time.monotonic() > deadline:
                reading.stopped = True
                break
            for tp, batch in consumer.poll(timeout_ms=POLL_MS).items():
                for record in batch:
                    if record.offset >= end[tp] or len(reading.manifests) >= limit:
                        continue
                    reading.records += 1
                    try:
                        if record.value is None:
                            raise ValueError("no value")
                        reading.manifests.append(manifest_pb2.Manifest.FromString(record.value))
                    except Exception:  # noqa: BLE001 - any undecodable record is skipped, as the profiler does
                        reading.undecodable += 1
    except KafkaError as exc:
        raise BrokerUnavailableError(f"the hub's broker cannot be read now ({type(exc).__name__}); try again") from None
    finally:
        consumer.close(autocommit=False)
    return reading


# -- which versions stand --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flight:
    """The version of one flight's manifest that stands, and the travellers later versions took off it."""

    manifest: manifest_pb2.Manifest
    removed: frozenset[str] = frozenset()  # codec.traveller_key of each


def in_jurisdiction(
    manifests: Iterable[manifest_pb2.Manifest], directory: Directory, member: str
) -> list[manifest_pb2.Manifest]:
    """Only the manifests of flights whose route touches the member's jurisdiction."""
    return [m for m in manifests if member in directory.jurisdiction(codec.route_of(m))]


def standing_flights(manifests: Iterable[manifest_pb2.Manifest]) -> list[Flight]:
    """Per flight (codec.flight_key), in the order the versions were read: the latest screened version, less the
    travellers that later removing versions named; a flight a later cancellation naming nobody called off is left
    out. Versions of one flight share a partition of the manifests topic, so they are read in the order sent."""
    latest: dict[str, tuple[manifest_pb2.Manifest | None, set[str]]] = {}
    for manifest in manifests:
        key = codec.flight_key(manifest)
        if not removes_travellers(manifest):
            latest[key] = (manifest, set())
            continue
        standing, removed = latest.get(key, (None, set()))
        if manifest.function == manifest_pb2.MESSAGE_FUNCTION_CANCEL and not manifest.travellers:
            latest[key] = (None, set())  # the whole flight
        else:
            removed.update(codec.traveller_key(t) for t in manifest.travellers)
            latest[key] = (standing, removed)
    return [Flight(m, frozenset(removed)) for m, removed in latest.values() if m is not None]


# -- evaluating -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One traveller a rule flags: the flight and the carrier's reference (or position), nothing else."""

    flight: str  # carrier and number
    departure: str  # YYYY-MM-DD, or "" when unknown
    route: str  # ports joined with "-"
    traveller: str


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    flagged: int  # travellers
    flights: int  # flights with at least one
    # Flights on which the live breaker would suspend the rule (it flags too large a share of them).
    suspended_on: int
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class BacktestResult:
    since: datetime
    hours: int
    records: int  # manifest records read
    flights: int  # flights of the member's jurisdiction backtested
    travellers: int
    capped: bool  # older manifests of the window were left unread (MAX_MANIFESTS)
    undecodable: int
    rules: tuple[RuleOutcome, ...]
    disabled: tuple[str, ...]


def evaluate(
    ruleset: RuleSet, flights: Sequence[Flight], directory: Directory, sample_size: int = SAMPLE_SIZE
) -> list[RuleOutcome]:
    """Each enabled rule of the set on these flights: travellers and flights it flags, a sample of them, and on how
    many flights the breaker would suspend it."""
    rules = list(ruleset.rules)
    batch = [f.manifest for f in flights]
    if not rules:
        return []
    if not batch:
        return [RuleOutcome(rule, 0, 0, 0, ()) for rule in rules]
    columns = [rule.column for rule in rules]
    evaluated = evaluate_rules(rule_frame(batch, rules, directory), rules).select(
        "manifest_index", "traveller_index", *columns
    )
    # The counts are the rules' own; the breaker's trips (per flight) are shown beside them.
    _, trips = apply_breaker(evaluated, rules, DEFAULT_BREAKER)
    flagged = evaluated.filter(pl.any_horizontal(columns))
    if any(f.removed for f in flights):
        standing = [
            not flights[m].removed or codec.traveller_key(batch[m].travellers[t]) not in flights[m].removed
            for m, t in zip(flagged["manifest_index"].to_list(), flagged["traveller_index"].to_list(), strict=True)
        ]
        flagged = flagged.filter(pl.Series(standing, dtype=pl.Boolean))
    outcomes = []
    for rule in rules:
        rows = flagged.filter(pl.col(rule.column)).select("manifest_index", "traveller_index")
        samples = tuple(_sample(batch[m], t) for m, t in rows.head(sample_size).iter_rows())
        suspended = len({t.manifest_index for t in trips if t.owner == rule.owner and t.rule_id == rule.id})
        outcomes.append(RuleOutcome(rule, rows.height, rows["manifest_index"].n_unique(), suspended, samples))
    return outcomes


def _sample(manifest: manifest_pb2.Manifest, index: int) -> Sample:
    departure = codec.first_departure(manifest)
    return Sample(
        flight=f"{manifest.carrier}{manifest.flight_number}",
        departure=departure.date().isoformat() if departure else "",
        route="-".join(codec.route_of(manifest)),
        traveller=codec.passenger_ref(manifest.travellers[index], index),
    )


def backtest(
    settings,
    directory: Directory,
    member: str,
    ruleset: RuleSet,
    deadline: float,
    now: datetime | None = None,
    hours: int = RECENT_HOURS,
    limit: int = MAX_MANIFESTS,
    read: Callable[..., Reading] = read_recent_manifests,
) -> BacktestResult:
    """The whole backtest of one rule set for one member (in the calling thread)."""
    since = (now or datetime.now(UTC)) - timedelta(hours=hours)
    reading = read(settings, since, limit, deadline)
    flights = standing_flights(in_jurisdiction(reading.manifests, directory, member))
    if time.monotonic() > deadline or reading.stopped:
        raise BacktestTimedOut("The backtest did not finish in time. Try again later, or with fewer rules.")
    outcomes = evaluate(ruleset, flights, directory)
    return BacktestResult(
        since=since,
        hours=hours,
        records=reading.records,
        flights=len(flights),
        travellers=sum(len(f.manifest.travellers) - len(f.removed) for f in flights),
        capped=reading.capped,
        undecodable=reading.undecodable,
        rules=tuple(outcomes),
        disabled=ruleset.disabled,
    )


# -- bounded runs ---------------------------------------------------------------------------------------------


class Backtests:
    """Runs backtests, each in its own thread under a deadline: one per officer at a time, at most ``at_once`` in
    all. A backtest that outlives its deadline keeps its slot until its thread ends (its reading stops at the
    deadline, and its evaluation is bounded by MAX_MANIFESTS), so the cap holds for the work actually running."""

    def __init__(
        self,
        settings,
        directory: Directory,
        at_once: int = BACKTESTS_AT_ONCE,
        deadline_s: float = DEADLINE_S,
        run: Callable[..., BacktestResult] = backtest,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._at_once = at_once
        self.deadline_s = deadline_s
        self._run = run
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def run(self, officer: str, member: str, ruleset: RuleSet) -> BacktestResult:
        """The backtest's result; BacktestBusy, BacktestTimedOut, or the error the backtest itself raised."""
        with self._lock:
            if officer in self._running:
                raise BacktestBusy("Your previous backtest is still running. Wait for it, then try again.")
            if len(self._running) >= self._at_once:
                raise BacktestBusy("Other backtests are running on this console. Try again in a minute.")
            self._running.add(officer)
        deadline = time.monotonic() + self.deadline_s
        done = threading.Event()
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["result"] = self._run(self._settings, self._directory, member, ruleset, deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to the request's thread
                outcome["error"] = exc
            finally:
                with self._lock:
                    self._running.discard(officer)
                done.set()

        try:
            threading.Thread(target=work, name="console-backtest", daemon=True).start()
        except BaseException:
            with self._lock:
                self._running.discard(officer)
            raise
        if not done.wait(self.deadline_s):
            log.info("a backtest of %s passed its deadline of %.0fs", member, self.deadline_s)
            raise BacktestTimedOut("The backtest did not finish in time. Try again later, or with fewer rules.")
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["result"]  # type: ignore[return-value]

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)
