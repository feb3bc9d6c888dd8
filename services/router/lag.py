"""Outbox lag per member, measured from the broker every few seconds, so an offline member is visible.

A member's lag is the number of hits in its outbox past its acknowledged cursor: the committed offset of
its member group (Subscribe + Ack), or of its webhook dispatcher's group when the directory gives it a
webhook. A member that never acknowledged anything counts from the oldest hit still kept. One admin client,
three broker requests per refresh for every member together; no record is read, so nothing personal is.
"""

from __future__ import annotations

import logging
import threading

from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from services.bus import Topics, make_admin
from services.config import HubSettings
from services.directory import Directory
from services.router.delivery import OUTBOX_LAG

log = logging.getLogger(__name__)

REFRESH_S = 15.0


class OutboxLagMonitor:
    """``refresh()`` sets apihub_router_outbox_lag{member} for every member; ``run()`` does so until ``stop()``."""

    def __init__(self, settings: HubSettings, directory: Directory, *, admin=None, interval_s: float = REFRESH_S):
        topics = Topics(settings.topic_prefix)
        self._partitions = {code: TopicPartition(topics.outbox(code), 0) for code in directory.codes}
        self._groups = {
            code: topics.webhook_group(code) if directory.members[code].webhook else topics.member_group(code)
            for code in directory.codes
        }
        self._settings = settings
        self._admin = admin
        self._interval_s = interval_s
        self._stopping = threading.Event()

    def _client(self):
        if self._admin is None:
            self._admin = make_admin(self._settings, "apihub-router-lag", request_timeout_ms=10_000)
        return self._admin

    def refresh(self) -> dict[str, int]:
        """Each member's lag now (and in the gauge)."""
        admin = self._client()
        tps = list(self._partitions.values())
        ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
        starts = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
        committed = admin.list_group_offsets({self._groups[code]: [tp] for code, tp in self._partitions.items()})
        lags = {}
        for code, tp in self._partitions.items():
            acked = committed.get(self._groups[code], {}).get(tp)
            # No commit yet (-1 or absent): everything still kept is unacknowledged. Below the log start
            # (retention removed acknowledged-never hits) the oldest kept hit is where the member resumes.
            cursor = max(acked.offset if acked is not None else -1, starts[tp].offset)
            lags[code] = max(ends[tp].offset - cursor, 0)
            OUTBOX_LAG.labels(member=code).set(lags[code])
        return lags

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.refresh()
            except KafkaError as exc:  # a broker outage: try again next round, keep the last values
                log.warning("outbox lag not refreshed (%s)", type(exc).__name__)
            self._stopping.wait(self._interval_s)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.stop()
        if self._admin is not None:
            self._admin.close()
