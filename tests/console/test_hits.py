"""The hit queue, the hit page, dispositions, the live stream and the CSV export, as officers of two members."""

from __future__ import annotations

import csv
import io
import re
import threading
import time

import pytest

from services.console.live import Live
from services.console.pages.hits import neutralise
from services.console.workspace import Workspace
from services.wire import delivery_pb2, hit_pb2
from tests.console.conftest import client_of, make_console, sign_in, user_table
from tests.console.test_workspace import FakeGateway, delivery, make_hit

FJI_HIT = "h-f00000000000000000000001"
TON_HIT = "h-700000000000000000000001"


@pytest.fixture(scope="module")
def officers():
    """The officers' table, hashed once for the module (no test here changes it)."""
    return user_table()


@pytest.fixture
def parts(tmp_path, officers):
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", retention_days=30, on_change=live.publish)
    gateway = FakeGateway()
    workspace.store("FJI", delivery(0, make_hit(FJI_HIT)))
    workspace.store("TON", delivery(0, make_hit(TON_HIT, member="TON", carrier="WR", number="51")))
    console = make_console(users=officers, gateway=gateway, workspace=workspace, live=live)
    yield console
    live.close()
    workspace.close()


def signed_in(console, member: str, username: str):
    client = client_of(console)
    return client, sign_in(client, member, username)


def test_the_queue_lists_only_the_members_own_hits_without_the_travellers_data(parts):
    client, _ = signed_in(parts, "FJI", "alice")
    page = client.get("/hits")
    assert page.status_code == 200
    assert f'id="hit-{FJI_HIT}"' in page.text and TON_HIT not in page.text
    assert "TALEMAITOGA" not in page.text and "FJ1234567" not in page.text  # names only on the (audited) hit page
    assert 'sse-connect="/hits/live?' in page.text and 'aria-live="polite"' in page.text
    assert "<caption>" in page.text and 'scope="col"' in page.text
    assert "<script>" not in page.text and " style=" not in page.text and " on" + "click=" not in page.text
    assert parts.gateway.viewed == []


def test_the_queue_filters_by_what_the_query_says(parts):
    parts.workspace.store("FJI", delivery(1, make_hit("h-f00000000000000000000002", carrier="NF", number="12")))
    client, _ = signed_in(parts, "FJI", "alice")
    page = client.get("/hits", params={"flight": "NF12"})
    assert "h-f00000000000000000000002" in page.text and FJI_HIT not in page.text
    assert "flight=NF12" in page.text  # the live stream follows the same filters
    wrong = client.get("/hits", params={"state": "lost"})
    assert wrong.status_code == 200 and "state" in wrong.text and FJI_HIT in wrong.text


def test_the_hit_page_shows_the_traveller_and_reasons_and_records_the_view(parts):
    client, _ = signed_in(parts, "FJI", "alice")
    page = client.get(f"/hits/{FJI_HIT}")
    assert page.status_code == 200
    for shown in ("TALEMAITOGA", "FJ1234567", "FJI-WL-0007", "name and date of birth match", "NAN – TBU"):
        assert shown in page.text
    assert parts.gateway.viewed == [("FJI", "alice", FJI_HIT)]


def test_another_members_hit_answers_404_like_an_unknown_one_and_is_never_recorded(parts):
    client, token = signed_in(parts, "FJI", "alice")
    for path in (f"/hits/{TON_HIT}", "/hits/h-doesnotexist", "/hits/..%2F..%2Fetc"):
        assert client.get(path).status_code == 404
    assert client.post(f"/hits/{TON_HIT}/dispose", data={"csrf": token, "outcome": "true_match"}).status_code == 404
    assert client.post(f"/hits/{TON_HIT}/take", data={"csrf": token}).status_code == 404
    assert parts.gateway.viewed == [] and parts.gateway.disposed == [] and parts.gateway.taken == []
    assert parts.workspace.row("TON", TON_HIT).state == "new"


def test_a_disposition_is_recorded_through_the_gateway_in_the_officers_name(parts):
    client, token = signed_in(parts, "FJI", "alice")
    answer = client.post(
        f"/hits/{FJI_HIT}/dispose", data={"csrf": token, "outcome": "false_positive", "note": "different DOB"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/hits/{FJI_HIT}?done=disposed"
    assert parts.gateway.disposed == [("FJI", "alice", FJI_HIT, delivery_pb2.OUTCOME_FALSE_POSITIVE, "different DOB")]
    row = parts.workspace.row("FJI", FJI_HIT)
    assert (row.state, row.outcome, row.disposed_by) == ("closed", "false_positive", "alice")
    assert "different DOB" in client.get(answer.headers["location"]).text


def test_a_disposition_needs_the_form_token_and_an_outcome(parts):
    client, token = signed_in(parts, "FJI", "alice")
    assert client.post(f"/hits/{FJI_HIT}/dispose", data={"outcome": "true_match"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/dispose", data={"csrf": "forged", "outcome": "true_match"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/dispose", data={"csrf": token, "outcome": "maybe"}).status_code == 422
    assert parts.gateway.disposed == []


def test_a_hub_error_on_dispose_is_shown_on_the_page_with_the_note_kept(parts):
    from services.errors import BrokerUnavailableError

    def unavailable(*_args):
        raise BrokerUnavailableError("the hub's broker did not answer; try again")

    parts.gateway.dispose = unavailable
    client, token = signed_in(parts, "FJI", "alice")
    page = client.post(f"/hits/{FJI_HIT}/dispose", data={"csrf": token, "outcome": "true_match", "note": "gate 3"})
    assert page.status_code == 503
    assert "try again" in page.text and "gate 3" in page.text
    assert parts.workspace.row("FJI", FJI_HIT).state == "new"


def test_im_on_it_goes_to_the_audit_trail_and_puts_the_hit_in_progress(parts):
    client, token = signed_in(parts, "FJI", "alice")
    answer = client.post(f"/hits/{FJI_HIT}/take", data={"csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == f"/hits/{FJI_HIT}?done=taken"
    # In the officer's name, with the cursor where the console received the hit's version.
    assert parts.gateway.taken == [("FJI", "alice", FJI_HIT, 0)]
    row = parts.workspace.row("FJI", FJI_HIT)
    assert (row.state, row.taken_by) == ("in-progress", "alice")
    assert "alice" in client.get("/hits", params={"state": "in-progress"}).text


def test_im_on_it_needs_the_form_token(parts):
    client, _ = signed_in(parts, "FJI", "alice")
    assert client.post(f"/hits/{FJI_HIT}/take", data={"csrf": "forged"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/take").status_code == 403
    assert parts.gateway.taken == [] and parts.workspace.row("FJI", FJI_HIT).state == "new"


def test_a_take_the_audit_trail_did_not_record_leaves_the_hit_as_it_was(parts):
    from services.console.gateway import RouterUnavailableError

    def unavailable(*_args, **_kwargs):
        raise RouterUnavailableError("the hub's broker is unavailable (KafkaTimeoutError); retry")

    parts.gateway.take = unavailable
    client, token = signed_in(parts, "FJI", "alice")
    page = client.post(f"/hits/{FJI_HIT}/take", data={"csrf": token})
    assert page.status_code == 503
    assert "broker is unavailable" in page.text and 'role="alert"' in page.text
    row = parts.workspace.row("FJI", FJI_HIT)
    assert (row.state, row.taken_by) == ("new", "")


def test_pages_need_a_session_and_the_export_a_duty_officer(parts):
    anonymous = client_of(parts)
    for path in ("/hits", f"/hits/{FJI_HIT}", "/hits/export.csv", "/hits/live"):
        assert anonymous.get(path).status_code == 303
    assert anonymous.post(f"/hits/{FJI_HIT}/dispose", data={"outcome": "true_match"}).status_code == 401
    analyst, _ = signed_in(parts, "FJI", "alice")
    assert analyst.get("/hits/export.csv").status_code == 403
    assert "export.csv" not in analyst.get("/hits").text
    duty, _ = signed_in(parts, "FJI", "bob")
    assert duty.get("/hits/export.csv").status_code == 200
    assert "export.csv" in duty.get("/hits").text


def test_the_export_holds_the_members_hits_and_dispositions_with_formulas_neutralised(parts):
    hostile = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_RULE, id="R1", score=0.5, category="=HYPERLINK(1)")
    parts.workspace.store("FJI", delivery(1, make_hit("h-f00000000000000000000002", reasons=[hostile])))
    disposition = delivery_pb2.Disposition(
        hit_id=FJI_HIT, member="FJI", outcome=delivery_pb2.OUTCOME_TRUE_MATCH, user="bob", note='=cmd|" /c calc"!A1'
    )
    disposition.at.FromSeconds(1_740_000_000)
    parts.workspace.record_dispositions("FJI", [disposition])
    client, _ = signed_in(parts, "FJI", "carol")
    answer = client.get("/hits/export.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert [r["hit_id"] for r in rows] == ["h-f00000000000000000000002", FJI_HIT]
    assert rows[0]["categories"] == "'=hyperlink(1)"
    assert rows[1]["note"] == '\'=cmd|" /c calc"!A1' and rows[1]["outcome"] == "true_match"
    assert rows[1]["disposed_by"] == "bob" and rows[1]["state"] == "closed"
    assert "TALEMAITOGA" not in answer.text and TON_HIT not in answer.text


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\uff1d1"])
def test_cells_a_spreadsheet_would_evaluate_are_quoted(cell):
    assert neutralise(cell) == "'" + cell


def test_plain_cells_are_left_alone():
    assert neutralise("FJ 911") == "FJ 911" and neutralise("") == "" and neutralise("a=b") == "a=b"


# -- live ------------------------------------------------------------------------------------------------------------


def _wait_until(predicate, what: str, timeout_s: float = 30.0) -> None:
    """Wait for another thread to reach a state (bounded; the test asserts states, never durations)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _stream_in_thread(client, url: str, bodies: dict, key: str, headers=None) -> threading.Thread:
    def run() -> None:
        answer = client.get(url, headers=headers or {})
        bodies[key] = (answer.status_code, answer.headers.get("content-type", ""), answer.text)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _live_url(client) -> str:
    return re.search(r'sse-connect="([^"]+)"', client.get("/hits").text).group(1).replace("&amp;", "&")


def test_a_new_hit_reaches_its_members_live_streams_and_never_another_members(parts):
    fji, _ = signed_in(parts, "FJI", "alice")
    ton, _ = signed_in(parts, "TON", "sione")
    bodies: dict = {}
    threads = [
        _stream_in_thread(fji, _live_url(fji), bodies, "FJI"),
        _stream_in_thread(ton, _live_url(ton), bodies, "TON"),
    ]
    _wait_until(lambda: parts.live.count("FJI") == 1 and parts.live.count("TON") == 1, "both streams to open")
    new = "h-f00000000000000000000002"
    parts.workspace.store("FJI", delivery(1, make_hit(new, carrier="FJ", number="390")))
    parts.workspace.take("FJI", FJI_HIT, "alice")  # a change of a row already on the page
    parts.live.close()
    for thread in threads:
        thread.join(timeout=30)
    status, kind, body = bodies["FJI"]
    assert status == 200 and kind.startswith("text/event-stream")
    assert "event: hit" in body
    inserted, replaced = body.index(f'id="hit-{new}"'), body.index(f'id="hit-{FJI_HIT}"')
    assert 'hx-swap-oob="afterbegin:#hit-rows"' in body[:inserted]
    assert 'hx-swap-oob="true"' in body[replaced : replaced + 200]
    assert "1 new hit." in body
    assert "TALEMAITOGA" not in body
    status, _, body = bodies["TON"]
    assert status == 200 and "hit-h-f" not in body and "event: hit" not in body
    assert parts.live.count() == 0


def test_a_live_stream_resumes_after_the_last_event_it_sent(parts):
    client, _ = signed_in(parts, "FJI", "alice")
    url = _live_url(client)
    parts.workspace.store("FJI", delivery(1, make_hit("h-f00000000000000000000002")))  # tick 3
    parts.workspace.take("FJI", FJI_HIT, "alice")  # tick 4
    bodies: dict = {}
    # The browser got the event of tick 3 before it reconnected: only tick 4 is news, as a row swapped in place.
    thread = _stream_in_thread(client, url, bodies, "again", headers={"Last-Event-ID": "3"})
    _wait_until(lambda: parts.live.count("FJI") == 1, "the stream to open")
    parts.live.close()
    thread.join(timeout=30)
    _, _, body = bodies["again"]
    assert "id: 4" in body and f'id="hit-{FJI_HIT}" class="state-in-progress"' in body
    assert "h-f00000000000000000000002" not in body


def test_a_withdrawn_hit_changes_in_place_and_leaves_a_queue_filtered_on_new_hits(parts):
    client, _ = signed_in(parts, "FJI", "alice")
    everything = _live_url(client)
    page = client.get("/hits", params={"state": "new"})
    only_new = re.search(r'sse-connect="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    bodies: dict = {}
    threads = [
        _stream_in_thread(client, everything, bodies, "all"),
        _stream_in_thread(client, only_new, bodies, "new"),
    ]
    _wait_until(lambda: parts.live.count("FJI") == 2, "both streams to open")
    parts.workspace.store("FJI", delivery(1, make_hit(FJI_HIT, version=2, withdrawn=True)))
    parts.live.close()
    for thread in threads:
        thread.join(timeout=30)
    assert f'<tr id="hit-{FJI_HIT}" class="state-withdrawn" hx-swap-oob="true">' in bodies["all"][2]
    assert "1 hit withdrawn." in bodies["all"][2]
    assert f'<tr id="hit-{FJI_HIT}" hx-swap-oob="delete"></tr>' in bodies["new"][2]
    # Once the console shuts its live streams, new ones are refused.
    assert client.get(everything).status_code == 429


def test_a_later_page_swaps_its_own_rows_and_gets_no_new_ones(parts, monkeypatch):
    import services.console.pages.hits as hits_page

    monkeypatch.setattr(hits_page, "PAGE_SIZE", 1)
    parts.workspace.store("FJI", delivery(1, make_hit("h-f00000000000000000000002")))
    client, _ = signed_in(parts, "FJI", "alice")
    page = client.get("/hits", params={"page": 2})
    assert f'id="hit-{FJI_HIT}"' in page.text and "h-f00000000000000000000002" not in page.text
    url = re.search(r'sse-connect="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    bodies: dict = {}
    thread = _stream_in_thread(client, url, bodies, "page 2")
    _wait_until(lambda: parts.live.count("FJI") == 1, "the stream to open")
    parts.workspace.store("FJI", delivery(2, make_hit("h-f00000000000000000000003")))
    parts.workspace.take("FJI", "h-f00000000000000000000002", "alice")  # on page 1, not this one
    parts.workspace.take("FJI", FJI_HIT, "alice")
    parts.live.close()
    thread.join(timeout=30)
    body = bodies["page 2"][2]
    assert f'<tr id="hit-{FJI_HIT}" class="state-in-progress" hx-swap-oob="true">' in body
    assert "afterbegin" not in body and "h-f00000000000000000000002" not in body and "000003" not in body


def test_live_streams_are_capped_per_officer(tmp_path):
    import asyncio

    from services.console.live import TooManyStreams

    live = Live(max_per_member=3, max_per_officer=2)

    async def scenario():
        a = live.open("FJI", "FJI/alice")
        live.open("FJI", "FJI/alice")
        with pytest.raises(TooManyStreams):
            live.open("FJI", "FJI/alice")
        live.open("FJI", "FJI/bob")
        with pytest.raises(TooManyStreams):
            live.open("FJI", "FJI/carol")  # the member's cap
        live.open("TON", "TON/sione")  # another member's are its own
        live.release(a)
        live.open("FJI", "FJI/carol")
        return live.count("FJI"), live.count("TON")

    assert asyncio.run(scenario()) == (3, 1)


def test_a_stream_whose_client_stopped_reading_is_dropped_not_waited_for():
    import asyncio

    from services.console.live import CLOSED, QUEUE_SIZE

    live = Live()

    async def scenario():
        stream = live.open("FJI", "FJI/alice")
        for tick in range(QUEUE_SIZE + 5):
            live.publish("FJI", tick + 1)  # never blocks, whoever reads
        await asyncio.sleep(0)  # let the loop run the deliveries
        got = [await stream.next(1) for _ in range(QUEUE_SIZE)]
        return stream.closed, got, await stream.next(1)

    closed, got, after = asyncio.run(scenario())
    assert closed and got == list(range(1, QUEUE_SIZE + 1)) and after == CLOSED


def test_the_queue_page_in_french(parts):
    client, token = signed_in(parts, "FJI", "alice")
    client.post("/language", data={"language": "fr", "csrf": token})
    page = client.get("/hits")
    assert 'lang="fr"' in page.text and "Nouvelle" in page.text
