"""The console principal (services.auth): the hub's member console acts for any member, a member only for itself, a
carrier for none; the officer named in `apihub-user` is checked where a call changes a member's data or shows a
traveller's; revocation applies. Unit tests: a fake servicer context, no broker (refused before Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest

from services.auth import (
    CONSOLE,
    TOKEN_EXPIRIES,
    USER_KEY,
    authorize_member,
    authorize_member_call,
    bearer,
    console_token,
    issue_token,
    officer,
    verify_token,
)
from services.directory import parse_directory
from services.router.admin import RulesAdminServicer, WatchlistAdminServicer
from services.wire import delivery_pb2

HOUR = timedelta(hours=1)


@pytest.fixture
def console(unit_settings):
    """Metadata of a console call: its token and, when given, the officer."""

    def metadata(user: str = "") -> list[tuple[str, str]]:
        return bearer(console_token(unit_settings, HOUR)) + officer(user)

    return metadata


def test_the_console_token_names_the_console_and_expires_when_asked(unit_settings):
    now = datetime.now(UTC)
    token = console_token(unit_settings, HOUR, now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "console:hub"
    assert claims["exp"] - claims["iat"] == 3600
    principal = verify_token(unit_settings, token)
    assert (principal.kind, principal.code) == (CONSOLE, "hub")


def test_operators_cannot_issue_console_tokens(unit_settings):
    with pytest.raises(ValueError):
        issue_token(unit_settings, "console", "hub")


def test_an_expired_console_token_is_refused(unit_settings, directory, fakes):
    old = console_token(unit_settings, timedelta(seconds=1), now=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(fakes.Aborted) as err:
        authorize_member(fakes.Context(bearer(old)), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.value.details


@pytest.mark.parametrize("member", ["FJI", "TON", "wsm"])
def test_the_console_acts_for_any_member(unit_settings, directory, fakes, console, member):
    call = authorize_member_call(fakes.Context(console("analyst.1")), unit_settings, directory, member)
    assert (call.member, call.user, call.by_console) == (member.upper(), "analyst.1", True)


def test_a_member_acts_only_for_itself(unit_settings, directory, fakes, token_for):
    call = authorize_member_call(fakes.Context(token_for("member", "FJI")), unit_settings, directory, "FJI")
    assert (call.member, call.user, call.by_console) == ("FJI", "", False)
    with pytest.raises(fakes.Aborted) as err:
        authorize_member_call(fakes.Context(token_for("member", "FJI")), unit_settings, directory, "TON")
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_carrier_acts_for_no_member(unit_settings, directory, fakes, token_for):
    with pytest.raises(fakes.Aborted) as err:
        authorize_member_call(fakes.Context(token_for("carrier", "FJ")), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_the_console_acts_for_no_one_outside_the_directory(unit_settings, directory, fakes, console):
    with pytest.raises(fakes.Aborted) as err:
        authorize_member_call(fakes.Context(console("a")), unit_settings, directory, "USA")
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_calls_that_need_an_officer_refuse_a_console_call_naming_none(unit_settings, directory, fakes, console):
    with pytest.raises(fakes.Aborted) as err:
        authorize_member_call(fakes.Context(console()), unit_settings, directory, "FJI", needs_user=True)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED and USER_KEY in err.value.details
    # Reads of ids and counts need none.
    assert authorize_member_call(fakes.Context(console()), unit_settings, directory, "FJI").user == ""


def test_a_members_own_tools_need_not_name_an_officer(unit_settings, directory, fakes, token_for):
    call = authorize_member_call(
        fakes.Context(token_for("member", "FJI")), unit_settings, directory, "FJI", needs_user=True
    )
    assert call.user == ""


@pytest.mark.parametrize("user", ["Alice", "a b", "x" * 65, "é", "a/b", "a\nb"])
def test_a_malformed_officer_name_is_invalid(unit_settings, directory, fakes, console, user):
    with pytest.raises(fakes.Aborted) as err:
        authorize_member_call(fakes.Context(console(user)), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert user not in err.value.details  # never echoed


def test_a_revoked_console_token_is_refused(unit_settings, fakes):
    revoked = console_token(unit_settings, HOUR)
    current = console_token(unit_settings, HOUR)
    jti = verify_token(unit_settings, revoked).token_id
    directory = parse_directory(f"members:\n  - {{code: FJI}}\nrevoked_tokens: [{jti}]\n", "test")
    assert authorize_member(fakes.Context(bearer(current)), unit_settings, directory, "FJI") == "FJI"
    with pytest.raises(fakes.Aborted) as err:
        authorize_member(fakes.Context(bearer(revoked)), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.value.details


def test_a_member_pinned_to_its_certificates_still_lets_the_console_act_for_it(unit_settings, fakes, console):
    # The console is the hub's service, connecting with the hub's own client settings, not the member's certificate.
    class PlainContext(fakes.Context):
        def auth_context(self):
            return {}  # no client certificate

    directory = parse_directory(f"members:\n  - {{code: FJI, cert_sha256: [{'ab' * 32}]}}\n", "test")
    assert authorize_member(PlainContext(console("a")), unit_settings, directory, "FJI") == "FJI"
    member = bearer(issue_token(unit_settings, "member", "FJI"))
    with pytest.raises(fakes.Aborted) as err:
        authorize_member(PlainContext(member), unit_settings, directory, "FJI")
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_console_tokens_stay_out_of_the_token_expiry_gauge(unit_settings, directory, fakes, console):
    authorize_member(fakes.Context(console("a")), unit_settings, directory, "FJI")
    assert all(kind != CONSOLE for kind, _ in TOKEN_EXPIRIES.soonest())


# -- the calls that change a member's data -------------------------------------------------------------------------


def test_loads_by_the_console_need_an_officer_and_write_the_officer_to_the_trail(
    unit_settings, directory, fakes, console
):
    events: list[delivery_pb2.AuditEvent] = []
    producer = fakes.Producer()
    kwargs = {"producer_factory": lambda: producer, "ack_timeout_s": 0.1, "audit": lambda ctx, e: events.append(e)}
    watchlists = WatchlistAdminServicer(unit_settings, directory, **kwargs)
    rules = RulesAdminServicer(unit_settings, directory, **kwargs)
    watchlist = delivery_pb2.Watchlist(owner="TON")
    watchlist.entries.add(entry_id="TON-1", surname="SYNTHETIC")
    rule_file = delivery_pb2.RuleFile(owner="TON", yaml="owner: TON\nrules: []\n")

    for load, request in ((watchlists.LoadWatchlist, watchlist), (rules.LoadRules, rule_file)):
        with pytest.raises(fakes.Aborted) as err:
            load(request, fakes.Context(console()))
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert producer.sent == [] and events == []

    watchlists.LoadWatchlist(watchlist, fakes.Context(console("duty.officer")))
    rules.LoadRules(rule_file, fakes.Context(console("duty.officer")))
    assert [(e.event, e.member, e.user) for e in events] == [
        ("watchlist-loaded", "TON", "duty.officer"),
        ("rules-loaded", "TON", "duty.officer"),
    ]
    assert events[0].detail == "1 entries, regional"
    assert "SYNTHETIC" not in events[0].detail
    assert len(producer.sent) == 2
