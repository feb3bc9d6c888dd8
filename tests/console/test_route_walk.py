"""Every route the console actually serves, walked as one member's officer (Tonga's admin) against another member's
(Fiji's) ids and data: each answers without a trace of Fiji's hit, changes nothing of Fiji's, and the console never
asks the hub for anything of Fiji's on Tonga's behalf.

The routes come from the application itself, so a page added later is walked too; a path parameter this walk does
not know fails the test, so whoever adds one says here which other member's id to try in it.
"""

from __future__ import annotations

import time

import pytest
from fastapi.routing import APIRoute

from services.config import HubSettings
from services.console.app import create_app
from services.console.gateway import NotFoundError
from services.console.live import Live
from services.console.pages.lists import CurrentList, make_preview, previews_of
from services.console.workspace import Workspace
from tests.console.conftest import PASSWORD, client_of, make_console, sign_in, user_table
from tests.console.test_workspace import FakeGateway, delivery, make_hit

FJI_HIT = "h-f1f1f1f1f1f1f1f1f1f1f1f1"
TON_HIT = "h-7070707070707070707070a0"
FJI_SURNAME = "VAKACEGU"
# What would show that Tonga's officer saw Fiji's hit: its id, its traveller, its flight.
FJI_MARKERS = (FJI_HIT, FJI_SURNAME, "FJ977")


class RecordingGateway:
    """The hub's gateway as the walk sees it: every call's member recorded; calls the fake does not script answer
    "not found" (as the router answers for what a member cannot see)."""

    def __init__(self) -> None:
        self.inner = FakeGateway()
        self.members: list[tuple[str, str]] = []

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            member = kwargs.get("member", args[0] if args else "")
            self.members.append((name, member))
            method = getattr(self.inner, name, None)
            if method is None:
                raise NotFoundError(f"nothing for {member}")
            return method(*args, **kwargs)

        return call

    def close(self) -> None:
        pass


class RecordingWriter:
    """The users topic's writer as the walk sees it: what the console would write."""

    def __init__(self) -> None:
        self.written = []

    def put(self, user) -> None:
        self.written.append(user)

    def close(self) -> None:
        pass


@pytest.fixture
def walk(tmp_path):
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", retention_days=30, on_change=live.publish)
    workspace.store("FJI", delivery(0, make_hit(FJI_HIT, number="977", surname=FJI_SURNAME)))
    workspace.store("TON", delivery(0, make_hit(TON_HIT, member="TON", carrier="WR", number="51", surname="FIFITA")))
    gateway = RecordingGateway()
    # No broker behind these settings: a page that would read Kafka (the backtest) fails fast, as with an outage.
    settings = HubSettings(kafka_bootstrap="127.0.0.1:1", console_metrics_port=-1)
    console = make_console(
        settings, users=user_table(), gateway=gateway, workspace=workspace, live=live, user_writer=RecordingWriter()
    )
    fiji_preview = make_preview("FJI", "bob", 1, CurrentList([], 0, ""), [], [], time.monotonic())
    previews_of(console).put(fiji_preview)
    yield console, {"hit_id": FJI_HIT, "preview_id": fiji_preview.id, "username": "alice"}
    live.close()
    workspace.close()


def _api_routes(routes) -> list[APIRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included page router (the pages have no path prefix)
            found.extend(_api_routes(route.original_router.routes))
    return found


def _routes(console) -> list[tuple[str, str]]:
    app = create_app(console).app  # the FastAPI application inside the console's guard
    return [(m, r.path) for r in _api_routes(app.routes) for m in sorted(r.methods - {"HEAD"})]


# A form that every POST route can read: whatever fields it wants, with values that would act if allowed.
FORM = {
    "outcome": "OUTCOME_FALSE_POSITIVE",
    "note": "walk",
    "reason": "walk",
    "action": "disable",
    "role": "analyst",
    "password": "a long enough password",
    "username": "walker",
    "member": "TON",
    "language": "en",
    "query": FJI_SURNAME,
    "yaml": "rules: []\n",
    "scope": "regional",
}


def test_every_route_refuses_another_members_ids_and_shows_nothing_of_its_hits(walk):
    console, other_ids = walk
    routes = _routes(console)
    assert len(routes) >= 20, routes  # the walk sees the whole console, not an empty app
    fiji_state = console.workspace.row("FJI", FJI_HIT)
    walked = []
    for method, path in routes:
        if path == "/hits/live":
            continue  # a stream: walked last, below
        client = client_of(console)
        token = sign_in(client, "TON", "tevita")  # Tonga's member admin: every role's pages
        names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        unknown = [n for n in names if n not in other_ids]
        assert not unknown, f"{method} {path}: say in this walk which other member's id to try as {unknown}"
        url = path.format(**other_ids)
        if method == "GET":
            answer = client.get(url)
        else:
            files = {"file": ("list.csv", b"entry_id,surname\nTON-1,FIFITA\n", "text/csv")}
            answer = client.request(
                method, url, data={**FORM, "csrf": token}, files=files if "preview" in path else None
            )
        walked.append((method, path, answer.status_code))
        assert answer.status_code < 500, (method, path, answer.status_code, answer.text[-500:])
        if names:
            assert answer.status_code in (403, 404), (method, path, answer.status_code)
        body = answer.text.replace(url, "")  # the page may name the address asked for (its language form does)
        for marker in FJI_MARKERS:
            assert marker not in body, f"{method} {path} shows {marker!r} of Fiji's hit to Tonga's officer"
    # The live stream: Tonga's officer receives nothing of Fiji's (the stream ends when the console shuts it).
    client = client_of(console)
    sign_in(client, "TON", "tevita")
    console.live.close()
    stream = client.get("/hits/live")
    assert all(marker not in stream.text for marker in FJI_MARKERS)
    # Nothing of Fiji's changed: its hit, its officer, its preview.
    assert console.workspace.row("FJI", FJI_HIT) == fiji_state
    alice = console.users.get("FJI", "alice")
    assert not alice.disabled and alice.role == "analyst"
    assert console.users.verify("FJI", "alice", PASSWORD) is not None
    assert previews_of(console).get("FJI", "bob", other_ids["preview_id"]) is not None
    assert all(user.member == "TON" for user in console.user_writer.written)
    # And the console never asked the hub for anything of another member on Tonga's behalf.
    asked = {member.upper() for _, member in console.gateway.members if isinstance(member, str)}
    assert asked <= {"TON"}, (asked, console.gateway.members)
    assert {p for _, p, _ in walked} >= {"/hits/{hit_id}", "/lists/preview/{preview_id}", "/officers/{username}"}
