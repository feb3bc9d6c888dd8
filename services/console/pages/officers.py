"""A member admin's page of the member's officers: add one, change a role, disable, enable, set a new password.

Only the admin's own member's officers are listed or changed; an admin cannot disable or demote themselves (a member
must keep an admin: `apihub users add` makes one when none is left). Changes go to the users topic and apply in every
console process; a disabled officer, or one whose password was changed, is signed out at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from services.console import i18n
from services.console.deps import MemberAdmin, PostingMemberAdmin, console_of, render
from services.console.users import ROLES, UserError, new_user, with_password

router = APIRouter()


def _page(request: Request, who, status_code: int = 200, **context) -> Response:
    console = console_of(request)
    return render(
        request,
        "officers.html",
        who,
        status_code=status_code,
        section="officers",
        officers=console.users.of_member(who.code),
        roles=ROLES,
        **context,
    )


def _save(console, user) -> None:
    """To the users topic, and at once in this process (the topic brings it to the other consoles)."""
    console.user_writer.put(user)
    console.users.apply(user.key.encode(), user.to_json())


@router.get("/officers")
def officers(request: Request, who: MemberAdmin, done: str = "") -> Response:
    notices = {"added": "Officer added.", "changed": "Officer changed."}
    return _page(request, who, notice=i18n.gettext(notices[done]) if done in notices else "")


@router.post("/officers")
def add_officer(
    request: Request,
    who: PostingMemberAdmin,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    console = console_of(request)
    name = username.strip().lower()
    if console.users.get(who.code, name) is not None:
        return _page(request, who, 409, error=i18n.gettext("An officer of that name exists."))
    try:
        user = new_user(who.code, name, role, password)
    except UserError as exc:
        return _page(request, who, 422, error=i18n.gettext(str(exc)))
    _save(console, user)
    return RedirectResponse("/officers?done=added", status_code=303)


@router.post("/officers/{username}")
def change_officer(
    request: Request,
    who: PostingMemberAdmin,
    username: str,
    action: Annotated[str, Form(max_length=16)],
    role: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    console = console_of(request)
    user = console.users.get(who.code, username)
    if user is None:
        raise HTTPException(404)
    if user.username == who.username and action in ("disable", "role"):
        return _page(request, who, 409, error=i18n.gettext("You cannot disable or change your own account here."))
    try:
        if action == "disable":
            changed = replace(user, disabled=True)
        elif action == "enable":
            changed = replace(user, disabled=False)
        elif action == "role" and role in ROLES:
            changed = replace(user, role=role)
        elif action == "password":
            changed = with_password(user, password)
        else:
            raise HTTPException(422)
    except UserError as exc:
        return _page(request, who, 422, error=i18n.gettext(str(exc)))
    _save(console, changed)
    if action in ("disable", "password"):
        console.sessions.end_user(user.member, user.username)
    return RedirectResponse("/officers?done=changed", status_code=303)
