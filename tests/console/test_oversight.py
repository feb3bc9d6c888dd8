"""The oversight pages (/oversight, /oversight/audit) against a real router on the session's broker: the member's
outbox per reader, the precision of its own rules and entries, its audit trail with the officers' names (an officer
taking a hit on the hit page among them), paged;
duty officers and member admins only; the member's own records only; French; a router that cannot answer is said
in place.

What the router's worker would have written (outbox copies, delivery records) is written straight to the topics.
Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.config import HubSettings
from services.console.gateway import HubGateway
from services.console.live import Live
from services.console.workspace import Workspace
from services.wire import delivery_pb2
from tests import routerkit
from tests.console.conftest import client_of, make_console, sign_in
from tests.console.test_workspace import delivery, make_hit

TEMPLATES = Path(__file__).parents[2] / "services" / "console" / "templates"


router = routerkit.router
gateway = routerkit.gateway


@pytest.fixture
def hub(router):
    """The test's router with the records of three hits."""
    for hit_id, member, reasons in (
        ("h-fji-1", "FJI", ["watchlist:FJI:FJI-WL-7", "rule:TON:TON-R"]),
        ("h-fji-2", "FJI", ["rule:FJI:FJI-CREW"]),
        ("h-ton-1", "TON", ["rule:TON:TON-R"]),
    ):
        router.put_hit(member, hit_id, reasons)
    return router


@pytest.fixture
def client(hub, gateway):
    return client_of(make_console(HubSettings(console_metrics_port=-1), gateway=gateway))


def _work(g: HubGateway) -> None:
    """What officers did: Fiji's alice viewed, took and disposed its hits, Tonga's sione disposed Tonga's."""
    g.record_view("FJI", "alice", "h-fji-1")
    g.take("FJI", "alice", "h-fji-1")
    g.dispose("FJI", "alice", "h-fji-1", delivery_pb2.OUTCOME_TRUE_MATCH)
    g.dispose("FJI", "alice", "h-fji-2", delivery_pb2.OUTCOME_FALSE_POSITIVE)
    g.dispose("TON", "sione", "h-ton-1", delivery_pb2.OUTCOME_FALSE_POSITIVE)
    g.ack("FJI", 0)  # the console's reader acknowledged Fiji's first hit


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/oversight", "/oversight/audit"])
def test_oversight_is_for_duty_officers_and_member_admins(client, path):
    assert client.get(path).status_code == 303  # signed out: to the sign-in page
    sign_in(client, "FJI", "alice")  # an analyst
    assert client.get(path).status_code == 403
    for who in ("bob", "carol"):  # duty officer, member admin
        sign_in(client, "FJI", who)
        assert client.get(path).status_code == 200


@pytest.mark.integration
def test_the_overview_shows_the_outbox_per_reader_and_the_precision_of_the_members_own_reasons(hub, gateway, client):
    _work(gateway)
    sign_in(client, "FJI", "bob")
    page = client.get("/oversight")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Contact point" in text and "This console" in text and "Command line" in text
    assert "never acknowledged" in text  # the contact point and `apihub hits follow` never acknowledged
    assert re.search(r"This console 1 1", text)  # resumes at cursor 1, one hit not acknowledged
    assert "FJI-WL-7" in text and "FJI-CREW" in text and "100%" in text and "0%" in text
    assert "TON-R" not in text  # Tonga's rule on Fiji's hit is Tonga's business


@pytest.mark.integration
def test_the_audit_trail_names_the_officers_newest_first_and_pages(hub, gateway, client):
    _work(gateway)
    sign_in(client, "FJI", "carol")
    text = _text(client.get("/oversight/audit").text)
    assert text.index("Hit disposed") < text.index("Hit taken in hand") < text.index("Traveller viewed")  # newest first
    assert "h-fji-1" in text and "h-fji-2" in text and "alice" in text and "true_match" in text
    assert "Hits acknowledged" in text and "console" in text
    assert "h-ton-1" not in text and "sione" not in text  # Tonga's trail is not Fiji's

    # Older pages follow the link the page gives, until there is none.
    seen, path = [], "/oversight/audit"
    for _ in range(20):
        page = client.get(path)
        assert page.status_code == 200
        seen.append(page.text)
        found = re.search(r'href="(/oversight/audit\?before=\d+)"', page.text)
        if not found:
            break
        path = found.group(1)
    assert "h-fji-2" in seen[0]
    assert client.get("/oversight/audit?before=-1").status_code == 422


@pytest.mark.integration
def test_another_members_officer_sees_only_that_members_trail(hub, gateway, client):
    _work(gateway)
    sign_in(client, "TON", "tevita")
    text = _text(client.get("/oversight/audit").text)
    assert "h-ton-1" in text and "sione" in text
    assert "h-fji" not in text and "alice" not in text
    overview = _text(client.get("/oversight").text)
    assert "TON-R" in overview and "FJI-WL-7" not in overview


@pytest.mark.integration
def test_oversight_in_french(hub, gateway, client):
    _work(gateway)
    csrf = sign_in(client, "FJI", "bob")
    client.post("/language", data={"language": "fr", "csrf": csrf, "next": "/oversight"})
    text = _text(client.get("/oversight").text)
    assert "Point de contact" in text and "Précision de vos règles" in text and "100 %" in text.replace("\xa0", " ")
    audit = _text(client.get("/oversight/audit").text)
    assert "Journal d'audit" in audit.replace("&#39;", "'") and "Alerte traitée" in audit
    assert "Alerte prise en charge" in audit and "prise en charge et traitée" in audit


@pytest.mark.integration
def test_im_on_it_on_the_hit_page_is_in_the_members_audit_trail(hub, gateway, tmp_path):
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", retention_days=30, on_change=live.publish)
    try:
        # The console read Fiji's second hit at cursor 1 of Fiji's outbox.
        workspace.store("FJI", delivery(1, make_hit("h-fji-2")))
        console = make_console(HubSettings(console_metrics_port=-1), gateway=gateway, workspace=workspace, live=live)
        alice = client_of(console)
        csrf = sign_in(alice, "FJI", "alice")
        answer = alice.post("/hits/h-fji-2/take", data={"csrf": csrf})
        assert answer.status_code == 303, answer.text
        assert workspace.row("FJI", "h-fji-2").taken_by == "alice"
        # Tonga's hit is not Fiji's to take: 404, and nothing written anywhere.
        assert alice.post("/hits/h-ton-1/take", data={"csrf": csrf}).status_code == 404
        carol = client_of(console)
        sign_in(carol, "FJI", "carol")
        text = _text(carol.get("/oversight/audit").text)
        assert re.search(r"Hit taken in hand h-fji-2 alice", text)
        assert "h-ton-1" not in text
        events = [(e.event, e.user, e.hit_id) for e in gateway.audit_trail("FJI").events]
        assert events == [("taken", "alice", "h-fji-2")]
    finally:
        live.close()
        workspace.close()


def test_a_router_that_cannot_answer_is_said_in_place():
    gateway = HubGateway(HubSettings(console_router="127.0.0.1:1"), timeout_s=5)
    try:
        client = client_of(make_console(HubSettings(console_metrics_port=-1), gateway=gateway))
        sign_in(client, "FJI", "bob")
        for path in ("/oversight", "/oversight/audit"):
            page = client.get(path)
            assert page.status_code == 200
            assert "The hub cannot say now" in page.text and 'role="alert"' in page.text
    finally:
        gateway.close()


@pytest.mark.parametrize("name", ["oversight.html", "oversight_audit.html"])
def test_the_templates_have_no_inline_script_or_style(name):
    template = (TEMPLATES / name).read_text()
    assert "<script" not in template and "<style" not in template and "style=" not in template
    assert not re.search(r"\son[a-z]+=", template)  # no event handlers
    assert '{% extends "base.html" %}' in template
