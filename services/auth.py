"""Carrier and member credentials: HMAC-signed bearer tokens carried in gRPC metadata.

A token names one principal, ``carrier:FJ`` or ``member:FJI``, and is signed with the hub's secret, so
the servers need no token table. A member's directory entry may narrow this down: ``token_sha256`` lists
the only valid credentials (digests, for rotation and revocation) and ``cert_sha256`` binds the member to its
mutual-TLS client certificates (authorize_member; services.tls).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from services.errors import AuthError
from services.tls import peer_cert_sha256

if TYPE_CHECKING:  # annotations only: clients import this module for their tokens
    from services.config import HubSettings
    from services.directory import Directory

_PREFIX = "apihub1"
KINDS = ("carrier", "member")


@dataclass(frozen=True)
class Principal:
    kind: str  # "carrier" or "member"
    code: str  # IATA carrier code, or ISO alpha-3 member code

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


def _sign(secret: str, subject: str) -> str:
    mac = hmac.new(secret.encode(), subject.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_token(secret: str, kind: str, code: str, serial: int = 0) -> str:
    """A signed credential; ``serial`` > 0 issues a further credential for the same principal (rotation:
    the directory's token_sha256 list says which serials are valid)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    subject = f"{kind}.{code.upper()}" + (f".{serial}" if serial else "")
    return f"{_PREFIX}.{subject}.{_sign(secret, subject)}"


def verify_token(secret: str, token: str) -> Principal:
    parts = token.strip().split(".")
    serial_ok = len(parts) == 4 or (len(parts) == 5 and parts[3].isdigit())
    if not serial_ok or parts[0] != _PREFIX or parts[1] not in KINDS or not parts[2]:
        raise AuthError("malformed token")
    subject = ".".join(parts[1:-1])
    if not hmac.compare_digest(_sign(secret, subject), parts[-1]):
        raise AuthError("token signature does not verify")
    return Principal(parts[1], parts[2])


def authenticate(context: grpc.ServicerContext, secret: str, kind: str) -> Principal:
    """The caller's principal, or abort the RPC (UNAUTHENTICATED / PERMISSION_DENIED)."""
    token = presented_token(context)
    if not token:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata")
    try:
        principal = verify_token(secret, token)
    except AuthError as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    if principal.kind != kind:
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a {principal.kind} token cannot call this; it needs a {kind} token",
        )
    return principal


def authorize_member(context: grpc.ServicerContext, settings: HubSettings, directory: Directory, claimed: str) -> str:
    """The member code the caller may act as, or abort: a member token for exactly the claimed member."""
    principal = authenticate(context, settings.auth_secret, "member")
    member = claimed.strip().upper()
    if member != principal.code:
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a token for {principal.code} cannot act for member '{member}'",
        )
    if member not in directory:
        context.abort(grpc.StatusCode.NOT_FOUND, f"'{member}' is not a member of this hub")
    allowed = directory.members[member].token_sha256
    if allowed and token_digest(presented_token(context)) not in allowed:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"this credential of {member} is revoked or unknown")
    pinned = directory.members[member].cert_sha256
    if pinned and peer_cert_sha256(context) not in pinned:
        # None (no client certificate: plain text, or TLS without APIHUB_TLS_CLIENT_CA_FILE) is never listed.
        context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            f"{member} must connect over mutual TLS with one of its registered client certificates",
        )
    return member


def token_digest(token: str) -> str:
    """What the member directory stores of a credential (never the token itself): its SHA-256, hex."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def presented_token(context: grpc.ServicerContext) -> str:
    header = dict(context.invocation_metadata()).get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else ""


def bearer(token: str) -> list[tuple[str, str]]:
    """Call metadata for a client."""
    return [("authorization", f"Bearer {token}")]
