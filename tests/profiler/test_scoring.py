from datetime import UTC, datetime

import polars as pl
import pytest

from services import codec
from services.directory import load_directory
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.rules import evaluate_rules, with_jurisdiction
from services.profiler.scoring import clearances, combined_score, order_by_manifest, score_batch
from services.profiler.watchlist import WatchlistStore
from services.rules.rule import DOCUMENT_EXPIRED, HUB_RULES, Rule
from services.wire import delivery_pb2, hit_pb2, manifest_pb2

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DEPARTURE = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)  # 19:00 on 1 March in Nadi
DIRECTORY = load_directory()


def _date(y, m, d):
    return manifest_pb2.PartialDate(year=y, month=m, day=d)


def _traveller(surname="Tupou", given="Sione", dob=(1975, 1, 1), expiry=(2031, 1, 1), ref=""):
    t = manifest_pb2.Traveller(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=surname,
        given_names=given,
        date_of_birth=_date(*dob),
        nationality="TON",
        passenger_ref=ref,
    )
    t.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number="TP0012345",
        issuing_state="TON",
        expiry=_date(*expiry),
    )
    return t


def _manifest(*travellers, manifest_id="m-aaaa", origin="NAN", destination="TBU", function=1):
    manifest = manifest_pb2.Manifest(
        carrier="FJ", flight_number="911", manifest_id=manifest_id, function=function, travellers=travellers
    )
    manifest.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(DEPARTURE)
    manifest.received_at.FromDatetime(datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    return manifest


def _wanted():
    return _traveller(surname="Müller", given="Jean-Pierre", dob=(1980, 7, 14), ref="PAX-7")


def _store(owner="FJI", scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL, entry_id="WL-0007", category="people_smuggling"):
    store = WatchlistStore()
    store.apply(
        delivery_pb2.Watchlist(
            owner=owner,
            scope=scope,
            entries=[
                delivery_pb2.WatchlistEntry(
                    entry_id=entry_id,
                    surname="MULLER",
                    given_names="JEAN PIERRE",
                    date_of_birth=_date(1980, 7, 14),
                    category=category,
                )
            ],
        )
    )
    return store


# -- rules -------------------------------------------------------------------------------------------------


def test_expired_document_rule_flags_only_documents_expired_before_departure():
    manifest = _manifest(
        _traveller(expiry=(2026, 2, 28)),  # expired the day before departure
        _traveller(expiry=(2026, 3, 1)),  # valid on the day of departure
        _traveller(expiry=(2030, 1, 1)),
        _traveller(expiry=(2020, 0, 0)),  # no complete expiry: nothing to judge
    )
    flags = evaluate_rules(manifests_to_frame([manifest]))[DOCUMENT_EXPIRED.column].to_list()
    assert flags == [True, False, False, False]


def test_rule_hit_carries_the_rules_reason():
    hits = score_batch([_manifest(_traveller(expiry=(2026, 2, 1)), _traveller())], WatchlistStore(), DIRECTORY, NOW)
    assert len(hits) == 1
    [reason] = hits[0].reasons
    assert (reason.source, reason.id, reason.score, reason.owner, reason.category) == (
        hit_pb2.REASON_SOURCE_RULE,
        "HUB-DOC-EXPIRED",
        0.5,
        "",
        "document",
    )
    assert reason.explanation == DOCUMENT_EXPIRED.explanation
    assert hits[0].score == pytest.approx(0.5)


def test_valid_document_raises_no_hit():
    assert score_batch([_manifest(_traveller(expiry=(2026, 3, 1)))], WatchlistStore(), DIRECTORY, NOW) == []


def test_rules_are_evaluated_as_one_column_each():
    extra = Rule("T-CREW", "FJI", "test", 0.2, "crew", "crew member", pl.col("role") == 2)
    batch = [_manifest(_traveller())]
    # A member's rule needs to know whose flights these are: it never runs on other members' flights.
    with pytest.raises(ValueError):
        evaluate_rules(manifests_to_frame(batch), (*HUB_RULES, extra))
    prepared = with_jurisdiction(add_features(manifests_to_frame(batch), batch), {0: {"FJI"}})
    frame = evaluate_rules(prepared, (*HUB_RULES, extra))
    assert frame.select(DOCUMENT_EXPIRED.column, extra.column).schema == pl.Schema(
        {DOCUMENT_EXPIRED.column: pl.Boolean(), extra.column: pl.Boolean()}
    )
    with pytest.raises(ValueError):
        evaluate_rules(frame, (DOCUMENT_EXPIRED, DOCUMENT_EXPIRED))
    with pytest.raises(ValueError):
        Rule("BAD", "", "x", 1.5, "", "", pl.lit(True))


# -- watchlist hits ------------------------------------------------------------------------------------------


def test_watchlist_hit_has_the_entrys_reason_and_the_manifests_context():
    manifest = _manifest(_traveller(), _wanted())
    [hit] = score_batch([manifest], _store(), DIRECTORY, NOW)
    [reason] = hit.reasons
    assert (reason.source, reason.id, reason.score, reason.owner, reason.category) == (
        hit_pb2.REASON_SOURCE_WATCHLIST,
        "WL-0007",
        1.0,
        "FJI",
        "people_smuggling",
    )
    prefix = "match with FJI watchlist entry WL-0007 (category: people_smuggling, scope: regional): "
    assert reason.explanation.startswith(prefix)
    assert "date of birth exact" in reason.explanation and reason.explanation.endswith("score 1.00")
    assert hit.manifest_id == "m-aaaa"
    assert hit.flight == codec.flight_ref(manifest)
    assert hit.traveller == manifest.travellers[1]
    assert hit.score == 1.0
    assert hit.state == hit_pb2.HIT_STATE_ACTIVE
    assert hit.raised_at.ToDatetime(tzinfo=UTC) == NOW
    assert hit.manifest_received_at == manifest.received_at
    assert hit.recipient == ""


def test_explanations_carry_no_personal_data():
    wanted = _wanted()
    wanted.documents[0].expiry.CopyFrom(_date(2025, 1, 1))
    [hit] = score_batch([_manifest(wanted)], _store(), DIRECTORY, NOW)
    assert len(hit.reasons) == 2
    text = " ".join(r.explanation for r in hit.reasons).upper()
    for personal in ("MÜLLER", "MULLER", "JEAN", "PIERRE", "1980", "07-14", "TP0012345", "2025"):
        assert personal not in text


def test_private_entry_hits_only_flights_in_the_owners_jurisdiction():
    private = delivery_pb2.WATCHLIST_SCOPE_PRIVATE
    to_tonga = _manifest(_wanted(), origin="NAN", destination="TBU")  # FJI and TON
    to_samoa = _manifest(_wanted(), manifest_id="m-bbbb", origin="NAN", destination="APW")  # FJI and WSM
    hits = score_batch([to_tonga, to_samoa], _store(owner="TON", scope=private), DIRECTORY, NOW)
    assert [h.manifest_id for h in hits] == ["m-aaaa"]
    hits = score_batch(
        [to_tonga, to_samoa], _store(owner="WSM", scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL), DIRECTORY, NOW
    )
    assert [h.manifest_id for h in hits] == ["m-aaaa", "m-bbbb"]


# -- hits ----------------------------------------------------------------------------------------------------


def test_one_hit_per_traveller_with_all_its_reasons():
    store = _store()
    store.apply(
        delivery_pb2.Watchlist(
            owner="TON",
            entries=[
                delivery_pb2.WatchlistEntry(
                    entry_id="TON-3",
                    surname="Muller",
                    given_names="Jean Pierre",
                    date_of_birth=_date(1980, 7, 14),
                )
            ],
        )
    )
    wanted = _wanted()
    wanted.documents[0].expiry.CopyFrom(_date(2025, 1, 1))
    hits = score_batch([_manifest(_traveller(), wanted, _traveller(expiry=(2024, 5, 5)))], store, DIRECTORY, NOW)
    assert [h.traveller.surname for h in hits] == ["Müller", "Tupou"]
    assert [(r.owner, r.id) for r in hits[0].reasons] == [
        ("FJI", "WL-0007"),
        ("TON", "TON-3"),
        ("", "HUB-DOC-EXPIRED"),
    ]
    assert [r.id for r in hits[1].reasons] == ["HUB-DOC-EXPIRED"]


def test_score_combines_reasons_as_independent_evidence():
    assert combined_score([]) == 0.0
    assert combined_score([0.5]) == pytest.approx(0.5)
    assert combined_score([0.5, 0.2]) == pytest.approx(0.6)
    assert combined_score([0.5, 1.0]) == 1.0
    weak = Rule("T-WEAK", "", "test", 0.2, "everyone", "weak signal", pl.lit(True))
    [hit] = score_batch(
        [_manifest(_traveller(expiry=(2025, 1, 1)))], WatchlistStore(), DIRECTORY, NOW, (*HUB_RULES, weak)
    )
    assert [r.id for r in hit.reasons] == ["HUB-DOC-EXPIRED", "T-WEAK"]
    assert hit.score == pytest.approx(0.6)


def test_hit_id_is_one_per_traveller_and_flight_across_versions():
    def ids(manifest_id="m-aaaa", now=NOW, flight_number="911"):
        second = _wanted()
        second.passenger_ref = "PAX-8"
        manifest = _manifest(_wanted(), second, manifest_id=manifest_id)
        manifest.flight_number = flight_number
        return [h.hit_id for h in score_batch([manifest], _store(), DIRECTORY, now)]

    first = ids()
    assert first == ids(now=datetime(2026, 3, 2, tzinfo=UTC))
    assert all(i.startswith("h-") and len(i) == 26 for i in first)
    assert first[0] != first[1]
    # A later version of the same flight's manifest updates the same hits...
    assert ids(manifest_id="m-cccc") == first
    # ...another flight does not.
    assert set(ids(flight_number="912")).isdisjoint(first)
    # Without a carrier reference the traveller's identity (name, birth date, document) is the key.
    unreferenced = _wanted()
    unreferenced.passenger_ref = ""
    other = _wanted()
    other.passenger_ref = ""
    other.documents[0].number = "TP0099999"
    keyed = [h.hit_id for h in score_batch([_manifest(unreferenced, other)], _store(), DIRECTORY, NOW)]
    assert keyed[0] != keyed[1]


def test_hit_id_stays_when_the_reasons_change():
    plain = score_batch([_manifest(_wanted())], _store(), DIRECTORY, NOW)[0]
    expired = _wanted()
    expired.documents[0].expiry.CopyFrom(_date(2025, 1, 1))
    both = score_batch([_manifest(expired)], _store(), DIRECTORY, NOW)[0]
    assert plain.hit_id == both.hit_id
    assert len(both.reasons) == 2 and len(plain.reasons) == 1


def test_clearances_list_unflagged_and_removed_travellers():
    clean = _traveller(ref="PAX-1")
    version = _manifest(_wanted(), clean, manifest_id="m-v2")
    hits = score_batch([version], _store(), DIRECTORY, NOW)
    [record] = clearances([version], hits)
    flight = codec.flight_key(version)
    assert record.state == hit_pb2.HIT_STATE_WITHDRAWN and not record.hit_id
    assert list(record.withdrawn_hit_ids) == [codec.hit_id(flight, "ref:PAX-1")]
    assert record.manifest_id == "m-v2"

    removal = _manifest(_wanted(), manifest_id="m-v3", function=manifest_pb2.MESSAGE_FUNCTION_CHANGE)
    removal.amendment = manifest_pb2.AMENDMENT_CANCELLED_RESERVATION
    assert score_batch([removal], _store(), DIRECTORY, NOW) == []
    [record] = clearances([removal], [])
    assert list(record.withdrawn_hit_ids) == [hits[0].hit_id]

    cancelled = _manifest(manifest_id="m-v4", function=manifest_pb2.MESSAGE_FUNCTION_CANCEL)
    [record] = clearances([cancelled], [])
    assert record.whole_flight and not record.withdrawn_hit_ids
    assert codec.flight_key_of(record.flight) == flight


def test_cancellations_and_unflagged_travellers_produce_nothing():
    cancel = _manifest(_wanted(), function=manifest_pb2.MESSAGE_FUNCTION_CANCEL)
    assert score_batch([cancel], _store(), DIRECTORY, NOW) == []
    assert score_batch([_manifest(_traveller(), _traveller())], _store(), DIRECTORY, NOW) == []
    assert score_batch([], _store(), DIRECTORY, NOW) == []


def test_hits_and_clearances_go_out_per_manifest_in_order_under_the_flight_key():
    # One flight, three versions in one batch: the original raises a hit, the change clears a traveller who left,
    # the cancellation withdraws the whole flight. Each version's hits, then its clearance, in manifest order.
    original = _manifest(_wanted(), _traveller(ref="PAX-1"), manifest_id="m-v1")
    change = _manifest(_wanted(), manifest_id="m-v2", function=manifest_pb2.MESSAGE_FUNCTION_CHANGE)
    change.amendment = manifest_pb2.AMENDMENT_CANCELLED_RESERVATION
    cancel = _manifest(manifest_id="m-v3", function=manifest_pb2.MESSAGE_FUNCTION_CANCEL)
    batch = [original, change, cancel]
    hits = score_batch(batch, _store(), DIRECTORY, NOW)
    ordered = order_by_manifest(batch, hits)
    assert [(k.hit.manifest_id, bool(k.hit.hit_id)) for k in ordered] == [
        ("m-v1", True),
        ("m-v1", False),
        ("m-v2", False),
        ("m-v3", False),
    ]
    assert {k.flight_key for k in ordered} == {codec.flight_key(original).encode()}
    assert ordered[0].hit.hit_id in ordered[2].hit.withdrawn_hit_ids and ordered[3].hit.whole_flight
