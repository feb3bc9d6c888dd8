"""Kafka security: TLS and SASL settings, and the whole hub against a local broker that requires SASL_SSL.

The broker (one per module) accepts clients only over TLS, with a client certificate issued by its CA, and only after
SASL authentication (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512). The tests without the ``secure_kafka`` fixture need no
broker: they check the settings and the client options.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hubkit import RunningHub, flight, plant
from kafka.errors import KafkaError
from pydantic import ValidationError
from typer.testing import CliRunner

from services.bus import (
    KafkaUnreachableError,
    Topics,
    ensure_topics,
    kafka_client_options,
    make_admin,
    make_producer,
    read_to_end,
)
from services.cli import app
from services.config import HubSettings
from services.devkafka import LocalKafka, SaslSslListener, dev_sasl_ssl_listener, free_port
from services.errors import ConfigError, HubError
from services.tls import write_dev_certs
from services.wire import manifest_pb2
from synthetic.traffic import demo_watchlists

USER = "apihub"
# A refused connection is retried until this bootstrap timeout: short, so each refusal costs seconds, not tens.
REFUSAL_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    listener: SaslSslListener
    password: str
    password_file: Path


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory) -> SecureBroker:
    root = tmp_path_factory.mktemp("sasl-ssl")
    password = secrets.token_hex(16)
    password_file = root / "kafka-password"
    password_file.write_text(password + "\n")  # as `echo` writes it: the newline is no part of the password
    listener = dev_sasl_ssl_listener(root / "tls", {USER: password})
    broker = LocalKafka(root / "kafka", free_port(), free_port(), heap="512m", secure=listener)
    try:
        broker.start()
        yield SecureBroker(broker.bootstrap, listener, password, password_file)
    finally:
        broker.stop()


def secure_settings(broker: SecureBroker, **changes) -> HubSettings:
    """A test's settings: its own topics on the SASL_SSL broker, connecting with TLS, a client certificate and
    SCRAM-SHA-512, the password read from a file; ``changes`` override any of it."""
    values = dict(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"s{uuid.uuid4().hex[:10]}",
        ingest_listen="127.0.0.1:0",
        delivery_listen="127.0.0.1:0",
        ingest_metrics_port=-1,
        profiler_metrics_port=-1,
        router_metrics_port=-1,
        console_metrics_port=-1,
        heartbeat_seconds=0.2,
        profiler_poll_ms=50,
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_file=broker.listener.truststore,
        kafka_ssl_cert_file=broker.listener.client_cert,
        kafka_ssl_key_file=broker.listener.client_key,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password_file=broker.password_file,
    )
    values.update(changes)
    return HubSettings(**values)


# -- against the broker that requires SASL_SSL ------------------------------------------------------------------
@pytest.mark.integration
def test_admin_producer_and_consumer_round_trip_a_record_over_sasl_ssl(secure_kafka):
    settings = secure_settings(secure_kafka)
    topic = Topics(settings.topic_prefix).manifests
    assert topic in ensure_topics(settings, ["FJI"])  # the admin client

    producer = make_producer(settings, "security-test")
    try:
        producer.send(topic, key=b"FJ911", value=b"over TLS and SCRAM").get(timeout=30)
    finally:
        producer.close()
    records = list(read_to_end(settings, topic, "security-test-reader"))  # a consumer
    assert [(r.key, r.value) for r in records] == [(b"FJ911", b"over TLS and SCRAM")]


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_the_other_sasl_mechanisms_connect_too_with_the_password_from_the_environment(secure_kafka, mechanism):
    settings = secure_settings(
        secure_kafka,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_password_file=None,
        kafka_sasl_password=secure_kafka.password,
    )
    admin = make_admin(settings, "security-test")
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


@pytest.mark.integration
def test_the_whole_hub_screens_and_delivers_over_sasl_ssl(secure_kafka):
    settings = secure_settings(secure_kafka)
    hub = RunningHub(settings)  # intake, profiler, router and delivery: every Kafka client they make
    try:
        entry = demo_watchlists()["FJI"][0]
        assert hub.load("FJI", [entry]).entries == 1
        m = flight(["SYD", "NAN"], number="415")
        plant(m, entry, "FJ415-P1")
        [receipt] = hub.submit(m)
        assert receipt.status == 1, receipt  # accepted: the broker acknowledged it

        manifests = read_to_end(settings, Topics(settings.topic_prefix).manifests, "security-test-reader")
        ids = [manifest_pb2.Manifest.FromString(r.value).manifest_id for r in manifests]
        assert ids == [receipt.manifest_id]

        [hit] = hub.hits("FJI", want=1, idle=20)
        assert hit.traveller.passenger_ref == "FJ415-P1" and hit.manifest_id == receipt.manifest_id
    finally:
        hub.stop()


def refusal(settings: HubSettings) -> str:
    """The message of the error a client gets from the broker refusing it, within the short bootstrap timeout."""
    with pytest.raises(KafkaUnreachableError) as err:
        make_admin(settings, "security-test", bootstrap_timeout_ms=REFUSAL_TIMEOUT_MS)
    # Commands report it as a HubError; workers' handling of broker outages retries it as a KafkaError.
    assert isinstance(err.value, HubError) and isinstance(err.value, KafkaError)
    return str(err.value)


@pytest.mark.integration
def test_plain_text_is_refused_with_a_clear_error(secure_kafka):
    message = refusal(
        secure_settings(
            secure_kafka,
            kafka_security_protocol="PLAINTEXT",
            kafka_ssl_ca_file=None,
            kafka_ssl_cert_file=None,
            kafka_ssl_key_file=None,
            kafka_sasl_username="",
            kafka_sasl_password_file=None,
        )
    )
    assert message.startswith(f"cannot connect to Kafka at {secure_kafka.bootstrap} (PLAINTEXT)")
    assert "speak PLAINTEXT (APIHUB_KAFKA_SECURITY_PROTOCOL)" in message


# What a refused password is reported as: the broker's refusal, or (when kafka-python lost it) a closed or failed
# connection; each names the SASL user and password settings.
WRONG_CREDENTIALS = re.compile(
    r"(the broker refused the hub's credentials; check APIHUB_KAFKA_SASL_USERNAME"
    r"|(the broker closed the connection|no broker completed a connection).*accept the hub's SASL user and password "
    r"\(APIHUB_KAFKA_SASL_USERNAME)"
)


@pytest.mark.integration
def test_a_wrong_password_is_refused_and_never_shown(secure_kafka):
    wrong = secrets.token_hex(16)
    message = refusal(secure_settings(secure_kafka, kafka_sasl_password_file=None, kafka_sasl_password=wrong))
    # kafka-python 3.0 mostly loses the broker's "authentication failed" answer in the close that follows it (then
    # the message says the broker closed the connection); when it keeps it, the message says so. Either way the
    # credentials are named among what to check.
    assert f"(SASL_SSL, SASL SCRAM-SHA-512 as user '{USER}'): " in message
    assert WRONG_CREDENTIALS.search(message), message
    assert wrong not in message and secure_kafka.password not in message


@pytest.mark.integration
def test_a_broker_certificate_from_another_ca_is_not_trusted(secure_kafka, tmp_path):
    write_dev_certs(tmp_path)
    message = refusal(secure_settings(secure_kafka, kafka_ssl_ca_file=tmp_path / "ca.pem"))
    assert "the broker's certificate is not trusted" in message and "CERTIFICATE_VERIFY_FAILED" in message


@pytest.mark.integration
def test_without_a_client_certificate_the_broker_refuses_the_connection(secure_kafka):
    message = refusal(secure_settings(secure_kafka, kafka_ssl_cert_file=None, kafka_ssl_key_file=None))
    assert "the broker refused the hub's client certificate, or its absence" in message


@pytest.mark.integration
def test_apihub_topics_with_a_wrong_password_says_why_without_a_traceback(secure_kafka, monkeypatch):
    settings = secure_settings(secure_kafka)
    env = {
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        "APIHUB_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",  # spelt as Kafka's own properties may be
        "APIHUB_KAFKA_SSL_CA_FILE": str(settings.kafka_ssl_ca_file),
        "APIHUB_KAFKA_SSL_CERT_FILE": str(settings.kafka_ssl_cert_file),
        "APIHUB_KAFKA_SSL_KEY_FILE": str(settings.kafka_ssl_key_file),
        "APIHUB_KAFKA_SASL_USERNAME": USER,
        "APIHUB_KAFKA_SASL_PASSWORD": "not-the-password",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["topics"])
    assert result.exit_code == 3, result.output
    assert WRONG_CREDENTIALS.search(result.output), result.output
    assert "Traceback" not in result.output and "not-the-password" not in result.output


# -- settings and client options, no broker ---------------------------------------------------------------------
def plain_settings(**changes) -> HubSettings:
    values = dict(kafka_bootstrap="kafka.example:9093", topic_prefix="apihub")
    values.update(changes)
    return HubSettings(**values)


def test_by_default_the_hub_connects_in_plain_text_as_before():
    options = kafka_client_options(HubSettings(kafka_bootstrap="", kafka_port=9092))
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"kafka_bootstrap": "", "kafka_security_protocol": "SSL"},
            "APIHUB_KAFKA_SECURITY_PROTOCOL=SSL needs APIHUB_KAFKA_BOOTSTRAP",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": USER},
            "APIHUB_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs a password: set APIHUB_KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_password": "pw"},
            "needs the hub's user name: set APIHUB_KAFKA_SASL_USERNAME",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": USER,
                "kafka_sasl_password": "pw",
                "kafka_sasl_password_file": "/run/secrets/kafka",
            },
            "are both set: keep one of them",
        ),
        (
            {"kafka_ssl_ca_file": "/etc/kafka/ca.pem"},
            "APIHUB_KAFKA_SSL_CA_FILE is set but APIHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_sasl_username": USER},
            "APIHUB_KAFKA_SASL_USERNAME is set but APIHUB_KAFKA_SECURITY_PROTOCOL=SSL does not authenticate with SASL",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": "/etc/kafka/hub.pem"},
            "APIHUB_KAFKA_SSL_CERT_FILE is set but APIHUB_KAFKA_SSL_KEY_FILE is not",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_settings_that_cannot_work_together_are_refused_with_the_reason(changes, expected):
    with pytest.raises(ValidationError) as err:
        plain_settings(**changes)
    assert expected in str(err.value)


def test_bad_kafka_settings_reach_the_command_line_as_one_line_without_a_traceback(monkeypatch):
    monkeypatch.setenv("APIHUB_KAFKA_BOOTSTRAP", "kafka.example:9093")
    monkeypatch.setenv("APIHUB_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("APIHUB_KAFKA_SASL_USERNAME", USER)
    result = CliRunner().invoke(app, ["topics"])
    assert result.exit_code == 2
    assert "bad settings: APIHUB_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs a password" in result.output
    assert "Traceback" not in result.output


def test_a_service_with_an_unusable_kafka_ca_file_stops_before_starting(monkeypatch, tmp_path):
    monkeypatch.setenv("APIHUB_KAFKA_BOOTSTRAP", "kafka.example:9093")
    monkeypatch.setenv("APIHUB_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("APIHUB_KAFKA_SSL_CA_FILE", str(tmp_path / "missing-ca.pem"))
    result = CliRunner().invoke(app, ["serve", "profiler"])
    assert result.exit_code == 2
    assert f"bad settings: APIHUB_KAFKA_SSL_CA_FILE={tmp_path / 'missing-ca.pem'}: no readable PEM" in result.output
    assert "Traceback" not in result.output


def test_names_are_accepted_in_lower_case_and_empty_variables_mean_unset():
    settings = plain_settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="scram-sha-256",
        kafka_sasl_username=USER,
        kafka_sasl_password="pw",
        kafka_sasl_password_file="",
        kafka_ssl_ca_file=" ",
    )
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert settings.kafka_sasl_password_file is None and settings.kafka_ssl_ca_file is None


def test_sasl_options_carry_the_password_from_its_file_and_never_show_it(tmp_path):
    password_file = tmp_path / "kafka-password"
    password_file.write_text("s3cret-from-a-mounted-file\r\n")
    settings = plain_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username=USER, kafka_sasl_password_file=password_file
    )
    options = kafka_client_options(settings)
    assert options["sasl_plain_password"] == "s3cret-from-a-mounted-file"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", USER)
    assert "s3cret" not in repr(options)  # kafka-python's admin client logs its configuration at debug level

    in_env = plain_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username=USER, kafka_sasl_password="pw9"
    )
    assert kafka_client_options(in_env)["sasl_plain_password"] == "pw9"
    assert "pw9" not in repr(in_env) and "pw9" not in str(in_env.model_dump())


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_password_file_is_a_config_error(tmp_path, content):
    password_file = tmp_path / "kafka-password"
    if content is not None:
        password_file.write_text(content)
    settings = plain_settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username=USER, kafka_sasl_password_file=password_file
    )
    with pytest.raises(ConfigError) as err:
        kafka_client_options(settings)
    assert str(err.value).startswith(f"APIHUB_KAFKA_SASL_PASSWORD_FILE={password_file}: ")


def test_tls_options_verify_the_broker_against_the_ca_file_and_present_the_hub_certificate(tmp_path):
    write_dev_certs(tmp_path, members=["HUB"])
    settings = plain_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=tmp_path / "ca.pem",
        kafka_ssl_cert_file=tmp_path / "member-HUB.pem",
        kafka_ssl_key_file=tmp_path / "member-HUB-key.pem",
    )
    context = kafka_client_options(settings)["ssl_context"]
    # The dev CA alone, not the system's roots besides; and the host name is checked.
    assert len(context.get_ca_certs()) == 1 and context.check_hostname
    unchecked = settings.model_copy(update={"kafka_ssl_check_hostname": False})
    assert kafka_client_options(unchecked)["ssl_context"].check_hostname is False


def _encrypted_key(path: Path, source: Path) -> None:
    key = serialization.load_pem_private_key(source.read_bytes(), password=None)
    encryption = serialization.BestAvailableEncryption(b"key-password")
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))


@pytest.mark.parametrize("problem", ["missing CA", "CA not PEM", "key of another certificate", "encrypted key"])
def test_unusable_tls_files_are_config_errors_naming_the_setting(tmp_path, problem):
    write_dev_certs(tmp_path, members=["HUB"])
    files = {
        "kafka_ssl_ca_file": tmp_path / "ca.pem",
        "kafka_ssl_cert_file": tmp_path / "member-HUB.pem",
        "kafka_ssl_key_file": tmp_path / "member-HUB-key.pem",
    }
    if problem == "missing CA":
        files["kafka_ssl_ca_file"] = tmp_path / "nowhere.pem"
    elif problem == "CA not PEM":
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        files["kafka_ssl_ca_file"] = tmp_path / "junk.pem"
    elif problem == "key of another certificate":
        files["kafka_ssl_key_file"] = tmp_path / "server-key.pem"
    else:
        _encrypted_key(tmp_path / "encrypted-key.pem", tmp_path / "member-HUB-key.pem")
        files["kafka_ssl_key_file"] = tmp_path / "encrypted-key.pem"
    settings = plain_settings(kafka_security_protocol="SSL", **files)
    with pytest.raises(ConfigError) as err:
        kafka_client_options(settings)  # never a prompt for a key password, never a traceback
    setting = "APIHUB_KAFKA_SSL_CA_FILE" if "CA" in problem else "APIHUB_KAFKA_SSL_"
    assert str(err.value).startswith(setting), err.value
    if problem == "encrypted key":
        assert "encrypted" in str(err.value)


def test_no_broker_at_the_address_is_reported_within_the_bootstrap_timeout():
    settings = plain_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(KafkaUnreachableError) as err:
        make_admin(settings, "security-test", bootstrap_timeout_ms=1_000)
    assert f"cannot connect to Kafka at {settings.bootstrap} (PLAINTEXT): nothing accepts connections there" in str(
        err.value
    )


def test_a_refusal_of_the_credentials_outweighs_the_failures_after_it():
    """The broker's refusal, once seen, is the reason given, not the closed connections and time-outs that follow."""
    from kafka.errors import KafkaConnectionError, RequestTimedOutError, SaslAuthenticationFailedError

    from services.bus import _BootstrapFailures

    def record(error: BaseException) -> logging.LogRecord:
        return logging.LogRecord("kafka.net.manager", logging.WARNING, __file__, 1, "failed: %s", (error,), None)

    failures = _BootstrapFailures()
    failures.emit(record(KafkaConnectionError("socket disconnected")))
    assert isinstance(failures.last, KafkaConnectionError)
    failures.emit(record(SaslAuthenticationFailedError("invalid credentials")))
    failures.emit(record(RequestTimedOutError("after 260 ms")))
    assert isinstance(failures.last, SaslAuthenticationFailedError)
