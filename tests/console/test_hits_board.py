"""Interactive hits on the hit page: the member's board directive (its own alone), its override of the hit, the
"Let board" form and "Withdraw override" for duty officers and member admins only (checked on the server), the
override reaching the router in the officer's name, another member's hit id answered 404.

The first tests use an in-memory gateway; the last ones the real router on the session's broker (tests/routerkit.py),
with the hit put in the member's outbox and the console's workspace as the console's reader would have."""

from __future__ import annotations

import pytest

from services.console.gateway import InvalidRequestError, NotFoundError
from services.console.live import Live
from services.console.workspace import Workspace
from services.wire import check_pb2, delivery_pb2
from tests import routerkit
from tests.console.conftest import client_of, make_console, sign_in, user_table
from tests.console.test_workspace import FakeGateway, delivery, make_hit

FJI_HIT = "h-f0000000000000000000b001"
FJI_BATCH_HIT = "h-f0000000000000000000b002"
TON_HIT = "h-70000000000000000000b001"

router = routerkit.router


def interactive_hit(hit_id: str, member: str = "FJI", **directives: int):
    hit = make_hit(hit_id, member=member)
    hit.interactive = True
    for code, directive in (directives or {member: check_pb2.DIRECTIVE_DO_NOT_BOARD}).items():
        hit.directives[code] = directive
    return hit


class BoardGateway(FakeGateway):
    """FakeGateway with the member's overrides in memory, answering as the router does."""

    def __init__(self) -> None:
        super().__init__()
        self.overridden: list[tuple] = []
        self.standing: dict[tuple[str, str], delivery_pb2.BoardOverride] = {}

    def override(self, member, user, hit_id, reason="", revoke=False):
        self.overridden.append((member, user, hit_id, reason, revoke))
        if revoke and (member, hit_id) not in self.standing:
            raise InvalidRequestError(f"{member} has no standing override of hit {hit_id}")
        given = delivery_pb2.BoardOverride(member=member, hit_id=hit_id, reason=reason, user=user, revoked=revoke)
        given.at.GetCurrentTime()
        self.standing[member, hit_id] = given
        return given

    def overrides(self, member, hit_id=""):
        return [o for (m, h), o in self.standing.items() if m == member and (not hit_id or h == hit_id)]


@pytest.fixture(scope="module")
def officers():
    return user_table()


@pytest.fixture
def parts(tmp_path, officers):
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", retention_days=30, on_change=live.publish)
    workspace.store("FJI", delivery(0, interactive_hit(FJI_HIT)))
    workspace.store("FJI", delivery(1, make_hit(FJI_BATCH_HIT)))
    workspace.store("TON", delivery(0, interactive_hit(TON_HIT, member="TON")))
    console = make_console(users=officers, gateway=BoardGateway(), workspace=workspace, live=live)
    yield console
    live.close()
    workspace.close()


def signed_in(console, member: str, username: str):
    client = client_of(console)
    return client, sign_in(client, member, username)


def test_the_hit_page_shows_the_members_directive_and_the_form_only_to_duty_officers(parts):
    for username, form in (("alice", False), ("bob", True), ("carol", True)):
        client, _ = signed_in(parts, "FJI", username)
        page = client.get(f"/hits/{FJI_HIT}")
        assert page.status_code == 200
        assert "Board directive" in page.text and "DO NOT BOARD" in page.text
        assert (f'action="/hits/{FJI_HIT}/override"' in page.text) is form, username
        assert ("Let board" in page.text) is form, username
        assert "Withdraw override" not in page.text


def test_a_batch_hit_shows_no_directive_and_takes_no_override(parts):
    client, token = signed_in(parts, "FJI", "bob")
    page = client.get(f"/hits/{FJI_BATCH_HIT}")
    assert "Board directive" not in page.text and "/override" not in page.text
    answer = client.post(f"/hits/{FJI_BATCH_HIT}/override", data={"csrf": token, "reason": "checked"})
    assert answer.status_code == 422
    assert parts.gateway.overridden == []


def test_only_the_members_own_directive_is_shown_even_from_a_copy_that_holds_others(parts):
    leaky = interactive_hit(
        "h-f0000000000000000000b003", FJI=check_pb2.DIRECTIVE_OK_TO_BOARD, TON=check_pb2.DIRECTIVE_DO_NOT_BOARD
    )
    parts.workspace.store("FJI", delivery(2, leaky))
    client, _ = signed_in(parts, "FJI", "bob")
    page = client.get("/hits/h-f0000000000000000000b003")
    assert "OK TO BOARD" in page.text and "DO NOT BOARD" not in page.text
    assert 'action="/hits/h-f0000000000000000000b003/override"' not in page.text  # nothing to lift


def test_let_board_reaches_the_gateway_in_the_officers_name_and_can_be_withdrawn(parts):
    client, token = signed_in(parts, "FJI", "bob")
    answer = client.post(f"/hits/{FJI_HIT}/override", data={"csrf": token, "reason": " passport seen by the desk "})
    assert answer.status_code == 303 and answer.headers["location"] == f"/hits/{FJI_HIT}?done=overridden"
    assert parts.gateway.overridden == [("FJI", "bob", FJI_HIT, "passport seen by the desk", False)]
    page = client.get(answer.headers["location"])
    assert "Let board by bob" in page.text and "passport seen by the desk" in page.text
    assert "Withdraw override" in page.text and f'action="/hits/{FJI_HIT}/override"' not in page.text
    # An analyst sees the override, and no button.
    analyst, _ = signed_in(parts, "FJI", "alice")
    seen = analyst.get(f"/hits/{FJI_HIT}").text
    assert "Let board by bob" in seen and "Withdraw override" not in seen

    answer = client.post(f"/hits/{FJI_HIT}/override/withdraw", data={"csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == f"/hits/{FJI_HIT}?done=withdrawn"
    assert parts.gateway.overridden[-1] == ("FJI", "bob", FJI_HIT, "", True)
    page = client.get(answer.headers["location"]).text
    assert "Override withdrawn by bob" in page and f'action="/hits/{FJI_HIT}/override"' in page


def test_an_analyst_is_refused_on_the_server_and_a_form_needs_its_token_and_a_reason(parts):
    client, token = signed_in(parts, "FJI", "alice")
    assert client.post(f"/hits/{FJI_HIT}/override", data={"csrf": token, "reason": "x"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/override/withdraw", data={"csrf": token}).status_code == 403
    client, token = signed_in(parts, "FJI", "bob")
    assert client.post(f"/hits/{FJI_HIT}/override", data={"reason": "x"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/override", data={"csrf": "forged", "reason": "x"}).status_code == 403
    assert client.post(f"/hits/{FJI_HIT}/override", data={"csrf": token, "reason": "  "}).status_code == 422
    assert client.post(f"/hits/{FJI_HIT}/override", data={"csrf": token, "reason": "a\nb"}).status_code == 422
    assert parts.gateway.overridden == []
    # Nothing to withdraw: the router's answer is shown on the page.
    page = client.post(f"/hits/{FJI_HIT}/override/withdraw", data={"csrf": token})
    assert page.status_code == 422 and "no standing override" in page.text


def test_another_members_hit_id_answers_404_and_never_reaches_the_gateway(parts):
    client, token = signed_in(parts, "FJI", "bob")
    for path in (f"/hits/{TON_HIT}/override", f"/hits/{TON_HIT}/override/withdraw", "/hits/h-nosuch/override"):
        assert client.post(path, data={"csrf": token, "reason": "x"}).status_code == 404, path
    assert parts.gateway.overridden == []


def test_the_directive_and_the_form_in_french(parts):
    client, token = signed_in(parts, "FJI", "bob")
    client.post("/language", data={"language": "fr", "next": "/hits", "csrf": token})
    page = client.get(f"/hits/{FJI_HIT}").text
    assert "Consigne d'embarquement" in page and "NE PAS EMBARQUER" in page
    assert "Autoriser l&#39;embarquement" in page or "Autoriser l'embarquement" in page


def test_an_override_that_cannot_be_read_leaves_the_page_and_hides_the_form(parts):
    from services.console.gateway import RouterUnavailableError

    def unavailable(*_args, **_kwargs):
        raise RouterUnavailableError("the hub's broker is unavailable (KafkaTimeoutError); retry")

    parts.gateway.overrides = unavailable
    client, _ = signed_in(parts, "FJI", "bob")
    page = client.get(f"/hits/{FJI_HIT}")
    assert page.status_code == 200 and "could not be read" in page.text and "DO NOT BOARD" in page.text
    assert f'action="/hits/{FJI_HIT}/override"' not in page.text


# -- through the real router -----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_let_board_reaches_the_router_with_the_officers_name_and_another_member_gets_404(router, tmp_path):
    gateway = router.gateway()
    live = Live()
    workspace = Workspace(tmp_path / "console.sqlite", 30, on_change=live.publish)
    try:
        hit = interactive_hit("h-f0000000000000000000b010")
        router.put_hit("FJI", hit)  # delivered to Fiji: in its outbox, and the router's ledger says so
        workspace.store("FJI", delivery(0, hit))
        users = user_table([("FJI", "bob", "duty-officer"), ("TON", "tevita", "member-admin")])
        console = make_console(router.settings, users=users, gateway=gateway, workspace=workspace, live=live)
        browser = client_of(console)
        token = sign_in(browser, "FJI", "bob")
        answer = browser.post(f"/hits/{hit.hit_id}/override", data={"csrf": token, "reason": "cleared by the desk"})
        assert answer.status_code == 303, answer.text
        [given] = gateway.overrides("FJI", hit.hit_id)
        assert (given.user, given.reason, given.revoked) == ("bob", "cleared by the desk", False)
        trail = [(e.event, e.hit_id, e.detail, e.user) for e in gateway.audit_trail("FJI").events]
        assert ("overridden", hit.hit_id, "override", "bob") in trail
        assert "Let board by bob" in browser.get(answer.headers["location"]).text

        assert browser.post(f"/hits/{hit.hit_id}/override/withdraw", data={"csrf": token}).status_code == 303
        assert [o.revoked for o in gateway.overrides("FJI", hit.hit_id)] == [True]

        # Tonga's officer: Fiji's hit id is not found on the console, nor at the router for Tonga.
        other = client_of(console)
        other_token = sign_in(other, "TON", "tevita")
        assert other.post(f"/hits/{hit.hit_id}/override", data={"csrf": other_token, "reason": "x"}).status_code == 404
        with pytest.raises(NotFoundError):
            gateway.override("TON", "tevita", hit.hit_id, "x")
        assert gateway.overrides("TON") == []
    finally:
        live.close()
        workspace.close()
        gateway.close()
