"""Lag measured from the broker every few seconds: each member's outbox, so an offline member is visible, and the
profiler's and router's consumer groups, so a stalled or overwhelmed stage is (alerts: deploy/prometheus/alerts.yml).

A member's lag is the number of hits in its outbox past its acknowledged cursor: the committed offset of
its member group (Subscribe + Ack), or of its webhook dispatcher's group when the directory gives it a
webhook. A member that never acknowledged anything counts from the oldest hit still kept. A consumer group's lag
is the same sum over every partition of the topic it reads (the profiler: manifests; the router: hits). One admin
client, four broker requests per refresh for everything together; no record is read, so nothing personal is.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from prometheus_client import Gauge

from services.bus import FailureRun, Topics, make_admin
from services.config import HubSettings
from services.directory import Directory
from services.router.delivery import OUTBOX_LAG
from services.router.worker import router_group

log = logging.getLogger(__name__)

REFRESH_S = 15.0

CONSUMER_LAG = Gauge(
    "apihub_consumer_group_lag",
    "Records not yet committed by a hub consumer group (profiler: manifests, router: hits), all partitions together",
    ["group"],
)
REFRESHED = Gauge(
    "apihub_router_lag_refreshed_timestamp_seconds",
    "Unix time the router last read outbox and consumer group lag from the broker (stale: the broker is unreachable)",
)


def consumer_groups(settings: HubSettings) -> dict[str, tuple[str, str]]:
    """The groups whose lag is measured: label -> (group id, topic it reads). The profiler's group id is written
    here as services.profiler.worker names it (the router may not import the profiler; a test checks both agree)."""
    topics = Topics(settings.topic_prefix)
    return {
        "profiler": (f"{settings.topic_prefix}.profiler", topics.manifests),
        "router": (router_group(settings), topics.hits),
    }


def lag_of(end: int, start: int, committed: int | None) -> int:
    """Records from a consumer's resume point to the end of one partition. No commit yet (None or -1): everything
    still kept. Below the log start (retention or a purge removed records it never read): the oldest kept record
    is where it resumes."""
    cursor = max(committed if committed is not None else -1, start)
    return max(end - cursor, 0)


class OutboxLagMonitor:
    """``refresh()`` sets apihub_router_outbox_lag{member} for every member and apihub_consumer_group_lag{group} for
    the profiler and router groups; ``run()`` does so until ``stop()``."""

    def __init__(self, settings: HubSettings, directory: Directory, *, admin=None, interval_s: float = REFRESH_S):
        topics = Topics(settings.topic_prefix)
        self._partitions = {code: TopicPartition(topics.outbox(code), 0) for code in directory.codes}
        self._groups = {
            code: topics.webhook_group(code) if directory.members[code].webhook else topics.member_group(code)
            for code in directory.codes
        }
        self._consumers = consumer_groups(settings)
        self._settings = settings
        self._admin = admin
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self.consumer_lags: dict[str, int] = {}

    def _client(self):
        if self._admin is None:
            self._admin = make_admin(self._settings, "apihub-router-lag", request_timeout_ms=10_000)
        return self._admin

    def _topic_partitions(self, admin) -> dict[str, list[TopicPartition]]:
        """Every partition of the topics the consumer groups read, by group label (none for a missing topic)."""
        described = {t["name"]: t for t in admin.describe_topics([topic for _, topic in self._consumers.values()])}
        found = {}
        for label, (_, topic) in self._consumers.items():
            partitions = described.get(topic, {}).get("partitions") or []
            found[label] = [TopicPartition(topic, p["partition_index"]) for p in partitions]
        return found

    def refresh(self) -> dict[str, int]:
        """Each member's lag now (and in the gauges, with the consumer groups' lag in ``consumer_lags``)."""
        admin = self._client()
        group_tps = self._topic_partitions(admin)
        tps = [*self._partitions.values(), *(tp for found in group_tps.values() for tp in found)]
        ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
        starts = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
        specs = {self._groups[code]: [tp] for code, tp in self._partitions.items()}
        specs.update({self._consumers[label][0]: found for label, found in group_tps.items() if found})
        committed = admin.list_group_offsets(specs)

        def lag(group: str, tp: TopicPartition) -> int:
            acked = committed.get(group, {}).get(tp)
            return lag_of(ends[tp].offset, starts[tp].offset, acked.offset if acked is not None else None)

        lags = {code: lag(self._groups[code], tp) for code, tp in self._partitions.items()}
        for code, value in lags.items():
            OUTBOX_LAG.labels(member=code).set(value)
        self.consumer_lags = {
            label: sum(lag(self._consumers[label][0], tp) for tp in found) for label, found in group_tps.items()
        }
        for label, value in self.consumer_lags.items():
            CONSUMER_LAG.labels(group=label).set(value)
        REFRESHED.set(time.time())
        return lags

    def run(self) -> None:
        failures = FailureRun(log, "reading outbox and consumer lag from the broker")
        while not self._stopping.is_set():
            try:
                self.refresh()
                failures.succeeded()
            except KafkaError as exc:  # a broker outage: try again next round, keep the last values
                failures.failed(type(exc).__name__)
            self._stopping.wait(self._interval_s)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.stop()
        if self._admin is not None:
            self._admin.close()
