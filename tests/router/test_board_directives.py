"""Members' copies of interactive hits: the profiler fills Hit.directives with every member's board directive; each
member's copy carries its own alone (never another member's), and stays interactive."""

from __future__ import annotations

from services.config import HubSettings
from services.router.ledger import DeliveryLedger
from services.router.recipients import member_tailor, own_directive_tailor, recipients
from services.wire import check_pb2, hit_pb2


def _interactive_hit(fakes, directives: dict[str, int]) -> hit_pb2.Hit:
    hit = fakes.make_hit("h-iapi-1", ["SYD", "NAN", "TBU"])
    hit.interactive = True
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_RULE, id="r1", owner="FJI", score=1.0)
    hit.score = 1.0
    for member, directive in directives.items():
        hit.directives[member] = directive
    return hit


DIRECTIVES = {
    "AUS": check_pb2.DIRECTIVE_OK_TO_BOARD,
    "FJI": check_pb2.DIRECTIVE_DO_NOT_BOARD,
    "TON": check_pb2.DIRECTIVE_CONTACT_AUTHORITY,
}


def test_every_members_copy_carries_its_own_directive_alone(directory, fakes):
    hit = _interactive_hit(fakes, DIRECTIVES)
    plan = DeliveryLedger().plan([hit], lambda h: recipients(h, directory), member_tailor(HubSettings()))
    copies = {copy.recipient: copy for copy in plan.copies}
    assert set(copies) == {"AUS", "FJI", "TON"}
    for member, copy in copies.items():
        assert dict(copy.directives) == {member: DIRECTIVES[member]}, f"{member} sees {dict(copy.directives)}"
        assert copy.interactive
    # The hit on the topic is left as it was (another member's copy is made from it next).
    assert dict(hit.directives) == DIRECTIVES


def test_a_member_without_a_directive_sees_none_of_the_others(fakes):
    hit = _interactive_hit(fakes, {"FJI": check_pb2.DIRECTIVE_DO_NOT_BOARD})
    copy = own_directive_tailor(hit, "WSM")  # e.g. a watchlist owner the sharing policy lets see it
    assert not copy.directives and copy.interactive
    assert own_directive_tailor(hit, "FJI") is hit  # its own alone: no copy needed


def test_a_batch_hit_is_left_as_is(fakes):
    hit = fakes.make_hit("h-batch-1", ["NAN", "TBU"])
    assert own_directive_tailor(hit, "FJI") is hit
