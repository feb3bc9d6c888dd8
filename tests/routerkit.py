"""A real member-facing router (services.router.server.DeliveryServer) of one test on the session's broker, and what
the router's worker would have written (delivery records, outbox copies) put straight on the topics, so no profiling
is needed.

``LiveRouter(settings)`` starts one; the ``router`` fixture gives one per test, the ``gateway`` fixture the console's
gateway to it (services.console.gateway.HubGateway). A test module takes a fixture by naming it at its top level,
``router = routerkit.router`` (pytest finds it there, and a test's argument of that name is no redefinition of an
import to the linter).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer

from services.bus import Topics, ensure_topics, make_producer
from services.config import HubSettings
from services.console.gateway import HubGateway
from services.directory import Directory, load_directory
from services.router.server import DeliveryServer
from services.wire import hit_pb2


def plain_hit(member: str, hit_id: str) -> hit_pb2.Hit:
    """The member's copy of an active hit, its first version."""
    hit = hit_pb2.Hit(hit_id=hit_id, version=1, recipient=member, state=hit_pb2.HIT_STATE_ACTIVE)
    hit.traveller.passenger_ref = f"REF-{hit_id}"
    return hit


class LiveRouter:
    """The member-facing server of one test on the session's broker, and a producer writing what the router's worker
    would have. ``settings`` are the test's, with ``console_router`` naming this server."""

    def __init__(self, settings: HubSettings, directory: Directory | None = None, client_id: str = "test-router"):
        self.topics = Topics(settings.topic_prefix)
        self.directory = directory or load_directory()
        ensure_topics(settings, self.directory.codes)
        self.server = DeliveryServer(settings, self.directory, listen="127.0.0.1:0").start()
        self.address = f"127.0.0.1:{self.server.port}"
        self.settings = settings.model_copy(update={"console_router": self.address})
        self._client_id = client_id
        self._producer: KafkaProducer | None = None

    @property
    def producer(self) -> KafkaProducer:
        """The test's producer, made on first use (and closed by ``stop``)."""
        if self._producer is None:
            self._producer = make_producer(self.settings, self._client_id)
        return self._producer

    def gateway(self, settings: HubSettings | None = None, **kwargs) -> HubGateway:
        """A console gateway to this server (its caller closes it), with these settings or the test's."""
        return HubGateway((settings or self.settings).model_copy(update={"console_router": self.address}), **kwargs)

    def send(self, topic: str, key: str, value: bytes | None) -> int:
        """One record, acknowledged by the broker; returns its offset."""
        return self.producer.send(topic, key=key.encode(), value=value).get(timeout=30).offset

    def tombstone(self, topic: str, key: str) -> None:
        self.send(topic, key, None)

    def delivered(
        self,
        hit_id: str,
        reasons: Iterable[str],
        *members: str,
        days_ago: int = 0,
        fingerprint: str = "fp",
        version: int = 0,
    ) -> None:
        """A delivery record, as the router's worker writes it once it put the hit in these members' outboxes."""
        day = (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()
        record = hit_pb2.DeliveryRecord(
            hit_id=hit_id, flight_key=f"FJ911/{day}/NAN", reason_keys=list(reasons), version=version
        )
        for member in members:
            record.fingerprints[member] = fingerprint
        self.send(self.topics.deliveries, hit_id, record.SerializeToString())

    def outbox(self, member: str, hit: hit_pb2.Hit | str) -> int:
        """A copy of the hit (or of a plain hit of this id) in the member's outbox; returns its cursor."""
        if isinstance(hit, str):
            hit = plain_hit(member, hit)
        return self.send(self.topics.outbox(member), hit.hit_id, hit.SerializeToString())

    def put_hit(self, member: str, hit: hit_pb2.Hit | str, reasons: Iterable[str] | None = None) -> int:
        """A hit (or a plain hit of this id) in the member's outbox and the delivery record that says the member got
        this version of it; returns its cursor (the outbox offset). The record's reasons are ``reasons``, or the
        hit's own as watchlist entries of the member."""
        if isinstance(hit, str):
            hit = plain_hit(member, hit)
        if reasons is None:
            reasons = [f"watchlist:{member}:{r.id}" for r in hit.reasons]
        withdrawn = hit.state == hit_pb2.HIT_STATE_WITHDRAWN
        fingerprint = "withdrawn" if withdrawn else f"v{hit.version}"
        self.delivered(hit.hit_id, reasons, member, fingerprint=fingerprint, version=hit.version)
        return self.outbox(member, hit)

    def stop(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
        self.server.stop(grace=1)


@pytest.fixture
def router(settings):
    """A member-facing router of the test on the session's broker."""
    running = LiveRouter(settings)
    yield running
    running.stop()


@pytest.fixture
def gateway(router):
    """The console's gateway to the test's router."""
    made = router.gateway()
    yield made
    made.close()
