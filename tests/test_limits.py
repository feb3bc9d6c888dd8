"""Every principal bounded at the gRPC layer (services/limits.py), and rejections that always reach the carrier
(services/api_ingest/status.py): the accounting alone, then real servers over real local channels with in-memory
stand-ins for Kafka (tests/integration/test_limits_live.py does the same against the real broker)."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import grpc
import pytest
from fakes import EmptyTable, MemoryProducer
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_status import rpc_status
from pydantic import ValidationError
from typer.testing import CliRunner

from services import client
from services.api_ingest.index import IntakeIndex
from services.api_ingest.servicer import ManifestIntakeServicer
from services.api_ingest.status import MAX_STATUS_BYTES, reject, rejection_status
from services.auth import bearer, issue_token
from services.config import HubSettings
from services.directory import load_directory
from services.limits import ANONYMOUS_CALLER, Caller, KindLimits, Limiter, LimitInterceptor, Limits
from services.router.delivery import HitDeliveryServicer
from services.serving import add_standard_services, bind, new_grpc_server
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2, intake_pb2_grpc, manifest_pb2
from synthetic.traffic import DemoTraffic

FJ, NZ = Caller("carrier", "FJ"), Caller("carrier", "NZ")
WAIT_S = 30.0  # the longest a test waits for the server to reach a state (a bound against hanging, not a timing)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def small_limits(total=10, reserved=4, calls=4, streams=2, admin=1, size=100) -> Limits:
    kind = KindLimits(calls=calls, streams=streams, admin_calls=admin, bytes=size)
    return Limits(
        total_calls=total,
        reserved_calls=reserved,
        kinds={"carrier": kind, "member": kind, "console": kind, "anonymous": kind},
    )


def unit_settings(**overrides) -> HubSettings:
    return HubSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix=f"u{uuid.uuid4().hex[:8]}", **overrides)


# -- the accounting ----------------------------------------------------------------------------------------


def test_each_principal_has_its_own_calls_streams_and_bytes():
    limiter = Limiter(small_limits())
    assert limiter.admit(FJ, stream=True) is None
    assert limiter.admit(FJ, stream=True) is None
    refused = limiter.admit(FJ, stream=True)
    assert refused.limit == "streams" and "carrier FJ" in refused.message
    assert "APIHUB_LIMIT_CARRIER_STREAMS" in refused.message and "retry later" in refused.message
    # FJ's streams are full, not its calls, and not anybody else's.
    assert limiter.admit(FJ, size=60) is None
    assert limiter.admit(FJ, size=60).limit == "bytes"
    assert limiter.admit(NZ, stream=True) is None
    assert limiter.admit(FJ) is None
    assert limiter.admit(FJ).limit == "calls"

    limiter.release(FJ, stream=True)
    assert limiter.admit(FJ, stream=True) is None
    assert limiter.holding(FJ).calls == 4 and limiter.holding(NZ).calls == 1


def test_a_member_loads_one_configuration_at_a_time():
    limiter = Limiter(small_limits())
    fji, ton = Caller("member", "FJI"), Caller("member", "TON")
    assert limiter.admit(fji, admin=True) is None
    refused = limiter.admit(fji, admin=True)
    assert refused.limit == "admin_calls" and "APIHUB_LIMIT_MEMBER_ADMIN_CALLS" in refused.message
    assert limiter.admit(fji) is None  # an Ack meanwhile
    assert limiter.admit(ton, admin=True) is None
    limiter.release(fji, admin=True)
    assert limiter.admit(fji, admin=True) is None


def test_the_last_slots_are_kept_for_principals_that_hold_little():
    limiter = Limiter(small_limits(total=12, reserved=4, calls=4))
    for caller in (FJ, NZ):  # the shared 8 of 12
        for _ in range(4):
            assert limiter.admit(caller) is None
    holder = Caller("carrier", "QF")
    assert limiter.admit(holder) is None  # holds none: the reserve admits it
    assert limiter.admit(holder) is None  # holds one (e.g. its Subscribe stream, now an Ack)
    refused = limiter.admit(holder)
    assert refused.limit == "reserved_calls" and "APIHUB_LIMIT_RESERVED_CALLS" in refused.message
    late = Caller("carrier", "VA")
    assert limiter.admit(late) is None and limiter.admit(late) is None
    assert limiter.total == 12
    assert limiter.admit(Caller("carrier", "NF")).limit == "total_calls"
    limiter.release(FJ)
    assert limiter.admit(Caller("carrier", "NF")) is None


def test_callers_without_a_valid_token_share_one_small_allowance():
    limiter = Limiter(small_limits(calls=2))
    assert limiter.admit(ANONYMOUS_CALLER) is None
    assert limiter.admit(ANONYMOUS_CALLER) is None
    refused = limiter.admit(ANONYMOUS_CALLER)
    assert refused.limit == "calls" and "present a valid token" in refused.message


def test_a_stream_holds_the_bytes_of_its_current_message_only():
    limiter = Limiter(small_limits(size=100))
    assert limiter.admit(FJ, stream=True) is None
    assert limiter.take_bytes(FJ, 80) is None
    assert limiter.take_bytes(FJ, 90, give_back=80) is None  # the previous message given back
    assert limiter.admit(FJ, size=20).limit == "bytes"
    assert limiter.take_bytes(FJ, 120, give_back=90).limit == "bytes"
    assert limiter.holding(FJ).bytes == 0


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"grpc_threads": 32, "limit_total_calls": 32}, "APIHUB_LIMIT_TOTAL_CALLS"),
        ({"limit_reserved_calls": 96}, "APIHUB_LIMIT_RESERVED_CALLS"),
        ({"limit_member_streams": 9}, "APIHUB_LIMIT_MEMBER_STREAMS"),
        ({"limit_carrier_bytes": 1024}, "APIHUB_LIMIT_CARRIER_BYTES"),
        ({"limit_anonymous_calls": 0}, "APIHUB_LIMIT_ANONYMOUS_CALLS"),
    ],
)
def test_limits_that_cannot_work_are_refused_at_start(overrides, named):
    with pytest.raises(ValidationError, match=named):
        HubSettings(**overrides)


# -- the intake server ---------------------------------------------------------------------------------------


class Served:
    """A server on a free loopback port with its limits, and a channel to it."""

    def __init__(self, settings: HubSettings, add_servicers):
        self.settings = settings
        self.limits = LimitInterceptor(settings)
        self.server = new_grpc_server(settings, self.limits)
        add_servicers(self.server)
        self.health = add_standard_services(self.server, [])
        self.port = bind(self.server, "127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def token(self, kind: str, code: str):
        return bearer(issue_token(self.settings.auth_secret, kind, code))

    def healthy(self) -> bool:
        reply = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def close(self):
        self.channel.close()
        self.server.stop(0)


@pytest.fixture
def intake():
    settings = unit_settings()
    index = IntakeIndex(settings, reader=EmptyTable()).start()
    served = Served(
        settings,
        lambda server: intake_pb2_grpc.add_ManifestIntakeServicer_to_server(
            ManifestIntakeServicer(settings, MemoryProducer(), index), server
        ),
    )
    yield served
    served.close()
    index.stop()


def manifest(carrier: str, ref: str) -> manifest_pb2.Manifest:
    m = DemoTraffic(seed=5).next_manifest(passengers=2)
    m.carrier, m.message_ref = carrier, ref
    return m


def held_open(first: manifest_pb2.Manifest, release: threading.Event):
    """A bulk stream's requests: one manifest, then nothing until ``release`` (a carrier keeping it open)."""
    yield first
    release.wait(WAIT_S * 2)


def open_streams(stub, metadata, count: int, release: threading.Event, carrier="FJ"):
    calls = [
        stub.SubmitManifests(held_open(manifest(carrier, f"OPEN-{n}"), release), metadata=metadata, timeout=WAIT_S * 4)
        for n in range(count)
    ]
    done: list = []
    for call in calls:
        call.add_done_callback(done.append)
    return calls, done


def test_one_carriers_open_streams_do_not_starve_the_others(intake):
    """Was: 32 open SubmitManifests streams of one carrier held all 32 threads; every other submit timed out."""
    stub = intake_pb2_grpc.ManifestIntakeStub(intake.channel)
    release = threading.Event()
    calls, done = open_streams(stub, intake.token("carrier", "FJ"), 32, release)
    try:
        streams = intake.settings.limit_carrier_streams
        wait_until(lambda: len(done) == 32 - streams, "the streams past FJ's limit to be refused")
        wait_until(lambda: intake.limits.limiter.holding(FJ).streams == streams, "FJ's admitted streams")
        refused = [c for c in calls if c.done()]
        assert {c.code() for c in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert "carrier FJ already has 4 streams open" in refused[0].details()

        # Another carrier is served meanwhile, and so are health checks.
        receipt = stub.SubmitManifest(manifest("NZ", "NZ-1"), metadata=intake.token("carrier", "NZ"), timeout=WAIT_S)
        assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
        assert intake.healthy()
    finally:
        release.set()
    admitted = [c for c in calls if c not in refused]
    assert [[r.status for r in c] for c in admitted] == [[intake_pb2.RECEIPT_STATUS_ACCEPTED]] * streams
    wait_until(lambda: intake.limits.limiter.total == 0, "every slot to be given back")


def idle_requests(release: threading.Event):
    """A stream's requests that never come (until ``release``): the call stays open on the server."""
    release.wait(WAIT_S * 2)
    yield from ()


def test_calls_without_a_token_cannot_hold_the_server(intake):
    """Reflection and health Watch need no token; all such callers together hold a few threads at most."""
    reflection = reflection_pb2_grpc.ServerReflectionStub(intake.channel)
    release = threading.Event()
    held = [reflection.ServerReflectionInfo(idle_requests(release), timeout=WAIT_S * 4) for _ in range(2)]
    try:
        wait_until(lambda: intake.limits.limiter.holding(ANONYMOUS_CALLER).streams == 2, "two anonymous streams")
        with pytest.raises(grpc.RpcError) as err:
            next(reflection.ServerReflectionInfo(idle_requests(release), timeout=WAIT_S))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "callers without a valid token" in err.value.details()
        assert "APIHUB_LIMIT_ANONYMOUS_STREAMS" in err.value.details()

        stub = intake_pb2_grpc.ManifestIntakeStub(intake.channel)
        big = intake_pb2.PaxlstInterchange(data=b"U" * (2 * 1024 * 1024))
        with pytest.raises(grpc.RpcError) as err:
            stub.SubmitPaxlst(big, timeout=WAIT_S)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "present a valid token" in err.value.details()
        # A carrier with its token, and health checks, are served meanwhile.
        receipt = stub.SubmitManifest(manifest("NZ", "NZ-2"), metadata=intake.token("carrier", "NZ"), timeout=WAIT_S)
        assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
        assert intake.healthy()
    finally:
        release.set()
    for call in held:
        assert list(call) == []


def test_the_hub_wide_limit_leaves_threads_for_health_checks():
    settings = unit_settings(grpc_threads=6, limit_total_calls=3, limit_reserved_calls=1)
    index = IntakeIndex(settings, reader=EmptyTable()).start()
    served = Served(
        settings,
        lambda server: intake_pb2_grpc.add_ManifestIntakeServicer_to_server(
            ManifestIntakeServicer(settings, MemoryProducer(), index), server
        ),
    )
    stub = intake_pb2_grpc.ManifestIntakeStub(served.channel)
    release = threading.Event()
    try:
        opened = []
        for carrier in ("FJ", "NZ", "QF"):
            opened += open_streams(stub, served.token("carrier", carrier), 1, release, carrier)[0]
            wait_until(lambda c=carrier: served.limits.limiter.holding(Caller("carrier", c)).calls == 1, carrier)
        with pytest.raises(grpc.RpcError) as err:
            stub.SubmitManifest(manifest("VA", "VA-1"), metadata=served.token("carrier", "VA"), timeout=WAIT_S)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "APIHUB_LIMIT_TOTAL_CALLS" in err.value.details()
        assert all(served.healthy() for _ in range(10))
    finally:
        release.set()
        served.close()
        index.stop()


def raw_call(channel: grpc.Channel, method: str, streaming_request: bool, streaming_response: bool):
    kinds = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }
    return kinds[(streaming_request, streaming_response)](method)  # no serializers: bytes as given


@pytest.mark.parametrize(
    "method, streaming",
    [("SubmitManifest", False), ("SubmitPaxlst", False), ("SubmitManifests", True)],
)
def test_undecodable_protobuf_is_invalid_argument_without_a_traceback(intake, caplog, method, streaming):
    """Was: INTERNAL "Exception deserializing request!" and a traceback in the log."""
    caplog.set_level(logging.DEBUG)
    call = raw_call(intake.channel, f"/apihub.v1.ManifestIntake/{method}", streaming, streaming)
    junk = b"\x0a\x05ab"  # a length-delimited field cut short
    with pytest.raises(grpc.RpcError) as err:
        reply = call(iter([junk]) if streaming else junk, metadata=intake.token("carrier", "FJ"), timeout=WAIT_S)
        list(reply) if streaming else reply
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    expected = "apihub.v1.Manifest" if method != "SubmitPaxlst" else "apihub.v1.PaxlstInterchange"
    assert f"is not a valid {expected} message" in err.value.details()
    assert not [r for r in caplog.records if r.name.startswith("grpc") or r.exc_info]
    assert intake.limits.limiter.total == 0


# -- the member-facing server --------------------------------------------------------------------------------


class IdleConsumer:
    """An outbox with nothing in it (Subscribe sends heartbeats)."""

    def assign(self, partitions):
        pass

    def beginning_offsets(self, partitions, timeout_ms=None):
        return dict.fromkeys(partitions, 0)

    def end_offsets(self, partitions, timeout_ms=None):
        return dict.fromkeys(partitions, 0)

    def committed(self, partition, timeout_ms=None):
        return None

    def poll(self, timeout_ms=0, max_records=None):
        time.sleep(timeout_ms / 1000)
        return {}

    def close(self, autocommit=True):
        pass


class BlockingRules(delivery_pb2_grpc.RulesAdminServicer):
    """RulesAdmin whose loads last until released: a 4 MB rule file being parsed, as far as the server knows."""

    def __init__(self):
        self.release = threading.Event()
        self.loading: list[str] = []

    def LoadRules(self, request, context):
        self.loading.append(request.owner)
        self.release.wait(WAIT_S * 2)
        return delivery_pb2.LoadRulesResponse()


class QuickAcks(HitDeliveryServicer):
    """The real Subscribe (on an idle outbox); an Ack that answers at once, without a broker."""

    def Ack(self, request, context):
        return delivery_pb2.AckResponse(next_cursor=request.cursor + 1)


@pytest.fixture
def members():
    settings = unit_settings(heartbeat_seconds=0.05)
    delivery = QuickAcks(settings, load_directory(), consumer_factory=lambda group, client_id: IdleConsumer())
    rules = BlockingRules()

    def add(server):
        delivery_pb2_grpc.add_HitDeliveryServicer_to_server(delivery, server)
        delivery_pb2_grpc.add_RulesAdminServicer_to_server(rules, server)

    served = Served(settings, add)
    served.rules = rules
    yield served
    rules.release.set()
    delivery.stop()
    served.close()


def subscribe(served: Served, member: str):
    stub = delivery_pb2_grpc.HitDeliveryStub(served.channel)
    return stub.Subscribe(delivery_pb2.SubscribeRequest(member=member), metadata=served.token("member", member))


def test_one_members_streams_do_not_lock_the_others_out(members):
    """Was: the Subscribe cap (24) was shared: one member opening 24 streams locked every other member out."""
    streams = [subscribe(members, "FJI") for _ in range(24)]
    try:
        first = []
        for call in streams:
            try:
                first.append(next(call).heartbeat)
            except grpc.RpcError as exc:
                first.append(exc.code())
        allowed = members.settings.limit_member_streams
        assert first.count(True) == allowed
        assert first.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 24 - allowed

        other = subscribe(members, "TON")
        assert next(other).heartbeat
        other.cancel()
    finally:
        for call in streams:
            call.cancel()
    wait_until(lambda: members.limits.limiter.total == 0, "cancelled streams to give their slots back")


def test_rule_loads_are_bounded_per_member_and_acks_still_answer(members):
    """Was: four concurrent 4 MB rule files of one member occupied the server while others' Acks waited."""
    stub = delivery_pb2_grpc.RulesAdminStub(members.channel)
    fji = members.token("member", "FJI")
    first = stub.LoadRules.future(delivery_pb2.RuleFile(owner="FJI", yaml="x"), metadata=fji, timeout=WAIT_S * 2)
    wait_until(lambda: members.rules.loading == ["FJI"], "FJI's first load to start")

    for _ in range(3):
        with pytest.raises(grpc.RpcError) as err:
            stub.LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml="x"), metadata=fji, timeout=WAIT_S)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "load in progress" in err.value.details()
    acks = delivery_pb2_grpc.HitDeliveryStub(members.channel)
    for member in ("FJI", "TON"):
        reply = acks.Ack(delivery_pb2.AckRequest(member=member, cursor=3), metadata=members.token("member", member))
        assert reply.next_cursor == 4
    other = stub.LoadRules.future(
        delivery_pb2.RuleFile(owner="TON", yaml="x"), metadata=members.token("member", "TON"), timeout=WAIT_S * 2
    )
    wait_until(lambda: members.rules.loading == ["FJI", "TON"], "TON's load to start beside FJI's")
    members.rules.release.set()
    first.result()
    other.result()


def test_undecodable_subscribe_is_invalid_argument(members, caplog):
    caplog.set_level(logging.DEBUG)
    call = raw_call(members.channel, "/apihub.v1.HitDelivery/Subscribe", False, True)
    with pytest.raises(grpc.RpcError) as err:
        list(call(b"\xff\xff\xff", metadata=members.token("member", "FJI"), timeout=WAIT_S))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "apihub.v1.SubscribeRequest" in err.value.details()
    assert not [r for r in caplog.records if r.name.startswith("grpc") or r.exc_info]


# -- rejections with many errors -----------------------------------------------------------------------------


def violations(n: int, long_text: bool = False) -> list[intake_pb2.FieldViolation]:
    text = "surname is required " * (50 if long_text else 1)
    return [
        intake_pb2.FieldViolation(field=f"travellers[{i}].surname", code="required", description=text, segment="")
        for i in range(n)
    ]


def test_a_rejection_status_stays_small_and_says_how_many_more():
    errors = violations(857, long_text=True)
    receipt = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED, message_ref="R" * 10_000)
    receipt.errors.extend(errors)
    receipt.warnings.extend(violations(4000))
    status = rejection_status("manifest rejected: 857 errors", errors, receipt)

    assert status.ByteSize() <= MAX_STATUS_BYTES
    assert status.message == "manifest rejected: 857 errors"
    bad, answer = error_details_pb2.BadRequest(), intake_pb2.Receipt()
    assert status.details[0].Unpack(bad) and status.details[1].Unpack(answer)
    shown = len(bad.field_violations) - 1
    assert 0 < shown < 857
    assert bad.field_violations[-1].description.startswith(f"... and {857 - shown} more errors")
    assert answer.errors[0].field == "travellers[0].surname"
    assert answer.errors[-1].description == f"... and {857 - (len(answer.errors) - 1)} more errors"
    assert answer.warnings[-1].code == "truncated"


def test_an_interchanges_receipts_are_summed_up_past_the_limit():
    answer = intake_pb2.PaxlstReceipts(status=intake_pb2.RECEIPT_STATUS_REJECTED)
    for n in range(400):
        receipt = answer.receipts.add(status=intake_pb2.RECEIPT_STATUS_REJECTED, message_ref=f"M{n}")
        receipt.errors.extend(violations(12))
    status = rejection_status("every message of the interchange was rejected (4800 errors)", violations(4800), answer)

    assert status.ByteSize() <= MAX_STATUS_BYTES
    fitted = intake_pb2.PaxlstReceipts()
    assert status.details[1].Unpack(fitted)
    assert [r.message_ref for r in fitted.receipts] == [f"M{n}" for n in range(len(fitted.receipts))]
    assert fitted.errors[-1].description == f"... and {400 - len(fitted.receipts)} more messages' receipts"


class Rejecting(intake_pb2_grpc.ManifestIntakeServicer):
    """Rejects everything with this many errors, as intake does (services.api_ingest.status.reject)."""

    def __init__(self, count: int):
        self.count = count

    def SubmitManifest(self, request, context):
        receipt = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED, message_ref=request.message_ref)
        receipt.errors.extend(violations(self.count))
        reject(context, f"manifest rejected: {self.count} errors", receipt.errors, receipt)

    def SubmitPaxlst(self, request, context):
        reply = intake_pb2.PaxlstReceipts(status=intake_pb2.RECEIPT_STATUS_REJECTED)
        for n in range(self.count):
            reply.receipts.add(status=intake_pb2.RECEIPT_STATUS_REJECTED, message_ref=f"M{n}").errors.extend(
                violations(3)
            )
        reject(context, f"every message was rejected ({3 * self.count} errors)", violations(3 * self.count), reply)


@pytest.fixture
def rejecting():
    served = Served(
        unit_settings(), lambda server: intake_pb2_grpc.add_ManifestIntakeServicer_to_server(Rejecting(900), server)
    )
    yield served
    served.close()


def test_a_carrier_gets_its_errors_however_many(rejecting):
    """Was: past about 45 errors the carrier saw "RESOURCE_EXHAUSTED: Stream removed" instead of its errors."""
    token = issue_token(rejecting.settings.auth_secret, "carrier", "FJ")
    [receipt] = client.submit(rejecting.channel, token, [manifest("FJ", "MANY-ERRORS")])
    assert receipt.status == intake_pb2.RECEIPT_STATUS_REJECTED
    assert receipt.errors[0].field == "travellers[0].surname"
    assert receipt.errors[-1].description.startswith("... and ") and "more errors" in receipt.errors[-1].description

    receipts = client.submit_paxlst(rejecting.channel, token, b"UNA:+.? 'UNB+...'")
    assert receipts.receipts and receipts.errors[-1].code == "truncated"


def test_apihub_submit_prints_the_errors_and_how_many_more(rejecting, tmp_path, monkeypatch):
    from google.protobuf import json_format

    from services.cli import app

    path = tmp_path / "manifest.json"
    path.write_text(json_format.MessageToJson(manifest("FJ", "CLI-MANY")))
    monkeypatch.setenv("APIHUB_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    token = issue_token(rejecting.settings.auth_secret, "carrier", "FJ")
    result = CliRunner().invoke(app, ["submit", str(path), "--server", f"127.0.0.1:{rejecting.port}", "--token", token])
    assert result.exit_code == 1, result.output
    assert "REJECTED" in result.output and "travellers[0].surname" in result.output
    assert "more errors" in result.output
    assert "Stream removed" not in result.output


def test_the_status_of_a_rejection_is_readable_by_any_grpc_client(rejecting):
    """A plain channel with gRPC's default metadata limit, as grpcurl or a carrier's own code would use."""
    stub = intake_pb2_grpc.ManifestIntakeStub(rejecting.channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitManifest(manifest("FJ", "RAW"), metadata=rejecting.token("carrier", "FJ"), timeout=WAIT_S)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "manifest rejected: 900 errors"
    assert rpc_status.from_call(err.value).details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)


def test_the_console_is_counted_per_member_it_acts_for_apart_from_the_members_own_tools():
    from datetime import timedelta

    from services.auth import console_token
    from services.limits import caller_of

    settings = unit_settings()

    class Context:
        def invocation_metadata(self):
            return (("authorization", f"Bearer {console_token(settings, timedelta(minutes=5))}"),)

    fji = caller_of(Context(), settings, delivery_pb2.SubscribeRequest(member="fji"))
    assert fji == Caller("console", "FJI")
    assert caller_of(Context(), settings, delivery_pb2.RuleFile(owner="TON")) == Caller("console", "TON")
    limiter = Limiter(small_limits(streams=1))
    assert limiter.admit(fji, stream=True) is None
    assert limiter.admit(fji, stream=True).limit == "streams"
    # The member's own contact point and another member's officers each keep their share.
    assert limiter.admit(Caller("member", "FJI"), stream=True) is None
    assert limiter.admit(Caller("console", "TON"), stream=True) is None
