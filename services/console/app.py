"""The console's web application: its pages, static files, security headers, limits and error pages.

``create_app(console)`` builds it around a Console (services.console.deps); services.console.server runs it.
Every response carries a strict Content Security Policy (scripts and styles from this console only: no inline code,
no CDN), and pages that show personal data are never cached. Request bodies are bounded; an error reaches the officer
as a page naming what went wrong, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware

from services.console import i18n
from services.console.deps import Console, Forbidden, SignInRequired, officer, render
from services.errors import HubError

log = logging.getLogger(__name__)

# The console's pages, one module each under services/console/pages/ with a ``router``.
PAGES = ("account", "hits", "lists", "rules", "oversight", "officers")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# The largest request body: a watchlist CSV of 100,000 entries fits.
MAX_BODY_BYTES = 32 * 1024 * 1024

REQUESTS = Counter(
    "apihub_console_requests", "Console requests by route (its pattern, never its ids) and status", ["route", "status"]
)
LATENCY = Histogram("apihub_console_request_seconds", "Console request duration by route", ["route"])


class Guard:
    """ASGI middleware: security headers on every response, no caching of pages, bounded bodies, and metrics
    and one log line per request by route pattern (never the path or query, which may hold ids or names)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            response = PlainTextResponse(f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MB", status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def bounded_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise HTTPException(413, "request body too large")
            return message

        static = scope["path"].startswith("/static/")
        status = 500
        started = time.monotonic()

        async def send_with_headers(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"server"]
                headers.extend(SECURITY_HEADERS)
                if static:
                    headers.append((b"cache-control", b"public, max-age=86400"))
                elif not any(h[0].lower() == b"cache-control" for h in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        finally:
            route = scope.get("route")
            pattern = "/static" if static else getattr(route, "path", "unmatched")
            REQUESTS.labels(pattern, str(status)).inc()
            LATENCY.labels(pattern).observe(time.monotonic() - started)


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("services.console", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.translate, i18n.translate_plural, newstyle=True)
    env.globals["static"] = static_url
    return env


def _static_digest(name: str) -> str:
    data = (resources.files("services.console") / "static" / name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


_DIGESTS: dict[str, str] = {}


def static_url(name: str) -> str:
    """/static/NAME?v=DIGEST: browsers keep static files a day, and fetch a changed one at once."""
    if name not in _DIGESTS:
        _DIGESTS[name] = _static_digest(name)
    return f"/static/{name}?v={_DIGESTS[name]}"


def create_app(console: Console) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="Pacific API Hub member console")
    app.state.console = console
    # Static files compressed (about 57 KB down to 19 KB on a first visit); pages are not: they carry the form token
    # beside reflected text (search, filters), which compression would let an attacker guess (BREACH).
    static = GZipMiddleware(StaticFiles(packages=[("services.console", "static")]), minimum_size=1024)
    app.mount("/static", static, name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    for name in PAGES:
        if importlib.util.find_spec(f"services.console.pages.{name}") is not None:
            app.include_router(importlib.import_module(f"services.console.pages.{name}").router)

    @app.exception_handler(SignInRequired)
    def sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.method != "GET" or request.headers.get("hx-request"):
            return PlainTextResponse("sign in again", status_code=401, headers={"HX-Redirect": "/sign-in"})
        return RedirectResponse(f"/sign-in?next={_local_path(request)}", status_code=303)

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error_page(request, 403, exc.reason)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        messages = {404: "Not found.", 405: "Not allowed here.", 413: "That upload is too large."}
        with i18n.using(_language(request)):
            text = i18n.gettext(messages.get(exc.status_code, "That request could not be served."))
        return _error_page(request, exc.status_code, text, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()) or "the request"
        with i18n.using(_language(request)):
            text = i18n.gettext("Missing or invalid: %(fields)s.", fields=fields)
        return _error_page(request, 422, text)

    @app.exception_handler(HubError)
    def hub_error(request: Request, exc: HubError) -> Response:
        # The hub's own messages name the cause and never a traveller (services.errors); the gateway's errors say
        # which HTTP status fits (a hit the router does not know: 404; the router out of reach: 503).
        return _error_page(request, getattr(exc, "http_status", 503), str(exc))

    @app.exception_handler(Exception)
    def crashed(request: Request, exc: Exception) -> Response:
        log.error("console page failed: %s", type(exc).__name__)
        with i18n.using(_language(request)):
            text = i18n.gettext("Something went wrong on the console; the error is in its log.")
        return _error_page(request, 500, text)

    return Guard(app)  # type: ignore[return-value]


def _local_path(request: Request) -> str:
    from urllib.parse import quote

    return quote(request.url.path, safe="/")


def _language(request: Request) -> str:
    console: Console = request.app.state.console
    session = console.sessions.get(request.cookies.get("apihub_console"))
    return session.language if session else i18n.language_of(request.cookies.get("apihub_lang"))


def _error_page(request: Request, status: int, message: str, headers=None) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{_escape(message)}</p>', status_code=status)
    try:  # a signed-in officer keeps the navigation, sign-out and the form token on an error page
        who = officer(request)
    except SignInRequired:
        who = None
    return render(
        request,
        "error.html",
        who,
        status_code=status,
        language=None if who else _language(request),
        message=message,
        status=status,
        headers=headers,
    )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
