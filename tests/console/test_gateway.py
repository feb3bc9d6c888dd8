"""The console's gateway to the router (services.console.gateway) against a real member-facing server on the
session's broker: reading a member's hits as reader "console" without taking any from its contact point, the officer
named on views, takes, dispositions and loads, the member-scoped reads (the member's rule file among them), the
console's token renewed before it expires, and the router's refusals as HubErrors carrying its message.

What the router's worker would have written (outbox copies, delivery records) is written straight to the topics, so
no profiling is needed. Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.auth import verify_token
from services.config import HubSettings
from services.console.gateway import (
    ConsoleCredentialError,
    GatewayError,
    HubGateway,
    InvalidRequestError,
    NotFoundError,
    RefusedError,
    RouterBusyError,
    RouterUnavailableError,
    gateway_error,
    router_address,
)
from services.errors import HubError
from services.wire import delivery_pb2
from tests import routerkit

router = routerkit.router
gateway = routerkit.gateway


def _hits(subscription, want: int) -> list[delivery_pb2.Delivery]:
    """The first ``want`` hits of a stream (heartbeats skipped); the router sends a heartbeat while it is idle, so a
    stream that falls short fails on the test's timeout rather than hanging for ever."""
    got = []
    for delivery in subscription:
        if not delivery.heartbeat:
            got.append(delivery)
            if len(got) == want:
                break
    return got


@pytest.mark.integration
def test_the_console_reads_hits_with_its_own_cursor_and_the_contact_point_keeps_them(router, gateway):
    first = router.put_hit("FJI", "h-1", ["watchlist:FJI:FJI-1"])
    second = router.put_hit("FJI", "h-2", ["rule:FJI:FJI-CREW"])

    stream = gateway.subscribe("FJI")
    got = _hits(stream, 2)
    assert [(d.cursor, d.hit.hit_id) for d in got] == [(first, "h-1"), (second, "h-2")]
    assert (stream.lost_hits, stream.start_cursor) == (0, first)
    assert gateway.ack("FJI", second) == second + 1
    stream.cancel()
    assert list(stream) == []  # a cancelled stream just ends

    pending = gateway.outbox_lag("FJI")
    assert (pending["console"], pending[""], pending["cli"]) == (0, 2, 2)  # the contact point's hits are all there
    assert gateway.outbox("FJI").end_cursor == second + 1
    third = router.put_hit("FJI", "h-3", [])
    again = gateway.subscribe("FJI")  # resumes after the console's acknowledged cursor
    assert [d.hit.hit_id for d in _hits(again, 1)] == ["h-3"] and again.start_cursor == third
    again.cancel()


@pytest.mark.integration
def test_views_dispositions_and_loads_name_the_officer_and_the_reads_answer_the_members_own(router, gateway):
    router.put_hit("FJI", "h-1", ["watchlist:FJI:FJI-1", "rule:TON:TON-R"])
    router.put_hit("TON", "h-9", ["rule:TON:TON-R"])
    entries = [
        delivery_pb2.WatchlistEntry(entry_id="FJI-1", surname="SYNTHETIC", given_names="Ana", category="fraud"),
        delivery_pb2.WatchlistEntry(entry_id="FJI-2", surname="EXAMPLE", given_names="Ben"),
    ]
    loaded = gateway.load_watchlist("FJI", "bob", entries, delivery_pb2.WATCHLIST_SCOPE_PRIVATE)
    assert loaded.entries == 2 and not loaded.errors
    rules = gateway.load_rules("FJI", "bob", "owner: FJI\nrules: []\n")
    assert not rules.errors and rules.digest

    assert gateway.watchlist_entries("FJI", query="ben synthetic") == ([], 0)
    found, total = gateway.watchlist_entries("FJI", query="synthetic ana")
    assert ([e.entry_id for e in found], total) == (["FJI-1"], 1)
    page = gateway.watchlist("FJI", limit=1, offset=1)
    assert ([e.entry_id for e in page.entries], page.total, page.scope) == (
        ["FJI-2"],
        2,
        delivery_pb2.WATCHLIST_SCOPE_PRIVATE,
    )

    viewed = gateway.record_view("FJI", "alice", "h-1")
    assert (viewed.event, viewed.user, viewed.hit_id) == ("viewed", "alice", "h-1")
    disposition = gateway.dispose("FJI", "alice", "h-1", delivery_pb2.OUTCOME_TRUE_MATCH, "seen at the gate")
    assert (disposition.user, disposition.member, disposition.note) == ("alice", "FJI", "seen at the gate")

    trail = gateway.audit_trail("FJI")
    assert [(e.event, e.user) for e in trail.events] == [
        ("disposed", "alice"),
        ("viewed", "alice"),
        ("rules-loaded", "bob"),
        ("watchlist-loaded", "bob"),
    ]
    assert trail.next_before is None
    older = gateway.audit_trail("FJI", before_offset=trail.records[1].offset, limit=1)
    assert [e.event for e in older.events] == ["rules-loaded"] and older.next_before == older.records[0].offset

    assert [(d.hit_id, d.user) for d in gateway.dispositions("FJI")] == [("h-1", "alice")]
    assert gateway.dispositions("TON") == []
    [row] = gateway.precision("FJI")  # Tonga's rule on the same hit is Tonga's business
    assert (row.reason, row.confirmed, row.refuted, row.precision) == ("watchlist:FJI:FJI-1", 1, 0, 1.0)


@pytest.mark.integration
def test_the_members_rule_file_and_an_officer_taking_a_hit(router, gateway):
    cursor = router.put_hit("FJI", "h-1", ["rule:FJI:FJI-CREW"])
    router.put_hit("TON", "h-9", [])
    assert gateway.rules("FJI") is None
    assert not gateway.rule_file("FJI").present
    text = "owner: FJI\nrules: []\n"
    loaded = gateway.load_rules("FJI", "bob", text)
    assert gateway.rules("FJI") == text and gateway.rules("TON") is None
    held = gateway.rule_file("FJI")
    assert (held.present, held.yaml, held.digest) == (True, text, loaded.digest)

    taken = gateway.take("FJI", "alice", "h-1", cursor=cursor)
    assert (taken.event, taken.user, taken.hit_id, taken.member) == ("taken", "alice", "h-1", "FJI")
    assert gateway.take("FJI", "carol", "h-1").user == "carol"  # without a cursor: the delivery ledger says
    with pytest.raises(NotFoundError):
        gateway.take("FJI", "alice", "h-9")  # Tonga's hit
    with pytest.raises(RefusedError):
        gateway.take("FJI", "", "h-1")  # a take must name its officer
    assert [(e.event, e.user, e.hit_id) for e in gateway.audit_trail("FJI").events] == [
        ("taken", "carol", "h-1"),
        ("taken", "alice", "h-1"),
        ("rules-loaded", "bob", ""),
    ]


@pytest.mark.integration
def test_the_routers_refusals_are_hub_errors_with_its_message(router, gateway):
    router.put_hit("TON", "h-9", [])
    with pytest.raises(NotFoundError) as err:
        gateway.record_view("FJI", "alice", "h-9")  # Tonga's hit: never Fiji's to see
    assert err.value.http_status == 404 and "h-9" in str(err.value) and "FJI" in str(err.value)
    with pytest.raises(InvalidRequestError) as err:
        gateway.dispose("FJI", "alice", "h-9", delivery_pb2.OUTCOME_UNSPECIFIED)
    assert "outcome must be one of" in str(err.value)
    with pytest.raises(InvalidRequestError):
        gateway.watchlist("FJI", limit=10_000)
    with pytest.raises(RefusedError) as err:
        gateway.record_view("FJI", "", "h-9")  # a view must name its officer
    assert "apihub-user" in str(err.value)
    with pytest.raises(NotFoundError) as err:
        gateway.outbox("USA")
    assert "'USA' is not a member of this hub" in str(err.value)


@pytest.mark.integration
def test_a_console_with_another_key_ring_is_refused_and_says_so(router):
    other = router.gateway(router.settings.model_copy(update={"auth_secret": "another-secret-" * 3}))
    try:
        with pytest.raises(ConsoleCredentialError) as err:
            other.dispositions("FJI")
        assert not err.value.retriable and "signature" in str(err.value)
    finally:
        other.close()


@pytest.mark.integration
def test_the_console_token_is_renewed_before_it_expires(router):
    now = [datetime.now(UTC).timestamp()]
    gateway = router.gateway(lifetime=timedelta(hours=1), clock=lambda: now[0])
    try:
        first = gateway._token_now()
        assert gateway._token_now() == first
        now[0] += 30 * 60  # half the lifetime: still the same token
        assert gateway._token_now() == first
        now[0] += 11 * 60  # less than a third left: a new one
        second = gateway._token_now()
        assert second != first
        assert verify_token(router.settings, second).kind == "console"
        assert gateway.dispositions("FJI") == []  # and the router takes it
    finally:
        gateway.close()


def test_a_router_that_cannot_be_reached_is_unavailable_and_retriable():
    settings = HubSettings(console_router="127.0.0.1:1")
    gateway = HubGateway(settings, timeout_s=5)
    try:
        with pytest.raises(RouterUnavailableError) as err:
            gateway.outbox_lag("FJI")
        assert err.value.retriable and err.value.http_status == 503 and str(err.value)
    finally:
        gateway.close()


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "the router's words"):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize(
    ("code", "kind", "retriable"),
    [
        (grpc.StatusCode.UNAVAILABLE, RouterUnavailableError, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, RouterUnavailableError, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, RouterBusyError, True),
        (grpc.StatusCode.NOT_FOUND, NotFoundError, False),
        (grpc.StatusCode.PERMISSION_DENIED, RefusedError, False),
        (grpc.StatusCode.UNAUTHENTICATED, ConsoleCredentialError, False),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidRequestError, False),
        (grpc.StatusCode.OUT_OF_RANGE, InvalidRequestError, False),
        (grpc.StatusCode.INTERNAL, GatewayError, False),
    ],
)
def test_every_status_becomes_a_hub_error_with_the_routers_message(code, kind, retriable):
    error = gateway_error(_Failed(code))
    assert type(error) is kind and isinstance(error, HubError)
    assert (str(error), error.code, error.retriable) == ("the router's words", code, retriable)


def test_the_router_is_dialled_where_the_settings_say():
    assert router_address(HubSettings(console_router="router:50052")) == "router:50052"
    assert router_address(HubSettings(delivery_listen="0.0.0.0:50052")) == "127.0.0.1:50052"
    assert router_address(HubSettings(delivery_listen="10.0.0.5:6000")) == "10.0.0.5:6000"


def test_a_gateway_given_a_channel_leaves_closing_it_to_its_owner():
    chan = grpc.insecure_channel("127.0.0.1:1")
    gateway = HubGateway(HubSettings(), channel=chan)
    gateway.close()
    gateway.close()
    chan.close()
