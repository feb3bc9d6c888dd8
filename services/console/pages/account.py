"""Sign-in, sign-out and the language of the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import i18n
from services.console.deps import Officer, SignInRequired, console_of, officer, posting, render
from services.console.sessions import COOKIE

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/hits"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/hits", status_code=303)


def _language(request: Request) -> str:
    return i18n.language_of(request.cookies.get("apihub_lang") or request.query_params.get("lang"))


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    console = console_of(request)
    members = sorted(console.directory.members.values(), key=lambda m: m.name)
    try:  # signed in already: the page says as whom (and, like every page, carries the form token)
        who = officer(request)
    except SignInRequired:
        who = None
    return render(
        request,
        "sign_in.html",
        who,
        language=None if who else _language(request),
        members=members,
        next=_safe_next(next),
    )


@router.post("/sign-in")
def sign_in(
    request: Request,
    member: Annotated[str, Form(max_length=3)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2048)] = "/hits",
) -> Response:
    console = console_of(request)
    code, name = member.upper(), username.strip().lower()
    language = _language(request)
    client = request.client.host if request.client else "?"

    def refused(status_code: int, message: str) -> Response:
        with i18n.using(language):
            error = i18n.gettext(message)
        members = sorted(console.directory.members.values(), key=lambda m: m.name)
        return render(
            request,
            "sign_in.html",
            status_code=status_code,
            language=language,
            members=members,
            next=_safe_next(next),
            error=error,
            chosen=code,
            username=name,
        )

    if not console.sign_ins.allow(f"{code}/{name}", client):
        return refused(429, "Too many sign-in attempts. Wait a minute and try again.")
    user = console.users.verify(code, name, password)
    if user is None or code not in console.directory.members:
        console.sign_ins.failed(f"{code}/{name}", client)
        return refused(401, "Wrong member, user name or password.")
    chosen = request.cookies.get("apihub_lang")
    language = i18n.language_of(chosen, console.directory.members[code].language)
    session = console.sessions.start(code, name, language, user.stamp)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(console.sessions.max_age_s),
        httponly=True,
        samesite="strict",
        secure=console.settings.server_tls,
        path="/",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, who: Annotated[Officer, Depends(posting("analyst"))]) -> Response:
    console_of(request).sessions.end(who.session.id)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    """The console's language: for the session when signed in (form token checked), and remembered in a cookie
    for the sign-in page."""
    form = await request.form()
    language = i18n.language_of(str(form.get("language", "")))
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        who = officer(request)
        if form.get("csrf") != who.session.csrf:
            return RedirectResponse("/hits", status_code=303)
        session.language = language
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    response.set_cookie("apihub_lang", language, max_age=365 * 86400, samesite="strict", httponly=True, path="/")
    return response
