"""The member directory: who the members are and which countries' ports each has jurisdiction over."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from services.errors import ConfigError
from services.geo import countries_of_route, is_country
from services.tls import normalize_fingerprint


@dataclass(frozen=True)
class Webhook:
    """Push delivery: the hub POSTs each hit to ``url``, signed with the secret held in ``secret_env``."""

    url: str
    # Name of the environment variable holding the signing secret: secrets never sit in the directory file.
    secret_env: str


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


@dataclass(frozen=True)
class Directory:
    members: dict[str, Member]

    @property
    def codes(self) -> list[str]:
        return sorted(self.members)

    def jurisdiction(self, route: list[str]) -> set[str]:
        """Members with jurisdiction over any port of the route (departure, transit, arrival)."""
        touched = countries_of_route(route)
        return {m.code for m in self.members.values() if m.countries & touched}

    def __contains__(self, code: object) -> bool:
        return code in self.members


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
        webhook = None
        if raw.get("webhook"):
            hook = raw["webhook"]
            url, secret_env = str(hook.get("url", "")), str(hook.get("secret_env", ""))
            if not url.startswith(("https://", "http://")) or not secret_env:
                raise ConfigError(f"{where}: webhook needs an http(s) url and secret_env (an environment variable)")
            webhook = Webhook(url, secret_env)
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
        )
    if not members:
        raise ConfigError(f"{source}: no members")
    return Directory(members)


@functools.cache
def load_directory(path: Path | None = None) -> Directory:
    if path is None:
        text = resources.files("services.data").joinpath("members.yaml").read_text()
        return parse_directory(text, "members.yaml (shipped)")
    return parse_directory(Path(path).read_text(), str(path))
