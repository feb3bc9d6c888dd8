"""A whole hub with mutual TLS on both gRPC servers, through the real broker: a carrier submits and a member
pinned to its certificate follows its hits; another valid certificate, or none, does not get them."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from hubkit import RunningHub, flight, plant

from services import client
from services.directory import Directory, load_directory
from services.tls import cert_sha256, write_dev_certs
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def test_member_follows_its_hits_over_mutual_tls_with_its_pinned_certificate(settings, tmp_path):
    write_dev_certs(tmp_path, members=["FJI", "TON"])
    mtls = settings.model_copy(
        update={
            "tls_cert_file": tmp_path / "server.pem",
            "tls_key_file": tmp_path / "server-key.pem",
            "tls_client_ca_file": tmp_path / "ca.pem",
            # The hub's test clients (hubkit): Fiji's certificate, trusting the dev CA.
            "tls_ca_file": tmp_path / "ca.pem",
            "tls_client_cert_file": tmp_path / "member-FJI.pem",
            "tls_client_key_file": tmp_path / "member-FJI-key.pem",
        }
    )
    shipped = load_directory()
    fiji = dataclasses.replace(
        shipped.members["FJI"], cert_sha256=frozenset({cert_sha256((tmp_path / "member-FJI.pem").read_bytes())})
    )
    hub = RunningHub(mtls, Directory({**shipped.members, "FJI": fiji}))
    try:
        entry = demo_watchlists()["FJI"][0]
        assert hub.load("FJI", [entry]).entries == 1
        m = flight(["SYD", "NAN"], number="415")
        plant(m, entry, "FJ415-P1")
        [receipt] = hub.submit(m)  # the ingest server requires a client certificate too
        assert receipt.status == 1, receipt

        [hit] = hub.hits("FJI", want=1, idle=20)
        assert hit.traveller.passenger_ref == "FJ415-P1" and hit.manifest_id == receipt.manifest_id

        # Tonga's certificate is issued by the same CA, but Fiji's outbox is pinned to Fiji's certificate.
        as_tonga = mtls.model_copy(
            update={
                "tls_client_cert_file": tmp_path / "member-TON.pem",
                "tls_client_key_file": tmp_path / "member-TON-key.pem",
            }
        )
        follower = client.Follower(client.channel_for(as_tonga, hub.delivery_addr), hub.token("member", "FJI"), "FJI")
        with pytest.raises(grpc.RpcError) as err:
            follower.follow(lambda d: None, idle_exit=2, cursor=0)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # Without a client certificate the handshake itself fails: nothing reaches the servicer.
        no_cert = mtls.model_copy(update={"tls_client_cert_file": None, "tls_client_key_file": None})
        follower = client.Follower(client.channel_for(no_cert, hub.delivery_addr), hub.token("member", "FJI"), "FJI")
        with pytest.raises(grpc.RpcError) as err:
            follower.follow(lambda d: None, idle_exit=2, cursor=0)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        hub.stop()
