"""Webhook delivery through the real broker: signed POSTs, retries until the endpoint recovers, dead letters."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.directory import Member, Webhook
from services.netguard import check_url
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
    """Fiji with a webhook at ``url``; these endpoints are on loopback, which its entry must allow explicitly."""
    monkeypatch.setenv("APIHUB_TEST_WEBHOOK_SECRET", SECRET)

    def make(url: str, allow_private_network: bool = True) -> Member:
        hook = Webhook(url, "APIHUB_TEST_WEBHOOK_SECRET", allow_private_network=allow_private_network)
        return Member("FJI", "Fiji", "", frozenset({"FJI"}), hook)

    return make


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


def _dead_letters_of(settings, dispatcher: WebhookDispatcher) -> list:
    """Run the dispatcher until something reaches the dead-letter topic; what did."""
    consumer = make_consumer(settings, None, "test-dlq")
    consumer.subscribe([Topics(settings.topic_prefix).dead_letters])
    dead: list = []

    def dead_lettered() -> bool:
        dead.extend(r for batch in consumer.poll(timeout_ms=100).values() for r in batch)
        return bool(dead)

    try:
        _run(dispatcher, until=dead_lettered)
    finally:
        consumer.close()
    return dead


def test_endpoint_that_never_recovers_sends_the_hit_to_the_dead_letter_topic(settings, member):
    ensure_topics(settings, ["FJI"])
    _fill_outbox(settings, "FJI", ["h-9"])
    endpoint = Endpoint(failures=10**6)
    policy = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1, timeout_s=5)
    try:
        dead = _dead_letters_of(settings, WebhookDispatcher(settings, member(endpoint.url), policy))
    finally:
        endpoint.close()
    [record] = dead
    headers = dict(record.headers)
    assert record.key == b"h-9" and headers["member"] == b"FJI" and headers["error"] == b"HTTP 503"


class Redirector:
    """An endpoint that answers every POST with 302 to ``target``; and the target (say, a cloud metadata
    service), which answers 200 to whatever reaches it."""

    def __init__(self):
        self.posts, self.elsewhere = 0, []
        redirector = self

        class Target(BaseHTTPRequestHandler):
            def do_GET(self):
                redirector.elsewhere.append((self.command, dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self):
                redirector.posts += 1
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{redirector.target.server_port}/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hits"
        for server in (self.target, self.server):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self):
        for server in (self.target, self.server):
            server.shutdown()
            server.server_close()


def test_a_redirect_is_a_failed_delivery_retried_then_dead_lettered_never_followed(settings, member):
    ensure_topics(settings, ["FJI"])
    _fill_outbox(settings, "FJI", ["h-302"])
    redirector = Redirector()
    policy = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1, timeout_s=5)
    try:
        dead = _dead_letters_of(settings, WebhookDispatcher(settings, member(redirector.url), policy))
    finally:
        redirector.close()
    # Nothing reached the redirect's target: no signed request, no GET without the body, no 200 taken for a delivery.
    assert redirector.elsewhere == []
    assert redirector.posts == 3  # every attempt went to the member's own URL
    [record] = dead  # the hit is not lost: it waits on the dead-letter topic
    assert record.key == b"h-302"
    assert hit_pb2.Hit.FromString(record.value).hit_id == "h-302"
    assert dict(record.headers)["error"] == b"HTTP 302 (redirects are not followed)"


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(settings, member, monkeypatch):
    # The directory accepted https://hooks.fiji.test (a public-looking name); by delivery time it resolves to
    # loopback, where a server would gladly answer 200. The entry does not allow private networks: no connection.
    endpoint = Endpoint(failures=0)
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real("127.0.0.1" if host == "hooks.fiji.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    ensure_topics(settings, ["FJI"])
    _fill_outbox(settings, "FJI", ["h-dns"])
    url = f"https://hooks.fiji.test:{endpoint.server.server_port}/hits"
    assert check_url(url) is None
    policy = RetryPolicy(attempts=2, first_delay_s=0.05, max_delay_s=0.1, timeout_s=5)
    try:
        dead = _dead_letters_of(settings, WebhookDispatcher(settings, member(url, allow_private_network=False), policy))
    finally:
        endpoint.close()
    assert endpoint.received == []
    [record] = dead
    error = dict(record.headers)["error"].decode()
    assert record.key == b"h-dns" and "127.0.0.1, a loopback address" in error and "allow_private_network" in error
