"""RulesAdmin: hostile rule files refused INVALID_ARGUMENT with their line (over a real gRPC channel too, without a
traceback in the log), oversized files refused before any parsing, and parsing bounded per member and in all."""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
import pytest

import services.router.admin as admin_module
from services import client
from services.auth import bearer, issue_token
from services.bus import Topics
from services.config import HubSettings
from services.directory import load_directory
from services.router.admin import ParseGate, RulesAdminServicer
from services.wire import delivery_pb2, delivery_pb2_grpc

VALID = "owner: FJI\nrules:\n  - id: R1\n    description: d\n    category: test\n    score: 0.5\n    when: {age: 1}\n"
HOSTILE = {
    "nested 5,000 deep": ("owner: FJI\nrules: " + "[" * 5000 + "]" * 5000, "line 2: nested deeper than 32 levels"),
    "NUL": (VALID.replace("category: test", "category: te\x00st"), "line 5: NUL character U+0000 at column 17"),
    "python tag": ("owner: FJI\nrules: !!python/name:os.system ''\n", "line 2: YAML tag '!!python/name:os.system'"),
    "4 MB": (VALID + "#" * (4 * 1024 * 1024) + "\n", "line 1: rule file larger than 256 KiB"),
}


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    """The slice of grpc.ServicerContext that RulesAdmin uses; abort raises as the real one does."""

    def __init__(self, member: str, settings: HubSettings):
        self._metadata = tuple(bearer(issue_token(settings, "member", member)))

    def invocation_metadata(self):
        return self._metadata

    def abort(self, code, details):
        raise Aborted(code, details)


class Future:
    def get(self, timeout=None):
        return object()


class Producer:
    def __init__(self):
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))
        return Future()

    def close(self, timeout=None):
        pass


@pytest.fixture
def settings() -> HubSettings:
    return HubSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix="unit")


def _servicer(settings, producer, gate=None):
    return RulesAdminServicer(settings, load_directory(), producer_factory=lambda: producer, parse_gate=gate)


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_rule_files_are_refused_invalid_argument_naming_line_and_stored_nowhere(settings, case):
    text, expected = HOSTILE[case]
    producer = Producer()
    with pytest.raises(Aborted) as caught:
        _servicer(settings, producer).LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml=text), Context("FJI", settings))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details.startswith(f"rules of FJI: {expected}")
    assert len(caught.value.details) < 300
    assert producer.sent == []


def test_rules_that_do_not_validate_still_come_back_as_errors_and_valid_ones_are_stored(settings):
    producer = Producer()
    svc = _servicer(settings, producer)
    ctx = Context("FJI", settings)
    reply = svc.LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml=VALID.replace("age: 1", "agee: 1")), ctx)
    assert [e.field for e in reply.errors] == ["line 7"] and "unknown field 'agee'" in reply.errors[0].description
    assert producer.sent == []
    reply = svc.LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml=VALID), ctx)
    assert (reply.rules, list(reply.errors)) == (1, [])
    assert producer.sent == [(Topics("unit").rules, b"FJI", VALID.encode())]


def test_an_oversized_file_never_takes_a_parse_slot(settings, monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("an oversized file must not be parsed")

    monkeypatch.setattr(admin_module, "parse_ruleset", no_parsing)
    gate = ParseGate(1, wait_s=0)
    # The server's only slot is taken: the size is still answered, not RESOURCE_EXHAUSTED.
    with gate.admit("WSM"), pytest.raises(Aborted) as caught:
        _servicer(settings, Producer(), gate).LoadRules(
            delivery_pb2.RuleFile(owner="FJI", yaml=HOSTILE["4 MB"][0]), Context("FJI", settings)
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_one_parse_per_member_at_a_time_and_a_bounded_number_in_all(settings, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real_parse = admin_module.parse_ruleset

    def slow_parse(text, source, member, limits):
        if member == "FJI":
            entered.set()
            assert release.wait(30)
        return real_parse(text, source, member, limits)

    monkeypatch.setattr(admin_module, "parse_ruleset", slow_parse)
    gate = ParseGate(2, wait_s=0)
    svc = _servicer(settings, Producer(), gate)

    def load(member: str):
        request = delivery_pb2.RuleFile(owner=member, yaml=VALID.replace("FJI", member))
        return svc.LoadRules(request, Context(member, settings))

    with futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(load, "FJI")
        assert entered.wait(30)
        with pytest.raises(Aborted) as same_member:
            load("FJI")
        assert same_member.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "a rule file of FJI is already being checked" in same_member.value.details
        assert load("TON").rules == 1  # another member is served meanwhile (a second slot is free)
        with gate.admit("WSM"), pytest.raises(Aborted) as full:  # both slots busy: any other member is refused
            load("TON")
        assert full.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "other members' rule files" in full.value.details
        release.set()
        assert first.result(30).rules == 1
    assert load("FJI").rules == 1  # the member's slot is free again once its answer is out


def test_over_grpc_a_deep_file_is_invalid_argument_without_a_traceback_in_the_log(settings, caplog):
    # Messages up to 16 MiB, as the hub's servers take them (APIHUB_MAX_MESSAGE_BYTES): the 4 MB file reaches LoadRules.
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.max_receive_message_length", 16 << 20)])
    svc = _servicer(settings, Producer())
    delivery_pb2_grpc.add_RulesAdminServicer_to_server(svc, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    caplog.set_level(logging.DEBUG)
    try:
        with client.channel(f"127.0.0.1:{port}") as chan:
            token = issue_token(settings, "member", "FJI")
            for text, expected in HOSTILE.values():
                with pytest.raises(grpc.RpcError) as caught:
                    client.load_rules(chan, token, "FJI", text)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert expected in caught.value.details()
    finally:
        server.stop(None)
    assert "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)
