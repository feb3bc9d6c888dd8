"""The sharing policy: owners see hits outside their jurisdiction only under an arrangement; nobody else ever."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.directory import load_directory
from services.errors import ConfigError
from services.router.recipients import recipients
from services.sharing import NO_SHARING, load_policy, parse_policy
from services.wire import hit_pb2

DIRECTORY = load_directory()
POLICY = parse_policy(
    "arrangements:\n  - {name: t, parties: [AUS, FJI, TON, WSM], shares: [watchlist]}\n", "test", DIRECTORY
)
PORTS = ["NAN", "SUV", "APW", "TBU", "SYD", "BNE", "AKL", "POM", "HIR", "VLI", "NOU", "RAR", "TRW", "LAX", "HNL"]


def _hit(route, *reasons):
    hit = hit_pb2.Hit(hit_id="h-1")
    hit.flight.route.extend(route)
    for source, owner in reasons:
        hit.reasons.add(source=source, id="X", owner=owner, score=1.0)
    return hit


def test_owner_party_to_an_arrangement_with_every_jurisdiction_member_receives_the_hit():
    hit = _hit(["NAN", "APW"], (hit_pb2.REASON_SOURCE_WATCHLIST, "AUS"))
    assert recipients(hit, DIRECTORY, POLICY) == {"FJI", "WSM", "AUS"}


def test_owner_is_left_out_when_a_jurisdiction_member_is_not_a_party_or_the_kind_is_not_shared():
    # New Zealand is on the route but not a party: Australia's entry does not pull the hit out of the route.
    assert recipients(_hit(["AKL", "NAN"], (hit_pb2.REASON_SOURCE_WATCHLIST, "AUS")), DIRECTORY, POLICY) == {
        "NZL",
        "FJI",
    }
    # Rules are not covered by the arrangement.
    assert recipients(_hit(["NAN", "APW"], (hit_pb2.REASON_SOURCE_RULE, "AUS")), DIRECTORY, POLICY) == {"FJI", "WSM"}
    assert recipients(_hit(["NAN", "APW"], (hit_pb2.REASON_SOURCE_WATCHLIST, "AUS")), DIRECTORY, NO_SHARING) == {
        "FJI",
        "WSM",
    }


@settings(max_examples=300, deadline=None, database=None)
@given(
    route=st.lists(st.sampled_from(PORTS), min_size=2, max_size=4),
    owners=st.lists(st.sampled_from(sorted(DIRECTORY.codes)), max_size=3),
    source=st.sampled_from([hit_pb2.REASON_SOURCE_WATCHLIST, hit_pb2.REASON_SOURCE_RULE]),
)
def test_nobody_outside_jurisdiction_and_permitted_owners_ever_receives_a_hit(route, owners, source):
    hit = _hit(route, *[(source, owner) for owner in owners])
    jurisdiction = DIRECTORY.jurisdiction(route)
    permitted = {o for o in owners if POLICY.allows(o, source, jurisdiction) and jurisdiction}
    got = recipients(hit, DIRECTORY, POLICY)
    assert got <= jurisdiction | permitted
    assert jurisdiction <= got


def test_policy_errors_name_the_arrangement():
    with pytest.raises(ConfigError, match=r"arrangements\[0\].*XXQ"):
        parse_policy("arrangements:\n  - {parties: [FJI, XXQ], shares: [watchlist]}\n", "p.yaml", DIRECTORY)
    with pytest.raises(ConfigError, match="shares"):
        parse_policy("arrangements:\n  - {parties: [FJI], shares: [gossip]}\n", "p.yaml", DIRECTORY)


def test_shipped_demo_policy_loads():
    policy = load_policy(None, DIRECTORY)
    assert policy.arrangements and all(a.parties <= set(DIRECTORY.codes) for a in policy.arrangements)
