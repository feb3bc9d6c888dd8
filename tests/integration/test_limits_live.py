"""The limits of services/limits.py on a whole hub and the real broker: one carrier's or one member's floods leave
the others served, and bytes that are not protobuf get INVALID_ARGUMENT from both servers."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hubkit import flight

from services import client
from services.auth import bearer
from services.limits import Caller
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2, intake_pb2_grpc

pytestmark = pytest.mark.integration

WAIT_S = 60.0  # the longest a test waits for the hub to reach a state (a bound against hanging, not a timing)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def held_open(first, release: threading.Event):
    yield first
    release.wait(WAIT_S * 2)


def healthy(channel: grpc.Channel) -> bool:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_carrier_holding_32_streams_leaves_the_others_served(hub):
    """Was: 32 open SubmitManifests streams of one carrier held every intake thread; others' submits timed out."""
    channel = client.channel_for(hub.settings, hub.ingest_addr)
    stub = intake_pb2_grpc.ManifestIntakeStub(channel)
    release = threading.Event()
    fj = bearer(hub.token("carrier", "FJ"))
    calls = [
        stub.SubmitManifests(held_open(flight(["NAN", "APW"], number=str(100 + n)), release), metadata=fj)
        for n in range(32)
    ]
    done: list = []
    for call in calls:
        call.add_done_callback(done.append)
    allowed = hub.settings.limit_carrier_streams
    try:
        wait_until(lambda: len(done) == 32 - allowed, "FJ's streams past its limit to be refused")
        wait_until(lambda: hub.ingest.limits.limiter.holding(Caller("carrier", "FJ")).streams == allowed, "FJ")
        refused = [c for c in calls if c.done()]
        assert {c.code() for c in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert "retry later" in refused[0].details()

        [receipt] = hub.submit(flight(["AKL", "NAN"], carrier="NZ", number="52"))
        assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
        assert healthy(channel)
    finally:
        release.set()
    admitted = [c for c in calls if c not in refused]
    assert [[r.status for r in c] for c in admitted] == [[intake_pb2.RECEIPT_STATUS_ACCEPTED]] * allowed


def test_a_member_holding_24_streams_does_not_lock_the_others_out(hub):
    """Was: the router's Subscribe cap (24) was shared by all members."""
    channel = client.channel_for(hub.settings, hub.delivery_addr)
    stub = delivery_pb2_grpc.HitDeliveryStub(channel)

    def subscribe(member: str):
        request = delivery_pb2.SubscribeRequest(member=member)
        return stub.Subscribe(request, metadata=bearer(hub.token("member", member)), timeout=WAIT_S * 2)

    streams = [subscribe("FJI") for _ in range(24)]
    try:
        outcomes = []
        for call in streams:
            try:
                outcomes.append(next(call).heartbeat)
            except grpc.RpcError as exc:
                outcomes.append(exc.code())
        allowed = hub.settings.limit_member_streams
        assert outcomes.count(True) == allowed
        assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 24 - allowed

        other = subscribe("TON")
        assert next(other).heartbeat
        other.cancel()
        # A member at its stream limit can still load its watchlist (and Ack).
        assert hub.load("FJI", []).entries == 0
        assert healthy(channel)
    finally:
        for call in streams:
            call.cancel()
    wait_until(lambda: hub.delivery_server.limits.limiter.total == 0, "the cancelled streams' slots")


@pytest.mark.parametrize(
    "server, method, streaming, message",
    [
        ("ingest", "/apihub.v1.ManifestIntake/SubmitManifest", False, "apihub.v1.Manifest"),
        ("ingest", "/apihub.v1.ManifestIntake/SubmitManifests", True, "apihub.v1.Manifest"),
        ("delivery", "/apihub.v1.HitDelivery/Ack", False, "apihub.v1.AckRequest"),
        ("delivery", "/apihub.v1.RulesAdmin/LoadRules", False, "apihub.v1.RuleFile"),
    ],
)
def test_undecodable_protobuf_is_invalid_argument(hub, caplog, server, method, streaming, message):
    """Was: INTERNAL "Exception deserializing request!" and a traceback in the log."""
    caplog.set_level(logging.DEBUG)
    kind, code = ("carrier", "FJ") if server == "ingest" else ("member", "FJI")
    channel = client.channel_for(hub.settings, hub.ingest_addr if server == "ingest" else hub.delivery_addr)
    junk = b"\xff\xff\xff\xff"
    with pytest.raises(grpc.RpcError) as err:
        if streaming:
            list(channel.stream_stream(method)(iter([junk]), metadata=bearer(hub.token(kind, code)), timeout=30))
        else:
            channel.unary_unary(method)(junk, metadata=bearer(hub.token(kind, code)), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"not a valid {message} message" in err.value.details()
    assert not [r for r in caplog.records if r.name.startswith("grpc") or r.exc_info]
