"""The profiler process: manifests in, hits out, at least once.

The hub's stream loop (services.stream) polls a batch of manifests, produces what ``handle()`` returns,
flushes and commits, or rewinds the batch. This worker's part: catch the watchlists and rules up to their
topics' end, score the batch, and return its hits and clearances in manifest order under their flight keys
(scoring.order_by_manifest). A crash replays the batch; deterministic hit ids make the replay harmless
downstream. Logs carry ids, offsets and counts, never the people.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import Counter, Gauge, Histogram

from services.board.policy import PolicyError, PolicyStore
from services.bus import TableReader, Topics, make_consumer, make_producer
from services.codec import warm_up_manifest
from services.config import HubSettings
from services.directory import Directory, load_directory
from services.errors import BrokerUnavailableError, ConfigError
from services.instances import InstanceName, claim_instance
from services.profiler.rules import Breaker
from services.profiler.scoring import KeyedHit, order_by_manifest, score_batch
from services.profiler.tables import TableLock, TableSync
from services.profiler.watchlist import WatchlistStore, traveller_names
from services.rules.language import RuleLimits, RulesetError
from services.rules.rule import HUB_RULES, Rule
from services.rules.store import RuleStore
from services.serving import serve_metrics
from services.stream import Handler, Interrupted, LoopSettings, Output, StreamLoop, close_quietly
from services.wire import delivery_pb2, hit_pb2, manifest_pb2

log = logging.getLogger(__name__)

MANIFESTS_CONSUMED = Counter(
    "apihub_profiler_manifests_consumed",
    "Manifest records consumed, by outcome (scored, cancel_skipped, undecodable)",
    ["outcome"],
)
TRAVELLERS_SCORED = Counter("apihub_profiler_travellers_scored", "Travellers screened against lists and rules")
HITS_EMITTED = Counter(
    "apihub_profiler_hits_emitted",
    "Hits produced, by the sources of their reasons (e.g. rule+watchlist)",
    ["source"],
)
BATCH_DURATION = Histogram(
    "apihub_profiler_batch_duration_seconds",
    "From a polled batch to its committed offsets",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLEARANCES_EMITTED = Counter(
    "apihub_profiler_clearances_emitted", "Clearance records produced (hits that may no longer stand)"
)
BAD_RECORDS = Counter(
    "apihub_profiler_bad_records",
    "Records skipped because they could not be decoded or scored",
    ["stream", "stage"],
)
BATCH_FAILURES = Counter(
    "apihub_profiler_batch_failures", "Batches rewound for a retry (broker errors, unexpected failures)"
)
WATCHLIST_ENTRIES = Gauge("apihub_profiler_watchlist_entries", "Entries of each member's current watchlist", ["owner"])

_SOURCE_NAMES = {
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}

# How long one batch may wait for the watchlists and rules to catch up before the batch is rewound and retried.
CATCH_UP_TIMEOUT_S = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sources_label(hit: hit_pb2.Hit) -> str:
    return "+".join(sorted({_SOURCE_NAMES.get(r.source, "unspecified") for r in hit.reasons}))


def loop_settings(settings: HubSettings) -> LoopSettings:
    """The profiler's batches: up to profiler_max_batch manifests, a poll waiting profiler_poll_ms to fill one."""
    return LoopSettings(poll_ms=settings.profiler_poll_ms, max_records=settings.profiler_max_batch)


class ProfilerWorker(Handler):
    """One profiler process: its lists, rules, breaker and model, scored by the stream loop in one thread.

    stop() may be called from any thread or signal handler. The Kafka clients are built from settings unless
    given (tests pass in-memory fakes).
    """

    def __init__(
        self,
        settings: HubSettings,
        directory: Directory,
        *,
        rules: Sequence[Rule] = HUB_RULES,
        clock: Callable[[], datetime] = _utcnow,
        manifest_consumer: KafkaConsumer | None = None,
        watchlist_consumer: KafkaConsumer | None = None,
        rules_consumer: KafkaConsumer | None = None,
        policy_consumer: KafkaConsumer | None = None,
        overrides_consumer: KafkaConsumer | None = None,
        producer: KafkaProducer | None = None,
    ) -> None:
        self._settings = settings
        self._directory = directory
        # Hub-wide rules, plus each member's rules as loaded on the rules topic.
        # Read with the same bounds the router's RulesAdmin checks files with (APIHUB_RULES_*).
        self.rules = RuleStore(tuple(rules), limits=RuleLimits.from_settings(settings))
        self._breaker = Breaker(settings.breaker_max_share, settings.breaker_min_travellers)
        # The risk model, if one is configured; refuses (and so stops the worker) an artefact that does not fit.
        # Imported only then: scikit-learn is a heavy import for a profiler that runs without a model.
        self._model = None
        if settings.model_path:
            from services.profiler.model import load_model

            self._model = load_model(settings.model_path)
        self._clock = clock
        self._topics = Topics(settings.topic_prefix)
        self._group = f"{settings.topic_prefix}.profiler"
        self.store = WatchlistStore(traveller_names(settings))
        # Members' board policies and overrides, for the interactive checks (services.profiler.check).
        self.policies = PolicyStore()
        self.overrides: dict[str, delivery_pb2.BoardOverride] = {}  # "MEMBER/hit id" -> standing override
        # The batch loop and the checks score together; a table record is applied when neither does.
        self.lock = TableLock()
        self.tables: TableSync | None = None
        self._closed = False
        self._scored: list[KeyedHit] = []  # the batch in hand, from handle() to acknowledged()
        self._hits_committed = 0
        self._loop: StreamLoop | None = None
        self._watchlists: TableReader | None = None
        self._rule_files: TableReader | None = None
        self._policy_files: TableReader | None = None
        self._override_records: TableReader | None = None
        self._instance = InstanceName(None)  # this process's name in the group (static membership), once claimed
        self._consumer, self._producer = manifest_consumer, producer
        try:
            self._connect(settings, watchlist_consumer, rules_consumer, policy_consumer, overrides_consumer)
        except KafkaError as exc:
            self.close()
            raise BrokerUnavailableError(f"profiler could not reach Kafka at {settings.bootstrap}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _connect(
        self, settings: HubSettings, watchlist_consumer, rules_consumer, policy_consumer, overrides_consumer
    ) -> None:
        if self._consumer is None:
            # A static member: a restarted profiler takes its partitions back at once (services.instances).
            self._instance = claim_instance(settings, self._group, "profiler")
            static = {"group_instance_id": self._instance.name} if self._instance.name else {}
            self._consumer = make_consumer(
                settings, self._group, "apihub-profiler", max_poll_records=settings.profiler_max_batch, **static
            )
        if self._producer is None:
            self._producer = make_producer(settings, "apihub-profiler")
        self._loop = StreamLoop(
            "profiler",
            self._consumer,
            self._producer,
            self,
            loop_settings(settings),
            topics=[self._topics.manifests],
            output_topics=[self._topics.hits],
            failures=BATCH_FAILURES,
            batch_seconds=BATCH_DURATION,
        )

        # Every profiler process reads the whole compacted topics and converges on the same lists and rules.
        def table(topic: str, apply, name: str, consumer) -> TableReader:
            guarded = self.lock.guard(apply)
            return TableReader(settings, topic, guarded, name, consumer=consumer, poll_ms=settings.profiler_poll_ms)

        self._watchlists = table(
            self._topics.watchlists, self._apply_watchlist, "apihub-profiler-watchlists", watchlist_consumer
        )
        self._rule_files = table(self._topics.rules, self._apply_rules, "apihub-profiler-rules", rules_consumer)
        self._policy_files = table(
            self._topics.board_policies, self._apply_policy, "apihub-profiler-policies", policy_consumer
        )
        self._override_records = table(
            self._topics.overrides, self._apply_override, "apihub-profiler-overrides", overrides_consumer
        )
        self.tables = TableSync(
            [self._watchlists, self._rule_files, self._policy_files, self._override_records], after=self._warm_tables
        )

    # -- lifecycle -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Process batches until stop(); a failed batch is rewound, logged and retried after a pause. ConfigError
        when the loop gave up (another process joined the group under this one's instance id)."""
        self._loop.run()
        if self._loop.fatal:
            raise ConfigError(self._loop.fatal)

    def stop(self) -> None:
        """Ask run() to return after the batch in hand is committed (or left uncommitted). Idempotent."""
        if self._loop is not None:
            self._loop.stop()

    @property
    def stopping(self) -> bool:
        return self._loop is None or self._loop.stopping.is_set()

    def close(self) -> None:
        """Stop, then close the Kafka clients without committing anything more. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.close()
        else:  # the loop was never built: close the clients that were
            if self._consumer is not None:
                close_quietly("manifest consumer", lambda: self._consumer.close(autocommit=False))
            if self._producer is not None:
                close_quietly("producer", lambda: self._producer.close(timeout=LoopSettings().close_timeout_s))
        if self.tables is not None:
            self.tables.close()  # its thread reads the tables' consumers: stopped before they are closed
        for name, reader in (
            ("watchlist reader", self._watchlists),
            ("rules reader", self._rule_files),
            ("policy reader", self._policy_files),
            ("overrides reader", self._override_records),
        ):
            if reader is not None:
                close_quietly(name, reader.close)
        self._instance.release()

    def __enter__(self) -> ProfilerWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the stream loop's handler -------------------------------------------------------------------------

    def process_once(self) -> int:
        """Poll and process one batch (services.stream.StreamLoop.step); returns the number of hits committed
        (clearance records not counted). A failed batch is rewound and its error raised."""
        self._hits_committed = 0
        self._loop.step()
        return self._hits_committed

    def warm_up(self, stopping: threading.Event) -> None:
        log.info(
            "profiler running: group %s as %s, manifests %s, watchlists %s",
            self._group,
            self._instance.name or "a dynamic member",
            self._topics.manifests,
            self._topics.watchlists,
        )
        # Load the lists and rules at start-up, so logs and gauges show them before the first manifest arrives,
        # then score a made-up manifest: what scoring loads on first use (port tables, compiled expressions: a
        # quarter of a second) is loaded before the first real one. Nothing is produced or counted.
        self.catch_up_watchlists()
        self._score_manifests([warm_up_manifest()], self._clock())

    def handle(self, records: list) -> list[Output]:
        # A watchlist acknowledged before this batch was polled is at or below the end offsets read now.
        if not self.catch_up_watchlists():
            raise Interrupted("stopping while catching up the watchlists")  # left for the next owner
        self._scored = self._score(records)
        return [Output(self._topics.hits, hit.SerializeToString(), key=key) for key, hit in self._scored]

    def acknowledged(self, records: list, outputs: Sequence[Output]) -> None:
        scored, self._scored = self._scored, []
        hits = 0
        for _, hit in scored:
            if hit.hit_id:
                hits += 1
                HITS_EMITTED.labels(source=_sources_label(hit)).inc()
            else:
                CLEARANCES_EMITTED.inc()
        self._hits_committed = hits
        log.info("batch: %d manifest records, %d hits, %d clearances", len(records), hits, len(scored) - hits)

    def catch_up_watchlists(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Apply watchlist, rule, board policy and override records up to the topics' current end offsets (shared
        with the interactive checks: services.profiler.tables); False if stop() interrupted it, KafkaTimeoutError
        if it could not within timeout_s."""
        if not self.tables.sync(timeout_s, stopping=self._loop.stopping):
            if self._loop.stopping.is_set():
                return False
            raise KafkaTimeoutError(f"the profiler's tables did not catch up within {timeout_s:.0f}s")
        return True

    # -- tables --------------------------------------------------------------------------------------------

    def _apply_rules(self, key: bytes | None, value: bytes | None, record) -> None:
        owner = (key or b"").decode(errors="replace")
        try:
            self.rules.apply_record(key, value)
        except (RulesetError, ValueError) as exc:
            _refused("rules", "rules", owner, record, exc)
            return
        found = self.rules.ruleset(owner)
        log.info(
            "rules of %s applied: %d enabled (digest %s)",
            owner,
            self.rules.count(owner),
            found.digest if found else "-",
        )

    def _warm_tables(self) -> None:
        """What screening builds lazily after a change (the watchlists' frame and index, the rules' tuple), built
        once by the tables' thread after a catch-up, not by the first screening (or by several at once)."""
        with self.lock.reading():
            self.store.index  # noqa: B018 - built on first access
            self.rules.rules  # noqa: B018

    def _apply_policy(self, key: bytes | None, value: bytes | None, record) -> None:
        owner = (key or b"").decode(errors="replace")
        try:
            self.policies.apply_record(key, value)
        except (PolicyError, ValueError) as exc:
            _refused("board_policies", "board policy", owner, record, exc)
            return
        log.info("board policy of %s applied (digest %s)", owner, self.policies.policy(owner).digest or "-")

    def _apply_override(self, key: bytes | None, value: bytes | None, record) -> None:
        name = (key or b"").decode(errors="replace")
        try:
            override = delivery_pb2.BoardOverride.FromString(value) if value is not None else None
        except Exception as exc:
            BAD_RECORDS.labels(stream="overrides", stage="decode").inc()
            log.warning("skipping bad override record at offset %d: %s", record.offset, type(exc).__name__)
            return
        if override is None or override.revoked:
            self.overrides.pop(name, None)
        else:
            self.overrides[name] = override  # the key is MEMBER/hit id, what the checks look up

    def _apply_watchlist(self, key: bytes | None, value: bytes | None, record) -> None:
        try:
            owner = self.store.apply_record(key, value)
        except Exception as exc:
            BAD_RECORDS.labels(stream="watchlists", stage="decode").inc()
            log.warning(
                "skipping bad watchlist record %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                type(exc).__name__,
            )
            return
        WATCHLIST_ENTRIES.labels(owner=owner).set(self.store.count(owner))
        log.info("watchlist of %s applied: %d entries", owner, self.store.count(owner))

    # -- scoring -------------------------------------------------------------------------------------------

    def _decode(self, records: list) -> list[tuple[object, manifest_pb2.Manifest]]:
        decoded = []
        for record in records:
            try:
                if record.value is None:
                    raise ValueError("record has no value")
                manifest = manifest_pb2.Manifest.FromString(record.value)
            except Exception as exc:
                BAD_RECORDS.labels(stream="manifests", stage="decode").inc()
                MANIFESTS_CONSUMED.labels(outcome="undecodable").inc()
                log.warning(
                    "skipping undecodable manifest record %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    type(exc).__name__,
                )
                continue
            decoded.append((record, manifest))
        return decoded

    def _score(self, records: list) -> list[KeyedHit]:
        """The batch's hits and clearances under their flight keys, in manifest order; a manifest that breaks
        scoring is skipped."""
        decoded = self._decode(records)
        if not decoded:
            return []
        now = self._clock()
        manifests = [manifest for _, manifest in decoded]
        try:
            hits = self._score_manifests(manifests, now)
        except Exception as exc:
            # Isolate the manifest that breaks scoring instead of retrying the whole batch forever.
            log.error("batch scoring failed (%s); scoring %d manifests one by one", type(exc).__name__, len(decoded))
            hits, manifests = self._score_one_by_one(decoded, now)
        MANIFESTS_CONSUMED.labels(outcome="scored").inc(len(manifests))
        TRAVELLERS_SCORED.inc(sum(len(m.travellers) for m in manifests))
        return order_by_manifest(manifests, hits)

    def _score_one_by_one(self, decoded, now: datetime) -> tuple[list[hit_pb2.Hit], list[manifest_pb2.Manifest]]:
        hits: list[hit_pb2.Hit] = []
        manifests: list[manifest_pb2.Manifest] = []
        for record, manifest in decoded:
            try:
                hits.extend(self._score_manifests([manifest], now))
                manifests.append(manifest)
            except Exception as exc:
                BAD_RECORDS.labels(stream="manifests", stage="score").inc()
                log.error(
                    "skipping manifest %s at %s[%d]@%d: scoring failed with %s",
                    manifest.manifest_id,
                    record.topic,
                    record.partition,
                    record.offset,
                    type(exc).__name__,
                )
        return hits, manifests

    def _score_manifests(
        self, manifests: list[manifest_pb2.Manifest], now: datetime, timeout_s: float | None = None
    ) -> list[hit_pb2.Hit]:
        """score_batch with this worker's lists, rules, breaker and model (the checks' scoring too); TimeoutError
        when a table was being applied for longer than timeout_s (None: wait)."""
        with self.lock.reading(timeout_s):
            return score_batch(
                manifests,
                self.store,
                self._directory,
                now,
                self.rules.rules,
                self._breaker,
                model=self._model,
                thresholds=self._settings.model_thresholds,
                watchlist_threshold=self._settings.lowest_screening_review,
            )

    def score_check(self, manifests: list[manifest_pb2.Manifest], now: datetime, timeout_s: float) -> list[hit_pb2.Hit]:
        """The hits of interactive checks' manifests: the batch path's scoring, on the same tables (TimeoutError
        when they are being applied for longer than timeout_s)."""
        return self._score_manifests(manifests, now, timeout_s)


def _refused(stream: str, what: str, owner: str, record, exc: Exception) -> None:
    """A member's file on a configuration topic that does not validate here: the owner's previous one stays in force
    (the router validates files before it stores them, so this is rare)."""
    BAD_RECORDS.labels(stream=stream, stage="decode").inc()
    problems = len(getattr(exc, "problems", ())) or 1
    log.warning("%s of %s at offset %d refused (%d problems); previous one kept", what, owner, record.offset, problems)


def run_profiler(settings: HubSettings, directory: Directory | None = None) -> None:
    """Entry point: metrics server, SIGTERM/SIGINT -> stop, run until stopped, close cleanly."""
    if directory is None:
        directory = load_directory(settings.directory_file)
    metrics_server = serve_metrics(settings.profiler_metrics_port, settings.metrics_host)
    previous: dict[int, object] = {}
    try:
        with ProfilerWorker(settings, directory) as worker:
            # Interactive checks (services.profiler.check) on the worker's tables; listening from the start, so a
            # check while the lists load gets the members' fallback rather than no answer.
            from services.profiler.check import CheckServer

            checks = CheckServer(settings, directory, worker).start()
            log.info("interactive checks listening on port %d", checks.port)
            try:
                if threading.current_thread() is threading.main_thread():
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        previous[sig] = signal.signal(sig, lambda *_: worker.stop())
                worker.run()
            finally:
                checks.stop(grace=2.0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
