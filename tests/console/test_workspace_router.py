"""The console's workspace against a real router on the session's broker, through the real gateway: its readers
read each member's outbox as reader "console" (the contact point keeps every hit), store each version once, resume
from their own cursor after a restart; the hit page's view and the disposition form reach the router's audit trail
and dispositions in the officer's name; a disposition recorded elsewhere (`apihub hits dispose`) closes the hit.

What the router's worker would have written (outbox copies, delivery records) is written straight to the topics
(tests/routerkit.py). Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import threading
import time

import pytest

from services import client
from services.auth import issue_token
from services.console.gateway import HubGateway
from services.console.live import Live
from services.console.workspace import Filters, Readers, Workspace
from services.wire import delivery_pb2
from tests import routerkit
from tests.console.conftest import client_of, make_console, sign_in, user_table
from tests.console.test_workspace import make_hit

pytestmark = pytest.mark.integration


router = routerkit.router


def wait_until(predicate, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def ids(workspace: Workspace, member: str) -> list[str]:
    return [r.hit_id for r in workspace.page(member, Filters(), "UTC").rows]


def test_the_console_reads_stores_and_disposes_through_the_real_router(router, tmp_path):
    gateway = HubGateway(router.settings)
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", router.settings.outbox_retention_days, on_change=live.publish)
    users = user_table([("FJI", "alice", "analyst"), ("TON", "sione", "analyst")])
    console = make_console(router.settings, users=users, gateway=gateway, workspace=workspace, live=live)
    readers = Readers(console, workspace, threading.Event())
    try:
        router.put_hit("FJI", make_hit("h-1"))
        router.put_hit("FJI", make_hit("h-2", number="390"))
        router.put_hit("TON", make_hit("h-9", member="TON"))
        assert readers.ensure_readers() == ["FJI", "TON"]
        wait_until(lambda: ids(workspace, "FJI") == ["h-2", "h-1"] and ids(workspace, "TON") == ["h-9"], "the hits")
        # The console's own cursor moved; the contact point still has every hit.
        wait_until(lambda: gateway.outbox_lag("FJI")["console"] == 0, "the console's acknowledgement")
        assert gateway.outbox_lag("FJI")[""] == 2

        # An update of h-1 (its withdrawal) changes it in place.
        router.put_hit("FJI", make_hit("h-1", version=2, withdrawn=True))
        wait_until(lambda: workspace.row("FJI", "h-1").state == "withdrawn", "the withdrawal")

        # The hit page's view and the disposition form reach the router in the officer's name.
        browser = client_of(console)
        token = sign_in(browser, "FJI", "alice")
        assert browser.get("/hits/h-2").status_code == 200
        answer = browser.post("/hits/h-2/dispose", data={"csrf": token, "outcome": "true_match", "note": "gate 3"})
        assert answer.status_code == 303
        trail = [(e.event, e.hit_id, e.user) for e in gateway.audit_trail("FJI").events]
        assert ("viewed", "h-2", "alice") in trail and ("disposed", "h-2", "alice") in trail
        assert [(d.hit_id, d.user, d.note) for d in gateway.dispositions("FJI")] == [("h-2", "alice", "gate 3")]
        assert workspace.row("FJI", "h-2").state == "closed"
        assert browser.get("/hits/h-9").status_code == 404  # TON's hit, from FJI

        # A disposition recorded with the member's own tool closes the hit at the console's next poll.
        member_token = issue_token(router.settings, "member", "TON")
        with client.channel(router.settings.console_router) as channel:
            client.dispose(channel, member_token, "TON", "h-9", delivery_pb2.OUTCOME_FALSE_POSITIVE)
        readers.poll_dispositions()
        assert workspace.row("TON", "h-9").state == "closed" and workspace.row("TON", "h-9").disposed_by == ""
    finally:
        readers.close()

    # A console restarted later resumes after what it stored: nothing twice, nothing missed.
    router.put_hit("FJI", make_hit("h-3"))
    again = Readers(console, workspace, threading.Event())
    try:
        again.ensure_readers()
        wait_until(lambda: ids(workspace, "FJI") == ["h-3", "h-2", "h-1"], "the hit sent while it was down")
        assert [v.version for v in workspace.hit("FJI", "h-1").earlier] == [1]
        assert workspace.hit("FJI", "h-2").earlier == []
    finally:
        again.close()
        live.close()
        workspace.close()
        gateway.close()
