"""Credentials: JWTs with a key id and an expiry, a key ring for rotation, revocation of carriers' and members'
credentials through the directory (services.auth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from fakes import EmptyTable, MemoryProducer
from pydantic import ValidationError

from services.api_ingest.index import IntakeIndex
from services.api_ingest.servicer import ManifestIntakeServicer
from services.auth import (
    DEFAULT_KEY_ID,
    KeyRing,
    authenticate,
    authorize_member,
    bearer,
    issue_token,
    parse_lifetime,
    token_claims,
    token_digest,
    verify_token,
)
from services.config import HubSettings
from services.directory import parse_directory
from services.errors import AuthError
from services.serving import bind, new_grpc_server
from services.wire import intake_pb2_grpc
from synthetic.traffic import DemoTraffic

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"
OLD, NEW = "old-key-0123456789abcdef-0123456789", "new-key-0123456789abcdef-0123456789"


# -- the token ---------------------------------------------------------------------------------------------------


def test_token_is_a_jwt_naming_principal_key_expiry_and_id():
    token = issue_token(SECRET, "carrier", "fj")
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], header["kid"]) == ("HS256", DEFAULT_KEY_ID)
    assert claims["sub"] == "carrier:FJ"
    assert claims["exp"] - claims["iat"] == 90 * 86400
    p = verify_token(SECRET, token)
    assert (p.kind, p.code, p.token_id, p.expires_at) == ("carrier", "FJ", claims["jti"], claims["exp"])


def test_every_token_is_distinct():
    first, second = issue_token(SECRET, "member", "FJI"), issue_token(SECRET, "member", "FJI")
    assert first != second
    assert verify_token(SECRET, first).token_id != verify_token(SECRET, second).token_id


def test_token_signed_with_another_secret_is_refused():
    with pytest.raises(AuthError, match="signature does not verify"):
        verify_token(SECRET, issue_token("other-secret-other-secret-other-secret", "member", "FJI"))


def test_token_with_altered_subject_is_refused():
    head, payload, signature = issue_token(SECRET, "member", "FJI").split(".")
    claims = jwt.decode(f"{head}.{payload}.{signature}", options={"verify_signature": False})
    other = jwt.encode(
        {**claims, "sub": "member:WSM"}, "whatever-key-whatever-key-whatever", headers={"kid": "default"}
    )
    forged = ".".join([*other.split(".")[:2], signature])
    with pytest.raises(AuthError, match="signature"):
        verify_token(SECRET, forged)


@pytest.mark.parametrize("token", ["", "Bearer", "apihub1.member.FJI.sig", "x.y.z", "apihub1.admin.FJI.sig"])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(AuthError, match="malformed"):
        verify_token(SECRET, token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 wants 64 bytes
def test_tokens_the_hub_would_not_issue_are_refused():
    now = datetime.now(UTC)
    good = {"sub": "carrier:FJ", "iat": now, "exp": now + timedelta(days=1), "jti": "j1"}
    kid = {"kid": DEFAULT_KEY_ID}
    without = {name: {k: v for k, v in good.items() if k != name} for name in ("exp", "jti", "iat")}
    cases = [
        (jwt.encode(good, SECRET, algorithm="HS512", headers=kid), "invalid token"),
        (jwt.encode(good, SECRET, algorithm="HS256"), "no key id"),
        (jwt.encode({**good, "sub": "admin:FJ"}, SECRET, headers=kid), "subject"),
        *((jwt.encode(claims, SECRET, headers=kid), f"'{name}'") for name, claims in without.items()),
    ]
    assert verify_token(SECRET, jwt.encode(good, SECRET, headers=kid)).code == "FJ"  # the control
    for token, why in cases:
        with pytest.raises(AuthError, match=why):
            verify_token(SECRET, token)


# -- expiry ------------------------------------------------------------------------------------------------------


def test_expired_token_is_refused_as_expired():
    token = issue_token(SECRET, "carrier", "FJ", now=datetime.now(UTC) - timedelta(days=91))
    with pytest.raises(AuthError, match="^token expired$"):
        verify_token(SECRET, token)


def test_clock_leeway_applies_at_expiry():
    # Expired 20 seconds ago: within the default 60 s leeway, outside a leeway of 0.
    token = issue_token(
        SECRET, "carrier", "FJ", lifetime=timedelta(seconds=40), now=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert verify_token(SECRET, token).code == "FJ"
    with pytest.raises(AuthError, match="expired"):
        verify_token(KeyRing({"default": SECRET}, "default", leeway_s=0), token)


def test_token_from_the_future_is_refused():
    token = issue_token(SECRET, "carrier", "FJ", now=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(AuthError, match="future"):
        verify_token(SECRET, token)


def test_lifetime_comes_from_the_settings_or_the_call():
    settings = HubSettings(token_lifetime_days=7)
    claims = jwt.decode(issue_token(settings, "member", "FJI"), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 7 * 86400
    claims = jwt.decode(
        issue_token(settings, "member", "FJI", lifetime=parse_lifetime("12h")), options={"verify_signature": False}
    )
    assert claims["exp"] - claims["iat"] == 12 * 3600


@pytest.mark.parametrize(
    "text,seconds", [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400), ("1.5h", 5400)]
)
def test_lifetimes_parse(text, seconds):
    assert parse_lifetime(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "30y", "999999w"])
def test_bad_lifetimes_are_refused(text):
    with pytest.raises(ValueError):
        parse_lifetime(text)


# -- the key ring: rotation ----------------------------------------------------------------------------------------


def test_rotation_old_tokens_verify_until_their_key_leaves_the_ring():
    before = KeyRing({"k1": OLD}, "k1")
    during = KeyRing({"k1": OLD, "k2": NEW}, "k2")
    after = KeyRing({"k2": NEW}, "k2")
    old_token, new_token = issue_token(before, "carrier", "FJ"), issue_token(during, "carrier", "FJ")
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    assert verify_token(during, old_token).code == "FJ"
    assert verify_token(during, new_token).code == "FJ"
    assert verify_token(after, new_token).code == "FJ"
    with pytest.raises(AuthError, match="key 'k1' is not in the hub's key ring"):
        verify_token(after, old_token)


def test_key_ring_from_settings(monkeypatch):
    monkeypatch.setenv("APIHUB_AUTH_KEYS", f'{{"k1": "{OLD}", "k2": "{NEW}"}}')
    monkeypatch.setenv("APIHUB_AUTH_KEY_ID", "k2")
    settings = HubSettings()
    ring = KeyRing.of(settings)
    assert (ring.signing_key_id, ring.signing_secret, set(ring.keys)) == ("k2", NEW, {"k1", "k2"})
    assert verify_token(settings, issue_token(KeyRing({"k1": OLD}, "k1"), "member", "FJI")).code == "FJI"


def test_the_single_secret_is_a_ring_of_one_key():
    settings = HubSettings(auth_secret=SECRET)
    # The form existing callers use (issue_token(settings.auth_secret, ...)) and the settings agree.
    assert verify_token(settings, issue_token(settings.auth_secret, "carrier", "FJ")).code == "FJ"
    assert verify_token(settings.auth_secret, issue_token(settings, "carrier", "FJ")).code == "FJ"
    named = HubSettings(auth_secret=SECRET, auth_key_id="2026")
    assert jwt.get_unverified_header(issue_token(named, "carrier", "FJ"))["kid"] == "2026"


@pytest.mark.parametrize(
    "fields,problem",
    [
        ({"auth_keys": {"k1": OLD, "k2": NEW}}, "set APIHUB_AUTH_KEY_ID"),
        ({"auth_keys": {"k1": OLD}, "auth_key_id": "k9"}, "not one of"),
        ({"auth_keys": {"k1": "short"}}, "at least 16"),
        ({"auth_keys": {"k 1": OLD}}, "without spaces"),
        ({"token_lifetime_days": 0}, "LIFETIME"),
        ({"token_leeway_seconds": -1}, "LEEWAY"),
    ],
)
def test_key_ring_settings_are_checked(fields, problem):
    with pytest.raises(ValidationError, match=problem):
        HubSettings(**fields)


# -- revocation through the directory --------------------------------------------------------------------------------


class Aborted(Exception):
    def __init__(self, code, details):
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    def __init__(self, token: str):
        self._metadata = tuple(bearer(token))

    def invocation_metadata(self):
        return self._metadata

    def abort(self, code, details):
        raise Aborted(code, details)


def _directory(revoked=(), carriers="", members="  - {code: FJI}\n"):
    text = f"members:\n{members}" + (f"carriers:\n{carriers}" if carriers else "")
    text += f"revoked_tokens: [{', '.join(revoked)}]\n"
    return parse_directory(text, "test.yaml")


def test_a_carrier_credential_is_revoked_by_its_id():
    kept, revoked = issue_token(SECRET, "carrier", "FJ"), issue_token(SECRET, "carrier", "FJ")
    directory = _directory(revoked=[token_claims(revoked)["jti"]])
    assert authenticate(Context(kept), SECRET, "carrier", directory).code == "FJ"
    with pytest.raises(Aborted) as refused:
        authenticate(Context(revoked), SECRET, "carrier", directory)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in refused.value.details


def test_a_carrier_listing_its_credentials_accepts_only_those():
    current, other = issue_token(SECRET, "carrier", "NZ"), issue_token(SECRET, "carrier", "NZ")
    directory = _directory(carriers=f"  - {{code: NZ, token_sha256: [{token_digest(current)}]}}\n")
    assert authenticate(Context(current), SECRET, "carrier", directory).code == "NZ"
    with pytest.raises(Aborted, match="revoked or unknown"):
        authenticate(Context(other), SECRET, "carrier", directory)
    # A carrier the directory does not list keeps any valid token.
    assert authenticate(Context(issue_token(SECRET, "carrier", "FJ")), SECRET, "carrier", directory).code == "FJ"


def test_member_credentials_are_revoked_by_digest_list_or_by_id():
    settings = HubSettings(auth_secret=SECRET)
    current, dropped, revoked = (issue_token(settings, "member", "FJI") for _ in range(3))
    directory = _directory(
        revoked=[token_claims(revoked)["jti"]],
        members=f"  - {{code: FJI, token_sha256: [{token_digest(current)}, {token_digest(revoked)}]}}\n",
    )
    assert authorize_member(Context(current), settings, directory, "FJI") == "FJI"
    for token, why in ((dropped, "revoked or unknown"), (revoked, "revoked")):
        with pytest.raises(Aborted, match=why) as refused:
            authorize_member(Context(token), settings, directory, "FJI")
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_directory_carriers_and_revocations_are_checked():
    from services.errors import ConfigError

    with pytest.raises(ConfigError, match=r"carriers\[0\]"):
        _directory(carriers="  - {code: 'F J!'}\n")
    with pytest.raises(ConfigError, match="SHA-256"):
        _directory(carriers="  - {code: FJ, token_sha256: [abc]}\n")
    with pytest.raises(ConfigError, match="duplicate carrier"):
        _directory(carriers="  - {code: FJ}\n  - {code: fj}\n")
    assert _directory(revoked=["a1", "b2"]).revoked_tokens == {"a1", "b2"}


# -- at intake, over a real channel ------------------------------------------------------------------------------------


def test_intake_refuses_expired_and_revoked_carrier_tokens(tmp_path):
    """The finding: carrier tokens never expired and could not be revoked."""
    ring_settings = HubSettings(auth_secret=SECRET)
    kept, revoked = issue_token(ring_settings, "carrier", "FJ"), issue_token(ring_settings, "carrier", "FJ")
    expired = issue_token(ring_settings, "carrier", "FJ", now=datetime.now(UTC) - timedelta(days=91))
    path = tmp_path / "members.yaml"
    path.write_text(f"members:\n  - {{code: FJI}}\nrevoked_tokens: [{token_claims(revoked)['jti']}]\n")
    config = HubSettings(auth_secret=SECRET, kafka_bootstrap="127.0.0.1:1", topic_prefix="auth", directory_file=path)
    index = IntakeIndex(config, reader=EmptyTable()).start()
    server = new_grpc_server(config)
    intake_pb2_grpc.add_ManifestIntakeServicer_to_server(
        ManifestIntakeServicer(config, MemoryProducer(), index), server
    )
    port = bind(server, "127.0.0.1:0")
    server.start()
    manifest = DemoTraffic(seed=3).next_manifest(passengers=2)
    manifest.carrier = "FJ"
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            stub = intake_pb2_grpc.ManifestIntakeStub(chan)
            for token, why in ((expired, "token expired"), (revoked, "revoked")):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.SubmitManifest(manifest, metadata=bearer(token), timeout=30)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert why in refused.value.details()
            try:
                stub.SubmitManifest(manifest, metadata=bearer(kept), timeout=30)
            except grpc.RpcError as exc:  # the manifest may be judged; the credential must not be what fails
                assert exc.code() != grpc.StatusCode.UNAUTHENTICATED, exc.details()
    finally:
        server.stop(0)
        index.stop()


# -- `apihub dev token` ------------------------------------------------------------------------------------------------


def test_dev_token_issues_with_an_expiry_and_shows_a_token(monkeypatch):
    import json

    from typer.testing import CliRunner

    from services.cli import app

    monkeypatch.setenv("APIHUB_AUTH_SECRET", SECRET)
    runner = CliRunner()
    issued = runner.invoke(app, ["dev", "token", "--carrier", "FJ", "--expires", "30d", "--json"])
    assert issued.exit_code == 0, issued.output
    info = json.loads(issued.stdout)
    assert (info["sub"], info["kid"], info["exp"] - info["iat"]) == ("carrier:FJ", DEFAULT_KEY_ID, 30 * 86400)
    assert info["sha256"] == token_digest(info["token"])

    shown = json.loads(runner.invoke(app, ["dev", "token", "--show", info["token"]]).stdout)
    assert (shown["jti"], shown["verifies"], shown["problem"]) == (info["jti"], True, "")
    digest = runner.invoke(app, ["dev", "token", "--show", info["token"], "--digest"])
    assert digest.stdout.strip() == info["sha256"]

    old = issue_token(SECRET, "member", "FJI", now=datetime.now(UTC) - timedelta(days=100))
    assert json.loads(runner.invoke(app, ["dev", "token", "--show", old]).stdout)["problem"] == "token expired"

    for args, problem in (
        (["--carrier", "FJ", "--expires", "soon"], "not a lifetime"),
        (["--member", "FJI", "--digest"], "--digest goes with --show"),
        (["--show", "not-a-token"], "malformed"),
    ):
        refused = runner.invoke(app, ["dev", "token", *args])
        assert refused.exit_code == 2 and problem in refused.output and "Traceback" not in refused.output


def test_a_verified_token_is_remembered_only_for_its_own_key_and_until_it_expires(monkeypatch):
    from services import auth

    ring = KeyRing({"k1": "a" * 40}, "k1")
    token = issue_token(ring, "carrier", "FJ")
    first = verify_token(ring, token)
    assert verify_token(ring, token) == first  # from the remembered verification
    # The same key id with another secret: the remembered answer does not count, the signature fails.
    with pytest.raises(AuthError, match="signature"):
        verify_token(KeyRing({"k1": "b" * 40}, "k1"), token)
    # Past its expiry the token is verified again (and refused), never answered from memory.
    later = first.expires_at + 3600
    monkeypatch.setattr(auth.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Clock(datetime.fromtimestamp(later, UTC)), raising=False)
    with pytest.raises(AuthError):
        verify_token(ring, token)


class _Clock:
    """datetime with now() fixed (for PyJWT's expiry check)."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self, tz=None):
        return self._now

    def __getattr__(self, name):
        return getattr(datetime, name)
