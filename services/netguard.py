"""Outbound HTTP to addresses that members give the hub (webhooks), only where the directory allows it.

A webhook URL names a host, and whoever controls its DNS controls where the hub connects. So the hub resolves the
name once, checks every address it resolves to, connects to a checked address (never resolving again), and checks
the address the socket is actually connected to: an answer that changes between the check and the connection
(DNS rebinding) cannot steer the hub to the cloud metadata service (169.254.169.254), its broker or anything else
on its own network. Addresses that are not public unicast (loopback, RFC 1918 and other private ranges, link-local,
shared address space 100.64/10, unique-local fc00::/7, unspecified, reserved, and the same embedded in IPv4-mapped,
6to4 and NAT64 IPv6 addresses) need ``allow_private_network: true`` in the member's webhook entry; plain http is
allowed to loopback only. TLS certificates are verified against the URL's host name, whatever address was dialled.
The ranges come from the ``ipaddress`` module (is_private, is_loopback, is_link_local, ...), not from a list here.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.errors import HubError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6052's well-known NAT64 prefix: a gateway translates 64:ff9b::a9fe:a9fe to 169.254.169.254. The ipaddress
# module knows IPv4-mapped and 6to4 addresses but has no property for this one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefusedError(HubError, ConnectionError):
    """The host resolved to (or the socket reached) an address its directory entry does not allow."""


@dataclass(frozen=True)
class AddressPolicy:
    """Where one webhook may connect: public addresses always, others only with the directory's explicit allow."""

    allow_private_network: bool = False
    # Plain http: the connection must moreover end on this machine (nothing else would protect the signed body).
    loopback_only: bool = False


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _parse(address: str | IPAddress) -> IPAddress:
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    return _embedded_ipv4(ip) or ip


def restriction(address: str | IPAddress) -> str | None:
    """What kind of non-public address this is ("loopback", "link-local", "private", ...), or None when it is a
    public unicast address. Raises ValueError for something that is not an IP address."""
    ip = _parse(address)
    kinds = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),  # e.g. the shared address space 100.64.0.0/10 of carrier-grade NAT
    )
    return next((kind for kind, hit in kinds if hit), None)


def is_loopback(address: str | IPAddress) -> bool:
    return _parse(address).is_loopback


def _shown(address: str | IPAddress) -> str:
    """The address, with the IPv4 address it embeds, if any: "::ffff:a9fe:a9fe (169.254.169.254)"."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a host name
        return str(address)
    inner = _embedded_ipv4(ip)
    return f"{ip} ({inner})" if inner is not None else str(ip)


def check_address(address: str, policy: AddressPolicy, host: str, how: str = "resolved to") -> None:
    """Raise AddressRefusedError unless the policy allows connecting to ``address`` (which ``host`` resolved to,
    or, ``how`` says, the connection to it reached)."""
    kind = restriction(address)
    if policy.loopback_only and not is_loopback(address):
        raise AddressRefusedError(f"{host} {how} {_shown(address)}: plain http is allowed to loopback only; use https")
    if kind is not None and (kind == "multicast" or not policy.allow_private_network):
        raise AddressRefusedError(
            f"{host} {how} {_shown(address)}, a {kind} address: refused without allow_private_network: true "
            "in the member's webhook entry"
        )


def check_url(url: str, allow_private_network: bool = False) -> str | None:
    """What is wrong with a webhook URL on its face (None: nothing). Host names are checked again, on every
    address they resolve to, at every connection (check_address)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"not a usable URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "needs an https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (the hub signs each request instead)"
    host = parts.hostname
    try:
        kind = restriction(host)
    except ValueError:  # a name, not an address: only its resolution can tell, at each connection
        kind = "loopback" if host == "localhost" or host.endswith(".localhost") else None
    if parts.scheme == "http" and kind != "loopback":
        return "plain http is allowed on loopback only (localhost, 127.0.0.1, [::1]); use https"
    if kind is not None and (kind == "multicast" or not allow_private_network):
        return (
            f"{_shown(host)} is a {kind} address: refused unless the webhook entry says allow_private_network: true "
            "(for a member endpoint inside the hub's own network)"
        )
    return None


def open_connection(host: str, port: int, timeout: float | None, policy: AddressPolicy) -> socket.socket:
    """A TCP connection to ``host``: resolved once, every address checked, a checked address dialled, and the
    peer the socket reached checked again. Raises AddressRefusedError or OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        check_address(sockaddr[0], policy, host)
    sock = _connect_first(infos, timeout)
    try:
        check_address(sock.getpeername()[0], policy, host, "is connected to")
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_first(infos: list, timeout: float | None) -> socket.socket:
    """Connect to the first address that answers, in the resolver's order (as socket.create_connection does)."""
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError("the host name resolved to no address")


class GuardedHTTPConnection(http.client.HTTPConnection):
    """Plain http whose connect() goes through open_connection."""

    def __init__(self, host: str, port: int | None, timeout: float, policy: AddressPolicy):
        super().__init__(host, port, timeout=timeout)
        self._policy = policy

    def connect(self) -> None:
        self.sock = open_connection(self.host, self.port, self.timeout, self._policy)


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    """https whose connect() goes through open_connection; the certificate is verified against the URL's host
    name (``context``: the system's trust roots by default, with host name checking)."""

    def __init__(
        self, host: str, port: int | None, timeout: float, policy: AddressPolicy, context: ssl.SSLContext | None
    ):
        self._tls = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._policy = policy

    def connect(self) -> None:
        sock = open_connection(self.host, self.port, self.timeout, self._policy)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def connection_for(
    url: str, allow_private_network: bool, timeout: float, context: ssl.SSLContext | None = None
) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the URL's host that only reaches addresses the policy allows, and the request target
    (path and query) to send on it. A plain connection never follows redirects: that is the caller's choice."""
    problem = check_url(url, allow_private_network)
    if problem is not None:
        raise AddressRefusedError(f"webhook URL refused: {problem}")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    # Always an explicit port: given none, http.client would read "::1" as host "::" and port 1.
    if parts.scheme == "http":
        policy = AddressPolicy(allow_private_network, loopback_only=True)
        return GuardedHTTPConnection(host, parts.port or 80, timeout, policy), target
    port = parts.port or 443
    return GuardedHTTPSConnection(host, port, timeout, AddressPolicy(allow_private_network), context), target
