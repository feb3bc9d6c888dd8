"""Webhook delivery through the real broker: signed POSTs, retries until the endpoint recovers, dead letters."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.directory import Member, Webhook
from services.router.webhook import RetryPolicy, WebhookDispatcher, sign
from services.wire import hit_pb2

pytestmark = pytest.mark.integration

SECRET = "member-webhook-secret-for-tests"


class Endpoint:
    """A member's HTTP endpoint on loopback that fails its first ``failures`` requests."""

    def __init__(self, failures: int):
        self.failures, self.received, self.bad_signatures = failures, [], 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = sign(SECRET, self.headers["X-Apihub-Timestamp"], body)
                if self.headers["X-Apihub-Signature"] != expected:
                    endpoint.bad_signatures += 1
                if endpoint.failures > 0:
                    endpoint.failures -= 1
                    self.send_response(503)
                else:
                    endpoint.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hits"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _fill_outbox(settings, member: str, hit_ids: list[str]) -> None:
    producer = make_producer(settings, "test-outbox")
    for hit_id in hit_ids:
        hit = hit_pb2.Hit(hit_id=hit_id, recipient=member, manifest_id="m-1", state=hit_pb2.HIT_STATE_ACTIVE)
        hit.traveller.passenger_ref = f"ref-{hit_id}"
        producer.send(Topics(settings.topic_prefix).outbox(member), key=hit_id.encode(), value=hit.SerializeToString())
    producer.flush(timeout=30)
    producer.close()


def _run(dispatcher: WebhookDispatcher, until, limit_s: float = 30.0) -> None:
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    deadline = threading.Event()
    for _ in range(int(limit_s * 10)):
        if until():
            break
        deadline.wait(0.1)
    dispatcher.stop()
    thread.join(15)
    dispatcher.close()


@pytest.fixture
def member(monkeypatch):
    monkeypatch.setenv("APIHUB_TEST_WEBHOOK_SECRET", SECRET)
    return lambda url: Member("FJI", "Fiji", "", frozenset({"FJI"}), Webhook(url, "APIHUB_TEST_WEBHOOK_SECRET"))


def test_failing_endpoint_gets_every_hit_once_after_it_recovers(settings, member):
    ensure_topics(settings, ["FJI"])
    _fill_outbox(settings, "FJI", ["h-1", "h-2"])
    endpoint = Endpoint(failures=3)
    fast = RetryPolicy(attempts=10, first_delay_s=0.05, max_delay_s=0.2, timeout_s=5)
    try:
        _run(WebhookDispatcher(settings, member(endpoint.url), fast), until=lambda: len(endpoint.received) >= 2)
        # A restarted dispatcher resumes after what was delivered: nothing is sent twice.
        _fill_outbox(settings, "FJI", ["h-3"])
        _run(WebhookDispatcher(settings, member(endpoint.url), fast), until=lambda: len(endpoint.received) >= 3)
    finally:
        endpoint.close()
    assert [h["hit_id"] for h in endpoint.received] == ["h-1", "h-2", "h-3"]
    assert endpoint.bad_signatures == 0 and endpoint.failures == 0


def test_endpoint_that_never_recovers_sends_the_hit_to_the_dead_letter_topic(settings, member):
    ensure_topics(settings, ["FJI"])
    _fill_outbox(settings, "FJI", ["h-9"])
    endpoint = Endpoint(failures=10**6)
    policy = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1, timeout_s=5)
    topics = Topics(settings.topic_prefix)
    consumer = make_consumer(settings, None, "test-dlq")
    consumer.subscribe([topics.dead_letters])
    dead = []

    def dead_lettered() -> bool:
        dead.extend(r for batch in consumer.poll(timeout_ms=100).values() for r in batch)
        return bool(dead)

    try:
        _run(WebhookDispatcher(settings, member(endpoint.url), policy), until=dead_lettered)
    finally:
        endpoint.close()
        consumer.close()
    [record] = dead
    headers = dict(record.headers)
    assert record.key == b"h-9" and headers["member"] == b"FJI" and headers["error"] == b"HTTP 503"
