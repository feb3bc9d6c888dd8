"""Sign-in, sessions, the form token, security headers and languages of the console."""

from __future__ import annotations

from services.console.app import CSP
from services.console.sessions import COOKIE
from tests.console.conftest import PASSWORD, client_of, make_console, sign_in


def test_sign_in_page_is_served_with_a_strict_content_security_policy(client):
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text


def test_a_page_without_a_session_sends_the_browser_to_sign_in(client):
    answer = client.get("/officers")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in?next=/officers")


def test_sign_in_sets_an_httponly_strict_cookie_holding_no_token(client):
    answer = client.post("/sign-in", data={"member": "FJI", "username": "alice", "password": PASSWORD})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert value.count(".") == 0  # a random id, not a JWT


def test_wrong_password_and_wrong_member_are_refused_alike(client):
    wrong_password = client.post("/sign-in", data={"member": "FJI", "username": "alice", "password": "x" * 12})
    wrong_member = client.post("/sign-in", data={"member": "TON", "username": "alice", "password": PASSWORD})
    assert wrong_password.status_code == wrong_member.status_code == 401
    assert COOKIE not in wrong_password.headers.get("set-cookie", "")


def test_sign_in_attempts_are_limited_per_user_name_without_locking_out_another(console):
    client = client_of(console)
    answers = [
        client.post("/sign-in", data={"member": "FJI", "username": "alice", "password": "y" * 12}).status_code
        for _ in range(console.settings.console_sign_in_per_minute + 1)
    ]
    assert answers[-1] == 429 and 429 not in answers[:-1]
    # A colleague at the same address still signs in; alice's right password waits out the minute.
    assert sign_in(client_of(console), "FJI", "bob")
    right = client.post("/sign-in", data={"member": "FJI", "username": "alice", "password": PASSWORD})
    assert right.status_code == 429


def test_a_disabled_officer_is_signed_out_at_once(console):
    from dataclasses import replace

    client = client_of(console)
    sign_in(client, "FJI", "alice")
    alice = console.users.get("FJI", "alice")
    console.users.apply(alice.key.encode(), replace(alice, disabled=True).to_json())
    assert client.get("/sign-in").status_code == 200
    assert client.get("/officers").status_code == 303


def test_sign_out_needs_the_form_token(client):
    token = sign_in(client, "FJI", "alice")
    assert client.post("/sign-out", data={"csrf": "forged"}).status_code == 403
    assert client.post("/sign-out", data={"csrf": token}).status_code == 303
    assert client.get("/officers").status_code == 303


def test_the_next_page_after_sign_in_stays_on_this_console(client):
    answer = client.post(
        "/sign-in", data={"member": "FJI", "username": "alice", "password": PASSWORD, "next": "//evil.example/x"}
    )
    assert answer.headers["location"] == "/hits"


def test_french_from_the_language_cookie_and_for_a_french_speaking_member():
    console = make_console()
    client = client_of(console)
    client.post("/language", data={"language": "fr", "next": "/sign-in"})
    assert "Se connecter" in client.get("/sign-in").text
    # New Caledonia's officers see French by default.
    from services.console.users import new_user

    user = new_user("NCL", "marie", "analyst", PASSWORD)
    console.users.apply(user.key.encode(), user.to_json())
    fresh = client_of(console)
    sign_in(fresh, "NCL", "marie")
    assert 'lang="fr"' in fresh.get("/sign-in").text


def test_request_bodies_are_bounded(client):
    from services.console.app import MAX_BODY_BYTES

    answer = client.post("/sign-in", content=b"x", headers={"content-length": str(MAX_BODY_BYTES + 1)})
    assert answer.status_code == 413


def test_a_new_password_ends_the_officers_sessions(console):
    from services.console.users import with_password

    client = client_of(console)
    sign_in(client, "FJI", "carol")
    assert client.get("/officers").status_code == 200
    carol = console.users.get("FJI", "carol")
    console.users.apply(carol.key.encode(), with_password(carol, "another long password").to_json())
    assert client.get("/officers").status_code == 303
