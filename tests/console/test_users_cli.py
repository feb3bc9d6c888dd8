"""`apihub users` against the real broker: officers written to the users topic as the console reads them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.bus import Topics, read_to_end
from services.cli import app
from services.console.users import UserTable

pytestmark = pytest.mark.integration


def _env(settings) -> dict[str, str]:
    return {"APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "APIHUB_TOPIC_PREFIX": settings.topic_prefix}


def _users(settings, *args, password: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(app, ["users", *args], input=password + "\n", env=_env(settings))
    return result.exit_code, result.output


def _table(settings) -> UserTable:
    table = UserTable()
    for record in read_to_end(settings, Topics(settings.topic_prefix).console_users, "test-users"):
        table.apply(record.key, record.value)
    return table


def test_an_operator_adds_a_members_first_admin_who_can_then_sign_in(settings):
    code, out = _users(settings, "add", "alice", "--member", "fji", "--password-stdin", password="a long passphrase")
    assert code == 0, out
    assert "Added member-admin alice of FJI" in out
    table = _table(settings)
    assert table.verify("FJI", "alice", "a long passphrase").role == "member-admin"
    assert table.verify("FJI", "alice", "not the passphrase") is None
    assert "a long passphrase" not in table.get("FJI", "alice").to_json().decode()


def test_bad_names_roles_passwords_and_members_are_refused_with_the_reason(settings):
    assert _users(settings, "add", "Alice!", "--member", "FJI", "--password-stdin", password="x" * 12)[0] == 2
    code, out = _users(
        settings, "add", "bob", "--member", "FJI", "--role", "boss", "--password-stdin", password="x" * 12
    )
    assert code == 2 and "role must be one of" in out
    code, out = _users(settings, "add", "bob", "--member", "FJI", "--password-stdin", password="short")
    assert code == 2 and "12 to 1024 characters" in out
    code, out = _users(settings, "add", "bob", "--member", "XXX", "--password-stdin", password="x" * 12)
    assert code == 2 and "not a member" in out
    assert _table(settings).of_member("FJI") == []


def test_disable_enable_and_a_new_password(settings):
    assert (
        _users(
            settings,
            "add",
            "sione",
            "--member",
            "TON",
            "--role",
            "analyst",
            "--password-stdin",
            password="first passphrase",
        )[0]
        == 0
    )
    assert _users(settings, "disable", "sione", "--member", "TON")[0] == 0
    assert _table(settings).verify("TON", "sione", "first passphrase") is None
    code, out = _users(settings, "list", "--member", "TON")
    assert code == 0 and "sione\tanalyst\tdisabled" in out
    assert _users(settings, "enable", "sione", "--member", "TON")[0] == 0
    assert (
        _users(settings, "passwd", "sione", "--member", "TON", "--password-stdin", password="second passphrase")[0] == 0
    )
    table = _table(settings)
    assert table.verify("TON", "sione", "first passphrase") is None
    assert table.verify("TON", "sione", "second passphrase") is not None
    code, out = _users(settings, "disable", "nobody", "--member", "TON")
    assert code == 2 and "no officer 'nobody'" in out
