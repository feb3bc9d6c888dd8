"""Push delivery for members who prefer it: each hit in the member's outbox is POSTed as JSON to its webhook.

The request carries ``X-Apihub-Timestamp`` and ``X-Apihub-Signature: sha256=<hex>``, an HMAC-SHA256 over
``"<timestamp>.<body>"`` with the member's secret, so the member can check it came from the hub and is fresh.
A failed POST is retried with exponential backoff and jitter; after ``attempts`` tries the hit goes to the
dead-letter topic (with the error, not the body's personal data in any log) and the outbox moves on. Offsets
of the webhook's consumer group advance only after the member answered 2xx or the hit is dead-lettered, so
a router restart resumes where delivery stood. A member whose endpoint keeps failing shows up in the
``apihub_router_webhook_consecutive_failures`` gauge and in a log line per failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge

from services.bus import Topics, make_consumer, make_producer
from services.codec import hit_to_json
from services.config import HubSettings
from services.directory import Member
from services.wire import hit_pb2

log = logging.getLogger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "apihub_router_webhook_deliveries", "Webhook POSTs by member and result", ["member", "result"]
)
WEBHOOK_FAILING = Gauge(
    "apihub_router_webhook_consecutive_failures", "Failed POSTs in a row per member (0 when healthy)", ["member"]
)
DEAD_LETTERS = Counter("apihub_router_dead_letters", "Hits given up on after every retry", ["member"])


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    first_delay_s: float = 0.5
    max_delay_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        return random.uniform(0, min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def post(url: str, secret: str, body: bytes, timeout_s: float) -> int:
    """POST one hit; returns the HTTP status (raises OSError for network failures)."""
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Apihub-Timestamp": timestamp,
            "X-Apihub-Signature": sign(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class WebhookDispatcher:
    """One member's push channel: its outbox → POSTs, in order, at least once."""

    def __init__(self, settings: HubSettings, member: Member, policy: RetryPolicy | None = None):
        if member.webhook is None:
            raise ValueError(f"member {member.code} has no webhook")
        self._member = member
        self._policy = policy or RetryPolicy()
        self._secret = os.environ.get(member.webhook.secret_env, "")
        if not self._secret:
            raise ValueError(f"webhook of {member.code}: environment variable {member.webhook.secret_env} is not set")
        self._topics = Topics(settings.topic_prefix)
        self._tp = TopicPartition(self._topics.outbox(member.code), 0)
        self._consumer = make_consumer(settings, self._topics.webhook_group(member.code), "apihub-webhook")
        self._consumer.assign([self._tp])
        self._producer = make_producer(settings, "apihub-webhook-dlq")
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        code = self._member.code
        WEBHOOK_FAILING.labels(code).set(0)
        while not self._stopping.is_set():
            try:
                for record in [r for batch in self._consumer.poll(timeout_ms=500).values() for r in batch]:
                    if not self._deliver(record):
                        return  # stopping in the middle of retries: the record stays uncommitted
                    self._consumer.commit({self._tp: OffsetAndMetadata(record.offset + 1, "", -1)})
            except KafkaError as exc:
                log.warning("webhook of %s: broker error %s; retrying", code, type(exc).__name__)
                self._stopping.wait(1.0)

    def _deliver(self, record) -> bool:
        """POST until 2xx or the retries run out (then dead-letter); False only if stopped meanwhile."""
        code = self._member.code
        hit = hit_pb2.Hit.FromString(record.value)
        body = json.dumps(hit_to_json(hit, record.offset)).encode()
        for attempt in range(1, self._policy.attempts + 1):
            try:
                status = post(self._member.webhook.url, self._secret, body, self._policy.timeout_s)
                error = f"HTTP {status}"
            except OSError as exc:
                status, error = 0, type(exc).__name__
            if 200 <= status < 300:
                WEBHOOK_DELIVERIES.labels(code, "ok").inc()
                WEBHOOK_FAILING.labels(code).set(0)
                return True
            WEBHOOK_DELIVERIES.labels(code, "failed").inc()
            WEBHOOK_FAILING.labels(code).inc()
            log.warning(
                "webhook of %s failed for hit %s (attempt %d/%d): %s",
                code,
                hit.hit_id,
                attempt,
                self._policy.attempts,
                error,
            )
            if attempt < self._policy.attempts and self._stopping.wait(self._policy.delay(attempt)):
                return False
        self._dead_letter(record, hit, error)
        return True

    def _dead_letter(self, record, hit: hit_pb2.Hit, error: str) -> None:
        headers = [
            ("member", self._member.code.encode()),
            ("error", error.encode()),
            ("outbox_offset", str(record.offset).encode()),
        ]
        self._producer.send(self._topics.dead_letters, key=hit.hit_id.encode(), value=record.value, headers=headers)
        self._producer.flush(timeout=30)
        DEAD_LETTERS.labels(self._member.code).inc()
        log.error(
            "webhook of %s gave up on hit %s after %d attempts (%s); dead-lettered",
            self._member.code,
            hit.hit_id,
            self._policy.attempts,
            error,
        )

    def close(self) -> None:
        self.stop()
        self._consumer.close(autocommit=False)
        self._producer.close(timeout=5)
