"""`apihub users`: the member console's officers, for operators (a member's first admin, a locked-out admin).

Writes the users topic directly (the same records the console's officers page writes), so it needs the hub's Kafka
settings, not a running console. Passwords are read from the terminal (asked twice) or, for scripts, from the first
line of standard input with --password-stdin; never from the command line, where other users of the machine could
read them.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

users_app = typer.Typer(
    help="The member console's officers (operators): add a member's first admin, list, disable, enable, passwords.",
    no_args_is_help=True,
)

MemberOpt = Annotated[str, typer.Option("--member", help="The officer's member (ISO 3166-1 alpha-3, e.g. FJI)")]
NameArg = Annotated[str, typer.Argument(help="User name: 1-64 characters of a-z, 0-9, '.', '_', '-'")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"apihub users: {message}", err=True)
    raise typer.Exit(code)


def _settings():
    from pydantic import ValidationError

    from services.config import HubSettings

    try:
        return HubSettings()
    except ValidationError as exc:
        _fail(f"bad settings: {exc.errors()[0].get('msg', exc)}")


def _member(settings, member: str) -> str:
    from services.directory import load_directory

    code = member.upper()
    if code not in load_directory(settings.directory_file):
        _fail(f"{code} is not a member in the directory")
    return code


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password (at least 12 characters)", hide_input=True, confirmation_prompt=True)


def _table(settings):
    """The users topic as it is now (its topic made first, on a new hub)."""
    from services.bus import ensure_topics
    from services.console.users import read_users
    from services.directory import load_directory

    ensure_topics(settings, load_directory(settings.directory_file).codes)
    return read_users(settings, "apihub-users-cli")


def _write(settings, user) -> None:
    from services.console.users import UserWriter

    writer = UserWriter(settings, "apihub-users-cli")
    try:
        writer.put(user)
    finally:
        writer.close()


@users_app.command("add")
def add(
    username: NameArg,
    member: MemberOpt,
    role: Annotated[str, typer.Option("--role", help="analyst, duty-officer or member-admin")] = "member-admin",
    password_stdin: StdinOpt = False,
) -> None:
    """Add an officer (by default a member admin, who then adds the others in the console)."""
    from services.console.users import UserError, new_user

    settings = _settings()
    code = _member(settings, member)
    if _table(settings).get(code, username) is not None:
        _fail(f"{code} already has an officer {username!r}: `apihub users passwd` sets a new password")
    try:
        user = new_user(code, username, role, _password(password_stdin))
    except UserError as exc:
        _fail(str(exc))
    _write(settings, user)
    scheme = "https" if settings.server_tls else "http"
    typer.echo(f"Added {user.role} {user.username} of {code}; they sign in at {scheme}://{settings.console_listen}.")


@users_app.command("list")
def list_users(member: Annotated[str | None, typer.Option("--member", help="Only this member's officers")] = None):
    """Officers, with their member, role and state (never a password hash)."""
    settings = _settings()
    table = _table(settings)
    codes = [member.upper()] if member else sorted(table.members() | {u.member for u in table.all()})
    for code in codes:
        for user in table.of_member(code):
            state = "disabled" if user.disabled else "active"
            typer.echo(f"{user.member}\t{user.username}\t{user.role}\t{state}\tsince {user.created_at}")


def _change(member: str, username: str, change) -> None:
    from services.console.users import UserError

    settings = _settings()
    code = _member(settings, member)
    user = _table(settings).get(code, username)
    if user is None:
        _fail(f"{code} has no officer {username!r} (`apihub users list --member {code}`)")
    try:
        _write(settings, change(user))
    except UserError as exc:
        _fail(str(exc))


@users_app.command("disable")
def disable(username: NameArg, member: MemberOpt) -> None:
    """Disable an officer: signed out of every console at once, and no sign-in until enabled again."""
    from dataclasses import replace

    _change(member, username, lambda u: replace(u, disabled=True))
    typer.echo(f"Disabled {username} of {member.upper()}.")


@users_app.command("enable")
def enable(username: NameArg, member: MemberOpt) -> None:
    """Enable a disabled officer again."""
    from dataclasses import replace

    _change(member, username, lambda u: replace(u, disabled=False))
    typer.echo(f"Enabled {username} of {member.upper()}.")


@users_app.command("passwd")
def passwd(username: NameArg, member: MemberOpt, password_stdin: StdinOpt = False) -> None:
    """Set an officer's password (a locked-out admin's, say)."""
    from services.console.users import with_password

    password = _password(password_stdin)
    _change(member, username, lambda u: with_password(u, password))
    typer.echo(f"New password set for {username} of {member.upper()}.")
