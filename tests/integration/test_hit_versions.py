"""Each version of a hit shown once, through the real broker: a router restart between showing and acknowledging,
`apihub hits follow` killed (SIGKILL) after printing and before its Ack, a copy the router wrote twice, two readers
of one member, reconnecting after the delivery server stops and starts again, hits lost to a purge.

Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from hubkit import flight, plant
from kafka.structs import TopicPartition

from services import client
from services.auth import issue_token
from services.bus import Topics, ensure_topics, make_admin, make_producer
from services.devkafka import free_port
from services.directory import load_directory
from services.follow import Backoff, Follower
from services.follow_state import ShownLog
from services.router.delivery import HitDeliveryServicer
from services.router.server import DeliveryServer
from services.router.worker import RouterWorker
from services.wire import delivery_pb2_grpc, hit_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DEADLINE_S = 90.0
FAST = Backoff(first_s=0.1, max_s=0.5)


def _until(condition, what: str, deadline_s: float = DEADLINE_S) -> None:
    until = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > until:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Outbox:
    """Writes copies into a member's outbox as the router does (a test's own hits, no profiling needed)."""

    def __init__(self, settings, member="FJI"):
        self.topic = Topics(settings.topic_prefix).outbox(member)
        self.member = member
        self._producer = make_producer(settings, "test-outbox")

    def write(self, hit_id: str, version: int) -> int:
        hit = hit_pb2.Hit(hit_id=hit_id, version=version, recipient=self.member, state=hit_pb2.HIT_STATE_ACTIVE)
        hit.flight.carrier, hit.flight.number = "FJ", "911"
        hit.flight.route.extend(["SYD", "NAN"])
        hit.traveller.passenger_ref = f"REF-{hit_id}"
        sent = self._producer.send(self.topic, key=hit_id.encode(), value=hit.SerializeToString())
        return sent.get(timeout=30).offset

    def close(self):
        self._producer.close(timeout=5)


@pytest.fixture
def outbox(settings):
    ensure_topics(settings, load_directory().codes)
    box = Outbox(settings)
    yield box
    box.close()


@pytest.fixture
def delivery(settings):
    """The member-facing server on a fixed port, so that it can stop and start again where clients look for it."""
    directory = load_directory()
    ensure_topics(settings, directory.codes)
    address = f"127.0.0.1:{free_port()}"
    running: list[DeliveryServer] = []

    class Delivery:
        def __init__(self):
            self.address = address

        def start(self):
            running.append(DeliveryServer(settings, directory, listen=address).start())

        def stop(self):
            running.pop().stop(grace=0)

    server = Delivery()
    server.start()
    yield server
    while running:
        server.stop()


def _follow(settings, address, reader, want, shown_log=None, cursor=None):
    """Hits a reader gets (each acknowledged) until it has ``want`` of them (or the deadline)."""
    got: list[hit_pb2.Hit] = []
    until = time.monotonic() + DEADLINE_S
    follower = Follower(
        client.channel_for(settings, address), issue_token(settings, "member", "FJI"), "FJI", reader=reader,
        shown=shown_log, backoff=FAST,
    )  # fmt: skip
    follower.follow(
        lambda d: got.append(d.hit),
        cursor=cursor,
        should_stop=lambda: len(got) >= want or time.monotonic() > until,
    )
    return got, follower.stats


# -- the router restarts between showing a hit and storing its acknowledgement ------------------------------------


def _stop_router(hub) -> None:
    """Stop the router of a RunningHub: its member-facing server and its worker."""
    hub.delivery_server.stop(grace=0)
    worker, thread = hub.workers[1], hub.threads[1]
    worker.stop()
    thread.join(30)
    worker.close()


def _start_router(hub, port: int) -> None:
    """A new router for a RunningHub, its member-facing server on ``port`` (where the old one was)."""
    hub.delivery_server = DeliveryServer(hub.settings, load_directory(), listen=f"127.0.0.1:{port}").start()
    hub.workers[1] = RouterWorker(hub.settings, load_directory())
    hub.threads[1] = threading.Thread(target=hub.workers[1].run, daemon=True)
    hub.threads[1].start()


def test_a_router_restart_between_show_and_ack_does_not_show_a_version_twice(hub, tmp_path):
    entry = demo_watchlists()["FJI"][0]
    assert hub.load("FJI", [entry]).entries == 1
    first = flight(["SYD", "NAN"], number="415")
    plant(first, entry, "FJ415-P1")
    assert hub.submit(first)[0].status == 1

    shown: list[tuple[str, int, str]] = []
    showing, router_down, stop = threading.Event(), threading.Event(), threading.Event()
    notes: list[str] = []

    def show(delivery) -> None:
        shown.append((delivery.hit.hit_id, delivery.hit.version, delivery.hit.traveller.passenger_ref))
        if len(shown) == 1:  # shown; its Ack goes out only once the router is down
            showing.set()
            router_down.wait(DEADLINE_S)

    log = ShownLog(tmp_path / "shown.sqlite")
    follower = Follower(
        client.channel_for(hub.settings, hub.delivery_addr), hub.token("member", "FJI"), "FJI", reader="cli",
        shown=log, backoff=FAST, notify=notes.append,
    )  # fmt: skip
    running = threading.Thread(target=follower.follow, args=(show,), kwargs={"should_stop": stop.is_set})
    running.start()
    try:
        assert showing.wait(DEADLINE_S)
        port = hub.delivery_server.port
        _stop_router(hub)
        router_down.set()  # the Ack of the first hit finds no router
        _until(lambda: any("connection to the hub lost" in n for n in notes), "the follower to see the router gone")
        _start_router(hub, port)
        second = flight(["SYD", "NAN"], number="416")
        plant(second, entry, "FJ416-P1")
        assert hub.submit(second)[0].status == 1
        _until(lambda: len(shown) >= 2, "the second hit after the restart")
    finally:
        stop.set()
        router_down.set()
        running.join(DEADLINE_S)
        log.close()

    assert [ref for _, _, ref in shown] == ["FJ415-P1", "FJ416-P1"]
    assert len({(hit_id, version) for hit_id, version, _ in shown}) == len(shown)
    assert all(version > 0 for _, version, _ in shown)  # the router numbered them
    assert "connected to the hub again" in notes
    # A later run of the tool (after its own restart) that reads the outbox from its start shows neither again.
    with ShownLog(tmp_path / "shown.sqlite") as again:
        later = Follower(
            client.channel_for(hub.settings, hub.delivery_addr), hub.token("member", "FJI"), "FJI", reader="cli",
            shown=again, backoff=FAST,
        )  # fmt: skip
        until = time.monotonic() + DEADLINE_S
        shown_again = later.follow(
            lambda d: None, cursor=0, should_stop=lambda: later.stats.repeats_skipped >= 2 or time.monotonic() > until
        )
    assert (shown_again, later.stats.repeats_skipped) == (0, 2)


# -- `apihub hits follow` killed after printing, before its Ack ---------------------------------------------------


class HeldAcks(HitDeliveryServicer):
    """A delivery servicer whose Ack never stores anything: it notes the call and holds it until released."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked, self.release = threading.Event(), threading.Event()

    def Ack(self, request, context):
        self.asked.set()
        self.release.wait(DEADLINE_S)
        context.abort(grpc.StatusCode.UNAVAILABLE, "test: acknowledgements held back")


class Lines:
    """A process's output lines, read in the background, each taken with a deadline."""

    def __init__(self, stream):
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # the end

    def _take(self, what: str) -> str | None:
        try:
            line = self._lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            raise AssertionError(f"gave up waiting for {what}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def next(self, what: str) -> str:
        line = self._take(what)
        assert line is not None, f"the process ended before {what}: {self.seen}"
        return line

    def until(self, predicate, what: str) -> str:
        while not predicate(line := self.next(what)):
            pass
        return line

    def rest(self) -> list[str]:
        """Every line, once the process has ended."""
        while self._take("the end of the output") is not None:
            pass
        return self.seen


def _hits_follow(settings, address: str, state: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "APIHUB_FOLLOW_RETRY_SECONDS": "0.1", "APIHUB_FOLLOW_RETRY_MAX_SECONDS": "0.5"}
    token = issue_token(settings, "member", "FJI")
    command = ["hits", "follow", "--member", "FJI", "--server", address, "--token", token, "--json"]
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", *command, "--state", str(state), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_follow_killed_after_printing_and_before_its_ack_shows_nothing_twice_when_restarted(
    settings, outbox, tmp_path
):
    for hit_id in ("h-1", "h-2"):
        outbox.write(hit_id, 10)
    held = HeldAcks(settings, load_directory())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    delivery_pb2_grpc.add_HitDeliveryServicer_to_server(held, server)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    state = tmp_path / "follow-FJI-cli.sqlite"
    first = _hits_follow(settings, address, state)
    try:
        out = Lines(first.stdout)
        printed = [json.loads(out.next("the first hit"))["hit_id"]]
        assert held.asked.wait(DEADLINE_S)  # printed and recorded; its Ack is held: nothing acknowledged
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        held.release.set()
        server.stop(0)
        held.close()
    printed += [json.loads(line)["hit_id"] for line in out.rest()[1:]]  # what it printed before the kill

    server = DeliveryServer(settings, load_directory(), listen="127.0.0.1:0").start()
    try:
        second = _hits_follow(settings, f"127.0.0.1:{server.port}", state, "--idle-exit", "3")
        stdout, stderr = second.communicate(timeout=DEADLINE_S)
    finally:
        server.stop(grace=0)
    assert second.returncode == 0, stderr
    printed += [json.loads(line)["hit_id"] for line in stdout.splitlines()]
    stats = json.loads(stderr.splitlines()[-1])["stats"]

    assert sorted(printed) == ["h-1", "h-2"]  # each shown once over both runs
    assert stats["repeats_skipped"] >= 1  # h-1, delivered again since never acknowledged, was skipped
    assert "Traceback" not in stderr


# -- a copy the router wrote twice, seen by two streams ------------------------------------------------------------


def test_a_version_written_twice_to_the_outbox_is_shown_once_across_streams(settings, outbox, delivery, tmp_path):
    outbox.write("h-1", 7)
    path = tmp_path / "shown.sqlite"
    with ShownLog(path) as log:
        got, _ = _follow(settings, delivery.address, "cli", want=1, shown_log=log)
    assert [(h.hit_id, h.version) for h in got] == [("h-1", 7)]
    outbox.write("h-1", 7)  # a replayed batch: the same version again, at a later cursor
    outbox.write("h-1", 8)  # an update: news
    with ShownLog(path) as log:
        got, stats = _follow(settings, delivery.address, "cli", want=1, shown_log=log)
    assert [(h.hit_id, h.version) for h in got] == [("h-1", 8)]
    assert stats.repeats_skipped == 1


# -- each reader its own cursor -------------------------------------------------------------------------------------


def test_two_readers_of_one_member_each_get_every_hit(settings, outbox, delivery):
    for i in range(3):
        outbox.write(f"h-{i}", 1)
    every = [("h-0", 1), ("h-1", 1), ("h-2", 1)]
    for reader in ("cli", "console", ""):  # each acknowledges all it got: the next still gets everything
        got, _ = _follow(settings, delivery.address, reader, want=3)
        assert [(h.hit_id, h.version) for h in got] == every, reader
    outbox.write("h-3", 1)
    for reader in ("console", "cli"):  # each resumes after its own acknowledged cursor
        got, _ = _follow(settings, delivery.address, reader, want=1)
        assert [h.hit_id for h in got] == ["h-3"], reader


# -- reconnecting ---------------------------------------------------------------------------------------------------


def test_follow_reconnects_after_the_delivery_server_stops_and_starts_again(settings, outbox, delivery, tmp_path):
    outbox.write("h-1", 1)
    follow = _hits_follow(settings, delivery.address, tmp_path / "state.sqlite")
    try:
        out, err = Lines(follow.stdout), Lines(follow.stderr)
        assert json.loads(out.next("the first hit"))["hit_id"] == "h-1"
        delivery.stop()
        err.until(lambda line: "connection to the hub lost" in line, "the line saying the connection was lost")
        outbox.write("h-2", 1)
        delivery.start()
        assert json.loads(out.next("the hit after the restart"))["hit_id"] == "h-2"
        err.until(lambda line: "connected to the hub again" in line, "the line saying it is back")
        follow.send_signal(signal.SIGTERM)
        stats = json.loads(err.until(lambda line: line.startswith('{"stats"'), "the counts"))["stats"]
        assert follow.wait(30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
    assert (stats["shown"], stats["repeats_skipped"], stats["lost"]) == (2, 0, 0)
    assert stats["reconnects"] >= 1
    assert not [line for line in err.seen if "Traceback" in line]


# -- hits lost before a reader got them -----------------------------------------------------------------------------


def test_hits_deleted_before_a_reader_got_them_are_counted_as_lost(settings, outbox, delivery):
    for i in range(4):
        outbox.write(f"h-{i}", 1)
    got, _ = _follow(settings, delivery.address, "cli", want=1)  # acknowledges cursor 0 only
    assert [h.hit_id for h in got] == ["h-0"]
    admin = make_admin(settings, "test-purge")
    try:
        admin.delete_records({TopicPartition(outbox.topic, 0): 3})  # h-1 and h-2 deleted, never seen by cli
    finally:
        admin.close()
    got, stats = _follow(settings, delivery.address, "cli", want=1)
    assert [h.hit_id for h in got] == ["h-3"]
    assert stats.lost == 2
    got, stats = _follow(settings, delivery.address, "console", want=1)  # a reader that never acknowledged
    assert got[0].hit_id == "h-3" and stats.lost == 0
