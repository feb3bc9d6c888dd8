from datetime import UTC, datetime

import grpc
import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from services.bus import Topics
from services.router.delivery import HitDeliveryServicer
from services.wire import delivery_pb2, hit_pb2


class ConsumerFactory:
    """Hands out prepared fake consumers and records which group each was made for."""

    def __init__(self, *consumers):
        self.consumers = list(consumers)
        self.groups: list[str] = []

    def __call__(self, group_id, client_id):
        self.groups.append(group_id)
        if not self.consumers:
            raise AssertionError("no Kafka consumer should be created here")
        return self.consumers.pop(0)


@pytest.fixture
def topics(unit_settings):
    return Topics(unit_settings.topic_prefix)


class AuditProducer:
    """Acknowledges every audit or disposition record at once and keeps it."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))

        class Done:
            def get(self, timeout=None):
                return None

        return Done()

    def close(self, timeout=None):
        pass


def servicer(unit_settings, directory, *consumers, **kwargs):
    factory = ConsumerFactory(*consumers)
    kwargs.setdefault("producer_factory", AuditProducer)
    return HitDeliveryServicer(unit_settings, directory, consumer_factory=factory, **kwargs), factory


def subscribe(svc, ctx, member="FJI", cursor=None):
    request = delivery_pb2.SubscribeRequest(member=member)
    if cursor is not None:
        request.cursor = cursor
    return svc.Subscribe(request, ctx)


# -- who may call --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc", ["subscribe", "ack"])
def test_member_token_cannot_act_as_another_member(unit_settings, directory, fakes, token_for, rpc):
    svc, factory = servicer(unit_settings, directory)
    ctx = fakes.Context(token_for("member", "FJI"))

    with pytest.raises(fakes.Aborted) as err:
        if rpc == "subscribe":
            next(subscribe(svc, ctx, member="WSM"))
        else:
            svc.Ack(delivery_pb2.AckRequest(member="WSM", cursor=0), ctx)

    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert factory.groups == []  # refused before touching WSM's outbox or group


def test_carrier_token_cannot_subscribe(unit_settings, directory, fakes, token_for):
    svc, factory = servicer(unit_settings, directory)
    ctx = fakes.Context(token_for("carrier", "FJ"))

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, ctx, member="FJ"))

    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert factory.groups == []


@pytest.mark.parametrize("rpc", ["subscribe", "ack"])
def test_missing_token_is_unauthenticated(unit_settings, directory, fakes, rpc):
    svc, _ = servicer(unit_settings, directory)
    ctx = fakes.Context()

    with pytest.raises(fakes.Aborted) as err:
        if rpc == "subscribe":
            next(subscribe(svc, ctx))
        else:
            svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=0), ctx)

    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_token_signed_with_another_secret_is_unauthenticated(unit_settings, directory, fakes):
    from services.auth import bearer, issue_token

    svc, _ = servicer(unit_settings, directory)
    ctx = fakes.Context(bearer(issue_token("some-other-secret", "member", "FJI")))

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, ctx))

    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_valid_token_for_a_non_member_is_not_found(unit_settings, directory, fakes, token_for):
    svc, factory = servicer(unit_settings, directory)
    ctx = fakes.Context(token_for("member", "USA"))

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, ctx, member="USA"))

    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert factory.groups == []


def test_member_code_is_case_insensitive(unit_settings, directory, fakes, token_for):
    consumer = fakes.Consumer()
    svc, factory = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))

    stream = subscribe(svc, ctx, member="fji")
    assert next(stream).heartbeat

    assert factory.groups == [Topics(unit_settings.topic_prefix).member_group("FJI")]


# -- Subscribe -----------------------------------------------------------------------------------------


def test_subscribe_assigns_the_outbox_partition_and_seeks_to_the_cursor(
    unit_settings, directory, fakes, token_for, topics
):
    consumer = fakes.Consumer(end_offset=10)
    svc, factory = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))
    tp = TopicPartition(topics.outbox("FJI"), 0)

    stream = subscribe(svc, ctx, cursor=4)
    next(stream)

    assert factory.groups == [topics.member_group("FJI")]
    assert ("assign", (tp,)) in consumer.calls
    assert ("seek", tp, 4) in consumer.calls
    assert not [c for c in consumer.calls if c[0] in ("subscribe", "commit")]


def test_subscribe_without_cursor_keeps_the_groups_position(unit_settings, directory, fakes, token_for):
    consumer = fakes.Consumer(end_offset=10)
    svc, _ = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))

    next(subscribe(svc, ctx))

    assert not [c for c in consumer.calls if c[0] == "seek"]


def test_cursor_past_the_outbox_end_is_out_of_range(unit_settings, directory, fakes, token_for):
    consumer = fakes.Consumer(end_offset=3)
    svc, _ = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, ctx, cursor=4))

    assert err.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert consumer.closed


def test_stream_sends_hits_with_cursors_and_skips_duplicate_hit_ids(unit_settings, directory, fakes, token_for, topics):
    outbox = topics.outbox("FJI")
    h1 = fakes.make_hit("h-1", ["NAN"]).SerializeToString()
    h2 = fakes.make_hit("h-2", ["NAN"]).SerializeToString()
    withdrawn = fakes.make_hit("h-1", ["NAN"], state=hit_pb2.HIT_STATE_WITHDRAWN).SerializeToString()
    tp, r0 = fakes.record(outbox, 0, h1)
    _, r1 = fakes.record(outbox, 1, h1)  # replayed by the router
    _, r2 = fakes.record(outbox, 2, b"\xff\xff")
    _, r3 = fakes.record(outbox, 3, h2)
    _, r4 = fakes.record(outbox, 4, withdrawn)
    _, r5 = fakes.record(outbox, 5, h2)  # replayed again, in a later poll
    consumer = fakes.Consumer(polls=[{tp: [r0, r1, r2, r3, r4]}, {tp: [r5]}])
    svc, _ = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))

    stream = subscribe(svc, ctx)
    got = [next(stream) for _ in range(4)]

    assert [(d.cursor, d.hit.hit_id, d.hit.state) for d in got[:3]] == [
        (0, "h-1", hit_pb2.HIT_STATE_ACTIVE),
        (3, "h-2", hit_pb2.HIT_STATE_ACTIVE),
        (4, "h-1", hit_pb2.HIT_STATE_WITHDRAWN),  # same id, new state: news, not a duplicate
    ]
    assert got[3].heartbeat and not got[3].HasField("hit")


def test_idle_stream_sends_heartbeats(unit_settings, directory, fakes, token_for):
    svc, _ = servicer(unit_settings, directory, fakes.Consumer())
    ctx = fakes.Context(token_for("member", "FJI"))

    stream = subscribe(svc, ctx)

    assert all(next(stream).heartbeat for _ in range(3))


def test_stream_ends_and_closes_its_consumer_when_the_client_leaves(unit_settings, directory, fakes, token_for):
    consumer = fakes.Consumer()
    svc, _ = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))
    stream = subscribe(svc, ctx)
    next(stream)

    ctx.active = False

    assert list(stream) == []
    assert consumer.closed


def test_stop_ends_open_streams_with_unavailable(unit_settings, directory, fakes, token_for):
    consumer = fakes.Consumer()
    svc, _ = servicer(unit_settings, directory, consumer)
    ctx = fakes.Context(token_for("member", "FJI"))
    stream = subscribe(svc, ctx)
    next(stream)

    svc.stop()

    with pytest.raises(fakes.Aborted) as err:
        list(stream)
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert consumer.closed


def test_streams_beyond_the_limit_are_refused_and_slots_come_back(unit_settings, directory, fakes, token_for):
    consumers = [fakes.Consumer() for _ in range(3)]
    svc, _ = servicer(unit_settings, directory, *consumers, max_streams=1)
    first_ctx = fakes.Context(token_for("member", "FJI"))
    first = subscribe(svc, first_ctx)
    next(first)

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, fakes.Context(token_for("member", "FJI"))))
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "member FJI already has 1 Subscribe streams open" in err.value.details
    # The limit is per member: FJI's stream does not lock TON out.
    other_ctx = fakes.Context(token_for("member", "TON"))
    assert next(subscribe(svc, other_ctx, member="TON")).heartbeat

    first_ctx.active = False
    list(first)
    assert next(subscribe(svc, fakes.Context(token_for("member", "FJI")))).heartbeat


def test_broker_unreachable_is_unavailable(unit_settings, directory, fakes, token_for):
    def factory(group_id, client_id):
        raise KafkaTimeoutError("Unable to bootstrap")

    svc = HitDeliveryServicer(unit_settings, directory, consumer_factory=factory)
    ctx = fakes.Context(token_for("member", "FJI"))

    with pytest.raises(fakes.Aborted) as err:
        next(subscribe(svc, ctx))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


# -- Ack -------------------------------------------------------------------------------------------------


def test_ack_commits_the_next_cursor_for_the_members_group(unit_settings, directory, fakes, token_for, topics):
    committer = fakes.Consumer(end_offset=10)
    svc, factory = servicer(unit_settings, directory, committer)
    ctx = fakes.Context(token_for("member", "FJI"))

    response = svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=6), ctx)

    assert response.next_cursor == 7
    assert factory.groups == [topics.member_group("FJI")]
    ((kind, offsets),) = [c for c in committer.calls if c[0] == "commit"]
    tp = TopicPartition(topics.outbox("FJI"), 0)
    assert offsets[tp].offset == 7
    assert offsets[tp].leader_epoch == -1


def test_acks_reuse_one_committer_per_member(unit_settings, directory, fakes, token_for):
    svc, factory = servicer(unit_settings, directory, fakes.Consumer(end_offset=10))
    ctx = fakes.Context(token_for("member", "FJI"))

    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=1), ctx)
    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=2), ctx)

    assert len(factory.groups) == 1


def test_ack_never_moves_the_cursor_back(unit_settings, directory, fakes, token_for):
    committer = fakes.Consumer(end_offset=10, committed=8)
    svc, _ = servicer(unit_settings, directory, committer)
    ctx = fakes.Context(token_for("member", "FJI"))

    response = svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=3), ctx)

    assert response.next_cursor == 8
    assert committer.committed_offset == 8
    assert not [c for c in committer.calls if c[0] == "commit"]


@pytest.mark.parametrize(
    ("cursor", "code"), [(10, grpc.StatusCode.OUT_OF_RANGE), (-1, grpc.StatusCode.INVALID_ARGUMENT)]
)
def test_ack_of_a_cursor_never_delivered_is_refused(unit_settings, directory, fakes, token_for, cursor, code):
    committer = fakes.Consumer(end_offset=10)
    svc, _ = servicer(unit_settings, directory, committer)
    ctx = fakes.Context(token_for("member", "FJI"))

    with pytest.raises(fakes.Aborted) as err:
        svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=cursor), ctx)

    assert err.value.code == code
    assert committer.committed_offset is None


def test_close_closes_the_committers(unit_settings, directory, fakes, token_for):
    committer = fakes.Consumer(end_offset=10)
    svc, _ = servicer(unit_settings, directory, committer)
    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=0), fakes.Context(token_for("member", "FJI")))

    svc.close()

    assert committer.closed


# -- audit and dispositions ----------------------------------------------------------------------------------


def _ledger_with(hit_id: str, *members: str):
    """A ledger factory whose deliveries topic says ``hit_id`` went to ``members``."""

    class Table:
        def __init__(self, ledger):
            # A flight of today: the Dispose ledger keeps flights up to APIHUB_FLIGHT_STATE_DAYS after departure.
            day = datetime.now(UTC).date().isoformat()
            record = hit_pb2.DeliveryRecord(hit_id=hit_id, flight_key=f"FJ911/{day}/NAN")
            for member in members:
                record.fingerprints[member] = "fp"
            ledger.commit({hit_id: record})

        def catch_up(self, timeout_s=30.0, stopping=None):
            return True

        def close(self):
            pass

    return Table


def test_ack_is_written_to_the_audit_trail_before_the_cursor_moves(unit_settings, directory, fakes, token_for, topics):
    committer = fakes.Consumer(end_offset=10)
    producer = AuditProducer()
    svc, _ = servicer(unit_settings, directory, committer, producer_factory=lambda: producer)
    svc.Ack(delivery_pb2.AckRequest(member="FJI", cursor=4), fakes.Context(token_for("member", "FJI")))
    [(topic, key, value)] = producer.sent
    event = delivery_pb2.AuditEvent.FromString(value)
    assert (topic, key, event.event, event.member, event.cursor) == (topics.audit, b"FJI", "acknowledged", "FJI", 4)
    assert committer.committed_offset == 5


def test_dispose_records_the_outcome_and_the_audit_event(unit_settings, directory, fakes, token_for, topics):
    producer = AuditProducer()
    svc, _ = servicer(
        unit_settings, directory, producer_factory=lambda: producer, ledger_factory=_ledger_with("h-1", "FJI", "TON")
    )
    request = delivery_pb2.DisposeRequest(
        member="FJI", hit_id="h-1", outcome=delivery_pb2.OUTCOME_FALSE_POSITIVE, note="cleared at the gate"
    )
    reply = svc.Dispose(request, fakes.Context(token_for("member", "FJI")))
    assert reply.disposition.outcome == delivery_pb2.OUTCOME_FALSE_POSITIVE and reply.disposition.at.seconds
    by_topic = {topic: value for topic, _, value in producer.sent}
    assert delivery_pb2.Disposition.FromString(by_topic[topics.dispositions]).note == "cleared at the gate"
    audit = delivery_pb2.AuditEvent.FromString(by_topic[topics.audit])
    assert (audit.event, audit.hit_id, audit.detail) == ("disposed", "h-1", "false_positive")
    assert "cleared" not in audit.detail  # the officer's note stays out of the trail


def test_dispose_is_refused_for_hits_the_member_never_got_and_for_bad_outcomes(
    unit_settings, directory, fakes, token_for
):
    svc, _ = servicer(unit_settings, directory, ledger_factory=_ledger_with("h-1", "TON"))
    ctx = fakes.Context(token_for("member", "FJI"))
    with pytest.raises(fakes.Aborted) as err:
        svc.Dispose(delivery_pb2.DisposeRequest(member="FJI", hit_id="h-1", outcome=1), ctx)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(fakes.Aborted) as err:
        svc.Dispose(delivery_pb2.DisposeRequest(member="FJI", hit_id="h-1", outcome=0), ctx)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(fakes.Aborted) as err:
        svc.Dispose(delivery_pb2.DisposeRequest(member="TON", hit_id="h-1", outcome=1), ctx)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_revoked_member_credential_is_refused_and_a_listed_one_accepted(unit_settings, fakes):
    from services.auth import authorize_member, issue_token, token_digest
    from services.directory import parse_directory

    current = issue_token(unit_settings.auth_secret, "member", "FJI")
    revoked = issue_token(unit_settings.auth_secret, "member", "FJI")
    directory = parse_directory(f"members:\n  - {{code: FJI, token_sha256: [{token_digest(current)}]}}\n", "t")
    assert authorize_member(fakes.Context([("authorization", f"Bearer {current}")]), unit_settings, directory, "FJI")
    with pytest.raises(fakes.Aborted) as err:
        authorize_member(fakes.Context([("authorization", f"Bearer {revoked}")]), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.value.details
