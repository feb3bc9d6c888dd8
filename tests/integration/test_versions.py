"""Versions of a flight's manifest through the real broker: duplicates, changes, cancellations, close-out."""

from __future__ import annotations

import pytest
from hubkit import flight, plant

from services.bus import Topics, make_consumer
from services.wire import hit_pb2, intake_pb2, manifest_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

ACTIVE, WITHDRAWN = hit_pb2.HIT_STATE_ACTIVE, hit_pb2.HIT_STATE_WITHDRAWN


def _version(original: manifest_pb2.Manifest, function: int, revision: int, travellers=(), amendment=0):
    m = manifest_pb2.Manifest()
    m.CopyFrom(original)
    m.function, m.revision, m.amendment = function, revision, amendment
    del m.travellers[:]
    m.travellers.extend(travellers)
    return m


def _traveller(m: manifest_pb2.Manifest, ref: str) -> manifest_pb2.Traveller:
    [t] = [t for t in m.travellers if t.passenger_ref == ref]
    copy = manifest_pb2.Traveller()
    copy.CopyFrom(t)
    return copy


@pytest.fixture
def listed(hub):
    entry = demo_watchlists()["WSM"][0]
    hub.load("WSM", [entry])
    original = flight(["APW", "NAN"], carrier="OL", number="761")
    original.message_ref, original.revision = "OL761-20261201", 1
    plant(original, entry, "OL761-P9")
    [receipt] = hub.submit(original)
    assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    [hit] = hub.hits("WSM", want=1, idle=20)
    assert (hit.traveller.passenger_ref, hit.state) == ("OL761-P9", ACTIVE)
    return original, hit


def test_the_same_message_twice_is_a_duplicate_and_processed_once(hub, listed):
    original, hit = listed
    [again] = hub.submit(original)
    assert again.status == intake_pb2.RECEIPT_STATUS_DUPLICATE
    # Same reference and revision with other content (a carrier system re-sending a version): a resend.
    same_ref = manifest_pb2.Manifest()
    same_ref.CopyFrom(original)
    del same_ref.travellers[0]
    [dup] = hub.submit(same_ref)
    assert dup.status == intake_pb2.RECEIPT_STATUS_DUPLICATE and dup.manifest_id == hit.manifest_id
    # Without a carrier reference, the content is the key: a new envelope time does not make it new.
    unreferenced = flight(["APW", "NAN"], carrier="OL", number="763")
    unreferenced.message_ref = ""
    first = hub.submit(unreferenced)[0]
    unreferenced.sent_at.FromJsonString("2030-01-01T00:00:00Z")
    second = hub.submit(unreferenced)[0]
    assert (first.status, second.status) == (
        intake_pb2.RECEIPT_STATUS_ACCEPTED,
        intake_pb2.RECEIPT_STATUS_DUPLICATE,
    )
    assert second.manifest_id == first.manifest_id
    assert hub.hits("WSM", idle=2) == []

    consumer = make_consumer(hub.settings, None, "test-count")
    consumer.subscribe([Topics(hub.settings.topic_prefix).manifests])
    stored = []
    for _ in range(20):
        stored += [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
    consumer.close()
    assert len(stored) == 2  # the original and the unreferenced flight, each once


def test_a_resend_that_changes_nothing_for_the_traveller_is_not_delivered_again(hub, listed):
    original, _ = listed
    revision = _version(original, manifest_pb2.MESSAGE_FUNCTION_ORIGINAL, 2, original.travellers)
    revision.travellers[0].seat = "33K"  # someone else's seat changed: a new version, same hit
    assert hub.submit(revision)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    assert hub.hits("WSM", idle=3) == []


def test_changed_data_updates_the_hit_and_a_correction_withdraws_it(hub, listed):
    original, hit = listed
    expired = _traveller(original, "OL761-P9")
    expired.documents[0].expiry.year = 2020
    change = _version(original, manifest_pb2.MESSAGE_FUNCTION_CHANGE, 2, [expired], manifest_pb2.AMENDMENT_CHANGED_DATA)
    assert hub.submit(change)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    [update] = hub.hits("WSM", want=1, idle=20)
    assert (update.hit_id, update.state) == (hit.hit_id, ACTIVE)
    assert sorted(r.id for r in update.reasons) == sorted([hit.reasons[0].id, "HUB-DOC-EXPIRED"])

    corrected = _traveller(original, "OL761-P9")
    # The carrier corrects the record: another person altogether, who matches no watchlist entry.
    corrected.surname, corrected.given_names = "Kwaimani", "Ruth"
    corrected.date_of_birth.year -= 17
    corrected.documents[0].number = "S7654321"
    change = _version(
        original, manifest_pb2.MESSAGE_FUNCTION_CHANGE, 3, [corrected], manifest_pb2.AMENDMENT_CHANGED_DATA
    )
    hub.submit(change)
    [withdrawal] = hub.hits("WSM", want=1, idle=20)
    assert (withdrawal.hit_id, withdrawal.state) == (hit.hit_id, WITHDRAWN)
    assert withdrawal.traveller.passenger_ref == "OL761-P9" and not withdrawal.traveller.surname


def test_cancelled_reservation_withdraws_the_hit_from_every_member_that_got_it(hub, listed):
    original, hit = listed
    [fji_hit] = hub.hits("FJI", want=1, idle=20)  # NAN is Fiji's: it got the hit too
    assert fji_hit.hit_id == hit.hit_id
    gone = _traveller(original, "OL761-P9")
    cancel = _version(
        original,
        manifest_pb2.MESSAGE_FUNCTION_CHANGE,
        2,
        [gone],
        manifest_pb2.AMENDMENT_CANCELLED_RESERVATION,
    )
    assert hub.submit(cancel)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    for member in ("WSM", "FJI"):
        [withdrawal] = hub.hits(member, want=1, idle=20)
        assert (withdrawal.hit_id, withdrawal.state, withdrawal.recipient) == (hit.hit_id, WITHDRAWN, member)
    assert hub.hits("AUS", idle=1) == []


def test_a_cancelled_flight_withdraws_its_hits_and_close_out_reports_boarding(hub, listed):
    original, hit = listed
    not_boarded = _traveller(original, "OL761-P9")
    not_boarded.boarding = manifest_pb2.BOARDING_STATUS_NOT_BOARDED
    close_out = _version(original, manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT, 2, [not_boarded])
    assert hub.submit(close_out)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    [update] = hub.hits("WSM", want=1, idle=20)
    assert (update.hit_id, update.state) == (hit.hit_id, ACTIVE)
    assert update.traveller.boarding == manifest_pb2.BOARDING_STATUS_NOT_BOARDED

    cancelled = _version(original, manifest_pb2.MESSAGE_FUNCTION_CANCEL, 3)
    assert hub.submit(cancelled)[0].status == intake_pb2.RECEIPT_STATUS_ACCEPTED
    [withdrawal] = hub.hits("WSM", want=1, idle=20)
    assert (withdrawal.hit_id, withdrawal.state) == (hit.hit_id, WITHDRAWN)
