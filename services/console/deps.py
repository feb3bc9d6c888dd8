"""What every console page uses: the console's parts, the signed-in officer, role and form-token checks, rendering.

A page declares what it needs as a FastAPI dependency, and the check happens on the server for every request:

    @router.get("/hits/{hit_id}")
    def hit_page(request: Request, officer: Analyst, hit_id: str): ...      # signed in, role analyst or above

    @router.post("/rules/load")
    async def load(request: Request, officer: Annotated[Officer, Depends(posting("duty-officer"))]): ...
                                                                            # and the form's CSRF token checked

Everything an officer reads or changes belongs to ``officer.member``: a page looks up ids within that member only and
answers 404 for anything else, exactly as for an id that does not exist (services.console.app's route walk test
checks every route against another member's ids).
"""

# No `from __future__ import annotations`: FastAPI reads the nested dependencies' annotations at run time.
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from services.console import i18n
from services.console.sessions import COOKIE, Session, Sessions, SignInLimiter
from services.console.users import User, UserTable
from services.directory import Directory, Member

if TYPE_CHECKING:
    from services.config import HubSettings


@dataclass
class Console:
    """The console's parts, shared by every request (``request.app.state.console``)."""

    settings: "HubSettings"
    directory: Directory
    users: UserTable
    sessions: Sessions
    sign_ins: SignInLimiter
    templates: Environment
    # The router's gRPC services, as the console's own principal (services.console.gateway.HubGateway).
    gateway: Any = None
    # The console's store of the hits it read (services.console.workspace) and its live fan-out (live).
    workspace: Any = None
    live: Any = None
    # Writes officers' records to the users topic (services.console.users.UserWriter).
    user_writer: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Officer:
    """The signed-in user of this request, with their member (from the directory)."""

    session: Session
    user: User
    member: Member

    @property
    def code(self) -> str:
        return self.member.code

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def language(self) -> str:
        return self.session.language

    def may(self, role: str) -> bool:
        return self.user.may(role)


class SignInRequired(Exception):
    """No live session: pages answer with the sign-in page (a redirect), htmx and API calls with 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow it, or the form token is wrong: 403 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def console_of(request: Request) -> Console:
    return request.app.state.console


def officer(request: Request) -> Officer:
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired()
    user = console.users.get(session.member, session.username)
    member = console.directory.members.get(session.member)
    if user is None or user.disabled or member is None or user.stamp != session.stamp:
        console.sessions.end(session.id)
        raise SignInRequired()
    request.state.officer = user.key
    return Officer(session, user, member)


def role(minimum: str):
    """A dependency: the signed-in officer, if their role is ``minimum`` or above (403 otherwise)."""

    def check(who: Annotated[Officer, Depends(officer)]) -> Officer:
        if not who.may(minimum):
            raise Forbidden(i18n.gettext("Your role does not allow this page."))
        return who

    return check


async def form_token(request: Request) -> str:
    """The CSRF token a POST carries: the X-CSRF-Token header (htmx) or the form's ``csrf`` field."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    form = await request.form()
    value = form.get("csrf")
    return value if isinstance(value, str) else ""


def posting(minimum: str):
    """A dependency for state-changing requests: ``role(minimum)`` and the session's form token (CSRF)."""
    by_role = role(minimum)

    async def check(request: Request, who: Annotated[Officer, Depends(by_role)]) -> Officer:
        if not hmac.compare_digest((await form_token(request)).encode(), who.session.csrf.encode()):
            raise Forbidden(i18n.gettext("This form has expired or did not come from this console. Reload the page."))
        return who

    return check


Analyst = Annotated[Officer, Depends(role("analyst"))]
DutyOfficer = Annotated[Officer, Depends(role("duty-officer"))]
MemberAdmin = Annotated[Officer, Depends(role("member-admin"))]
PostingAnalyst = Annotated[Officer, Depends(posting("analyst"))]
PostingDutyOfficer = Annotated[Officer, Depends(posting("duty-officer"))]
PostingMemberAdmin = Annotated[Officer, Depends(posting("member-admin"))]


def render(
    request: Request,
    template: str,
    who: Officer | None = None,
    status_code: int = 200,
    language: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment) in the officer's language, dates in their member's time zone."""
    console = console_of(request)
    lang = language or (who.language if who else i18n.DEFAULT)
    zone, code = (who.member.time_zone, who.code) if who else ("UTC", "")
    with i18n.using(lang):
        html = console.templates.get_template(template).render(
            request=request,
            officer=who,
            csrf=who.session.csrf if who else "",
            language=lang,
            languages=i18n.LANGUAGES,
            when=lambda moment, form="medium": i18n.when(moment, zone, form, code),
            **context,
        )
    return HTMLResponse(html, status_code=status_code, headers=headers)
