"""Each version of a hit, numbered by the router (ledger) and told apart by the delivery server; each reader of a
member with its own cursor; losses told on Subscribe."""

from __future__ import annotations

import grpc
import pytest
from kafka.structs import TopicPartition

from services.bus import Topics
from services.codec import hit_fingerprint
from services.router.delivery import LOST_HITS_KEY, START_CURSOR_KEY, HitDeliveryServicer
from services.router.ledger import DeliveryLedger
from services.wire import delivery_pb2, hit_pb2

RAISED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _hit(reasons=("WL-1",), raised_ms=RAISED_MS, hit_id="h-1"):
    hit = hit_pb2.Hit(hit_id=hit_id, manifest_id="m-1", state=hit_pb2.HIT_STATE_ACTIVE)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["NAN", "TBU"])
    hit.flight.departure.FromJsonString("2026-12-01T08:00:00Z")
    hit.traveller.passenger_ref = "P1"
    if raised_ms:
        hit.raised_at.FromMilliseconds(raised_ms)
    for r in reasons:
        hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id=r, score=1.0)
    return hit


def _clearance(*ids, received_ms=0):
    record = hit_pb2.Hit(manifest_id="m-2", state=hit_pb2.HIT_STATE_WITHDRAWN)
    record.flight.CopyFrom(_hit().flight)
    record.withdrawn_hit_ids.extend(ids)
    if received_ms:
        record.manifest_received_at.FromMilliseconds(received_ms)
    return record


def _route(ledger, hits, members=("FJI", "TON"), tailor=None):
    plan = ledger.plan(hits, lambda hit: set(members), tailor)
    ledger.commit(plan.records)
    return [(c.recipient, c.version) for c in plan.copies]


def test_every_copy_of_one_version_has_one_number_and_each_later_version_a_greater_one():
    ledger = DeliveryLedger()
    assert _route(ledger, [_hit()]) == [("FJI", RAISED_MS), ("TON", RAISED_MS)]
    assert ledger.get("h-1").version == RAISED_MS
    # An update raised in the same millisecond (or by a profiler whose clock is behind) still goes up.
    assert _route(ledger, [_hit(("WL-1", "WL-2"))]) == [("FJI", RAISED_MS + 1), ("TON", RAISED_MS + 1)]
    later = RAISED_MS + 60_000
    assert _route(ledger, [_hit(("WL-2",), raised_ms=later)]) == [("FJI", later), ("TON", later)]
    assert _route(ledger, [_hit(("WL-2",), raised_ms=later + 5)]) == []  # the same again is no version at all
    assert _route(ledger, [_clearance("h-1")], members=()) == [("FJI", later + 1), ("TON", later + 1)]
    # Raised again after its withdrawal: a new version again.
    assert _route(ledger, [_hit(("WL-2",), raised_ms=later)]) == [("FJI", later + 2), ("TON", later + 2)]


def test_without_times_versions_count_from_one():
    ledger = DeliveryLedger()
    assert _route(ledger, [_hit(raised_ms=0)], members=("FJI",)) == [("FJI", 1)]
    assert _route(ledger, [_hit(("WL-9",), raised_ms=0)], members=("FJI",)) == [("FJI", 2)]


def test_a_batch_replayed_after_a_crash_numbers_its_copies_as_before():
    ledger = DeliveryLedger()
    _route(ledger, [_hit()])
    update = _hit(("WL-1", "WL-2"), raised_ms=RAISED_MS + 5)
    # The copies reached the outbox but the ledger's record did not (a crash in the middle of the flush).
    first = ledger.plan([update], lambda hit: {"FJI", "TON"})
    replayed = ledger.plan([update], lambda hit: {"FJI", "TON"})
    assert [c.version for c in first.copies] == [c.version for c in replayed.copies] == [RAISED_MS + 5] * 2
    assert [hit_fingerprint(c) for c in first.copies] == [hit_fingerprint(c) for c in replayed.copies]


def test_a_hit_the_ledger_no_longer_knows_still_gets_a_greater_number():
    old = DeliveryLedger()
    [(_, before)] = _route(old, [_hit()], members=("FJI",))
    restored = DeliveryLedger()  # e.g. a hub restored without its deliveries topic
    [(_, after)] = _route(restored, [_hit(raised_ms=RAISED_MS + 1000)], members=("FJI",))
    assert after > before


def test_only_the_members_whose_copy_changed_get_the_new_version():
    ledger = DeliveryLedger()

    def tailor(hit, member):  # TON sees only WL-1: an added WL-2 is news for FJI alone
        if member == "FJI":
            return hit
        copy = hit_pb2.Hit()
        copy.CopyFrom(hit)
        del copy.reasons[:]
        copy.reasons.extend(r for r in hit.reasons if r.id == "WL-1")
        return copy

    _route(ledger, [_hit()], tailor=tailor)
    assert _route(ledger, [_hit(("WL-1", "WL-2"), raised_ms=RAISED_MS + 7)], tailor=tailor) == [("FJI", RAISED_MS + 7)]


def test_a_withdrawal_from_a_clearance_is_numbered_from_its_manifest_receipt():
    ledger = DeliveryLedger()
    _route(ledger, [_hit()], members=("FJI",))
    received = RAISED_MS + 3_600_000
    assert _route(ledger, [_clearance("h-1", received_ms=received)], members=()) == [("FJI", received)]


# -- the delivery server ---------------------------------------------------------------------------------------


class Factory:
    def __init__(self, *consumers):
        self.consumers, self.groups = list(consumers), []

    def __call__(self, group_id, client_id):
        self.groups.append(group_id)
        return self.consumers.pop(0)


class Producer:
    def send(self, topic, key=None, value=None):
        class Done:
            def get(self, timeout=None):
                return None

        return Done()

    def close(self, timeout=None):
        pass


def _servicer(settings, directory, *consumers):
    factory = Factory(*consumers)
    return HitDeliveryServicer(settings, directory, consumer_factory=factory, producer_factory=Producer), factory


def test_a_version_that_reverts_to_earlier_content_is_news_in_one_stream(unit_settings, directory, fakes, token_for):
    outbox = Topics(unit_settings.topic_prefix).outbox("FJI")
    a1, b2, a3 = _hit(raised_ms=0), _hit(("WL-2",), raised_ms=0), _hit(raised_ms=0)
    a1.version, b2.version, a3.version = 1, 2, 3  # content A, then B, then A again
    replay = hit_pb2.Hit()
    replay.CopyFrom(a3)
    records = [fakes.record(outbox, i, h.SerializeToString())[1] for i, h in enumerate([a1, b2, a3, replay])]
    consumer = fakes.Consumer(polls=[{TopicPartition(outbox, 0): records}])
    svc, _ = _servicer(unit_settings, directory, consumer)
    stream = svc.Subscribe(delivery_pb2.SubscribeRequest(member="FJI"), fakes.Context(token_for("member", "FJI")))
    got = [next(stream) for _ in range(4)]
    assert [d.hit.version for d in got[:3]] == [1, 2, 3] and got[3].heartbeat  # the replayed copy is skipped


def test_each_reader_has_its_own_group_for_subscribe_and_ack(unit_settings, directory, fakes, token_for):
    topics = Topics(unit_settings.topic_prefix)
    svc, factory = _servicer(unit_settings, directory, *(fakes.Consumer(end_offset=5) for _ in range(3)))
    ctx = fakes.Context(token_for("member", "FJI"))
    next(svc.Subscribe(delivery_pb2.SubscribeRequest(member="FJI", reader="console"), ctx))
    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=2, reader="cli"), ctx)
    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=2), ctx)
    assert factory.groups == [
        topics.member_group("FJI", "console"),
        topics.member_group("FJI", "cli"),
        topics.member_group("FJI"),
    ]
    assert len(set(factory.groups)) == 3 and topics.member_group("FJI") == f"{unit_settings.topic_prefix}.member.FJI"


@pytest.mark.parametrize("reader", ["CLI", "../x", "-cli", "a b", "x" * 33, "cli\n"])
@pytest.mark.parametrize("rpc", ["subscribe", "ack"])
def test_a_bad_reader_name_is_refused(unit_settings, directory, fakes, token_for, reader, rpc):
    svc, factory = _servicer(unit_settings, directory)
    ctx = fakes.Context(token_for("member", "FJI"))
    with pytest.raises(fakes.Aborted) as err:
        if rpc == "subscribe":
            next(svc.Subscribe(delivery_pb2.SubscribeRequest(member="FJI", reader=reader), ctx))
        else:
            svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=0, reader=reader), ctx)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "reader must be" in err.value.details
    assert factory.groups == []  # refused before any Kafka client


def test_another_members_reader_is_still_another_member(unit_settings, directory, fakes, token_for):
    svc, factory = _servicer(unit_settings, directory)
    with pytest.raises(fakes.Aborted) as err:
        next(
            svc.Subscribe(
                delivery_pb2.SubscribeRequest(member="TON", reader="cli"), fakes.Context(token_for("member", "FJI"))
            )
        )
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and factory.groups == []


@pytest.mark.parametrize(
    "committed,cursor,oldest,start,lost",
    [
        (None, None, 7, 7, 0),  # a reader that never acknowledged: from the oldest kept, nothing it had lost
        (3, None, 7, 7, 4),  # acknowledged up to 2; 3..6 deleted by retention or a purge
        (9, None, 7, 9, 0),
        (None, 5, 7, 7, 2),  # an explicit cursor below the log start
        (None, 8, 7, 8, 0),
    ],
)
def test_subscribe_tells_where_it_starts_and_what_was_lost(
    unit_settings, directory, fakes, token_for, committed, cursor, oldest, start, lost
):
    consumer = fakes.Consumer(end_offset=10, committed=committed, begin_offset=oldest)
    svc, _ = _servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))
    request = delivery_pb2.SubscribeRequest(member="FJI")
    if cursor is not None:
        request.cursor = cursor
    next(svc.Subscribe(request, ctx))
    assert dict(ctx.initial_metadata) == {LOST_HITS_KEY: str(lost), START_CURSOR_KEY: str(start)}


def test_the_webhook_post_names_the_version_in_a_header_as_in_its_signed_body():
    import http.server
    import json
    import threading

    from services.codec import hit_to_json
    from services.directory import Webhook
    from services.router.webhook import post, sign

    got: dict = {}

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got["headers"] = dict(self.headers)
            got["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.handle_request, daemon=True).start()
    hit = _hit()
    hit.version = RAISED_MS
    body = json.dumps(hit_to_json(hit, 4)).encode()
    hook = Webhook(f"http://127.0.0.1:{server.server_port}/hits", "UNUSED", allow_private_network=True)
    try:
        assert post(hook, "secret", body, 10) == 204
    finally:
        server.server_close()
    headers = got["headers"]
    assert headers["X-Apihub-Hit-Version"] == str(RAISED_MS) == str(json.loads(got["body"])["version"])
    assert headers["X-Apihub-Signature"] == sign("secret", headers["X-Apihub-Timestamp"], got["body"])
