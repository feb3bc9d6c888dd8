"""`apihub hits follow`: the text form of a member's hit shows the review marker and each match's band, and
nothing from outside that a terminal would obey (escape sequences, controls, bidi overrides); and following itself
(services.follow) against a scripted hub: each version shown once, reconnecting, stopping, counting."""

from __future__ import annotations

import json
import time
from concurrent import futures

import grpc
import pytest

from services import client
from services.cli import REVIEW_MARKER, follow_lines
from services.codec import hit_to_json
from services.follow import LOST_HITS_KEY, START_CURSOR_KEY, Backoff, Follower
from services.follow_state import ShownLog
from services.terminal import printable
from services.wire import delivery_pb2, delivery_pb2_grpc, hit_pb2


def _hit(band, for_review):
    hit = hit_pb2.Hit(hit_id="h-1", recipient="FJI", manifest_id="m-1", score=0.78, for_review=for_review)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["NAN", "TBU"])
    hit.traveller.passenger_ref = "FJ911-W"
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="FJI-WL-1", score=0.78, explanation="weak", band=band)
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_MODEL, id="risk-1", score=0.4, explanation="ranked")
    return hit


def test_a_hit_for_review_is_marked_and_each_watchlist_reason_shows_its_band():
    head, match, model = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_REVIEW, True)))
    assert head.startswith("h-1 FJ911 NAN-TBU") and head.endswith(f"score=0.78 {REVIEW_MARKER}")
    assert match.split()[:4] == ["watchlist", "FJI-WL-1", "0.78", "review"]
    assert model.split()[:4] == ["model", "risk-1", "0.40", "ranked"]  # no band for the model's reason


def test_an_alert_is_not_marked_for_review():
    head, match, _ = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_ALERT, False)))
    assert REVIEW_MARKER not in head
    assert match.split()[3] == "alert"


# Carrier-supplied text as an attacker would send it: sets the terminal's title (OSC), clears the screen and moves
# the cursor (CSI, in 7-bit and 8-bit forms), reverses what follows (bidi override), forges a line (newline).
HOSTILE_REF = "FJ911-\x1b]0;you have been owned\x07W\x1b[2J\x1b[1;1H\x9b31m\u202e\u2066"
HOSTILE_NAME = "Nguyễn\u200b\nFJI fake-hit 0.99"
CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + ["\u202e", "\u2066", "\u200b", "\u2028"]


def test_carrier_text_loses_every_terminal_control_and_keeps_its_letters():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.traveller.passenger_ref = HOSTILE_REF
    hit.traveller.surname, hit.traveller.given_names = HOSTILE_NAME, "Лариса 李"
    hit.reasons[0].explanation = "weak\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\"
    lines = follow_lines(hit_to_json(hit))
    assert len(lines) == 3  # no forged line
    for line in lines:
        assert not any(c in line for c in CONTROLS), repr(line)
    head, match, _ = lines
    assert " FJ911-W " in head and "Nguyễn FJI fake-hit 0.99, Лариса 李" in head
    assert "you have been owned" not in head
    assert match.endswith("weaklink")


def test_a_withdrawal_loses_terminal_controls_too():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.state = hit_pb2.HIT_STATE_WITHDRAWN
    hit.traveller.passenger_ref = HOSTILE_REF
    [line] = follow_lines(hit_to_json(hit))
    assert "FJ911-W" in line and not any(c in line for c in CONTROLS)


def test_the_json_form_escapes_every_control():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.traveller.passenger_ref = HOSTILE_REF
    line = json.dumps(hit_to_json(hit))
    assert not any(c in line for c in CONTROLS)
    assert json.loads(line)["passenger"]["ref"] == HOSTILE_REF  # escaped, not lost: evidence stays whole


@pytest.mark.parametrize(
    "text,shown",
    [
        ("FJ911-W", "FJ911-W"),
        ("\x1b]0;title\x07A", "A"),
        ("\x1b]0;title\x1b\\A", "A"),
        ("\x1b]0;unterminated", ""),
        ("\x1bP1$r\x1b\\A", "A"),
        ("\x1b[31;1mred\x1b[0m", "red"),
        ("\x9b2Jx", "x"),
        ("\x1bcreset", "reset"),
        ("a\tb\r\nc", "a b  c"),
        ("abc\u202edef\u2069", "abcdef"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("del\x7f\x85x", "del x"),
        ("محمد 李 Ōkawa Ñandú", "محمد 李 Ōkawa Ñandú"),
    ],
)
def test_printable(text, shown):
    assert printable(text) == shown


def test_screen_prints_carrier_text_without_terminal_controls(tmp_path):
    from google.protobuf import json_format
    from typer.testing import CliRunner

    from services.cli import app
    from services.wire import manifest_pb2

    csv = tmp_path / "wl.csv"
    csv.write_text(
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"
        "FJI-WL-1,MULLER,JEAN PIERRE,1980-07-14,,,,,people_smuggling,FJI\n"
    )
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", message_ref="FJ911-ESC")
    m.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromJsonString("2026-03-01T07:00:00Z")
    m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="Muller",
        given_names="Jean Pierre",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
        passenger_ref=HOSTILE_REF,
    )
    manifest = tmp_path / "m.json"
    manifest.write_text(json_format.MessageToJson(m))
    result = CliRunner().invoke(app, ["screen", "--watchlist", str(csv), str(manifest)])
    assert result.exit_code == 0, result.output
    assert "FJ911-W" in result.output
    assert not any(c in result.output for c in CONTROLS if c != "\n")
    assert all(line.startswith(("FJI ", "TON ")) for line in result.output.splitlines())


# -- following: each version shown once, reconnecting, counting (services.follow), against a scripted hub ----------


class ScriptedHub(delivery_pb2_grpc.HitDeliveryServicer):
    """A HitDelivery server over a list: each Subscribe starts at the cursor asked for, else after the last Ack;
    ``refuse`` holds a status per Subscribe to fail with first; ``ack_refusals`` Acks fail UNAVAILABLE;
    ``end_streams``: a stream ends once the list is sent (else it sends heartbeats until the client leaves)."""

    def __init__(self, outbox, refuse=(), ack_refusals=0, end_streams=False, lost=0):
        self.outbox, self.refuse, self.ack_refusals = list(outbox), list(refuse), ack_refusals
        self.end_streams, self.lost = end_streams, lost
        self.acked_next = 0
        self.subscribes: list[delivery_pb2.SubscribeRequest] = []
        self.acks: list[delivery_pb2.AckRequest] = []

    def Subscribe(self, request, context):
        self.subscribes.append(request)
        if self.refuse:
            code = self.refuse.pop(0)
            if code is not None:
                context.abort(code, "scripted refusal")
        start = request.cursor if request.HasField("cursor") else self.acked_next
        context.send_initial_metadata(((LOST_HITS_KEY, str(self.lost)), (START_CURSOR_KEY, str(start))))
        for cursor in range(start, len(self.outbox)):
            yield delivery_pb2.Delivery(cursor=cursor, hit=self.outbox[cursor])
        while not self.end_streams and context.is_active():
            yield delivery_pb2.Delivery(heartbeat=True)
            time.sleep(0.02)

    def Ack(self, request, context):
        self.acks.append(request)
        if self.ack_refusals:
            self.ack_refusals -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: the hub restarts")
        self.acked_next = max(self.acked_next, request.cursor + 1)
        return delivery_pb2.AckResponse(next_cursor=self.acked_next)


@pytest.fixture
def scripted():
    servers = []

    def start(hub: ScriptedHub) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        delivery_pb2_grpc.add_HitDeliveryServicer_to_server(hub, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def _versions(*pairs) -> list[hit_pb2.Hit]:
    return [hit_pb2.Hit(hit_id=hit_id, version=version, recipient="FJI") for hit_id, version in pairs]


FAST = Backoff(first_s=0.01, max_s=0.05)


def _follower(address, shown=None, backoff=FAST, notes=None, reader="cli"):
    chan = client.channel(address)
    return Follower(
        chan,
        "token",
        "FJI",
        reader=reader,
        shown=shown,
        backoff=backoff,
        notify=(notes if notes is not None else []).append,
    )


def test_a_version_shown_but_not_acknowledged_is_skipped_and_acknowledged_when_delivered_again(scripted, tmp_path):
    hub = ScriptedHub(_versions(("h-1", 5), ("h-2", 5)), ack_refusals=1)
    address = scripted(hub)
    path = tmp_path / "shown.sqlite"
    shown: list[str] = []
    with ShownLog(path) as log:  # the first run shows h-1, its Ack fails, then the run ends (as if killed)
        first = _follower(address, log, backoff=None)
        with pytest.raises(grpc.RpcError):
            first.follow(lambda d: shown.append(d.hit.hit_id))
    with ShownLog(path) as log:  # the next run: the hub delivers h-1 again, from the last acknowledged cursor
        again = _follower(address, log)
        again.follow(lambda d: shown.append(d.hit.hit_id), should_stop=lambda: len(hub.acks) >= 3)
    assert shown == ["h-1", "h-2"]
    assert again.stats.repeats_skipped == 1 and again.stats.shown == 1
    assert hub.acked_next == 2  # the repeat was acknowledged too


def test_a_new_version_of_a_hit_shown_before_is_shown(scripted):
    hub = ScriptedHub(_versions(("h-1", 5), ("h-1", 9)))
    shown: list[tuple[str, int]] = []
    with ShownLog() as log:
        log.add("h-1", "5")
        follower = _follower(scripted(hub), log)
        follower.follow(lambda d: shown.append((d.hit.hit_id, d.hit.version)), should_stop=lambda: len(hub.acks) >= 2)
    assert shown == [("h-1", 9)]
    assert (follower.stats.shown, follower.stats.repeats_skipped) == (1, 1)


def test_it_reconnects_after_failures_and_says_so_once_each_way(scripted):
    unavailable = grpc.StatusCode.UNAVAILABLE
    hub = ScriptedHub(_versions(("h-1", 1)), refuse=[unavailable, unavailable, grpc.StatusCode.CANCELLED])
    notes: list[str] = []
    follower = _follower(scripted(hub), notes=notes)
    got: list[str] = []
    follower.follow(lambda d: got.append(d.hit.hit_id), should_stop=lambda: bool(got))
    assert got == ["h-1"] and len(hub.subscribes) == 4
    assert len(notes) == 2, notes
    assert notes[0].startswith("cannot reach the hub (UNAVAILABLE") and notes[1] == "connected to the hub again"
    assert all(r.reader == "cli" for r in hub.subscribes) and [a.reader for a in hub.acks] == ["cli"]


def test_a_stream_the_hub_ends_is_followed_again_from_after_the_last_hit(scripted):
    hub = ScriptedHub(_versions(("h-1", 1), ("h-2", 1)), end_streams=True)
    follower = _follower(scripted(hub))
    got: list[str] = []
    follower.follow(lambda d: got.append(d.hit.hit_id), should_stop=lambda: len(hub.subscribes) >= 3)
    assert got == ["h-1", "h-2"]
    assert [r.cursor for r in hub.subscribes[1:]] == [2, 2]  # resumes after the last hit it got
    assert follower.stats.reconnects >= 1


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND]
)
def test_errors_that_retrying_cannot_fix_end_it_at_once(scripted, code):
    hub = ScriptedHub([], refuse=[code])
    with pytest.raises(grpc.RpcError) as err:
        _follower(scripted(hub)).follow(lambda d: None)
    assert err.value.code() == code and len(hub.subscribes) == 1


def test_without_backoff_an_unreachable_hub_is_an_error_as_before():
    follower = Follower(client.channel("127.0.0.1:1"), "t", "FJI")
    with pytest.raises(grpc.RpcError) as err:
        follower.follow(lambda d: None)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_idle_exit_also_ends_the_wait_for_a_hub_that_is_down():
    follower = _follower("127.0.0.1:1", backoff=Backoff(first_s=0.05, max_s=0.05))
    assert follower.follow(lambda d: None, idle_exit=0.3) == 0


def test_hits_lost_before_the_reader_got_them_are_counted_once(scripted):
    hub = ScriptedHub([], end_streams=True, lost=4)
    notes: list[str] = []
    follower = _follower(scripted(hub), notes=notes)
    follower.follow(lambda d: None, should_stop=lambda: len(hub.subscribes) >= 3)
    assert follower.stats.lost == 12  # the scripted hub says 4 on every stream: each is counted
    assert sum("deleted from the outbox" in n for n in notes) == 3
    assert [r.cursor for r in hub.subscribes[1:]] == [0, 0]  # resumes at the start the hub named, not below it


def test_backoff_doubles_up_to_its_most():
    assert [Backoff().delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_hits_follow_shows_each_version_once_across_runs_and_prints_its_counts(scripted, tmp_path):
    from typer.testing import CliRunner

    from services.cli import app

    hub = ScriptedHub([_hit(hit_pb2.SCREENING_BAND_ALERT, False)], ack_refusals=1, end_streams=True)
    hub.outbox[0].version = 3
    address, state = scripted(hub), tmp_path / "state.sqlite"
    args = ["hits", "follow", "--member", "FJI", "--server", address, "--token", "t", "--json", "--state", str(state)]

    first = CliRunner().invoke(app, [*args, "--no-reconnect"])
    assert first.exit_code == 3, first.output  # the Ack failed: the hub is unavailable
    [line] = first.stdout.splitlines()
    assert json.loads(line)["hit_id"] == "h-1" and json.loads(line)["version"] == 3
    stats = json.loads(first.stderr.splitlines()[-2])["stats"]  # the last line is the error itself
    assert (stats["shown"], stats["reader"]) == (1, "cli")

    second = CliRunner().invoke(app, [*args, "--idle-exit", "0.5"])
    assert second.exit_code == 0, second.output
    assert second.stdout == ""  # delivered again, not shown again
    stats = json.loads(second.stderr.splitlines()[-1])["stats"]
    assert (stats["shown"], stats["repeats_skipped"]) == (0, 1)
    assert [a.cursor for a in hub.acks] == [0, 0]


def test_hits_follow_refuses_a_bad_reader_name_before_connecting(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from services.cli import app

    monkeypatch.setenv("APIHUB_FOLLOW_STATE_DIR", str(tmp_path))
    done = CliRunner().invoke(
        app, ["hits", "follow", "--member", "FJI", "--server", "127.0.0.1:1", "--token", "t", "--reader", "../x"]
    )
    assert done.exit_code == 2 and "reader must be" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_json_form_carries_the_version():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.version = 1767225600123
    assert hit_to_json(hit)["version"] == 1767225600123


def test_a_stop_signal_while_a_hit_is_shown_waits_until_it_is_recorded():
    import os
    import signal

    from services.follow import signals_deferred

    got: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: got.append(signum))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # a handler would have run by now (between any two bytecodes)
            assert got == []  # shown, not yet recorded: the stop waits
        for _ in range(100):
            if got:
                break
            time.sleep(0.01)
        assert got == [signal.SIGTERM]  # and then takes effect as it would have
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
