"""The gRPC entry over a real local channel, with an in-memory broker stand-in: whatever a carrier sends,
the server answers with a receipt or a clear status and keeps serving (property-based fuzzing).

Kafka itself is exercised by tests/integration; here only the entry's handling of input is under test.
"""

from __future__ import annotations

import grpc
import pytest
from fakes import EmptyTable, MemoryProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from services.api_ingest.index import IntakeIndex
from services.api_ingest.servicer import ManifestIntakeServicer
from services.api_ingest.status import answer_from_error
from services.auth import bearer, issue_token
from services.bus import Topics
from services.config import HubSettings
from services.serving import add_standard_services, bind, new_grpc_server
from services.wire import intake_pb2, intake_pb2_grpc, manifest_pb2
from synthetic.traffic import DemoTraffic

# Statuses an input may legitimately earn; INTERNAL or UNKNOWN would mean the input broke the server.
EXPECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED}


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
    m.flight_number = ""  # no flight: the one thing (with nobody to screen) that rejects
    _, error = _call(stub.SubmitManifest, m, metadata)
    status = rpc_status.from_call(error)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["flight_number"]
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


def _sample(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_dirty_manifest_is_stored_cleaned_the_raw_bytes_as_received(entry):
    """NUL, ESC, newline, bidi and zero-width characters, a megabyte surname, a nameless traveller and leg times
    that contradict each other: accepted and screened, the receipt says what was cleaned."""
    stub, metadata, producer = entry
    m = DemoTraffic(seed=14).next_manifest(passengers=3)
    m.carrier, m.message_ref = "FJ", "DIRTY-1"
    m.travellers[0].surname = "\u202eSMI\x00TH\x1b\u200b"
    m.travellers[0].given_names = "ANNA\nMARIA"
    m.travellers[1].surname = "B" * 1_000_000
    m.travellers[2].surname = m.travellers[2].given_names = ""
    m.travellers[2].passenger_ref = "FJ-NONAME-1"
    m.legs[0].scheduled_arrival.CopyFrom(m.legs[0].scheduled_departure)
    m.legs[0].scheduled_arrival.seconds -= 13 * 3600  # UTC sent as local time across the date line
    before = _sample("apihub_ingest_violations_total", {"carrier": "FJ", "severity": "warning", "code": "truncated"})
    receipt, error = _call(stub.SubmitManifest, m, metadata)
    assert error is None and receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    assert {(v.field, v.code) for v in receipt.warnings} >= {
        ("travellers[0].surname", "control_characters"),
        ("travellers[0].given_names", "control_characters"),
        ("travellers[1].surname", "truncated"),
        ("travellers[2]", "no_usable_name"),
        ("legs[0].scheduled_arrival", "arrival_before_departure"),
    }
    assert "'FJ-NONAME-1'" in next(v.description for v in receipt.warnings if v.code == "no_usable_name")
    assert receipt.passengers + receipt.crew == len(m.travellers) - 1
    topics = Topics("fuzz")
    sent = {topic: value for topic, _, value in producer.sent[-4:]}
    assert sent[topics.raw] == m.SerializeToString()
    stored = manifest_pb2.Manifest.FromString(sent[topics.manifests])
    assert stored.manifest_id == receipt.manifest_id
    assert (stored.travellers[0].surname, stored.travellers[0].given_names) == ("SMITH", "ANNA MARIA")
    assert len(stored.travellers[1].surname) == 70
    assert len(stored.travellers) == len(m.travellers) - 1
    assert {(w.code, w.field) for w in stored.intake_warnings} == {(v.code, v.field) for v in receipt.warnings}
    after = _sample("apihub_ingest_violations_total", {"carrier": "FJ", "severity": "warning", "code": "truncated"})
    assert after == before + 1


def test_a_manifest_over_the_traveller_limit_is_rejected_naming_it(entry):
    stub, metadata, _ = entry
    m = DemoTraffic(seed=15).next_manifest(passengers=1)
    m.carrier, m.message_ref = "FJ", "HUGE-1"
    m.travellers.extend([manifest_pb2.Traveller(surname="X")] * 20_001)  # small: under max_message_bytes
    _, error = _call(stub.SubmitManifest, m, metadata)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    receipt = answer_from_error(error, intake_pb2.Receipt)
    [violation] = receipt.errors
    assert (violation.field, violation.code) == ("travellers", "too_many") and "20,000" in violation.description
