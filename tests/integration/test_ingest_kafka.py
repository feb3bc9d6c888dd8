"""Intake against a real broker: a receipt means the broker holds the manifest."""

from __future__ import annotations

import grpc
import pytest

from services import client
from services.api_ingest.server import IngestServer
from services.auth import issue_token
from services.bus import Topics, ensure_topics, make_consumer
from services.codec import flight_key
from services.wire import intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic

pytestmark = pytest.mark.integration


@pytest.fixture
def ingest(settings):
    ensure_topics(settings, ["FJI"])
    server = IngestServer(settings).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace=1)


def _read_all(settings, topic: str, expected: int) -> list:
    consumer = make_consumer(settings, None, "test-reader")
    consumer.subscribe([topic])
    records = []
    for _ in range(100):
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
        if len(records) >= expected:
            break
    consumer.close()
    return records


def test_accepted_manifest_is_on_both_topics_before_the_receipt(settings, ingest):
    m = DemoTraffic(seed=5).next_manifest(passengers=4)
    token = issue_token(settings.auth_secret, "carrier", m.carrier)
    [receipt] = client.submit(client.channel(ingest), token, [m])
    assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    assert (receipt.passengers, receipt.crew) == (
        4 + sum(1 for t in m.travellers[4:] if t.role == manifest_pb2.TRAVELLER_ROLE_PASSENGER),
        sum(1 for t in m.travellers if t.role == manifest_pb2.TRAVELLER_ROLE_CREW),
    )
    topics = Topics(settings.topic_prefix)
    [stored] = _read_all(settings, topics.manifests, 1)
    canonical = manifest_pb2.Manifest.FromString(stored.value)
    assert canonical.manifest_id == receipt.manifest_id
    assert stored.key.decode() == flight_key(m)
    assert len(canonical.travellers) == len(m.travellers)
    [raw] = _read_all(settings, topics.raw, 1)
    assert raw.key.decode() == receipt.manifest_id
    assert manifest_pb2.Manifest.FromString(raw.value) == m


def test_invalid_manifest_is_rejected_and_not_stored(settings, ingest):
    m = DemoTraffic(seed=5).next_manifest(passengers=2)
    m.legs[0].origin = ""  # the first leg keys and routes the flight
    token = issue_token(settings.auth_secret, "carrier", m.carrier)
    [receipt] = client.submit(client.channel(ingest), token, [m])
    assert receipt.status == intake_pb2.RECEIPT_STATUS_REJECTED
    assert [e.field for e in receipt.errors] == ["legs[0].origin"]
    # A valid manifest sent after it is the only one the broker holds.
    good = DemoTraffic(seed=6).next_manifest(passengers=2)
    good.carrier = m.carrier
    [accepted] = client.submit(client.channel(ingest), token, [good])
    stored = _read_all(settings, Topics(settings.topic_prefix).manifests, 1)
    assert [manifest_pb2.Manifest.FromString(r.value).manifest_id for r in stored] == [accepted.manifest_id]


def test_bulk_stream_answers_each_manifest_in_order(settings, ingest):
    traffic = DemoTraffic(seed=9)
    manifests = [traffic.next_manifest(passengers=3) for _ in range(30)]
    for m in manifests:
        m.carrier = "FJ"
    manifests[7].legs[0].origin = "QQQ"
    receipts = client.submit(client.channel(ingest), issue_token(settings.auth_secret, "carrier", "FJ"), manifests)
    statuses = [r.status for r in receipts]
    assert len(receipts) == 30
    assert statuses[7] == intake_pb2.RECEIPT_STATUS_REJECTED
    assert statuses.count(intake_pb2.RECEIPT_STATUS_ACCEPTED) == 29
    assert [r.message_ref for r in receipts] == [m.message_ref for m in manifests]
    assert len(_read_all(settings, Topics(settings.topic_prefix).manifests, 29)) == 29


def test_carrier_cannot_submit_for_another_carrier(settings, ingest):
    m = DemoTraffic(seed=5).next_manifest(passengers=1)
    m.carrier = "NZ"
    with pytest.raises(grpc.RpcError) as err:
        client.submit(client.channel(ingest), issue_token(settings.auth_secret, "carrier", "FJ"), [m])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        client.submit(client.channel(ingest), issue_token(settings.auth_secret, "member", "FJI"), [m])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        client.submit(client.channel(ingest), "apihub1.carrier.NZ.forged", [m])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
