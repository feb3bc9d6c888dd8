"""Never a false receipt: with the broker down the carrier gets UNAVAILABLE; once it is back, a retry works."""

from __future__ import annotations

import time

import grpc
import pytest

from services import client
from services.api_ingest.server import IngestServer
from services.auth import issue_token
from services.bus import Topics, ensure_topics, make_consumer
from services.config import HubSettings
from services.devkafka import LocalKafka, free_port
from services.wire import intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic

pytestmark = pytest.mark.integration


def test_broker_down_means_unavailable_and_a_retry_after_recovery_is_stored(tmp_path):
    broker = LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="512m").start()
    settings = HubSettings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix="outage",
        ingest_listen="127.0.0.1:0",
        ingest_metrics_port=-1,
        intake_ack_timeout_seconds=3,
    )
    ensure_topics(settings, [])
    server = IngestServer(settings).start()
    try:
        chan = client.channel(f"127.0.0.1:{server.port}")
        traffic = DemoTraffic(seed=4)
        before = traffic.next_manifest(passengers=3)
        token = issue_token(settings.auth_secret, "carrier", before.carrier)
        assert client.submit(chan, token, [before])[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED

        broker.stop()
        during = traffic.next_manifest(passengers=3)
        during.carrier = before.carrier
        with pytest.raises(grpc.RpcError) as err:
            client.submit(chan, token, [during], timeout=60)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry" in err.value.details()

        broker.start()  # same data directory and ports: the topics and the first manifest are still there
        retry = None
        for _attempt in range(30):  # as a carrier would: retry UNAVAILABLE with a pause, a bounded number of times
            try:
                [retry] = client.submit(chan, token, [during], timeout=60)
                break
            except grpc.RpcError as again:
                assert again.code() == grpc.StatusCode.UNAVAILABLE
                time.sleep(1)
        assert retry is not None, "no retry succeeded within 30 attempts after the broker came back"
        # Accepted now, or a duplicate if the producer's own retry reached the broker first: stored either way.
        assert retry.status in (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE)

        consumer = make_consumer(settings, None, "outage-check")
        consumer.subscribe([Topics(settings.topic_prefix).manifests])
        ids = set()
        for _ in range(50):
            for batch in consumer.poll(timeout_ms=200).values():
                ids.update(manifest_pb2.Manifest.FromString(r.value).manifest_id for r in batch)
            if retry.manifest_id in ids:
                break
        consumer.close()
        assert retry.manifest_id in ids
    finally:
        server.stop(grace=1)
        broker.stop()
