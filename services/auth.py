"""Carrier and member credentials: JSON Web Tokens (RFC 7519, PyJWT) carried as bearer tokens in gRPC metadata.

A token names one principal in its subject, ``carrier:FJ`` or ``member:FJI`` (or ``console:hub``, below), and
carries when it was issued and when it expires (``iat``, ``exp``) and its own id (``jti``). It is signed HS256 with
one key of the hub's key ring and names that key in its header (``kid``), so the servers need no token table and
keys rotate one at a time: add a new key, sign with it, and tokens of the old key keep verifying until that key
leaves the ring.

The directory narrows this down (checked by ``authenticate`` and ``authorize_member``): ``revoked_tokens`` lists
ids (jti) of revoked credentials of anyone; a member's or carrier's ``token_sha256`` lists the only credentials
valid for it (digests); a member's ``cert_sha256`` binds it to its mutual-TLS client certificates (services.tls).

The hub's member console (services.console) is one principal, ``console:hub``: it runs with the hub's settings and
mints its own short-lived token from the key ring (``console_token``), and the router accepts it for any member
(``authorize_member_call``): the console enforces its officers' member itself. Each of its calls names the officer
in the metadata ``apihub-user`` (``USER_KEY``), which the router writes into the audit events the call makes; the
calls that change a member's data or show an officer a traveller's need it (``needs_user``). Revocation by token id
applies to console tokens as to any other.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
import jwt
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily

from services.errors import AuthError, ConfigError
from services.tls import peer_cert_sha256

if TYPE_CHECKING:  # annotations only: clients import this module for their tokens
    from services.config import HubSettings
    from services.directory import Directory

log = logging.getLogger(__name__)

MEMBER = "member"
KINDS = ("carrier", MEMBER)
# The hub's member console: one principal (subject "console:hub"), accepted for any member; never issued by
# issue_token (operators hand out carrier and member credentials), only minted by the console itself.
CONSOLE = "console"
CONSOLE_CODE = "hub"
CONSOLE_SUBJECT = f"{CONSOLE}:{CONSOLE_CODE}"
# Metadata naming the officer a console call is made for: 1-64 characters of a-z, 0-9, ".", "_" and "-".
USER_KEY = "apihub-user"
USER_NAME = re.compile(r"[a-z0-9._-]{1,64}")
USER_RULE = "1-64 characters of a-z, 0-9, '.', '_' and '-'"
ALGORITHM = "HS256"
# Key id of a ring made of APIHUB_AUTH_SECRET alone (APIHUB_AUTH_KEY_ID unset).
DEFAULT_KEY_ID = "default"
# Lifetime of a token issued without one, and the clock difference tolerated between issuer and hub.
DEFAULT_LIFETIME = timedelta(days=90)
DEFAULT_LEEWAY_S = 60.0
_CODE = re.compile(r"[A-Z0-9]{2,3}")
_LIFETIME = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# Calls refused for their credential (alert ApihubExpiredTokenPresented): `reason` one of missing, invalid, expired,
# wrong_kind, revoked; `kind` and `principal` whom an expired or revoked token names (its signature verified: never
# a name an unverified token claims), else the kind of principal the method needs and an empty code.
AUTH_REFUSALS = Counter(
    "apihub_auth_refusals",
    "Calls refused for their credential, by reason and whom it names (expired, revoked) or the kind needed",
    ["kind", "reason", "principal"],
)
# How long a credential presented counts towards apihub_auth_token_expiry_seconds (seconds).
TOKEN_SEEN_WINDOW_S = 3600.0


class ExpiredTokenError(AuthError):
    """A token of the hub's whose expiry (exp, with the leeway) has passed; ``kind`` and ``code`` are whom it names
    (its signature verified, so the name is the hub's own), for the refusal's metric labels."""

    def __init__(self, message: str, kind: str = "", code: str = "") -> None:
        super().__init__(message)
        self.kind, self.code = kind, code


@dataclass(frozen=True)
class KeyRing:
    """The keys that verify tokens (by key id) and the one that signs new tokens, with the token policy."""

    keys: Mapping[str, str]
    signing_key_id: str
    lifetime: timedelta = DEFAULT_LIFETIME
    leeway_s: float = DEFAULT_LEEWAY_S

    def __post_init__(self) -> None:
        if self.signing_key_id not in self.keys:
            raise ConfigError(f"the signing key '{self.signing_key_id}' is not in the key ring")

    @classmethod
    def of(cls, source: HubSettings | KeyRing | str) -> KeyRing:
        """The ring of a HubSettings (APIHUB_AUTH_KEYS, or APIHUB_AUTH_SECRET alone as a ring of one key), a ring,
        or one secret (key id "default")."""
        if isinstance(source, KeyRing):
            return source
        if isinstance(source, str):
            return cls({DEFAULT_KEY_ID: source}, DEFAULT_KEY_ID)
        keys = dict(source.auth_keys) or {source.auth_key_id or DEFAULT_KEY_ID: source.auth_secret}
        return cls(
            keys,
            source.auth_key_id or next(iter(keys)),
            lifetime=timedelta(days=source.token_lifetime_days),
            leeway_s=source.token_leeway_seconds,
        )

    @property
    def signing_secret(self) -> str:
        return self.keys[self.signing_key_id]


@dataclass(frozen=True)
class Principal:
    kind: str  # "carrier", "member" or "console"
    code: str  # IATA carrier code, ISO alpha-3 member code, or "hub" (the console)
    # The credential's id (jti) and expiry (Unix seconds); not part of who the principal is.
    token_id: str = field(default="", compare=False)
    expires_at: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


class TokenExpiries:
    """The gauge apihub_auth_token_expiry_seconds{kind, principal}: the soonest expiry (Unix time) among the
    credentials each principal presented to this process in the last ``window_s`` seconds (alert
    ApihubTokenExpiring). The hub keeps no table of the tokens it issued, so a credential is seen only when it is
    used; one replaced by a new token drops out after the window. Holds a token id and two numbers per credential
    in use, never the token; computed when Prometheus scrapes."""

    NAME = "apihub_auth_token_expiry_seconds"
    HELP = "Soonest expiry (Unix time) of the credentials a carrier or member presented in the last hour"

    def __init__(self, window_s: float = TOKEN_SEEN_WINDOW_S, clock: Callable[[], float] = time.time):
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        # (kind, code) -> token id -> (expires at, last presented)
        self._seen: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}

    def presented(self, principal: Principal) -> None:
        now = self._clock()
        with self._lock:
            tokens = self._seen.setdefault((principal.kind, principal.code), {})
            tokens[principal.token_id] = (principal.expires_at, now)
            if len(tokens) > 1:  # a principal's tokens past the window go now too (also when nobody scrapes)
                for jti in [jti for jti, (_, seen) in tokens.items() if seen < now - self._window_s]:
                    del tokens[jti]

    def soonest(self) -> dict[tuple[str, str], int]:
        """(kind, code) -> the soonest expiry among its credentials presented within the window."""
        horizon = self._clock() - self._window_s
        found = {}
        with self._lock:
            for key, tokens in list(self._seen.items()):
                recent = {jti: seen for jti, seen in tokens.items() if seen[1] >= horizon}
                if recent:
                    self._seen[key] = recent
                    found[key] = min(expires for expires, _ in recent.values())
                else:
                    del self._seen[key]
        return found

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["kind", "principal"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["kind", "principal"])
        for (kind, code), expires in sorted(self.soonest().items()):
            family.add_metric([kind, code], expires)
        yield family


TOKEN_EXPIRIES = TokenExpiries()
REGISTRY.register(TOKEN_EXPIRIES)


def issue_token(
    keys: HubSettings | KeyRing | str,
    kind: str,
    code: str,
    *,
    lifetime: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """A new credential for one principal, signed with the ring's signing key; it expires after ``lifetime`` (the
    ring's default: APIHUB_TOKEN_LIFETIME_DAYS). Every call makes a distinct token (its own jti)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        raise ValueError("code must be a 2-3 character carrier code or a 3-letter member code")
    return _signed(KeyRing.of(keys), f"{kind}:{code}", lifetime, now)


def console_token(keys: HubSettings | KeyRing | str, lifetime: timedelta, *, now: datetime | None = None) -> str:
    """A credential of the hub's member console (subject ``console:hub``), which the console mints for itself from
    the hub's key ring at start and again before it expires: keep ``lifetime`` short (hours), so a copy that leaks
    is soon worthless."""
    return _signed(KeyRing.of(keys), CONSOLE_SUBJECT, lifetime, now)


def _signed(ring: KeyRing, subject: str, lifetime: timedelta | None, now: datetime | None) -> str:
    lifetime = ring.lifetime if lifetime is None else lifetime
    if lifetime <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    issued = now or datetime.now(UTC)
    claims = {"sub": subject, "iat": issued, "exp": issued + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, ring.signing_secret, algorithm=ALGORITHM, headers={"kid": ring.signing_key_id})


def verify_token(keys: HubSettings | KeyRing | str, token: str) -> Principal:
    """The principal a token names, or AuthError saying why not (malformed, unknown key, forged, expired)."""
    ring = KeyRing.of(keys)
    token = (token or "").strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise AuthError("malformed token (expected a JWT issued by the hub)") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("token has no key id (kid)")
    secret = ring.keys.get(kid)
    if secret is None:
        raise AuthError(f"token key '{kid[:40]}' is not in the hub's key ring (retired, or not the hub's)")
    known = _VERIFIED.get(token, secret)
    if known is not None and known.expires_at + ring.leeway_s > time.time():
        return known
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=ring.leeway_s,
            options={"require": ["sub", "iat", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise ExpiredTokenError("token expired", *_expired_subject(token, secret)) from None
    except jwt.InvalidSignatureError:
        raise AuthError("token signature does not verify") from None
    except jwt.ImmatureSignatureError:
        raise AuthError("token issued in the future (check the issuer's clock)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token ({type(exc).__name__})") from None
    kind, code = _subject(str(claims["sub"]))
    if not kind:
        raise AuthError("token subject is not a carrier, a member or the hub's console")
    principal = Principal(kind, code, token_id=str(claims["jti"]), expires_at=int(claims["exp"]))
    _VERIFIED.put(token, secret, principal)
    return principal


class _VerifiedTokens:
    """Tokens whose signature and claims verified, with the key that verified them (bounded, least recently used
    first out): a busy caller (a check-in hall's checks, each call presenting the same token) costs one HMAC and one
    claims check per token, not per call. A hit counts only with the same key (a key retired from the ring fails
    before this) and before the token's expiry; revocations are checked by the callers as before."""

    def __init__(self, most: int = 4096) -> None:
        self._most = most
        self._known: OrderedDict[tuple[str, str], Principal] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, secret: str) -> Principal | None:
        with self._lock:
            found = self._known.get((token, secret))
            if found is not None:
                self._known.move_to_end((token, secret))
            return found

    def put(self, token: str, secret: str, principal: Principal) -> None:
        with self._lock:
            self._known[(token, secret)] = principal
            while len(self._known) > self._most:
                self._known.popitem(last=False)


_VERIFIED = _VerifiedTokens()


def _subject(subject: str) -> tuple[str, str]:
    """(kind, code) of a token subject the hub issues, else ("", "")."""
    if subject == CONSOLE_SUBJECT:
        return CONSOLE, CONSOLE_CODE
    kind, _, code = subject.partition(":")
    return (kind, code) if kind in KINDS and _CODE.fullmatch(code) else ("", "")


def _expired_subject(token: str, secret: str) -> tuple[str, str]:
    """The kind and code an expired token of the hub's names (empty if none): PyJWT checks the signature before
    the expiry, so this token is the hub's own and its subject can be trusted."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return "", ""
    return _subject(str(claims.get("sub", "")))


def parse_lifetime(text: str) -> timedelta:
    """A token lifetime as operators write it: a number and a unit, s m h d or w ("30d", "12h", "1.5h")."""
    found = _LIFETIME.fullmatch(text.strip().lower())
    if not found:
        raise ValueError(f"'{text}' is not a lifetime: write a number and a unit (s, m, h, d, w), e.g. 30d or 12h")
    seconds = float(found[1]) * _UNIT_SECONDS[found[2]]
    if not 0 < seconds <= 100 * 365 * 86400:
        raise ValueError(f"'{text}': a lifetime must be positive and at most 100 years")
    return timedelta(seconds=seconds)


def token_claims(token: str) -> dict[str, Any]:
    """What a token says (header and claims), NOT verified: for operators inspecting a credential."""
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AuthError("malformed token (expected a JWT issued by the hub)") from None
    return {"kid": header.get("kid"), **claims, "sha256": token_digest(token)}


def authenticate(
    context: grpc.ServicerContext,
    keys: HubSettings | KeyRing | str,
    kind: str | tuple[str, ...],
    directory: Directory | None = None,
) -> Principal:
    """The caller's principal, of ``kind`` (or one of several kinds), or abort the RPC (UNAUTHENTICATED /
    PERMISSION_DENIED).

    Revocations are checked against ``directory``, or, given HubSettings, the directory they name (read once per
    process: a revocation takes effect when the service restarts).
    """
    kinds = (kind,) if isinstance(kind, str) else kind
    needed = kinds[0]  # the refusals' label: the kind the method is for
    token = presented_token(context)
    if not token:
        _refuse(context, needed, "missing", "missing 'authorization: Bearer <token>' metadata")
    try:
        principal = verify_token(keys, token)
    except ExpiredTokenError as exc:
        _refuse(context, exc.kind or needed, "expired", str(exc), principal=exc.code)
    except AuthError as exc:
        _refuse(context, needed, "invalid", str(exc))
    if principal.kind not in kinds:
        message = f"a {principal.kind} token cannot call this; it needs a {needed} token"
        _refuse(context, needed, "wrong_kind", message, code=grpc.StatusCode.PERMISSION_DENIED)
    if directory is None and not isinstance(keys, str | KeyRing):
        directory = _directory_of(context, keys)
    if directory is not None:
        _check_revocation(context, directory, principal, token)
    if principal.kind != CONSOLE:
        # The console renews its short-lived token itself: its expiry is no operator's business (no alert).
        TOKEN_EXPIRIES.presented(principal)
    return principal


def _refuse(
    context: grpc.ServicerContext,
    kind: str,
    reason: str,
    message: str,
    principal: str = "",
    code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED,
) -> NoReturn:
    AUTH_REFUSALS.labels(kind=kind, reason=reason, principal=principal).inc()
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # grpc's abort always raises


def _directory_of(context: grpc.ServicerContext, settings: HubSettings) -> Directory:
    from services.directory import load_directory

    try:
        return load_directory(settings.directory_file)
    except (ConfigError, OSError) as exc:
        log.error("the directory cannot be read to check credentials (%s)", type(exc).__name__)
        context.abort(grpc.StatusCode.UNAVAILABLE, "the hub cannot check credentials now (directory unreadable)")


def _check_revocation(context: grpc.ServicerContext, directory: Directory, principal: Principal, token: str) -> None:
    if principal.token_id in directory.revoked_tokens:
        _refuse(context, principal.kind, "revoked", f"this credential of {principal.code} is revoked", principal.code)
    if principal.kind == CONSOLE:
        return  # no directory entry lists the console's tokens: they are revoked by id (jti) alone
    entries = directory.carriers if principal.kind == "carrier" else directory.members
    entry = entries.get(principal.code)
    allowed = entry.token_sha256 if entry is not None else frozenset()
    if allowed and token_digest(token) not in allowed:
        message = f"this credential of {principal.code} is revoked or unknown"
        _refuse(context, principal.kind, "revoked", message, principal.code)


@dataclass(frozen=True)
class MemberCall:
    """Who makes a member-scoped call: the member it acts for, the principal (the member itself, or the hub's
    console), and the officer the call names in ``apihub-user`` ("" when it names none)."""

    member: str
    principal: Principal
    user: str = ""

    @property
    def by_console(self) -> bool:
        return self.principal.kind == CONSOLE


def authorize_member_call(
    context: grpc.ServicerContext,
    settings: HubSettings,
    directory: Directory,
    claimed: str,
    *,
    needs_user: bool = False,
) -> MemberCall:
    """Who may make this call for the claimed member, or abort: a member token for exactly that member, or the
    hub's console for any member. ``apihub-user``, when present, must be a valid user name (INVALID_ARGUMENT);
    with ``needs_user`` a console call without one is refused (PERMISSION_DENIED): the calls that change a member's
    data or show a traveller's must say which officer made them."""
    principal = authenticate(context, settings, (MEMBER, CONSOLE), directory)
    member = claimed.strip().upper()
    console = principal.kind == CONSOLE
    if not console and member != principal.code:
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a token for {principal.code} cannot act for member '{member}'",
        )
    user = presented_user(context)
    if console and needs_user and not user:
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"the console must name the officer making this call ('{USER_KEY}' metadata)",
        )
    if member not in directory:
        context.abort(grpc.StatusCode.NOT_FOUND, f"'{member}' is not a member of this hub")
    pinned = directory.members[member].cert_sha256
    if pinned and not console and peer_cert_sha256(context) not in pinned:
        # None (no client certificate: plain text, or TLS without APIHUB_TLS_CLIENT_CA_FILE) is never listed. The
        # console is the hub's own service, not the member's: it connects with the hub's client settings.
        context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            f"{member} must connect over mutual TLS with one of its registered client certificates",
        )
    return MemberCall(member, principal, user)


def authorize_member(context: grpc.ServicerContext, settings: HubSettings, directory: Directory, claimed: str) -> str:
    """The member code the caller may act as, or abort: a member token for exactly the claimed member, or the
    hub's console (authorize_member_call)."""
    return authorize_member_call(context, settings, directory, claimed).member


def presented_user(context: grpc.ServicerContext) -> str:
    """The officer a call names in ``apihub-user`` ("" when none), or abort INVALID_ARGUMENT for a malformed name
    (never echoed: it may be anything)."""
    value = dict(context.invocation_metadata() or ()).get(USER_KEY, "")
    if not value:
        return ""
    if not isinstance(value, str) or not USER_NAME.fullmatch(value):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"'{USER_KEY}' must be {USER_RULE}")
    return value


def officer(user: str) -> list[tuple[str, str]]:
    """Call metadata naming the officer a console call is made for (none for "")."""
    return [(USER_KEY, user)] if user else []


def token_digest(token: str) -> str:
    """What the directory stores of a credential (never the token itself): its SHA-256, hex."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def presented_token(context: grpc.ServicerContext) -> str:
    header = dict(context.invocation_metadata()).get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else ""


def bearer(token: str) -> list[tuple[str, str]]:
    """Call metadata for a client."""
    return [("authorization", f"Bearer {token}")]
