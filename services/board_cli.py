"""`apihub policy`: a member's board policy for interactive checks (iAPI): the template, a check, load and show.

`template` and `check` run offline (the policy language of services.board.policy, the one the hub runs); `load`
and `show` call the router's BoardAdmin service with the member's token, as `apihub rules load` does RulesAdmin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import grpc
import typer

from services.board.policy import PolicyError, PolicyLimits, parse_policy, template_text
from services.terminal import printable
from services.userfiles import InputFileError, read_text

policy_app = typer.Typer(
    help="Members' board policies for interactive checks (iAPI): template, check, load, show.", no_args_is_help=True
)

MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="Member loading the file (ISO alpha-3): fills the template placeholder MEMBER"),
]
# As services.cli's (that module registers this app: it cannot be imported from here at import time).
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="host:port of the hub's router (default from settings); TLS: see `apihub --help`"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="APIHUB_TOKEN", help="Bearer token (env APIHUB_TOKEN); see `apihub dev token`"),
]
FileArg = Annotated[Path, typer.Argument(help="The member's board policy (YAML)", exists=True, dir_okay=False)]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(printable(f"apihub: {message}"), err=True)
    raise typer.Exit(code)


def _read(path: Path) -> str:
    limits = PolicyLimits()
    try:
        return read_text(path, "board policy", limits.max_bytes)
    except InputFileError as exc:
        _fail(str(exc), 1)


@policy_app.command("template")
def template(member: MemberOpt = None) -> None:
    """Print the board policy template to copy and adapt (every key explained)."""
    typer.echo(template_text(member), nl=False)


@policy_app.command("check")
def check(file: FileArg, member: MemberOpt = None) -> None:
    """Validate a board policy; print each problem as FILE:LINE: message. Exit code 1 on any problem."""
    text = _read(file)
    try:
        policy = parse_policy(text, str(file), member, PolicyLimits())
    except PolicyError as exc:
        for problem in exc.problems:
            line = problem.field.removeprefix("line ")
            typer.echo(printable(f"{file}:{line}: {problem.description}"), err=True)
        raise typer.Exit(1) from None
    typer.echo(printable(f"{file}: ok, member {policy.owner} (digest {policy.digest})"))


@policy_app.command("load")
def load(
    file: FileArg,
    member: Annotated[str, typer.Option("--member", help="Owner member, ISO 3166-1 alpha-3")],
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Replace a member's board policy in the running hub: every profiler answers with it, no restart."""
    from services import client
    from services.cli import _as_member, _channel, _rpc_error

    settings, member, token = _as_member(member, token)
    text = _read(file)
    try:
        reply = client.load_board_policy(_channel(settings, server or settings.delivery_listen), token, member, text)
    except grpc.RpcError as exc:
        _rpc_error(exc)
    if reply.errors:
        for v in reply.errors:
            typer.echo(printable(f"{file}:{v.field.removeprefix('line ')}: {v.description}"), err=True)
        _fail(f"board policy not loaded: {len(reply.errors)} problems", 1)
    typer.echo(f"Loaded the board policy of {member} (digest {reply.digest}).")


@policy_app.command("show")
def show(
    member: Annotated[str, typer.Option("--member", help="Member, ISO 3166-1 alpha-3")],
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print the member's board policy as the hub holds it."""
    from services import client
    from services.cli import _as_member, _channel, _rpc_error

    settings, member, token = _as_member(member, token)
    try:
        text = client.board_policy(_channel(settings, server or settings.delivery_listen), token, member)
    except grpc.RpcError as exc:
        _rpc_error(exc)
    if not text:
        typer.echo(f"{member} has no board policy loaded: its interactive checks answer OK to board.", err=True)
        return
    # Line by line: the file's own line breaks kept, anything a terminal would act on removed.
    for line in text.splitlines():
        typer.echo(printable(line))
