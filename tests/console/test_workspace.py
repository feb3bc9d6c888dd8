"""The console's workspace: the store of hits it read (de-duplication, versions, withdrawals, dispositions, takes,
filters, retention, live ticks) and its readers (store then acknowledge, resume from their own cursor)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest

from services.console.workspace import POLL_LIMIT, Filters, MemberReader, Readers, Workspace
from services.errors import HubError
from services.follow import Backoff
from services.wire import delivery_pb2, hit_pb2, manifest_pb2
from tests.console.conftest import make_console, user_table

T0 = datetime(2025, 3, 1, 22, 30, tzinfo=UTC).timestamp()


def make_hit(
    hit_id: str = "h-000000000000000000000001",
    member: str = "FJI",
    version: int = 1,
    withdrawn: bool = False,
    carrier: str = "FJ",
    number: str = "911",
    departure: float = T0,
    reasons: list[hit_pb2.Reason] | None = None,
    surname: str = "TALEMAITOGA",
    for_review: bool = False,
) -> hit_pb2.Hit:
    hit = hit_pb2.Hit(hit_id=hit_id, recipient=member, version=version, for_review=for_review)
    hit.flight.carrier, hit.flight.number = carrier, number
    hit.flight.departure.FromSeconds(int(departure))
    hit.flight.route.extend(["NAN", "TBU"])
    hit.flight.origin, hit.flight.destination = "NAN", "TBU"
    hit.raised_at.FromSeconds(int(T0) - 3600)
    if withdrawn:
        hit.state = hit_pb2.HIT_STATE_WITHDRAWN
        hit.traveller.passenger_ref = "P1"
        return hit
    hit.state = hit_pb2.HIT_STATE_ACTIVE
    hit.traveller.CopyFrom(
        manifest_pb2.Traveller(
            role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
            surname=surname,
            given_names="Mere",
            nationality="FJI",
            passenger_ref="P1",
            documents=[manifest_pb2.Document(type=manifest_pb2.DOCUMENT_TYPE_PASSPORT, number="FJ1234567")],
        )
    )
    if reasons is None:
        reasons = [
            hit_pb2.Reason(
                source=hit_pb2.REASON_SOURCE_WATCHLIST,
                id="FJI-WL-0007",
                score=0.93,
                explanation="name and date of birth match",
                owner="FJI",
                category="Narcotics",
                band=hit_pb2.SCREENING_BAND_ALERT,
            )
        ]
    hit.reasons.extend(reasons)
    hit.score = max((r.score for r in reasons), default=0.0)
    return hit


def delivery(cursor: int, hit: hit_pb2.Hit) -> delivery_pb2.Delivery:
    return delivery_pb2.Delivery(cursor=cursor, hit=hit)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeGateway:
    """The gateway's interface (services.console.gateway.HubGateway) in memory: scripted Subscribe streams, and a
    record of every call."""

    def __init__(self, streams: list[list] | None = None) -> None:
        self.streams = list(streams or [])
        self.subscribed: list[tuple[str, int | None]] = []
        self.acked: list[tuple[str, int]] = []
        self.disposed: list[tuple] = []
        self.viewed: list[tuple[str, str, str]] = []
        self.taken: list[tuple[str, str, str, int | None]] = []
        self.recorded: list[delivery_pb2.Disposition] = []
        self.polled: list[tuple[str, int]] = []

    def subscribe(self, member, cursor):
        self.subscribed.append((member, cursor))
        script = self.streams.pop(0) if self.streams else []

        def stream():
            for item in script:
                if isinstance(item, BaseException):
                    raise item
                yield item

        return stream()

    def ack(self, member, cursor):
        self.acked.append((member, cursor))

    def dispose(self, member, user, hit_id, outcome, note):
        self.disposed.append((member, user, hit_id, outcome, note))
        disposition = delivery_pb2.Disposition(hit_id=hit_id, member=member, outcome=outcome, note=note, user=user)
        disposition.at.GetCurrentTime()
        return disposition

    def dispositions(self, member, limit=0):
        self.polled.append((member, limit))
        return [d for d in self.recorded if d.member == member][: limit or None]

    def record_view(self, member, user, hit_id, cursor=None):
        self.viewed.append((member, user, hit_id))

    def take(self, member, user, hit_id, cursor=None):
        self.taken.append((member, user, hit_id, cursor))
        event = delivery_pb2.AuditEvent(event="taken", member=member, hit_id=hit_id, user=user)
        event.at.GetCurrentTime()
        return event


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workspace(tmp_path, clock):
    ws = Workspace(tmp_path / "console.sqlite", retention_days=30, clock=clock)
    yield ws
    ws.close()


def test_a_version_is_stored_once_and_the_greatest_is_current(workspace):
    assert workspace.store("FJI", delivery(0, make_hit(version=5))) == "new"
    assert workspace.store("FJI", delivery(3, make_hit(version=5))) is None  # delivered again: the same version
    assert workspace.store("FJI", delivery(4, make_hit(version=9, surname="TALEMAITOGA-SMITH"))) == "updated"
    assert workspace.store("FJI", delivery(5, make_hit(version=7))) == "history"  # late, out of order
    record = workspace.hit("FJI", "h-000000000000000000000001")
    assert record.current.version == 9 and record.row.version == 9
    assert record.shown.hit.traveller.surname == "TALEMAITOGA-SMITH"
    assert [v.version for v in record.earlier] == [7, 5]
    assert workspace.page("FJI", Filters(), "UTC").total == 1
    assert workspace.cursor("FJI") == 6


def test_a_heartbeat_stores_nothing_and_a_member_without_reads_has_no_cursor(workspace):
    assert workspace.store("FJI", delivery_pb2.Delivery(heartbeat=True)) is None
    assert workspace.cursor("FJI") is None


def test_a_withdrawal_keeps_what_the_hit_was_and_shows_its_last_traveller(workspace):
    workspace.store("FJI", delivery(0, make_hit(version=1)))
    assert workspace.store("FJI", delivery(1, make_hit(version=2, withdrawn=True))) == "updated"
    row = workspace.row("FJI", "h-000000000000000000000001")
    assert row.state == "withdrawn" and row.withdrawn
    assert row.sources == ("watchlist",) and row.categories == ("narcotics",) and row.score == pytest.approx(0.93)
    record = workspace.hit("FJI", row.hit_id)
    assert record.current.withdrawn and not record.shown.withdrawn
    assert record.shown.hit.traveller.surname == "TALEMAITOGA"


def test_a_hits_state_comes_from_takes_dispositions_and_withdrawals(workspace):
    hit_id = "h-000000000000000000000001"
    workspace.store("FJI", delivery(0, make_hit(hit_id)))
    assert workspace.row("FJI", hit_id).state == "new"
    assert workspace.take("FJI", hit_id, "alice")
    assert workspace.row("FJI", hit_id).state == "in-progress"
    assert workspace.row("FJI", hit_id).taken_by == "alice"
    first = delivery_pb2.Disposition(hit_id=hit_id, member="FJI", outcome=delivery_pb2.OUTCOME_FALSE_POSITIVE)
    first.at.FromSeconds(int(T0))
    revised = delivery_pb2.Disposition(
        hit_id=hit_id, member="FJI", outcome=delivery_pb2.OUTCOME_TRUE_MATCH, user="bob", note="seen at the gate"
    )
    revised.at.FromSeconds(int(T0) + 60)
    assert workspace.record_dispositions("FJI", [revised, first]) == 1  # the older one does not replace it
    assert workspace.record_dispositions("FJI", [revised]) == 0  # seen before
    row = workspace.row("FJI", hit_id)
    assert (row.state, row.outcome, row.disposed_by, row.note) == ("closed", "true_match", "bob", "seen at the gate")
    assert [d.outcome for d in workspace.hit("FJI", hit_id).dispositions] == ["true_match", "false_positive"]
    workspace.store("FJI", delivery(1, make_hit(hit_id, version=2, withdrawn=True)))
    assert workspace.row("FJI", hit_id).state == "withdrawn"


def test_a_member_sees_only_its_own_hits(workspace):
    workspace.store("FJI", delivery(0, make_hit("h-fji")))
    workspace.store("TON", delivery(0, make_hit("h-ton", member="TON")))
    assert workspace.hit("FJI", "h-ton") is None and workspace.row("FJI", "h-ton") is None
    assert not workspace.take("FJI", "h-ton", "alice")
    assert [r.hit_id for r in workspace.page("FJI", Filters(), "UTC").rows] == ["h-fji"]
    assert [r.hit_id for r in workspace.export("TON", Filters(), "UTC")] == ["h-ton"]


def test_the_queue_filters_and_pages_newest_first(workspace):
    rule = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_RULE, id="FJI-CREW", score=0.4, category="crew", owner="FJI")
    model = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_MODEL, id="m1", score=0.08, category="review")
    workspace.store("FJI", delivery(0, make_hit("h-1")))  # FJ911, watchlist, alert
    workspace.store("FJI", delivery(1, make_hit("h-2", carrier="NF", number="12", reasons=[rule])))
    workspace.store("FJI", delivery(2, make_hit("h-3", reasons=[model], for_review=True, departure=T0 + 86400)))
    workspace.store("FJI", delivery(3, make_hit("h-4", version=1)))
    workspace.store("FJI", delivery(4, make_hit("h-4", version=2, withdrawn=True)))
    workspace.take("FJI", "h-2", "alice")

    def ids(**values) -> list[str]:
        filters, wrong = Filters.parse(values)
        assert not wrong
        return [r.hit_id for r in workspace.page("FJI", filters, "Pacific/Fiji").rows]

    assert ids() == ["h-4", "h-3", "h-2", "h-1"]
    assert ids(flight="fj 911") == ["h-4", "h-3", "h-1"]
    assert ids(flight="NF") == ["h-2"]
    assert ids(source="rule") == ["h-2"]
    assert ids(source="model") == ["h-3"]
    assert ids(category="Narcotics") == ["h-4", "h-1"]
    assert ids(band="review") == ["h-3"]
    assert ids(state="in-progress") == ["h-2"]
    assert ids(state="withdrawn") == ["h-4"]
    assert ids(state="new") == ["h-3", "h-1"]
    # 22:30 UTC on 1 March is 2 March in Fiji (UTC+12).
    assert ids(date="2025-03-02") == ["h-4", "h-2", "h-1"]
    assert ids(date="2025-03-03") == ["h-3"]
    page = workspace.page("FJI", Filters(), "UTC", offset=1, limit=2)
    assert [r.hit_id for r in page.rows] == ["h-3", "h-2"] and page.total == 4


def test_filters_that_are_not_understood_are_named_and_ignored():
    filters, wrong = Filters.parse({"flight": "FJ;911", "date": "tomorrow", "source": "crystal ball", "state": "x"})
    assert filters == Filters() and sorted(wrong) == ["date", "flight", "source", "state"]
    assert Filters.parse({"date": "2025-03-02", "band": "alert"})[0].as_query() == {
        "date": "2025-03-02",
        "band": "alert",
    }
    assert Filters.parse({"date": "2025-03-02"})[0].day == date(2025, 3, 2)


def test_what_is_past_the_retention_is_deleted(workspace, clock):
    workspace.store("FJI", delivery(0, make_hit("h-old")))
    clock.now += 20 * 86400
    workspace.store("FJI", delivery(1, make_hit("h-new")))
    clock.now += 11 * 86400
    assert workspace.expire() == 1
    assert workspace.hit("FJI", "h-old") is None and workspace.hit("FJI", "h-new") is not None
    assert workspace.cursor("FJI") == 2  # the reader still resumes after what it read


def test_every_change_of_a_row_takes_the_next_tick_and_is_published(tmp_path):
    published: list[tuple[str, int]] = []
    ws = Workspace(tmp_path / "w.sqlite", 30, on_change=lambda member, tick: published.append((member, tick)))
    try:
        ws.store("FJI", delivery(0, make_hit("h-1")))
        ws.store("FJI", delivery(1, make_hit("h-1")))  # again: no change
        ws.store("TON", delivery(0, make_hit("h-2", member="TON")))
        ws.take("FJI", "h-1", "alice")
        assert published == [("FJI", 1), ("TON", 2), ("FJI", 3)]
        changes = ws.changes("FJI", 0, Filters(state="new"), "UTC")
        assert [(c.row.hit_id, c.row.seq, c.row.changed, c.matches) for c in changes] == [("h-1", 1, 3, False)]
        assert ws.changes("FJI", 3, Filters(), "UTC") == []
    finally:
        ws.close()
    reopened = Workspace(tmp_path / "w.sqlite", 30)  # ticks go on after a restart
    try:
        reopened.store("FJI", delivery(2, make_hit("h-3")))
        assert reopened.row("FJI", "h-3").seq == 4
    finally:
        reopened.close()


def test_a_damaged_file_is_set_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "console.sqlite"
    path.write_bytes(b"this is not a database, it is a note someone saved here" * 100)
    ws = Workspace(path, 30)
    try:
        assert ws.cursor("FJI") is None
        ws.store("FJI", delivery(0, make_hit("h-1")))
        assert ws.row("FJI", "h-1") is not None
    finally:
        ws.close()
    assert [p.name.split("-")[0] for p in tmp_path.glob("console.sqlite.damaged-*")] == ["console.sqlite.damaged"]


# -- readers ---------------------------------------------------------------------------------------------------------


def test_a_reader_stores_then_acknowledges_and_resumes_from_its_own_cursor_after_a_reconnect(workspace):
    heartbeat = delivery_pb2.Delivery(heartbeat=True)
    gateway = FakeGateway(
        [
            [delivery(0, make_hit("h-1")), heartbeat, delivery(1, make_hit("h-2")), HubError("connection lost")],
            # The router delivers h-2 again (it was not acknowledged), then a new one, then ends the stream.
            [delivery(1, make_hit("h-2")), heartbeat, delivery(2, make_hit("h-3"))],
        ]
    )
    reader = MemberReader("FJI", gateway, workspace, threading.Event())
    with pytest.raises(HubError):
        reader.read_once()
    assert workspace.cursor("FJI") == 2  # stored h-2, whose acknowledgement the failure cut off
    assert gateway.acked == [("FJI", 0)]  # at the heartbeat: the stream was idle
    assert reader.read_once() == "the hub ended the stream"
    assert gateway.subscribed == [("FJI", 0), ("FJI", 2)]  # from the oldest kept, then from its own cursor
    assert gateway.acked == [("FJI", 0), ("FJI", 1), ("FJI", 2)]  # at the heartbeat, and at the stream's end
    assert [r.hit_id for r in workspace.page("FJI", Filters(), "UTC").rows] == ["h-3", "h-2", "h-1"]
    assert [v.version for v in workspace.hit("FJI", "h-2").earlier] == []  # stored once


def test_a_reader_catching_up_acknowledges_every_so_many_versions(workspace):
    from services.console.workspace import ACK_EVERY

    backlog = [delivery(n, make_hit(f"h-{n}")) for n in range(ACK_EVERY + 5)]
    gateway = FakeGateway([backlog])
    MemberReader("FJI", gateway, workspace, threading.Event()).read_once()
    assert gateway.acked == [("FJI", ACK_EVERY - 1), ("FJI", ACK_EVERY + 4)]
    assert workspace.page("FJI", Filters(), "UTC").total == ACK_EVERY + 5


def test_a_reader_that_cannot_store_does_not_acknowledge(workspace):
    def broken(member, delivery):
        raise OSError("disk full")

    workspace.store = broken
    gateway = FakeGateway([[delivery(0, make_hit("h-1"))]])
    with pytest.raises(OSError):
        MemberReader("FJI", gateway, workspace, threading.Event()).read_once()
    assert gateway.acked == []


def test_a_reader_past_the_outbox_end_reads_it_again_from_the_oldest(workspace):
    workspace.store("FJI", delivery(40, make_hit("h-1")))

    class PastTheEnd(HubError):
        pass

    stopping = threading.Event()
    gateway = FakeGateway([[PastTheEnd("cursor 41 is past the outbox's end (3)")]])
    reader = MemberReader("FJI", gateway, workspace, stopping, backoff=Backoff(first_s=0, max_s=0))
    original = gateway.subscribe

    def subscribe(member, cursor):
        if len(gateway.subscribed) == 1:
            stopping.set()  # the second attempt is the last one of this test
        return original(member, cursor)

    gateway.subscribe = subscribe
    reader.run()
    assert gateway.subscribed == [("FJI", 41), ("FJI", 0)]


def test_readers_follow_members_with_an_enabled_officer_and_poll_their_dispositions(tmp_path):
    from dataclasses import replace

    users = user_table([("FJI", "alice", "analyst"), ("TON", "sione", "analyst")])
    sione = users.get("TON", "sione")
    users.apply(sione.key.encode(), replace(sione, disabled=True).to_json())
    gateway = FakeGateway()
    disposition = delivery_pb2.Disposition(hit_id="h-1", member="FJI", outcome=delivery_pb2.OUTCOME_TRUE_MATCH)
    disposition.at.FromSeconds(int(T0))
    gateway.recorded.append(disposition)
    console = make_console(users=users, gateway=gateway)
    ws = Workspace(tmp_path / "w.sqlite", 30)
    ws.store("FJI", delivery(0, make_hit("h-1")))
    readers = Readers(console, ws, threading.Event())
    try:
        assert readers.ensure_readers() == ["FJI"]
        readers.poll_dispositions()
        assert ws.row("FJI", "h-1").state == "closed"
        readers.poll_dispositions()
        assert gateway.polled == [("FJI", 0), ("FJI", POLL_LIMIT)]  # everything once, then the newest
        users.apply(sione.key.encode(), sione.to_json())  # TON gains an enabled officer
        assert readers.ensure_readers() == ["TON"]
        assert readers.ensure_readers() == []
    finally:
        readers.close()
        ws.close()
