"""The member directory: who the members are and which countries' ports each has jurisdiction over."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from services.errors import ConfigError
from services.geo import countries_of_route, is_country
from services.netguard import check_url
from services.tls import normalize_fingerprint


@dataclass(frozen=True)
class Webhook:
    """Push delivery: the hub POSTs each hit to ``url``, signed with the secret held in ``secret_env``."""

    url: str
    # Name of the environment variable holding the signing secret: secrets never sit in the directory file.
    secret_env: str
    # The URL is https, to a public address. True: it may also be (or resolve to) a private, loopback or
    # link-local address, and http on loopback: for an endpoint inside the hub's own network, or a demo. Checked
    # on every address the host resolves to, at every connection (services.netguard), not only here.
    allow_private_network: bool = False


@dataclass(frozen=True)
class Member:
    code: str
    name: str
    contact_point: str
    countries: frozenset[str]
    webhook: Webhook | None = None
    # SHA-256 digests of the member's valid credentials (`apihub dev token --member X --digest`). Empty: any
    # token signed by the hub's secret for this member is valid; listed: only those, so one can be revoked.
    token_sha256: frozenset[str] = frozenset()
    # SHA-256 fingerprints of the member's client certificates (DER; `apihub dev certs` prints them, as does
    # `openssl x509 -noout -fingerprint -sha256`). Listed: the member's calls must also come over mutual TLS
    # with one of these certificates, so a stolen token alone is not enough. Empty: any certificate (or none).
    cert_sha256: frozenset[str] = frozenset()
    # IANA time zone the member console shows this member's dates in; its default language there ("en" or "fr").
    time_zone: str = "UTC"
    language: str = "en"


@dataclass(frozen=True)
class Carrier:
    """A carrier's credentials policy (the directory's optional ``carriers:`` part)."""

    code: str
    # SHA-256 digests of the carrier's valid credentials (`apihub dev token --carrier XX --json` prints a new
    # token's sha256). Empty, or the carrier not listed: any unexpired token the hub's key ring signed for it.
    token_sha256: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Directory:
    members: dict[str, Member]
    carriers: dict[str, Carrier] = field(default_factory=dict)
    # Ids (jti) of revoked credentials, carriers' or members' (`apihub dev token --show TOKEN` prints a token's).
    revoked_tokens: frozenset[str] = frozenset()

    @property
    def codes(self) -> list[str]:
        return sorted(self.members)

    def jurisdiction(self, route: list[str]) -> set[str]:
        """Members with jurisdiction over any port of the route (departure, transit, arrival)."""
        touched = countries_of_route(route)
        return {m.code for m in self.members.values() if m.countries & touched}

    def __contains__(self, code: object) -> bool:
        return code in self.members


def _parse_webhook(hook: dict, where: str, member_allow: object = False) -> Webhook:
    """A member's webhook entry: {url, secret_env, allow_private_network}; ConfigError naming the problem. The
    allow may also stand in the member's entry itself (``member_allow``); the webhook's own, if given, wins."""
    if not isinstance(hook, dict):
        raise ConfigError(f"{where}: webhook must be a mapping {{url, secret_env}}")
    url, secret_env = str(hook.get("url", "")), str(hook.get("secret_env", ""))
    if not url.startswith(("https://", "http://")) or not secret_env:
        raise ConfigError(f"{where}: webhook needs an https url and secret_env (an environment variable)")
    allow = hook.get("allow_private_network", member_allow)
    if not isinstance(allow, bool):
        raise ConfigError(f"{where}: webhook allow_private_network must be true or false")
    problem = check_url(url, allow)
    if problem is not None:
        raise ConfigError(f"{where}: webhook url {problem}")
    return Webhook(url, secret_env, allow)


def parse_directory(text: str, source: str) -> Directory:
    """Parse and check a directory YAML; errors name the source and the member."""
    data = yaml.safe_load(text) or {}
    members: dict[str, Member] = {}
    for i, raw in enumerate(data.get("members") or []):
        code = str(raw.get("code", "")).upper()
        where = f"{source}: members[{i}] ({code or 'no code'})"
        if not is_country(code):
            raise ConfigError(f"{where}: code must be an ISO 3166-1 alpha-3 country code")
        countries = [str(c).upper() for c in raw.get("countries") or [code]]
        bad = [c for c in countries if not is_country(c)]
        if bad:
            raise ConfigError(f"{where}: unknown country codes {bad}")
        if code in members:
            raise ConfigError(f"{where}: duplicate member")
        allow = raw.get("allow_private_network", False)
        webhook = _parse_webhook(raw["webhook"], where, allow) if raw.get("webhook") else None
        digests = frozenset(str(d).lower() for d in raw.get("token_sha256") or [])
        if any(len(d) != 64 or any(c not in "0123456789abcdef" for c in d) for d in digests):
            raise ConfigError(f"{where}: token_sha256 entries must be SHA-256 hex digests")
        certs = frozenset(normalize_fingerprint(str(d)) for d in raw.get("cert_sha256") or [])
        if any(len(d) != 64 or any(c not in "0123456789abcdef" for c in d) for d in certs):
            raise ConfigError(f"{where}: cert_sha256 entries must be SHA-256 certificate fingerprints (hex)")
        members[code] = Member(
            code,
            str(raw.get("name", code)),
            str(raw.get("contact_point", "")),
            frozenset(countries),
            webhook,
            digests,
            cert_sha256=certs,
            time_zone=_time_zone(raw, where),
            language=_language(raw, where),
        )
    if not members:
        raise ConfigError(f"{source}: no members")
    return Directory(members, _parse_carriers(data, source), _parse_revoked(data, source))


LANGUAGES = ("en", "fr")


def _time_zone(raw: dict, where: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = str(raw.get("time_zone") or "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: time_zone {name!r} is not an IANA time zone (e.g. Pacific/Fiji)") from None
    return name


def _language(raw: dict, where: str) -> str:
    language = str(raw.get("language") or "en").lower()
    if language not in LANGUAGES:
        raise ConfigError(f"{where}: language must be one of {', '.join(LANGUAGES)}")
    return language


def _digests(raw: dict, where: str) -> frozenset[str]:
    digests = frozenset(str(d).lower() for d in raw.get("token_sha256") or [])
    if any(len(d) != 64 or any(c not in "0123456789abcdef" for c in d) for d in digests):
        raise ConfigError(f"{where}: token_sha256 entries must be SHA-256 hex digests")
    return digests


def _parse_carriers(data: dict, source: str) -> dict[str, Carrier]:
    carriers: dict[str, Carrier] = {}
    for i, raw in enumerate(data.get("carriers") or []):
        code = str(raw.get("code", "")).upper() if isinstance(raw, dict) else ""
        where = f"{source}: carriers[{i}] ({code or 'no code'})"
        if not (2 <= len(code) <= 3 and code.isalnum()):
            raise ConfigError(f"{where}: code must be a 2-character IATA (or 3-character ICAO) carrier code")
        if code in carriers:
            raise ConfigError(f"{where}: duplicate carrier")
        carriers[code] = Carrier(code, _digests(raw, where))
    return carriers


def _parse_revoked(data: dict, source: str) -> frozenset[str]:
    revoked = data.get("revoked_tokens") or []
    if not isinstance(revoked, list) or not all(isinstance(j, str) and j.strip() for j in revoked):
        raise ConfigError(f"{source}: revoked_tokens must be a list of token ids (jti)")
    return frozenset(j.strip() for j in revoked)


@functools.cache
def load_directory(path: Path | None = None) -> Directory:
    if path is None:
        text = resources.files("services.data").joinpath("members.yaml").read_text()
        return parse_directory(text, "members.yaml (shipped)")
    return parse_directory(Path(path).read_text(), str(path))
