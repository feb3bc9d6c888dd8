"""The gRPC entry over a real local channel, with an in-memory broker stand-in: whatever a carrier sends,
the server answers with a receipt or a clear status and keeps serving (property-based fuzzing).

Kafka itself is exercised by tests/integration; here only the entry's handling of input is under test.
"""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api_ingest.index import IntakeIndex
from services.api_ingest.servicer import ManifestIntakeServicer
from services.auth import bearer, issue_token
from services.config import HubSettings
from services.serving import add_standard_services, bind, new_grpc_server
from services.wire import intake_pb2, intake_pb2_grpc, manifest_pb2
from synthetic.traffic import DemoTraffic

# Statuses an input may legitimately earn; INTERNAL or UNKNOWN would mean the input broke the server.
EXPECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED}


class _Future:
    def get(self, timeout=None):
        return None

    def add_callback(self, fn):
        fn(None)


class MemoryProducer:
    """Acknowledges every send at once and keeps it."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value))
        return _Future()


class EmptyTable:
    def catch_up(self, timeout_s=30.0, stopping=None):
        return True

    def follow(self, stopping):
        stopping.wait()

    def close(self):
        pass


@pytest.fixture(scope="module")
def entry():
    config = HubSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix="fuzz", max_message_bytes=1024 * 1024)
    producer = MemoryProducer()
    index = IntakeIndex(config, reader=EmptyTable()).start()
    server = new_grpc_server(config)
    intake_pb2_grpc.add_ManifestIntakeServicer_to_server(ManifestIntakeServicer(config, producer, index), server)
    health = add_standard_services(server, ["apihub.v1.ManifestIntake"])
    port = bind(server, "127.0.0.1:0")
    server.start()
    chan = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield intake_pb2_grpc.ManifestIntakeStub(chan), bearer(issue_token(config.auth_secret, "carrier", "FJ")), producer
    chan.close()
    health.enter_graceful_shutdown()
    server.stop(0)
    index.stop()


def _call(fn, request, metadata):
    try:
        return fn(request, metadata=metadata, timeout=30), None
    except grpc.RpcError as exc:
        assert exc.code() in EXPECTED, f"{exc.code()}: {exc.details()}"
        return None, exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4000))
def test_any_bytes_as_paxlst_get_an_answer(entry, data):
    stub, metadata, _ = entry
    reply, error = _call(stub.SubmitPaxlst, intake_pb2.PaxlstInterchange(data=data), metadata)
    if reply is not None:
        assert reply.status in (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_REJECTED)


def _mutated_manifests():
    base = DemoTraffic(seed=2).next_manifest(passengers=3)
    base.carrier = "FJ"
    raw = base.SerializeToString()
    return st.tuples(st.integers(0, len(raw) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda cut: raw[: cut[0]] + cut[1] + raw[cut[0] + len(cut[1]) :]
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_mutated_manifests())
def test_mutated_manifests_get_a_receipt_or_a_clear_status(entry, raw):
    stub, metadata, _ = entry
    try:
        manifest = manifest_pb2.Manifest.FromString(raw)
    except Exception:
        return  # not a message a client could send: the gRPC layer itself refuses undecodable bytes
    reply, error = _call(stub.SubmitManifest, manifest, metadata)
    if reply is not None:
        assert reply.status in (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE)
    elif error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        assert "rejected" in error.details()


def test_rejection_carries_field_violations_in_the_status_details(entry):
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    stub, metadata, _ = entry
    m = DemoTraffic(seed=2).next_manifest(passengers=2)
    m.carrier = "FJ"
    m.travellers[1].surname = ""
    _, error = _call(stub.SubmitManifest, m, metadata)
    status = rpc_status.from_call(error)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["travellers[1].surname"]
    receipt = intake_pb2.Receipt()
    assert status.details[1].Unpack(receipt) and receipt.status == intake_pb2.RECEIPT_STATUS_REJECTED


def test_a_resend_is_a_duplicate_and_sends_nothing(entry):
    stub, metadata, producer = entry
    m = DemoTraffic(seed=12).next_manifest(passengers=2)
    m.carrier, m.message_ref = "FJ", "RESEND-1"
    first, _ = _call(stub.SubmitManifest, m, metadata)
    sent = len(producer.sent)
    again, _ = _call(stub.SubmitManifest, m, metadata)
    assert first.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    assert (again.status, again.manifest_id) == (intake_pb2.RECEIPT_STATUS_DUPLICATE, first.manifest_id)
    assert len(producer.sent) == sent


def test_oversized_message_is_refused_with_a_clear_status(entry):
    stub, metadata, _ = entry
    _, error = _call(stub.SubmitPaxlst, intake_pb2.PaxlstInterchange(data=b"U" * (2 * 1024 * 1024)), metadata)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # ...and the server still answers afterwards.
    m = DemoTraffic(seed=13).next_manifest(passengers=1)
    m.carrier, m.message_ref = "FJ", "AFTER-OVERSIZED-1"
    assert _call(stub.SubmitManifest, m, metadata)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
