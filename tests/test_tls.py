"""TLS and mutual TLS on the gRPC servers, over real local channels (no broker: every call here is answered
before the servers would reach Kafka), plus the settings' errors and `apihub dev certs`."""

from __future__ import annotations

import dataclasses
import logging
import stat

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError
from typer.testing import CliRunner

from services import client
from services.auth import bearer, issue_token
from services.cli import app
from services.config import HubSettings
from services.directory import Directory, load_directory, parse_directory
from services.errors import ConfigError
from services.router.server import DeliveryServer
from services.serving import bind, new_grpc_server
from services.tls import ClientTLS, cert_sha256, is_loopback, server_credentials, write_dev_certs
from services.wire import delivery_pb2, delivery_pb2_grpc


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The hub's dev CA with certificates for FJI and TON, and a second, unrelated CA with its own FJI."""
    ours, theirs = tmp_path_factory.mktemp("pki"), tmp_path_factory.mktemp("foreign-pki")
    write_dev_certs(ours, members=["FJI", "TON"])
    write_dev_certs(theirs, members=["FJI"])
    return ours, theirs


def base(**tls) -> HubSettings:
    return HubSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix="unit", **tls)


def server_tls(pki, mutual: bool) -> dict:
    d, _ = pki
    fields = {"tls_cert_file": d / "server.pem", "tls_key_file": d / "server-key.pem"}
    if mutual:
        fields["tls_client_ca_file"] = d / "ca.pem"
    return fields


def client_tls(ca=None, cert_dir=None, code: str | None = None, server_name: str = "") -> ClientTLS:
    return ClientTLS(
        root_certificates=ca.read_bytes() if ca else None,
        private_key=(cert_dir / f"member-{code}-key.pem").read_bytes() if code else None,
        certificate_chain=(cert_dir / f"member-{code}.pem").read_bytes() if code else None,
        server_name=server_name,
    )


@pytest.fixture
def serve(pki):
    """Start a DeliveryServer with the given settings; yields a function returning its address."""
    started = []

    def start(settings: HubSettings, directory: Directory | None = None) -> str:
        server = DeliveryServer(settings, directory or load_directory(), listen="127.0.0.1:0").start()
        started.append(server)
        return f"127.0.0.1:{server.port}"

    yield start
    for server in started:
        server.stop(grace=0)


def health(address: str, tls: ClientTLS | None) -> grpc.StatusCode:
    """OK when the server reported SERVING, else the status the call failed with."""
    with client.channel(address, tls=tls) as chan:
        try:
            reply = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return grpc.StatusCode.OK


# -- TLS ---------------------------------------------------------------------------------------------------------
def test_tls_server_answers_a_client_that_trusts_its_ca(pki, serve):
    d, _ = pki
    address = serve(base(**server_tls(pki, mutual=False)))
    assert health(address, client_tls(ca=d / "ca.pem")) == grpc.StatusCode.OK
    # The same through the settings every command uses.
    with client.channel_for(base(tls_ca_file=d / "ca.pem"), address) as chan:
        reply = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_server_refuses_plain_text_and_clients_that_do_not_trust_it(pki, serve):
    _, foreign = pki
    address = serve(base(**server_tls(pki, mutual=False)))
    assert health(address, None) == grpc.StatusCode.UNAVAILABLE
    assert health(address, ClientTLS()) == grpc.StatusCode.UNAVAILABLE  # system roots: no dev CA among them
    assert health(address, client_tls(ca=foreign / "ca.pem")) == grpc.StatusCode.UNAVAILABLE


def test_the_server_name_is_checked_and_can_be_overridden(pki, serve):
    d, _ = pki
    address = serve(base(**server_tls(pki, mutual=False)))
    ca = d / "ca.pem"
    assert health(address, client_tls(ca=ca, server_name="localhost")) == grpc.StatusCode.OK
    assert health(address, client_tls(ca=ca, server_name="hub.elsewhere.example")) == grpc.StatusCode.UNAVAILABLE


def test_plain_server_still_serves_plain_clients(serve):
    address = serve(base())
    assert health(address, None) == grpc.StatusCode.OK


# -- mutual TLS --------------------------------------------------------------------------------------------------
def test_mutual_tls_requires_a_client_certificate_from_the_configured_ca(pki, serve):
    d, foreign = pki
    address = serve(base(**server_tls(pki, mutual=True)))
    ca = d / "ca.pem"
    assert health(address, client_tls(ca=ca)) == grpc.StatusCode.UNAVAILABLE  # no certificate
    assert health(address, client_tls(ca=ca, cert_dir=foreign, code="FJI")) == grpc.StatusCode.UNAVAILABLE
    assert health(address, client_tls(ca=ca, cert_dir=d, code="FJI")) == grpc.StatusCode.OK


def dispose_status(address: str, tls: ClientTLS, token_member: str) -> grpc.StatusCode:
    """Dispose with no outcome: INVALID_ARGUMENT once the caller is authorized (no broker reached)."""
    token = issue_token(base().auth_secret, "member", token_member)
    with client.channel(address, tls=tls) as chan:
        try:
            delivery_pb2_grpc.HitDeliveryStub(chan).Dispose(
                delivery_pb2.DisposeRequest(member=token_member, hit_id="h-x"), metadata=bearer(token), timeout=10
            )
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def pinned_directory(pki) -> Directory:
    d, _ = pki
    shipped = load_directory()
    fji = dataclasses.replace(
        shipped.members["FJI"], cert_sha256=frozenset({cert_sha256((d / "member-FJI.pem").read_bytes())})
    )
    return Directory({**shipped.members, "FJI": fji})


def test_a_member_pinned_to_its_certificate_cannot_call_with_another(pki, serve):
    d, _ = pki
    address = serve(base(**server_tls(pki, mutual=True)), pinned_directory(pki))
    ca = d / "ca.pem"
    assert dispose_status(address, client_tls(ca=ca, cert_dir=d, code="FJI"), "FJI") == grpc.StatusCode.INVALID_ARGUMENT
    # TON's certificate is valid (same CA) and TON's token works for TON, but Fiji is pinned to its own.
    assert dispose_status(address, client_tls(ca=ca, cert_dir=d, code="TON"), "FJI") == grpc.StatusCode.UNAUTHENTICATED
    assert dispose_status(address, client_tls(ca=ca, cert_dir=d, code="TON"), "TON") == grpc.StatusCode.INVALID_ARGUMENT


def test_a_pinned_member_is_refused_without_client_certificates(pki, serve):
    d, _ = pki
    address = serve(base(**server_tls(pki, mutual=False)), pinned_directory(pki))
    assert dispose_status(address, client_tls(ca=d / "ca.pem"), "FJI") == grpc.StatusCode.UNAUTHENTICATED
    assert dispose_status(address, client_tls(ca=d / "ca.pem"), "TON") == grpc.StatusCode.INVALID_ARGUMENT


def test_directory_cert_fingerprints_accept_openssl_form_and_refuse_junk():
    digest = "AB:" * 31 + "AB"
    directory = parse_directory(f"members:\n  - {{code: FJI, cert_sha256: ['{digest}']}}\n", "t")
    assert directory.members["FJI"].cert_sha256 == {"ab" * 32}
    with pytest.raises(ConfigError, match="cert_sha256"):
        parse_directory("members:\n  - {code: FJI, cert_sha256: [abc]}\n", "t")


# -- settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields,message",
    [
        ({"tls_cert_file": "server.pem"}, "APIHUB_TLS_CERT_FILE is set but APIHUB_TLS_KEY_FILE is not"),
        ({"tls_key_file": "server-key.pem"}, "APIHUB_TLS_KEY_FILE is set but APIHUB_TLS_CERT_FILE is not"),
        ({"tls_client_cert_file": "member-FJI.pem"}, "APIHUB_TLS_CLIENT_CERT_FILE is set but APIHUB_TLS_CLIENT_KEY"),
        ({"tls_client_ca_file": "ca.pem"}, "APIHUB_TLS_CLIENT_CA_FILE .* needs the servers' own certificate"),
        ({"tls_ca_file": "missing.pem"}, "APIHUB_TLS_CA_FILE=.*missing.pem: cannot read it"),
    ],
)
def test_settings_name_the_tls_setting_that_is_wrong(pki, fields, message):
    d, _ = pki
    with pytest.raises(ValidationError, match=message):
        base(**{name: d / file for name, file in fields.items()})


def test_empty_tls_variables_mean_unset(monkeypatch):
    monkeypatch.setenv("APIHUB_TLS_CERT_FILE", "")
    monkeypatch.setenv("APIHUB_TLS_CA_FILE", "")
    settings = HubSettings()
    assert settings.tls_cert_file is None and not settings.server_tls and not settings.client_tls


def test_a_key_of_another_certificate_or_a_non_pem_file_is_a_clear_error(pki, tmp_path):
    d, _ = pki
    with pytest.raises(ConfigError, match="APIHUB_TLS_CERT_FILE / APIHUB_TLS_KEY_FILE: the key does not belong"):
        server_credentials(base(tls_cert_file=d / "server.pem", tls_key_file=d / "member-FJI-key.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match="APIHUB_TLS_CA_FILE=.*junk.pem: not a PEM file"):
        ClientTLS.from_settings(base(tls_ca_file=junk))


def test_cli_reports_bad_tls_settings_without_a_traceback(pki):
    d, _ = pki
    result = CliRunner().invoke(
        app,
        ["hits", "follow", "--member", "FJI", "--token", "t"],
        env={"APIHUB_TLS_CLIENT_CERT_FILE": str(d / "member-FJI.pem")},
    )
    assert result.exit_code == 2
    assert "APIHUB_TLS_CLIENT_CERT_FILE is set but APIHUB_TLS_CLIENT_KEY_FILE is not" in result.output


def test_cli_global_tls_options_reach_a_mutual_tls_hub(pki, serve, tmp_path):
    d, _ = pki
    address = serve(base(**server_tls(pki, mutual=True)))
    csv = tmp_path / "fji.csv"  # an entry without entry_id: the hub answers with a violation, no broker needed
    csv.write_text(",".join(client.WATCHLIST_COLUMNS) + "\n,DOE,JOHN,1980-01-01,M,FJI,X1,FJI,test,FJI\n")
    token = issue_token(base().auth_secret, "member", "FJI")
    command = ["watchlist", "load", "--member", "FJI", "--server", address, "--token", token, str(csv)]
    tls = ["--tls-ca", str(d / "ca.pem"), "--tls-client-cert", str(d / "member-FJI.pem")]
    tls += ["--tls-client-key", str(d / "member-FJI-key.pem")]

    reached = CliRunner().invoke(app, [*tls, *command])
    assert reached.exit_code == 1, reached.output
    assert "entries[0].entry_id" in reached.output and "watchlist not loaded" in reached.output

    plain = CliRunner().invoke(app, command)
    assert plain.exit_code == 3 and "UNAVAILABLE" in plain.output

    by_env = CliRunner().invoke(
        app,
        command,
        env={
            "APIHUB_TLS_CA_FILE": str(d / "ca.pem"),
            "APIHUB_TLS_CLIENT_CERT_FILE": str(d / "member-FJI.pem"),
            "APIHUB_TLS_CLIENT_KEY_FILE": str(d / "member-FJI-key.pem"),
        },
    )
    assert by_env.exit_code == 1 and "entries[0].entry_id" in by_env.output


# -- plain text warning --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "listen,loopback",
    [("127.0.0.1:50051", True), ("localhost:1", True), ("[::1]:1", True), ("0.0.0.0:1", False), ("[::]:1", False)],
)
def test_loopback_addresses(listen, loopback):
    assert is_loopback(listen) is loopback


def test_plain_text_on_every_interface_is_logged_as_a_warning(caplog, pki):
    with caplog.at_level(logging.INFO, logger="services.serving"):
        loopback = new_grpc_server(base())
        bind(loopback, "127.0.0.1:0", base())
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        exposed = new_grpc_server(base())
        bind(exposed, "0.0.0.0:0", base())
        [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "PLAIN TEXT" in warning.getMessage() and "APIHUB_TLS_CERT_FILE" in warning.getMessage()
        caplog.clear()
        encrypted = new_grpc_server(base())
        bind(encrypted, "0.0.0.0:0", base(**server_tls(pki, mutual=False)))
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for server in (loopback, exposed, encrypted):
        server.stop(0)


# -- apihub dev certs --------------------------------------------------------------------------------------------
def test_dev_certs_writes_private_keys_0600_only_into_the_directory(tmp_path):
    out = tmp_path / "certs"
    result = CliRunner().invoke(app, ["dev", "certs", "--out", str(out), "--member", "fji", "--carrier", "FJ"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in tmp_path.rglob("*")} - {"certs"}
    assert names == {
        "ca.pem",
        "server.pem",
        "server-key.pem",
        "member-FJI.pem",
        "member-FJI-key.pem",
        "carrier-FJ.pem",
        "carrier-FJ-key.pem",
    }
    for key in out.glob("*-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        assert b"PRIVATE KEY" in key.read_bytes()
    for cert in ("ca.pem", "server.pem", "member-FJI.pem"):
        assert b"PRIVATE" not in (out / cert).read_bytes()
    member = x509.load_pem_x509_certificate((out / "member-FJI.pem").read_bytes())
    assert member.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "FJI"
    # The fingerprint printed is the one a directory entry pins.
    assert cert_sha256((out / "member-FJI.pem").read_bytes()) in result.output

    before = (out / "ca.pem").read_bytes()
    again = CliRunner().invoke(app, ["dev", "certs", "--out", str(out), "--member", "FJI"])
    assert again.exit_code != 0 and "--force" in again.output
    assert (out / "ca.pem").read_bytes() == before


def test_dev_certs_refuses_a_code_that_is_not_a_code(tmp_path):
    result = CliRunner().invoke(app, ["dev", "certs", "--out", str(tmp_path), "--member", "../x"])
    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []
