"""The delivery ledger: once per member, updates under the same id, withdrawals to exactly who got the hit."""

from services.codec import flight_key_of
from services.router.ledger import DeliveryLedger
from services.wire import hit_pb2


def _hit(hit_id="h-1", route=("NAN", "TBU"), reasons=("WL-1",), ref="P1"):
    hit = hit_pb2.Hit(hit_id=hit_id, manifest_id="m-1", state=hit_pb2.HIT_STATE_ACTIVE)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(route)
    hit.flight.departure.FromJsonString("2026-12-01T08:00:00Z")
    hit.traveller.passenger_ref = ref
    for r in reasons:
        hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id=r, score=1.0)
    return hit


def _clearance(*ids, whole_flight=False, template=None):
    record = hit_pb2.Hit(manifest_id="m-2", state=hit_pb2.HIT_STATE_WITHDRAWN, whole_flight=whole_flight)
    record.flight.CopyFrom((template or _hit()).flight)
    record.withdrawn_hit_ids.extend(ids)
    return record


def _members(route_members):
    return lambda hit: set(route_members)


def _run(ledger, hits, members=("FJI", "TON")):
    plan = ledger.plan(hits, _members(members))
    ledger.commit(plan.records)
    return [(c.recipient, c.hit_id, c.state) for c in plan.copies]


def test_a_hit_goes_once_to_each_member_and_a_replay_goes_nowhere():
    ledger = DeliveryLedger()
    assert _run(ledger, [_hit()]) == [("FJI", "h-1", 1), ("TON", "h-1", 1)]
    assert list(ledger.get("h-1").reason_keys) == ["watchlist::WL-1"]  # what dispositions are credited to
    assert _run(ledger, [_hit()]) == []
    # Same content from a later manifest version is not news either.
    later = _hit()
    later.manifest_id = "m-9"
    assert _run(ledger, [later]) == []


def test_a_changed_hit_is_sent_again_as_an_update():
    ledger = DeliveryLedger()
    _run(ledger, [_hit()])
    assert _run(ledger, [_hit(reasons=("WL-1", "HUB-DOC-EXPIRED"))]) == [("FJI", "h-1", 1), ("TON", "h-1", 1)]


def test_withdrawal_reaches_exactly_the_members_that_got_the_hit():
    ledger = DeliveryLedger()
    _run(ledger, [_hit("h-1")], members=("FJI",))
    _run(ledger, [_hit("h-2", ref="P2")], members=("FJI", "AUS"))
    copies = _run(ledger, [_clearance("h-1", "h-never-delivered")])
    assert copies == [("FJI", "h-1", hit_pb2.HIT_STATE_WITHDRAWN)]
    assert _run(ledger, [_clearance("h-1")]) == []  # already withdrawn
    assert ledger.get("h-1").withdrawn and not ledger.get("h-2").withdrawn


def test_withdrawal_names_the_passenger_reference_only():
    ledger = DeliveryLedger()
    _run(ledger, [_hit("h-1", ref="FJ911-007")], members=("FJI",))
    plan = ledger.plan([_clearance("h-1")], _members(()))
    [withdrawal] = plan.copies
    assert withdrawal.traveller.passenger_ref == "FJ911-007"
    assert not withdrawal.traveller.surname and not withdrawal.reasons


def test_cancelled_flight_withdraws_every_hit_of_that_flight_only():
    ledger = DeliveryLedger()
    other_flight = _hit("h-9", route=("APW", "NAN"))
    other_flight.flight.number = "761"
    _run(ledger, [_hit("h-1"), _hit("h-2", ref="P2"), other_flight], members=("FJI",))
    copies = _run(ledger, [_clearance(whole_flight=True)])
    assert sorted(copies) == [("FJI", "h-1", 2), ("FJI", "h-2", 2)]
    assert not ledger.get("h-9").withdrawn


def test_a_withdrawn_hit_raised_again_is_delivered_again():
    ledger = DeliveryLedger()
    _run(ledger, [_hit()], members=("FJI",))
    _run(ledger, [_clearance("h-1")], members=("FJI",))
    assert _run(ledger, [_hit()], members=("FJI",)) == [("FJI", "h-1", 1)]


def test_the_ledger_is_rebuilt_from_its_topic_records():
    first = DeliveryLedger()
    plan = first.plan([_hit()], _members(("FJI",)))
    rebuilt = DeliveryLedger()
    for hit_id, record in plan.records.items():
        rebuilt.apply_record(hit_id.encode(), record.SerializeToString())
    assert rebuilt.get("h-1").flight_key == flight_key_of(_hit().flight)
    assert _run(rebuilt, [_hit()], members=("FJI",)) == []
    rebuilt.apply_record(b"h-1", None)  # tombstone
    assert rebuilt.get("h-1") is None


def test_a_member_no_longer_entitled_to_a_hit_is_sent_a_withdrawal():
    # The owner of a shared entry got the hit; a correction means the entry no longer matches, a rule still does.
    ledger = DeliveryLedger()
    assert _run(ledger, [_hit()], members=("FJI", "AUS")) == [("AUS", "h-1", 1), ("FJI", "h-1", 1)]
    corrected = _hit(reasons=("HUB-DOC-EXPIRED",))
    assert _run(ledger, [corrected], members=("FJI",)) == [("FJI", "h-1", 1), ("AUS", "h-1", 2)]
    assert not ledger.get("h-1").withdrawn  # Fiji still holds it
    assert _run(ledger, [corrected], members=("FJI",)) == []  # the withdrawal is not repeated
    # Cancelling the traveller now withdraws it from Fiji only: Australia was already told.
    assert _run(ledger, [_clearance("h-1")]) == [("FJI", "h-1", 2)]


def test_tailored_copies_differ_per_member_and_none_means_not_for_that_member():
    ledger = DeliveryLedger()

    def only_fiji_sees_reason_b(hit, member):
        copy = hit_pb2.Hit()
        copy.CopyFrom(hit)
        if member != "FJI":
            kept = [r for r in hit.reasons if r.id != "B"]
            if not kept:
                return None
            del copy.reasons[:]
            copy.reasons.extend(kept)
        return copy

    def run(hit):
        plan = ledger.plan([hit], _members(("FJI", "TON")), only_fiji_sees_reason_b)
        ledger.commit(plan.records)
        return [(c.recipient, c.state, [r.id for r in c.reasons]) for c in plan.copies]

    assert run(_hit(reasons=("B",))) == [("FJI", 1, ["B"])]
    assert run(_hit(reasons=("A", "B"))) == [("FJI", 1, ["A", "B"]), ("TON", 1, ["A"])]
    # Only Fiji's version changed when B goes: Tonga's copy is the same as before and is not resent.
    assert run(_hit(reasons=("A",))) == [("FJI", 1, ["A"])]
    assert run(_hit(reasons=("B",))) == [("FJI", 1, ["B"]), ("TON", 2, [])]
    assert not ledger.get("h-1").withdrawn
