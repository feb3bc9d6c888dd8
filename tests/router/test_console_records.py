"""MemberRecords through the real broker and a real gRPC channel: each call answers the member's own records only,
the console may ask for any member, a member only for itself, a carrier for none; the member's current rule file;
views, takes ("I'm on it"), dispositions and loads go to the audit trail with the officer the console names; the
audit trail pages newest first within a bounded scan; a broker outage answers UNAVAILABLE.

The tests write what the router's worker would have written (delivery records, outbox copies) straight to the
topics, so no profiling is needed. Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest

from services.auth import bearer, console_token, issue_token, officer
from services.bus import Topics, ensure_topics, make_consumer, make_producer
from services.config import HubSettings
from services.devkafka import LocalKafka, free_port
from services.directory import Directory, Webhook, load_directory
from services.router.records import AuditReader, BusyError, RecordsGate
from services.wire import delivery_pb2, delivery_pb2_grpc
from tests import routerkit

HOUR = timedelta(hours=1)
RPCS = {
    "ListWatchlist": delivery_pb2.ListWatchlistRequest,
    "AuditTrail": delivery_pb2.AuditTrailRequest,
    "ListDispositions": delivery_pb2.ListDispositionsRequest,
    "Precision": delivery_pb2.PrecisionRequest,
    "OutboxLag": delivery_pb2.OutboxLagRequest,
    "RecordView": delivery_pb2.RecordViewRequest,
    "GetRules": delivery_pb2.GetRulesRequest,
    "RecordTake": delivery_pb2.RecordTakeRequest,
}


def _directory() -> Directory:
    """The demo members, Fiji with a webhook (so its lag has that reader too)."""
    base = load_directory()
    members = dict(base.members)
    members["FJI"] = replace(members["FJI"], webhook=Webhook("https://hooks.fji.example/hits", "FJI_HOOK_SECRET"))
    return Directory(members, base.carriers, base.revoked_tokens)


class Hub(routerkit.LiveRouter):
    """The test's router (a directory where Fiji has a webhook), and gRPC stubs of its services on one channel."""

    def __init__(self, settings: HubSettings):
        super().__init__(settings, _directory())
        self.channel = grpc.insecure_channel(self.address)
        self.records = delivery_pb2_grpc.MemberRecordsStub(self.channel)
        self.delivery = delivery_pb2_grpc.HitDeliveryStub(self.channel)
        self.admin = delivery_pb2_grpc.WatchlistAdminStub(self.channel)
        self.rules = delivery_pb2_grpc.RulesAdminStub(self.channel)

    def console(self, user: str = "") -> list[tuple[str, str]]:
        return bearer(console_token(self.settings, HOUR)) + officer(user)

    def member(self, code: str, user: str = "") -> list[tuple[str, str]]:
        return bearer(issue_token(self.settings, "member", code)) + officer(user)

    def stop(self) -> None:
        self.channel.close()
        super().stop()


@pytest.fixture
def hub(settings):
    running = Hub(settings)
    yield running
    running.stop()


def _entry(entry_id: str, surname: str, given: str = "", category: str = "", document: str = ""):
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id, surname=surname, given_names=given, category=category, document_number=document
    )


def _call(hub: Hub, rpc: str, metadata, **fields):
    return getattr(hub.records, rpc)(RPCS[rpc](**fields), metadata=metadata, timeout=30)


def _trail(hub: Hub, member: str, limit: int = 0) -> list[delivery_pb2.AuditRecord]:
    """The member's whole trail, page by page, newest first."""
    records, before = [], None
    for _ in range(1000):
        request = delivery_pb2.AuditTrailRequest(member=member, limit=limit)
        if before is not None:
            request.before_offset = before
        page = hub.records.AuditTrail(request, metadata=hub.console(), timeout=30)
        records.extend(page.records)
        if not page.HasField("next_before_offset"):
            return records
        before = page.next_before_offset
    raise AssertionError("the trail never ended")


# -- who may call --------------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("rpc", sorted(RPCS))
def test_a_member_is_refused_another_members_records_and_a_carrier_everyones(hub, rpc):
    for metadata in (hub.member("FJI", "a"), bearer(issue_token(hub.settings, "carrier", "FJ")) + officer("a")):
        with pytest.raises(grpc.RpcError) as err:
            _call(hub, rpc, metadata, member="TON")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        _call(hub, rpc, (), member="TON")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.integration
def test_the_console_reads_any_members_records(hub):
    for member in ("FJI", "TON", "WSM"):
        for rpc in ("ListWatchlist", "AuditTrail", "ListDispositions", "Precision", "OutboxLag", "GetRules"):
            _call(hub, rpc, hub.console(), member=member)


# -- watchlist entries ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_watchlist_entries_are_the_members_latest_list_filtered_and_paged(hub):
    first = delivery_pb2.Watchlist(owner="FJI", entries=[_entry("FJI-OLD", "FORMER")])
    hub.admin.LoadWatchlist(first, metadata=hub.console("duty.officer"), timeout=30)
    fiji = delivery_pb2.Watchlist(
        owner="FJI",
        scope=delivery_pb2.WATCHLIST_SCOPE_PRIVATE,
        entries=[
            _entry("FJI-1", "SMITHSON", "Jane", "fraud", "P1234567"),
            _entry("FJI-2", "Nakamura", "Ken", "smuggling"),
            _entry("FJI-3", "Tui", "Mele", "other", "X998877"),
            _entry("FJI-4", "BLACKSMITH", "Sam", "other"),
        ],
    )
    hub.admin.LoadWatchlist(fiji, metadata=hub.console("duty.officer"), timeout=30)
    tonga = delivery_pb2.Watchlist(owner="TON", entries=[_entry("TON-1", "SMITH", "John")])
    hub.admin.LoadWatchlist(tonga, metadata=hub.member("TON"), timeout=30)

    reply = _call(hub, "ListWatchlist", hub.console(), member="FJI")
    assert [e.entry_id for e in reply.entries] == ["FJI-1", "FJI-2", "FJI-3", "FJI-4"]  # the latest list only
    assert (reply.total, reply.list_size, reply.scope) == (4, 4, delivery_pb2.WATCHLIST_SCOPE_PRIVATE)
    assert reply.loaded_at.seconds and all(e.owner == "FJI" for e in reply.entries)

    def ids(query: str, **paging) -> tuple[list[str], int]:
        found = _call(hub, "ListWatchlist", hub.member("FJI"), member="fji", query=query, **paging)
        return [e.entry_id for e in found.entries], found.total

    assert ids("smith") == (["FJI-1", "FJI-4"], 2)  # never Tonga's SMITH
    assert ids("jane smithson") == (["FJI-1"], 1)
    assert ids("SMUGG") == (["FJI-2"], 1)
    assert ids("x9988") == (["FJI-3"], 1)
    assert ids("fji-4") == (["FJI-4"], 1)
    assert ids("nobody") == ([], 0)
    assert ids("", offset=1, limit=2) == (["FJI-2", "FJI-3"], 4)
    assert ids("", offset=9, limit=2) == ([], 4)
    assert [e.entry_id for e in _call(hub, "ListWatchlist", hub.console(), member="TON").entries] == ["TON-1"]
    empty = _call(hub, "ListWatchlist", hub.console(), member="WSM")
    assert (list(empty.entries), empty.total, empty.list_size, empty.HasField("loaded_at")) == ([], 0, 0, False)

    for bad in ({"limit": 501}, {"query": "x" * 101}):
        with pytest.raises(grpc.RpcError) as err:
            _call(hub, "ListWatchlist", hub.console(), member="FJI", **bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- views, dispositions and the audit trail -----------------------------------------------------------------------


@pytest.mark.integration
def test_views_dispositions_and_loads_are_in_the_trail_with_the_officer_newest_first(hub):
    hub.delivered("h-1", ["watchlist:FJI:FJI-1"], "FJI", "TON")
    hub.delivered("h-2", ["rule:TON:TON-R"], "TON")
    hub.admin.LoadWatchlist(
        delivery_pb2.Watchlist(owner="FJI", entries=[_entry("FJI-1", "SYNTHETIC")]),
        metadata=hub.console("duty.officer"),
        timeout=30,
    )
    viewed = hub.records.RecordView(
        delivery_pb2.RecordViewRequest(member="FJI", hit_id="h-1"), metadata=hub.console("analyst.1"), timeout=30
    )
    assert (viewed.event.event, viewed.event.user, viewed.event.hit_id) == ("viewed", "analyst.1", "h-1")
    disposed = hub.delivery.Dispose(
        delivery_pb2.DisposeRequest(member="FJI", hit_id="h-1", outcome=delivery_pb2.OUTCOME_TRUE_MATCH, note="n"),
        metadata=hub.console("analyst.2"),
        timeout=30,
    )
    assert disposed.disposition.user == "analyst.2"
    # Tonga's own tool, naming nobody.
    hub.delivery.Dispose(
        delivery_pb2.DisposeRequest(member="TON", hit_id="h-2", outcome=delivery_pb2.OUTCOME_FALSE_POSITIVE),
        metadata=hub.member("TON"),
        timeout=30,
    )

    refusals = [
        # A hit Fiji never received: not found (no hint that it exists).
        (hub.console("analyst.1"), "h-2", grpc.StatusCode.NOT_FOUND),
        (hub.console("analyst.1"), "h-none", grpc.StatusCode.NOT_FOUND),
        # The console must name the officer who views a traveller.
        (hub.console(), "h-1", grpc.StatusCode.PERMISSION_DENIED),
        (hub.console("Not A Name"), "h-1", grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for metadata, hit_id, code in refusals:
        with pytest.raises(grpc.RpcError) as err:
            hub.records.RecordView(
                delivery_pb2.RecordViewRequest(member="FJI", hit_id=hit_id), metadata=metadata, timeout=30
            )
        assert err.value.code() == code, hit_id
    with pytest.raises(grpc.RpcError) as err:
        hub.delivery.Dispose(
            delivery_pb2.DisposeRequest(member="FJI", hit_id="h-1", outcome=delivery_pb2.OUTCOME_TRUE_MATCH),
            metadata=hub.console(),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    trail = _trail(hub, "FJI")
    assert [(r.event.event, r.event.user, r.event.hit_id) for r in trail] == [
        ("disposed", "analyst.2", "h-1"),
        ("viewed", "analyst.1", "h-1"),
        ("watchlist-loaded", "duty.officer", ""),
    ]
    assert [r.offset for r in trail] == sorted((r.offset for r in trail), reverse=True)
    assert all(r.event.member == "FJI" for r in trail)
    assert _trail(hub, "FJI", limit=1) == trail  # one event a page, chained by next_before_offset
    assert [(r.event.event, r.event.user) for r in _trail(hub, "TON")] == [("disposed", "")]
    assert _trail(hub, "WSM") == []


@pytest.mark.integration
def test_dispositions_are_the_latest_per_hit_and_precision_counts_the_members_own_reasons(hub):
    hub.delivered("h-1", ["rule:TON:TON-R", "watchlist:FJI:FJI-1"], "FJI", "TON")
    hub.delivered("h-2", ["watchlist:FJI:FJI-1"], "FJI")
    hub.delivered("h-3", ["rule:FJI:FJI-CREW"], "FJI")

    def dispose(member: str, hit_id: str, outcome: int, user: str = "analyst.1") -> None:
        request = delivery_pb2.DisposeRequest(member=member, hit_id=hit_id, outcome=outcome)
        hub.delivery.Dispose(request, metadata=hub.console(user), timeout=30)

    dispose("FJI", "h-1", delivery_pb2.OUTCOME_FALSE_POSITIVE)
    dispose("FJI", "h-2", delivery_pb2.OUTCOME_FALSE_POSITIVE)
    dispose("FJI", "h-3", delivery_pb2.OUTCOME_DENIED_BOARDING)
    dispose("FJI", "h-1", delivery_pb2.OUTCOME_TRUE_MATCH, user="analyst.2")  # revised: the latest counts
    dispose("TON", "h-1", delivery_pb2.OUTCOME_FALSE_POSITIVE)  # Tonga's, not Fiji's

    listed = _call(hub, "ListDispositions", hub.console(), member="FJI")
    assert listed.total == 3
    assert [(d.hit_id, d.outcome, d.user) for d in listed.dispositions] == [
        ("h-1", delivery_pb2.OUTCOME_TRUE_MATCH, "analyst.2"),
        ("h-3", delivery_pb2.OUTCOME_DENIED_BOARDING, "analyst.1"),
        ("h-2", delivery_pb2.OUTCOME_FALSE_POSITIVE, "analyst.1"),
    ]
    assert [d.hit_id for d in _call(hub, "ListDispositions", hub.console(), member="FJI", limit=1).dispositions] == [
        "h-1"
    ]
    assert [d.member for d in _call(hub, "ListDispositions", hub.member("TON"), member="TON").dispositions] == ["TON"]

    precision = _call(hub, "Precision", hub.member("FJI"), member="FJI")
    assert [(r.reason, r.confirmed, r.refuted) for r in precision.reasons] == [
        ("watchlist:FJI:FJI-1", 1, 1),
        ("rule:FJI:FJI-CREW", 1, 0),
    ]  # Tonga's rule is not Fiji's to see
    tonga = _call(hub, "Precision", hub.console(), member="TON")
    assert [(r.reason, r.confirmed, r.refuted) for r in tonga.reasons] == [("rule:TON:TON-R", 0, 1)]


@pytest.mark.integration
def test_a_view_of_a_hit_of_a_closed_flight_is_checked_against_the_members_outbox(hub):
    # Departed long ago: the router's delivery ledger no longer holds the flight (APIHUB_FLIGHT_STATE_DAYS).
    days = hub.settings.flight_state_days + 5
    hub.delivered("h-old", ["rule:FJI:FJI-CREW"], "FJI", days_ago=days)
    hub.delivered("h-ton", ["rule:TON:TON-R"], "TON", days_ago=days)
    cursor = hub.outbox("FJI", "h-old")
    other = hub.outbox("FJI", "h-other")
    tonga = hub.outbox("TON", "h-ton")

    def view(hit_id: str, at: int | None = None) -> delivery_pb2.RecordViewResponse:
        request = delivery_pb2.RecordViewRequest(member="FJI", hit_id=hit_id)
        if at is not None:
            request.cursor = at
        return hub.records.RecordView(request, metadata=hub.console("analyst.1"), timeout=30)

    for hit_id, at in (("h-old", None), ("h-old", other), ("h-old", 999), ("h-ton", tonga), ("h-ton", cursor)):
        with pytest.raises(grpc.RpcError) as err:
            view(hit_id, at)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, (hit_id, at)
    assert view("h-old", cursor).event.hit_id == "h-old"
    assert [(r.event.event, r.event.hit_id) for r in _trail(hub, "FJI")] == [("viewed", "h-old")]


@pytest.mark.integration
def test_taking_a_hit_is_in_the_trail_with_the_officer_and_checked_as_a_view_is(hub):
    hub.delivered("h-1", ["watchlist:FJI:FJI-1"], "FJI")
    hub.delivered("h-2", ["rule:TON:TON-R"], "TON")
    days = hub.settings.flight_state_days + 5
    hub.delivered("h-old", ["rule:FJI:FJI-CREW"], "FJI", days_ago=days)
    old_cursor = hub.outbox("FJI", "h-old")

    def take(hit_id: str, metadata, at: int | None = None, member: str = "FJI") -> delivery_pb2.RecordTakeResponse:
        request = delivery_pb2.RecordTakeRequest(member=member, hit_id=hit_id)
        if at is not None:
            request.cursor = at
        return hub.records.RecordTake(request, metadata=metadata, timeout=30)

    taken = take("h-1", hub.console("analyst.1"))
    assert (taken.event.event, taken.event.member, taken.event.hit_id, taken.event.user) == (
        "taken",
        "FJI",
        "h-1",
        "analyst.1",
    )
    assert taken.event.at.seconds
    # A closed flight's hit, at the cursor where Fiji received it; a member's own tool may take its hits too.
    assert take("h-old", hub.console("analyst.2"), at=old_cursor).event.hit_id == "h-old"
    assert take("h-1", hub.member("FJI")).event.user == ""

    refusals = [
        ("h-2", hub.console("analyst.1"), None, grpc.StatusCode.NOT_FOUND),  # Tonga's hit: no hint that it exists
        ("h-none", hub.console("analyst.1"), None, grpc.StatusCode.NOT_FOUND),
        ("h-old", hub.console("analyst.1"), None, grpc.StatusCode.NOT_FOUND),  # closed flight, no cursor
        ("h-1", hub.console(), None, grpc.StatusCode.PERMISSION_DENIED),  # the console must name the officer
        ("h-1", hub.console("Not A Name"), None, grpc.StatusCode.INVALID_ARGUMENT),
        ("", hub.console("analyst.1"), None, grpc.StatusCode.INVALID_ARGUMENT),
        ("h" * 257, hub.console("analyst.1"), None, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for hit_id, metadata, at, code in refusals:
        with pytest.raises(grpc.RpcError) as err:
            take(hit_id, metadata, at)
        assert err.value.code() == code, hit_id[:10]
    with pytest.raises(grpc.RpcError) as err:
        take("h-2", hub.member("FJI"), member="TON")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    assert [(r.event.event, r.event.user, r.event.hit_id) for r in _trail(hub, "FJI")] == [
        ("taken", "", "h-1"),
        ("taken", "analyst.2", "h-old"),
        ("taken", "analyst.1", "h-1"),
    ]
    assert _trail(hub, "TON") == []


# -- the rule file ---------------------------------------------------------------------------------------------


RULES = """owner: {owner}
rules:
  - id: {owner}-CREW
    description: Every crew member ({n}).
    category: test
    score: 0.2
    when:
      role: crew
"""


def _rules(hub: Hub, member: str, metadata=None) -> delivery_pb2.GetRulesResponse:
    return _call(hub, "GetRules", metadata or hub.console(), member=member)


@pytest.mark.integration
def test_the_rule_file_is_the_members_latest_load_with_its_digest(hub):
    empty = _rules(hub, "FJI")
    assert (empty.present, empty.yaml, empty.digest) == (False, "", "")

    first = RULES.format(owner="FJI", n="first, with é")
    loaded = hub.rules.LoadRules(
        delivery_pb2.RuleFile(owner="FJI", yaml=first), metadata=hub.console("duty.officer"), timeout=30
    )
    assert loaded.digest and not loaded.errors
    got = _rules(hub, "FJI")  # answered as of the call: the load the broker acknowledged is there
    assert (got.present, got.yaml, got.digest) == (True, first, loaded.digest)

    second = RULES.format(owner="FJI", n="second")
    again = hub.rules.LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml=second), metadata=hub.member("FJI"), timeout=30)
    tonga = RULES.format(owner="TON", n="Tonga")
    hub.rules.LoadRules(delivery_pb2.RuleFile(owner="TON", yaml=tonga), metadata=hub.console("sione"), timeout=30)
    mine = _rules(hub, "fji", hub.member("FJI"))  # the member's own tool, for itself
    assert (mine.yaml, mine.digest) == (second, again.digest) and again.digest != loaded.digest
    assert _rules(hub, "TON").yaml == tonga and "FJI" not in _rules(hub, "TON").yaml
    assert not _rules(hub, "WSM").present

    hub.tombstone(hub.topics.rules, "TON")  # the file removed (compaction's tombstone)
    gone = _rules(hub, "TON")
    assert (gone.present, gone.yaml, gone.digest) == (False, "", "")
    assert _rules(hub, "FJI").yaml == second
    # A read is not an officer's act: nothing of it goes to the trail.
    assert [r.event.event for r in _trail(hub, "FJI")] == ["rules-loaded", "rules-loaded"]


def test_the_digest_is_the_rule_languages():
    from services.router.records import rules_digest
    from services.rules.language import parse_ruleset

    text = RULES.format(owner="FJI", n="naïve")
    assert rules_digest(text.encode()) == parse_ruleset(text, "rules", "FJI").digest


# -- outbox lag ----------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_outbox_lag_is_counted_per_reader(hub):
    for i in range(3):
        hub.outbox("FJI", f"h-{i}")
    # The console's reader acknowledges the first two hits; the contact point nothing yet.
    hub.delivery.Ack(delivery_pb2.AckRequest(member="FJI", cursor=1, reader="console"), metadata=hub.console())
    lag = _call(hub, "OutboxLag", hub.console(), member="FJI")
    assert (lag.oldest_cursor, lag.end_cursor) == (0, 3)
    by_reader = {r.reader: r for r in lag.readers}
    assert set(by_reader) == {"", "cli", "console", "webhook"}
    assert (by_reader["console"].pending, by_reader["console"].next_cursor) == (1, 2)
    assert (by_reader[""].pending, by_reader[""].HasField("next_cursor")) == (3, False)
    assert by_reader["webhook"].webhook and by_reader["webhook"].pending == 3
    tonga = _call(hub, "OutboxLag", hub.member("TON"), member="TON")
    assert {r.reader for r in tonga.readers} == {"", "cli", "console"}  # no webhook
    assert all(r.pending == 0 for r in tonga.readers)


# -- the bounded scan of the trail ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_trail_page_reads_a_bounded_stretch_and_the_next_page_goes_on_from_there(settings):
    ensure_topics(settings, [])
    topic = Topics(settings.topic_prefix).audit
    producer = make_producer(settings, "test-trail")
    mine = []
    for i in range(60):
        member = "FJI" if i % 20 == 0 else "TON"  # three of Fiji's events among Tonga's
        event = delivery_pb2.AuditEvent(event="enqueued", member=member, hit_id=f"h-{i}")
        sent = producer.send(topic, key=member.encode(), value=event.SerializeToString()).get(timeout=30)
        if member == "FJI":
            mine.append(sent.offset)
    producer.close(timeout=5)
    reader = AuditReader(topic, lambda: make_consumer(settings, None, "test-trail"), scan_max=25, stretch=10)
    try:
        far = time.monotonic() + 60
        first = reader.page("FJI", None, 10, far)
        # 25 records read (60 -> 35): Fiji's event at offset 40 found; the page says where to go on.
        assert [r.offset for r in first.records] == [40] and first.next_before == 35
        second = reader.page("FJI", first.next_before, 10, far)
        assert [r.offset for r in second.records] == [20] and second.next_before == 10
        third = reader.page("FJI", second.next_before, 10, far)
        assert [r.offset for r in third.records] == [0] and third.next_before is None
        assert sorted(mine, reverse=True) == [40, 20, 0]
        # A page full before the scan ends starts the next one just below its oldest event.
        full = reader.page("TON", None, 5, far)
        assert [r.offset for r in full.records] == [59, 58, 57, 56, 55] and full.next_before == 55
    finally:
        reader.close()


# -- a broker outage -----------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_broker_outage_answers_unavailable(tmp_path):
    broker = LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="512m").start()
    settings = HubSettings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix="records-outage",
        delivery_listen="127.0.0.1:0",
        router_metrics_port=-1,
    )
    try:
        hub = Hub(settings)
        try:
            # Precision's reader is made by the call during the outage; the others' while the broker is up.
            takes_hit = ("RecordView", "RecordTake")
            for rpc in ("ListWatchlist", "AuditTrail", "OutboxLag", "RecordView", "GetRules"):
                try:
                    _call(hub, rpc, hub.console("a"), member="FJI", **({"hit_id": "h-1"} if rpc in takes_hit else {}))
                except grpc.RpcError as exc:
                    assert rpc == "RecordView" and exc.code() == grpc.StatusCode.NOT_FOUND
            broker.stop()
            codes: dict[str, grpc.StatusCode] = {}

            def ask(rpc: str, member: str) -> None:
                fields = {"hit_id": "h-1"} if rpc in takes_hit else {}
                try:
                    _call(hub, rpc, hub.console("a"), member=member, **fields)
                except grpc.RpcError as exc:
                    codes[rpc] = exc.code()

            calls = {
                "ListWatchlist": "FJI",
                "AuditTrail": "TON",
                "OutboxLag": "WSM",
                "Precision": "VUT",
                "RecordView": "NCL",
                "GetRules": "SLB",
                "RecordTake": "COK",
            }
            threads = [threading.Thread(target=ask, args=call) for call in calls.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert codes == dict.fromkeys(calls, grpc.StatusCode.UNAVAILABLE)
        finally:
            hub.stop()
    finally:
        broker.stop()


def test_the_gate_bounds_each_members_calls_and_all_together():
    gate = RecordsGate(per_member=2, total=3)
    with gate.admit("FJI"), gate.admit("FJI"):
        with pytest.raises(BusyError, match="FJI already has 2"), gate.admit("FJI"):
            pass
        with gate.admit("TON"), pytest.raises(BusyError, match="other members"), gate.admit("WSM"):
            pass
        with gate.admit("WSM"):  # Tonga's call is over: a slot again
            pass
    with gate.admit("FJI"), gate.admit("FJI"), gate.admit("TON"):  # every slot came back
        pass
