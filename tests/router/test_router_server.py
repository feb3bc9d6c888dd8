"""The member-facing server over a real local channel; nothing here reaches Kafka (refused before it)."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.router.server import DeliveryServer
from services.wire import delivery_pb2, delivery_pb2_grpc


@pytest.fixture
def channel(unit_settings, directory):
    server = DeliveryServer(unit_settings, directory, listen="127.0.0.1:0").start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch, server.port
    server.stop(grace=0)


def test_binds_an_ephemeral_port(channel):
    _, port = channel
    assert port > 0


@pytest.mark.parametrize("service", ["", "apihub.v1.HitDelivery", "apihub.v1.WatchlistAdmin"])
def test_health_reports_serving(channel, service):
    ch, _ = channel
    response = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel):
    ch, _ = channel
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in response.list_services_response.service}
    assert {"apihub.v1.HitDelivery", "apihub.v1.WatchlistAdmin", "grpc.health.v1.Health"} <= names


def test_subscribe_without_token_is_unauthenticated_over_the_wire(channel):
    ch, _ = channel
    stub = delivery_pb2_grpc.HitDeliveryStub(ch)

    with pytest.raises(grpc.RpcError) as err:
        list(stub.Subscribe(delivery_pb2.SubscribeRequest(member="FJI"), timeout=5))

    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_ack_for_another_member_is_denied_over_the_wire(channel, token_for):
    ch, _ = channel
    stub = delivery_pb2_grpc.HitDeliveryStub(ch)

    with pytest.raises(grpc.RpcError) as err:
        stub.Ack(delivery_pb2.AckRequest(member="WSM", cursor=0), metadata=token_for("member", "FJI"), timeout=5)

    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
