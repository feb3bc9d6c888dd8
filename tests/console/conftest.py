"""The console's test parts: an app built in process around a Console whose officers are given here.

``console_app(gateway=..., workspace=...)`` builds the app; ``sign_in(client, member, username)`` signs a TestClient
in and returns the session's form token (CSRF). Officers: FJI alice (analyst), FJI bob (duty-officer), FJI carol
(member-admin), TON tevita (member-admin), TON sione (analyst); each with the password PASSWORD.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from services.config import HubSettings
from services.console.app import create_app, templates
from services.console.deps import Console
from services.console.sessions import Sessions, SignInLimiter
from services.console.users import UserTable, new_user
from services.directory import load_directory

PASSWORD = "correct horse battery"
OFFICERS = [
    ("FJI", "alice", "analyst"),
    ("FJI", "bob", "duty-officer"),
    ("FJI", "carol", "member-admin"),
    ("TON", "tevita", "member-admin"),
    ("TON", "sione", "analyst"),
]


def user_table(officers=OFFICERS) -> UserTable:
    table = UserTable()
    for member, name, role in officers:
        user = new_user(member, name, role, PASSWORD)
        table.apply(user.key.encode(), user.to_json())
    return table


def make_console(settings: HubSettings | None = None, **parts) -> Console:
    settings = settings or HubSettings(console_metrics_port=-1)
    return Console(
        settings=settings,
        directory=parts.pop("directory", None) or load_directory(settings.directory_file),
        users=parts.pop("users", None) or user_table(),
        sessions=Sessions(settings.console_session_idle_minutes * 60, settings.console_session_max_hours * 3600),
        sign_ins=SignInLimiter(settings.console_sign_in_per_minute),
        templates=templates(),
        **parts,
    )


def client_of(console: Console) -> TestClient:
    return TestClient(create_app(console), base_url="http://127.0.0.1:8080", follow_redirects=False)


def sign_in(client: TestClient, member: str, username: str, password: str = PASSWORD) -> str:
    """Signs the client in; returns the session's form token (CSRF), read from a page as a browser would."""
    answer = client.post("/sign-in", data={"member": member, "username": username, "password": password})
    assert answer.status_code == 303, answer.text
    page = client.get("/sign-in")  # any page of the console carries the token once signed in
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "no form token on the page"
    return found.group(1)


@pytest.fixture
def console() -> Console:
    return make_console()


@pytest.fixture
def client(console) -> TestClient:
    return client_of(console)
