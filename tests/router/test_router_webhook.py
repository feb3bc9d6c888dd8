"""The webhook dispatcher's handler on the stream loop, against in-memory fakes (real broker and HTTP endpoint:
tests/integration/test_webhooks.py)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY

from services.bus import Topics
from services.directory import Member, Webhook
from services.router import webhook
from services.router.webhook import RetryPolicy, WebhookDispatcher

SECRET_ENV = "APIHUB_UNIT_WEBHOOK_SECRET"


@dataclass(frozen=True)
class FixedDelay(RetryPolicy):
    pause_s: float = 0.0

    def delay(self, attempt: int) -> float:
        return self.pause_s


class Endpoint:
    """Stands in for webhook.post: answers each POST with the next status (the last one repeats)."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.posted = threading.Event()

    def __call__(self, url, secret, body, timeout_s):
        self.bodies.append(json.loads(body))
        self.posted.set()
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@pytest.fixture
def parts(unit_settings, fakes, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "unit-secret")
    calls: list[tuple] = []
    consumer, producer = fakes.Consumer(), fakes.Producer(calls)
    consumer.calls = calls
    member = Member("FJI", "Fiji", "", frozenset({"FJI"}), Webhook("http://127.0.0.1:1/hits", SECRET_ENV))
    topics = Topics(unit_settings.topic_prefix)

    def build(endpoint: Endpoint, policy: RetryPolicy, *values: bytes) -> WebhookDispatcher:
        monkeypatch.setattr(webhook, "post", endpoint)
        for offset, value in enumerate(values, start=40):
            tp, record = fakes.record(topics.outbox("FJI"), offset, value)
            consumer.polls.append({tp: [record]})
        return WebhookDispatcher(unit_settings, member, policy, consumer=consumer, producer=producer)

    return build, calls, producer, topics


def run_until(dispatcher: WebhookDispatcher, condition) -> None:
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    done = threading.Event()
    for _ in range(500):
        if condition():
            break
        done.wait(0.01)
    dispatcher.stop()
    thread.join(5)
    assert not thread.is_alive()


def committed(calls) -> list[int]:
    return [offset.offset for c in calls if c[0] == "commit" for offset in c[1].values()]


def dead_letters(member: str) -> float:
    return REGISTRY.get_sample_value("apihub_router_dead_letters_total", {"member": member}) or 0.0


def test_a_hit_the_member_accepts_is_committed_one_at_a_time_and_nothing_is_dead_lettered(parts, fakes):
    build, calls, producer, topics = parts
    first, second = fakes.make_hit("h-1", ["NAN"]), fakes.make_hit("h-2", ["NAN"])
    endpoint = Endpoint(200)
    dispatcher = build(endpoint, FixedDelay(), first.SerializeToString(), second.SerializeToString())
    assert ("assign", (TopicPartition(topics.outbox("FJI"), 0),)) in calls  # its one partition, no rebalances
    run_until(dispatcher, lambda: len(committed(calls)) == 2)
    dispatcher.close()
    assert [b["hit_id"] for b in endpoint.bodies] == ["h-1", "h-2"]
    assert committed(calls) == [41, 42]  # one commit per hit: the member's answer is the cursor
    assert producer.sent == []


def test_a_hit_never_accepted_is_dead_lettered_and_then_committed(parts, fakes):
    build, calls, producer, topics = parts
    hit = fakes.make_hit("h-9", ["NAN"]).SerializeToString()
    before = dead_letters("FJI")
    dispatcher = build(Endpoint(503), FixedDelay(attempts=3), hit)
    run_until(dispatcher, lambda: committed(calls))
    dispatcher.close()
    assert producer.sent == [(topics.dead_letters, b"h-9", hit)]
    assert producer.headers[(topics.dead_letters, b"h-9")] == {
        "member": b"FJI",
        "error": b"HTTP 503",
        "outbox_offset": b"40",
    }
    assert [c[0] for c in calls if c[0] in ("send", "flush", "commit")] == ["send", "flush", "commit"]
    assert committed(calls) == [41]
    assert dead_letters("FJI") == before + 1


def test_stopping_during_the_retries_leaves_the_hit_uncommitted_and_undead(parts, fakes):
    build, calls, producer, _ = parts
    endpoint = Endpoint(503)
    dispatcher = build(endpoint, FixedDelay(attempts=5, pause_s=30), fakes.make_hit("h-3", ["NAN"]).SerializeToString())
    run_until(dispatcher, endpoint.posted.is_set)
    dispatcher.close()
    assert len(endpoint.bodies) == 1
    assert committed(calls) == [] and producer.sent == []
    assert [c[2] for c in calls if c[0] == "seek"] == [40]  # left for the restarted dispatcher


def test_an_undecodable_outbox_record_is_dead_lettered_without_a_post(parts):
    build, calls, producer, topics = parts
    endpoint = Endpoint(200)
    dispatcher = build(endpoint, FixedDelay(), b"\xff\xff not a hit")
    run_until(dispatcher, lambda: committed(calls))
    dispatcher.close()
    assert endpoint.bodies == []
    [(topic, _, value)] = producer.sent
    assert topic == topics.dead_letters and value == b"\xff\xff not a hit"
    assert committed(calls) == [41]


def test_an_endpoint_failing_for_less_than_the_give_up_time_keeps_its_hits(parts, fakes, monkeypatch):
    """A webhook down for minutes (the fault suite's finding: 5 hits dead-lettered after a minute): the batch is
    tried again, in order, until the endpoint answers; only an endpoint failing past the give-up time dead-letters."""
    build, calls, producer, topics = parts
    hit = fakes.make_hit("h-7", ["NAN"])
    endpoint = Endpoint(503)
    dispatcher = build(endpoint, FixedDelay(attempts=2, give_up_after_s=600))
    tp, record = fakes.record(topics.outbox("FJI"), 40, hit.SerializeToString())
    clock = [1000.0]
    monkeypatch.setattr(webhook.time, "monotonic", lambda: clock[0])
    with pytest.raises(webhook.EndpointFailing):
        dispatcher.handle([record])  # the stream loop rewinds the batch and polls it again
    clock[0] += 599
    with pytest.raises(webhook.EndpointFailing):
        dispatcher.handle([record])
    endpoint.statuses = [200]
    assert dispatcher.handle([record]) == []  # delivered once the endpoint is back: nothing dead-lettered
    assert [b["hit_id"] for b in endpoint.bodies] == ["h-7"] * 5
    endpoint.statuses = [503]
    clock[0] += 10
    with pytest.raises(webhook.EndpointFailing):
        dispatcher.handle([record])  # a new run of failures starts its own clock
    clock[0] += 601
    [dead] = dispatcher.handle([record])
    assert dead.topic == topics.dead_letters
    dispatcher.close()


def test_a_webhook_that_answers_again_gets_its_next_attempt_within_eight_seconds():
    """The pause between two attempts never exceeds 8 s, however long the endpoint was down (full jitter)."""
    policy = RetryPolicy()
    assert max(policy.delay(attempt) for attempt in range(1, 50) for _ in range(20)) <= 8.0
    assert sum(min(policy.max_delay_s, policy.first_delay_s * 2 ** (a - 1)) for a in range(1, policy.attempts)) <= 32
