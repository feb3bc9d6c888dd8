"""Push delivery for members who prefer it: each hit in the member's outbox is POSTed as JSON to its webhook.

The request carries ``X-Apihub-Timestamp`` and ``X-Apihub-Signature: sha256=<hex>``, an HMAC-SHA256 over
``"<timestamp>.<body>"`` with the member's secret, so the member can check it came from the hub and is fresh, and
``X-Apihub-Hit-Version``, the hit's version as in the body (``version``): a POST repeated after a crash or a retry
repeats it, so the member's system de-duplicates on (``hit_id``, ``version``).
A failed POST is retried with exponential backoff and jitter. After ``attempts`` tries the batch is rewound and
tried again, in order, as long as the endpoint has been failing for less than APIHUB_WEBHOOK_GIVE_UP_SECONDS (a
day): an endpoint down for minutes or hours loses nothing. Past that, a hit whose attempts run out goes to the
dead-letter topic (with the error, not the body's personal data in any log) and the outbox moves on.

Only a 2xx answer delivers. A redirect (3xx) is never followed: following it would re-send the signed request,
without its body, to wherever the endpoint points (a cloud metadata address, say) and take that answer for the
member's. It is a failed POST like any other. Connections go through services.netguard: the URL's host is resolved
once, every address is checked against the member's directory entry (private, loopback and link-local addresses
need ``allow_private_network: true``; plain http goes to loopback only), and so is the address connected to.

The hub's stream loop (services.stream) reads the outbox one hit per batch and commits the webhook's consumer group
offset only after the member answered 2xx or the hit's dead letter is acknowledged, so a router restart resumes
where delivery stood. A member whose endpoint keeps failing shows up in the
``apihub_router_webhook_consecutive_failures`` gauge and in a log line per failure.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass

from kafka.structs import TopicPartition
from prometheus_client import Counter, Gauge

from services.bus import Topics, make_consumer, make_producer
from services.codec import hit_to_json
from services.config import HubSettings
from services.directory import Member, Webhook
from services.netguard import AddressRefusedError, connection_for
from services.stream import Handler, Interrupted, LoopSettings, Output, StreamLoop
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
    # The longest pause between two attempts: once an endpoint that was down answers again, its hits flow again
    # within this (plus one POST). 8 attempts take at most 31.5 s (about 16 s on average, with full jitter).
    max_delay_s: float = 8.0
    timeout_s: float = 10.0
    # While the member's endpoint has been failing for less than this (seconds, since its last 2xx), a hit whose
    # attempts ran out is not dead-lettered: the batch is rewound and tried again (APIHUB_WEBHOOK_GIVE_UP_SECONDS),
    # so an endpoint down for minutes or hours loses nothing. 0: dead-letter as soon as the attempts run out.
    give_up_after_s: float = 0.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        return random.uniform(0, min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))


class EndpointFailing(Exception):
    """A member's endpoint that has been failing for less than the give-up time: try the batch again later."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def post(hook: Webhook, secret: str, body: bytes, timeout_s: float) -> int:
    """POST one hit to the member's webhook and return the HTTP status, redirects NOT followed (a 3xx is returned
    like any other status). Raises AddressRefusedError for an address the member's entry does not allow, OSError
    for network and TLS failures, http.client.HTTPException for an answer that is not HTTP."""
    timestamp = str(int(time.time()))
    connection, target = connection_for(hook.url, hook.allow_private_network, timeout_s)
    headers = {
        "Content-Type": "application/json",
        "X-Apihub-Timestamp": timestamp,
        "X-Apihub-Signature": sign(secret, timestamp, body),
        # Read from the body, so the header always says what the signed body says.
        "X-Apihub-Hit-Version": str(json.loads(body).get("version", 0)),
    }
    try:
        connection.request("POST", target, body=body, headers=headers)
        return connection.getresponse().status  # the answer's body is not read: nothing in it counts
    finally:
        connection.close()


def failure(exc: Exception) -> str:
    """What a failed POST's log line and dead letter say: the refusal's reason, or the kind of network error
    (never the body, which holds personal data)."""
    return str(exc) if isinstance(exc, AddressRefusedError) else type(exc).__name__


# One hit per batch: each POST is the member's acknowledgement of one hit, so the group offset moves one hit
# at a time (a stop in the middle of a hit's retries leaves exactly that hit uncommitted). The dead-letter
# producer closes within five seconds.
WEBHOOK_LOOP = LoopSettings(max_records=1, close_timeout_s=5.0)


class WebhookDispatcher(Handler):
    """One member's push channel: its outbox → POSTs, in order, at least once.

    ``consumer`` and ``producer`` may be injected (tests); by default they are built from the settings.
    """

    def __init__(
        self, settings: HubSettings, member: Member, policy: RetryPolicy | None = None, *, consumer=None, producer=None
    ):
        if member.webhook is None:
            raise ValueError(f"member {member.code} has no webhook")
        self._member = member
        self._policy = policy or RetryPolicy(give_up_after_s=settings.webhook_give_up_seconds)
        self._failing_since: float | None = None  # monotonic time of the first failure since the last 2xx
        self._secret = os.environ.get(member.webhook.secret_env, "")
        if not self._secret:
            raise ValueError(f"webhook of {member.code}: environment variable {member.webhook.secret_env} is not set")
        self._topics = Topics(settings.topic_prefix)
        self._loop = StreamLoop(
            f"webhook-{member.code}",
            consumer or make_consumer(settings, self._topics.webhook_group(member.code), "apihub-webhook"),
            producer or make_producer(settings, "apihub-webhook-dlq"),
            self,
            WEBHOOK_LOOP,
            partitions=[TopicPartition(self._topics.outbox(member.code), 0)],
        )
        self._dead_lettered: list[tuple[str, str, int]] = []  # (hit id, error, attempts) of the batch in hand

    def stop(self) -> None:
        self._loop.stop()

    def run(self) -> None:
        self._loop.run()

    def close(self) -> None:
        self._loop.close()

    # -- the stream loop's handler -------------------------------------------------------------------------

    def warm_up(self, stopping: threading.Event) -> None:
        WEBHOOK_FAILING.labels(self._member.code).set(0)

    def handle(self, records: list) -> list[Output]:
        """POST each hit; the dead letters of those given up on are the outputs. Raises Interrupted when stopped
        in the middle of a hit's retries (the hit stays uncommitted)."""
        self._dead_lettered = []
        outputs = []
        for record in records:
            try:
                hit = hit_pb2.Hit.FromString(record.value)
            except Exception as exc:  # never a hit the router wrote: no member can use it, so set it aside
                hit_id, error, attempts = (record.key or b"").decode(errors="replace"), type(exc).__name__, 0
            else:
                hit_id, error, attempts = hit.hit_id, self._deliver(record, hit), self._policy.attempts
            if error is not None:
                outputs.append(self._dead_letter(record, hit_id, error))
                self._dead_lettered.append((hit_id, error, attempts))
        return outputs

    def acknowledged(self, records: list, outputs) -> None:
        for hit_id, error, attempts in self._dead_lettered:
            DEAD_LETTERS.labels(self._member.code).inc()
            log.error(
                "webhook of %s gave up on hit %s after %d attempts (%s); dead-lettered",
                self._member.code,
                hit_id,
                attempts,
                error,
            )
        self._dead_lettered = []

    def _deliver(self, record, hit: hit_pb2.Hit) -> str | None:
        """POST until 2xx (None) or the retries run out (the last error); Interrupted if stopped meanwhile."""
        code = self._member.code
        body = json.dumps(hit_to_json(hit, record.offset)).encode()
        for attempt in range(1, self._policy.attempts + 1):
            try:
                status = post(self._member.webhook, self._secret, body, self._policy.timeout_s)
                error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
            except (OSError, http.client.HTTPException) as exc:
                status, error = 0, failure(exc)
            if 200 <= status < 300:
                WEBHOOK_DELIVERIES.labels(code, "ok").inc()
                WEBHOOK_FAILING.labels(code).set(0)
                self._failing_since = None
                return None
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
            if attempt < self._policy.attempts and self._loop.stopping.wait(self._policy.delay(attempt)):
                raise Interrupted(f"stopping during the retries of hit {hit.hit_id}")
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since < self._policy.give_up_after_s:
            # The stream loop rewinds the batch, pauses and polls it again: the group sees this consumer alive, and
            # the hit keeps its place in the member's order.
            raise EndpointFailing(f"webhook of {code} failing for {now - self._failing_since:.0f}s: {error}")
        return error

    def _dead_letter(self, record, hit_id: str, error: str) -> Output:
        headers = (
            ("member", self._member.code.encode()),
            ("error", error.encode()),
            ("outbox_offset", str(record.offset).encode()),
        )
        return Output(self._topics.dead_letters, record.value, key=hit_id.encode(), headers=headers)
