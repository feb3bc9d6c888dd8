"""BoardAdmin through the real broker and a real gRPC channel: a member's board policy loaded (problems answered with
their lines, nothing stored), read back, audited; board overrides of hits the member received, listed, withdrawn,
audited with the officer the console names; another member can neither override nor list them, and an id the
member never received answers NOT_FOUND whether or not it exists for others.

The tests write what the router's worker would have written (delivery records, outbox copies) straight to the
topics, so no profiling is needed. Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from services.auth import bearer, console_token, issue_token, officer
from services.board.policy import template_text
from services.config import HubSettings
from services.wire import delivery_pb2, delivery_pb2_grpc
from tests import routerkit

HOUR = timedelta(hours=1)
BAD_POLICY = "version: 1\nmember: FJI\nfallback: OK_TO_BOARD\nsurprise: yes\n"


class Hub(routerkit.LiveRouter):
    def __init__(self, settings: HubSettings):
        super().__init__(settings)
        self.channel = grpc.insecure_channel(self.address)
        self.board = delivery_pb2_grpc.BoardAdminStub(self.channel)
        self.records = delivery_pb2_grpc.MemberRecordsStub(self.channel)

    def console(self, user: str = "") -> list[tuple[str, str]]:
        return bearer(console_token(self.settings, HOUR)) + officer(user)

    def member(self, code: str, user: str = "") -> list[tuple[str, str]]:
        return bearer(issue_token(self.settings, "member", code)) + officer(user)

    def trail(self, member: str) -> list[delivery_pb2.AuditEvent]:
        page = self.records.AuditTrail(
            delivery_pb2.AuditTrailRequest(member=member, limit=500), metadata=self.console(), timeout=30
        )
        return [r.event for r in page.records]

    def stop(self) -> None:
        self.channel.close()
        super().stop()


@pytest.fixture
def hub(settings):
    running = Hub(settings)
    yield running
    running.stop()


def _refused(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, (err.value.code(), err.value.details())
    return err.value.details()


def _override(hub: Hub, metadata, member: str, hit_id: str, reason: str = "checked", revoke: bool = False):
    request = delivery_pb2.OverrideRequest(member=member, hit_id=hit_id, reason=reason, revoke=revoke)
    return hub.board.Override(request, metadata=metadata, timeout=30).override


def _list(hub: Hub, metadata, member: str, hit_id: str = "") -> list[delivery_pb2.BoardOverride]:
    request = delivery_pb2.ListOverridesRequest(member=member, hit_id=hit_id)
    return list(hub.board.ListOverrides(request, metadata=metadata, timeout=30).overrides)


def _get(hub: Hub, metadata, member: str) -> str:
    return hub.board.GetBoardPolicy(delivery_pb2.GetBoardPolicyRequest(member=member), metadata=metadata).yaml


# -- board policies --------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_policy_is_loaded_read_back_and_audited_and_a_bad_one_is_answered_with_its_lines(hub):
    assert _get(hub, hub.member("FJI"), "FJI") == ""  # none loaded yet
    good = template_text("FJI")
    loaded = hub.board.LoadBoardPolicy(
        delivery_pb2.BoardPolicyFile(owner="fji", yaml=good), metadata=hub.console("bob"), timeout=30
    )
    assert not loaded.errors and loaded.digest
    assert _get(hub, hub.member("FJI"), "FJI") == good
    assert _get(hub, hub.console(), "FJI") == good
    assert _get(hub, hub.member("TON"), "TON") == ""  # nothing of Fiji's for Tonga

    bad = hub.board.LoadBoardPolicy(
        delivery_pb2.BoardPolicyFile(owner="FJI", yaml=BAD_POLICY), metadata=hub.member("FJI"), timeout=30
    )
    assert bad.errors and not bad.digest
    assert all(v.field.startswith("line ") for v in bad.errors)
    assert {v.field for v in bad.errors} >= {"line 3", "line 4"}, list(bad.errors)
    assert _get(hub, hub.member("FJI"), "FJI") == good  # nothing stored

    events = [e for e in hub.trail("FJI") if e.event == "policy-loaded"]
    assert [(e.detail, e.user) for e in events] == [(loaded.digest, "bob")]


@pytest.mark.integration
def test_only_the_member_or_the_console_naming_its_officer_loads_or_reads_a_policy(hub):
    policy = delivery_pb2.BoardPolicyFile(owner="FJI", yaml=template_text("FJI"))
    _refused(lambda: hub.board.LoadBoardPolicy(policy, metadata=hub.member("TON")), grpc.StatusCode.PERMISSION_DENIED)
    _refused(lambda: hub.board.LoadBoardPolicy(policy, metadata=hub.console()), grpc.StatusCode.PERMISSION_DENIED)
    _refused(lambda: hub.board.LoadBoardPolicy(policy), grpc.StatusCode.UNAUTHENTICATED)
    carrier = bearer(issue_token(hub.settings, "carrier", "FJ"))
    _refused(lambda: hub.board.LoadBoardPolicy(policy, metadata=carrier), grpc.StatusCode.PERMISSION_DENIED)
    _refused(lambda: _get(hub, hub.member("TON"), "FJI"), grpc.StatusCode.PERMISSION_DENIED)
    # A policy naming another member is refused for the loading one, with its line.
    wrong = hub.board.LoadBoardPolicy(
        delivery_pb2.BoardPolicyFile(owner="TON", yaml=template_text("FJI")), metadata=hub.member("TON"), timeout=30
    )
    assert wrong.errors and not wrong.digest
    assert _get(hub, hub.member("TON"), "TON") == ""


# -- overrides -------------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_an_override_of_a_received_hit_is_listed_withdrawn_and_audited_with_the_officer(hub):
    hub.put_hit("FJI", "h-fji-board-1")
    given = _override(hub, hub.console("bob"), "FJI", "h-fji-board-1", "identity confirmed with the passport office")
    assert (given.member, given.hit_id, given.user, given.revoked) == ("FJI", "h-fji-board-1", "bob", False)
    assert given.reason == "identity confirmed with the passport office" and given.at.seconds
    assert [(o.hit_id, o.revoked) for o in _list(hub, hub.console(), "FJI")] == [("h-fji-board-1", False)]
    assert [o.user for o in _list(hub, hub.member("FJI"), "FJI", "h-fji-board-1")] == ["bob"]

    withdrawn = _override(hub, hub.console("carol"), "FJI", "h-fji-board-1", "", revoke=True)
    assert withdrawn.revoked and withdrawn.user == "carol"
    listed = _list(hub, hub.member("FJI"), "FJI")
    assert [(o.hit_id, o.revoked, o.user) for o in listed] == [("h-fji-board-1", True, "carol")]
    # Nothing left to withdraw.
    _refused(
        lambda: _override(hub, hub.console("carol"), "FJI", "h-fji-board-1", revoke=True),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # A member's own tool (its token, no officer) may override too.
    again = _override(hub, hub.member("FJI"), "FJI", "h-fji-board-1", "duty desk")
    assert not again.revoked and again.user == ""

    events = [(e.hit_id, e.detail, e.user) for e in hub.trail("FJI") if e.event == "overridden"]
    assert events == [  # newest first
        ("h-fji-board-1", "override", ""),
        ("h-fji-board-1", "revoked", "carol"),
        ("h-fji-board-1", "override", "bob"),
    ]


@pytest.mark.integration
def test_another_member_can_neither_override_nor_list_a_members_override(hub):
    hub.put_hit("FJI", "h-fji-board-2")
    hub.put_hit("TON", "h-ton-board-1")
    _override(hub, hub.console("bob"), "FJI", "h-fji-board-2")
    # Tonga's officer, through the console, with Fiji's hit id: not found, as for an id that does not exist.
    fiji = _refused(lambda: _override(hub, hub.console("tevita"), "TON", "h-fji-board-2"), grpc.StatusCode.NOT_FOUND)
    nowhere = _refused(lambda: _override(hub, hub.console("tevita"), "TON", "h-nosuch"), grpc.StatusCode.NOT_FOUND)
    assert fiji.replace("h-fji-board-2", "ID") == nowhere.replace("h-nosuch", "ID")
    # Tonga's token cannot act for Fiji at all.
    _refused(lambda: _override(hub, hub.member("TON"), "FJI", "h-fji-board-2"), grpc.StatusCode.PERMISSION_DENIED)
    _refused(lambda: _list(hub, hub.member("TON"), "FJI"), grpc.StatusCode.PERMISSION_DENIED)
    # Tonga's own list holds nothing of Fiji's, even asked for Fiji's hit id.
    assert _list(hub, hub.member("TON"), "TON") == []
    assert _list(hub, hub.console(), "TON", "h-fji-board-2") == []
    _override(hub, hub.member("TON"), "TON", "h-ton-board-1", "cleared")
    assert [o.hit_id for o in _list(hub, hub.console(), "TON")] == ["h-ton-board-1"]
    assert [o.hit_id for o in _list(hub, hub.console(), "FJI")] == ["h-fji-board-2"]
    assert not [e for e in hub.trail("TON") if e.event == "overridden" and e.hit_id == "h-fji-board-2"]


@pytest.mark.integration
def test_an_override_needs_a_reason_on_one_line_and_the_console_must_name_its_officer(hub):
    hub.put_hit("FJI", "h-fji-board-3")
    for reason in ("", "   ", "two\nlines", "x" * 301, "bell\x07"):
        _refused(
            lambda reason=reason: _override(hub, hub.console("bob"), "FJI", "h-fji-board-3", reason),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    _refused(lambda: _override(hub, hub.console(), "FJI", "h-fji-board-3"), grpc.StatusCode.PERMISSION_DENIED)
    _refused(lambda: _override(hub, hub.console("bob"), "FJI", ""), grpc.StatusCode.INVALID_ARGUMENT)
    _refused(lambda: _override(hub, hub.console("bob"), "FJI", "h" * 300), grpc.StatusCode.INVALID_ARGUMENT)
    assert _list(hub, hub.console(), "FJI") == []
    assert _override(hub, hub.console("bob"), "FJI", "h-fji-board-3", "x" * 300).reason == "x" * 300
