"""The profiler process: manifests in, hits out, at least once.

Loop: poll a batch of manifests -> catch the watchlists up to the topic's end -> score the batch -> produce
the hits -> flush -> commit. Offsets are committed only after the hits are acknowledged, so a crash replays
the batch; deterministic hit ids make the replay harmless downstream. Logs carry ids, offsets and counts,
never the people.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services import codec
from services.bus import TableReader, Topics, await_topic_metadata, make_consumer, make_producer
from services.config import HubSettings
from services.directory import Directory, load_directory
from services.errors import BrokerUnavailableError
from services.profiler.rules import HUB_RULES, Breaker, Rule
from services.profiler.ruleset import RulesetError, RuleStore
from services.profiler.scoring import clearances, score_batch
from services.profiler.watchlist import WatchlistStore, traveller_names
from services.wire import hit_pb2, manifest_pb2

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

# How long one batch may wait for the watchlists to catch up, and for its hits to be acknowledged, before the
# batch is rewound and retried.
CATCH_UP_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 30.0
# Pause after a failed batch, so an unreachable broker is not hammered.
RETRY_BACKOFF_S = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sources_label(hit: hit_pb2.Hit) -> str:
    return "+".join(sorted({_SOURCE_NAMES.get(r.source, "unspecified") for r in hit.reasons}))


class ProfilerWorker:
    """One profiler process's loop, run in one thread; stop() may be called from any thread or signal handler.

    The Kafka clients are built from settings unless given (tests pass in-memory fakes).
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
        producer: KafkaProducer | None = None,
    ) -> None:
        self._settings = settings
        self._directory = directory
        # Hub-wide rules, plus each member's rules as loaded on the rules topic.
        self.rules = RuleStore(tuple(rules))
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
        self._stopping = threading.Event()
        self._closed = False
        self._consumer = manifest_consumer
        self._watchlists = watchlist_consumer
        self._producer = producer
        try:
            if self._consumer is None:
                self._consumer = make_consumer(
                    settings, self._group, "apihub-profiler", max_poll_records=settings.profiler_max_batch
                )
            if self._producer is None:
                self._producer = make_producer(settings, "apihub-profiler")
            self._consumer.subscribe([self._topics.manifests])
            # Every profiler process reads the whole compacted topic and converges on the same lists.
            self._watchlists = TableReader(
                settings,
                self._topics.watchlists,
                self._apply_watchlist,
                "apihub-profiler-watchlists",
                consumer=watchlist_consumer,
                poll_ms=settings.profiler_poll_ms,
            )
            self._rule_files = TableReader(
                settings,
                self._topics.rules,
                self._apply_rules,
                "apihub-profiler-rules",
                consumer=rules_consumer,
                poll_ms=settings.profiler_poll_ms,
            )
        except KafkaError as exc:
            self.close()
            raise BrokerUnavailableError(f"profiler could not reach Kafka at {settings.bootstrap}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask run() to return after the batch in hand is committed (or left uncommitted). Idempotent."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def close(self) -> None:
        """Close the Kafka clients without committing anything more. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        clients = (
            ("manifest consumer", self._consumer, lambda c: c.close(autocommit=False)),
            ("watchlist reader", self._watchlists, lambda c: c.close()),
            ("rules reader", getattr(self, "_rule_files", None), lambda c: c.close()),
            ("producer", self._producer, lambda c: c.close(timeout=FLUSH_TIMEOUT_S)),
        )
        for name, client, closer in clients:
            if client is None:
                continue
            try:
                closer(client)
            except Exception as exc:  # one failing client must not keep the others open
                log.warning("closing the %s failed: %s", name, type(exc).__name__)

    def __enter__(self) -> ProfilerWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Process batches until stop(); a failed batch is rewound, logged and retried after a pause."""
        log.info(
            "profiler running: group %s, manifests %s, watchlists %s",
            self._group,
            self._topics.manifests,
            self._topics.watchlists,
        )
        if not await_topic_metadata(self._consumer, self._topics.manifests, self._stopping, RETRY_BACKOFF_S):
            return
        try:  # the output topic's metadata now, not as a round trip on the first hit
            self._producer.partitions_for(self._topics.hits)
        except KafkaError as exc:
            log.warning("profiler warm-up incomplete (%s)", type(exc).__name__)
        try:
            # Load the lists at start-up, so logs and gauges show them before the first manifest arrives.
            self.catch_up_watchlists()
        except Exception as exc:
            log.warning("initial watchlist load failed, retried with the first batch: %s", type(exc).__name__)
        while not self._stopping.is_set():
            try:
                self.process_once()
            except Exception as exc:
                BATCH_FAILURES.inc()
                log.warning("profiler batch failed, will retry: %s", type(exc).__name__)
                self._stopping.wait(RETRY_BACKOFF_S)
        log.info("profiler stopped")

    def process_once(self) -> int:
        """Poll, score, produce, flush and commit one batch; returns the number of hits produced (clearance
        records not counted)."""
        polled = self._consumer.poll(
            timeout_ms=self._settings.profiler_poll_ms, max_records=self._settings.profiler_max_batch
        )
        records = [record for batch in polled.values() for record in batch]
        if not records:
            return 0
        started = time.perf_counter()
        try:
            # A watchlist acknowledged before this batch was polled is at or below the end offsets read now.
            if not self.catch_up_watchlists():
                self._rewind(polled)  # stopping: leave the batch uncommitted for the next owner
                return 0
            keyed = self._score(records)
            futures = [
                self._producer.send(self._topics.hits, key=key, value=hit.SerializeToString()) for key, hit in keyed
            ]
            self._producer.flush(timeout=FLUSH_TIMEOUT_S)
            failed = [f for f in futures if f.failed()]
            if failed:
                raise failed[0].exception
        except BaseException:
            self._rewind(polled)
            raise
        try:
            self._consumer.commit()
        except CommitFailedError:
            # The group rebalanced: the hits are durable, the new owner replays the batch, hit ids dedupe it.
            log.warning("commit failed after a rebalance; %d manifests will be replayed", len(records))
        for _, hit in keyed:
            if hit.hit_id:
                HITS_EMITTED.labels(source=_sources_label(hit)).inc()
            else:
                CLEARANCES_EMITTED.inc()
        BATCH_DURATION.observe(time.perf_counter() - started)
        hits = sum(1 for _, hit in keyed if hit.hit_id)
        log.info("batch: %d manifest records, %d hits, %d clearances", len(records), hits, len(keyed) - hits)
        return hits

    def catch_up_watchlists(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Apply watchlist and rule records up to the topics' current end offsets; False if stop() interrupted it."""
        return self._watchlists.catch_up(timeout_s, stopping=self._stopping) and self._rule_files.catch_up(
            timeout_s, stopping=self._stopping
        )

    def _apply_rules(self, key: bytes | None, value: bytes | None, record) -> None:
        owner = (key or b"").decode(errors="replace")
        try:
            self.rules.apply_record(key, value)
        except (RulesetError, ValueError) as exc:
            # The owner's previous rules stay in force; intake of rule files validates, so this is rare.
            BAD_RECORDS.labels(stream="rules", stage="decode").inc()
            problems = len(getattr(exc, "problems", ())) or 1
            log.warning(
                "rules of %s at offset %d refused (%d problems); previous rules kept", owner, record.offset, problems
            )
            return
        found = self.rules.ruleset(owner)
        log.info(
            "rules of %s applied: %d enabled (digest %s)",
            owner,
            self.rules.count(owner),
            found.digest if found else "-",
        )

    # -- steps ---------------------------------------------------------------------------------------------

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

    def _score(self, records: list) -> list[tuple[bytes, hit_pb2.Hit]]:
        """(flight key, hit or clearance) for the batch, in manifest order; a manifest that breaks scoring
        is skipped."""
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
            hits, manifests = [], []
            for record, manifest in decoded:
                try:
                    hits.extend(self._score_manifests([manifest], now))
                    manifests.append(manifest)
                except Exception as one_exc:
                    BAD_RECORDS.labels(stream="manifests", stage="score").inc()
                    log.error(
                        "skipping manifest %s at %s[%d]@%d: scoring failed with %s",
                        manifest.manifest_id,
                        record.topic,
                        record.partition,
                        record.offset,
                        type(one_exc).__name__,
                    )
        MANIFESTS_CONSUMED.labels(outcome="scored").inc(len(manifests))
        TRAVELLERS_SCORED.inc(sum(len(m.travellers) for m in manifests))
        # Per manifest: its hits, then its clearance; the flight key keeps a flight's versions in order.
        by_manifest: dict[str, list[hit_pb2.Hit]] = {}
        for hit in hits:
            by_manifest.setdefault(hit.manifest_id, []).append(hit)
        cleared = {c.manifest_id: c for c in clearances(manifests, hits)}
        out = []
        for m in manifests:
            mid = m.manifest_id or codec.manifest_id(m)
            key = codec.flight_key(m).encode()
            out.extend((key, hit) for hit in by_manifest.pop(mid, []))
            if mid in cleared:
                out.append((key, cleared.pop(mid)))
        return out

    def _score_manifests(self, manifests: list[manifest_pb2.Manifest], now: datetime) -> list[hit_pb2.Hit]:
        """score_batch with this worker's lists, rules, breaker and model."""
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

    def _rewind(self, polled: dict) -> None:
        """Seek back to the first record of each polled partition, so the batch is consumed again."""
        for tp, batch in polled.items():
            if not batch:
                continue
            try:
                self._consumer.seek(tp, batch[0].offset)
            except Exception as exc:  # the partition was revoked meanwhile: its new owner replays it anyway
                log.warning("could not rewind %s[%d]: %s", tp.topic, tp.partition, type(exc).__name__)


def run_profiler(settings: HubSettings, directory: Directory | None = None) -> None:
    """Entry point: metrics server, SIGTERM/SIGINT -> stop, run until stopped, close cleanly."""
    if directory is None:
        directory = load_directory(settings.directory_file)
    metrics_server = None
    if settings.profiler_metrics_port != -1:
        metrics_server, _ = start_http_server(settings.profiler_metrics_port)
        log.info("profiler metrics on port %d", metrics_server.server_port)
    previous: dict[int, object] = {}
    try:
        with ProfilerWorker(settings, directory) as worker:
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGINT):
                    previous[sig] = signal.signal(sig, lambda *_: worker.stop())
            worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
