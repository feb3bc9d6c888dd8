from datetime import UTC, datetime

import pytest

from services.profiler.frames import read_travellers
from services.profiler.watchlist import EXACT_SCHEMA, MATCH_SCHEMA, MATCH_THRESHOLD, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2

REGIONAL = delivery_pb2.WATCHLIST_SCOPE_REGIONAL
PRIVATE = delivery_pb2.WATCHLIST_SCOPE_PRIVATE


def _date(ymd):
    return manifest_pb2.PartialDate(year=ymd[0], month=ymd[1], day=ymd[2])


def _travellers(*people):
    """A one-manifest traveller frame; people are (surname, given names, (y, m, d)[, document number])."""
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id="m-1")
    manifest.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, 7, tzinfo=UTC)
    )
    for surname, given, dob, *document in people:
        traveller = manifest.travellers.add(surname=surname, given_names=given, date_of_birth=_date(dob))
        for number in document:
            traveller.documents.add(number=number)
    batch = read_travellers([manifest], features=False)
    return batch.frame.with_columns(documents=batch.documents)


def _entry(
    entry_id, surname="Müller", given="Jean-Pierre", dob=(1980, 7, 14), category="people_smuggling", document=""
):
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname=surname,
        given_names=given,
        date_of_birth=_date(dob),
        category=category,
        document_number=document,
    )


def _store(*lists):
    store = WatchlistStore()
    for owner, scope, entries in lists:
        store.apply(delivery_pb2.Watchlist(owner=owner, scope=scope, entries=entries))
    return store


def _matched_ids(store, travellers, jurisdiction=None):
    return store.matches(travellers, jurisdiction)["entry_id"].to_list()


def test_match_rows_carry_the_entry_the_score_and_an_explanation():
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    travellers = _travellers(("Tupou", "Sione", (1975, 1, 1)), ("MUELLER", "JEAN PIERRE", (1980, 7, 14)))
    matches = store.matches(travellers, {0: {"FJI", "TON"}})
    assert matches.schema.names() == list(MATCH_SCHEMA)
    [row] = matches.rows(named=True)
    assert {k: row[k] for k in EXACT_SCHEMA} == {
        "manifest_index": 0,
        "traveller_index": 1,
        "entry_id": "WL-0007",
        "owner": "FJI",
        "scope": "regional",
        "category": "people_smuggling",
    }
    assert row["score"] == 1.0
    assert row["explanation"] == (
        "surname exact, given names exact; date of birth exact; document number not on both sides; score 1.00"
    )


@pytest.mark.parametrize(
    "traveller",
    [
        ("Muller", "Jean-Pierre", (1980, 7, 14)),  # diacritic dropped instead of the ICAO UE
        ("Mueller", "Jean-Pierre", (1981, 7, 14)),  # year off
        ("Mueller", "Jean-Pierre", (1980, 14, 7)),  # day and month swapped
        ("Mueller", "Jean", (1980, 7, 14)),  # middle name missing
        ("Jean Pierre", "Mueller", (1980, 7, 14)),  # fields swapped
        ("Mueller", "J P", (1980, 7, 14)),  # initials
        ("Meuller", "Jeanpierre", (1980, 7, 14)),  # typo and compound
        ("Mueller", "Jean-Pierre", (1980, 0, 0)),  # year only
        ("Smith", "John", (1955, 2, 3), "TPOO12345"),  # another name, the listed document read with O for 0
    ],
)
def test_variants_of_the_listed_person_match(traveller):
    store = _store(("FJI", REGIONAL, [_entry("WL-0007", document="TP0012345")]))
    assert _matched_ids(store, _travellers(traveller)) == ["WL-0007"]


@pytest.mark.parametrize(
    "traveller",
    [
        ("Mueller", "Jean-Pierre", (1962, 3, 1), "X1234567"),  # same name, another person
        ("Mueller", "Paul", (1980, 7, 14)),  # same surname and birthday, another given name
        ("Tupou", "Sione", (1980, 7, 14)),
    ],
)
def test_other_people_do_not_match(traveller):
    store = _store(("FJI", REGIONAL, [_entry("WL-0007", document="TP0012345")]))
    assert _matched_ids(store, _travellers(traveller)) == []


def test_threshold_is_a_parameter():
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    travellers = _travellers(("Mueller", "Jean", (1980, 7, 14)))
    [score] = store.matches(travellers, threshold=0.0)["score"].to_list()
    assert MATCH_THRESHOLD <= score < 1.0
    assert store.matches(travellers, threshold=score + 0.01).is_empty()


def test_index_is_rebuilt_after_a_change():
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    travellers = _travellers(("Fifita", "Ana", (1980, 7, 14)))
    first = store.index
    assert store.index is first  # built once per change
    assert _matched_ids(store, travellers) == []
    store.apply(delivery_pb2.Watchlist(owner="TON", entries=[_entry("TON-1", surname="Fifita", given="Ana")]))
    assert store.index is not first
    assert _matched_ids(store, travellers) == ["TON-1"]


def test_entry_without_given_names_matches_on_surname_and_date_of_birth():
    store = _store(("FJI", REGIONAL, [_entry("WL-MONO", surname="Navunisaravi", given="")]))
    assert _matched_ids(store, _travellers(("Navunisaravi", "", (1980, 7, 14)))) == ["WL-MONO"]


def test_regional_entry_matches_on_any_flight():
    store = _store(("WSM", REGIONAL, [_entry("WSM-1")]))
    travellers = _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))
    assert _matched_ids(store, travellers, {0: {"FJI", "TON"}}) == ["WSM-1"]
    assert _matched_ids(store, travellers, {}) == ["WSM-1"]


def test_private_entry_matches_only_flights_in_its_owners_jurisdiction():
    store = _store(("WSM", PRIVATE, [_entry("WSM-P")]), ("TON", PRIVATE, [_entry("TON-P")]))
    travellers = _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))
    assert _matched_ids(store, travellers, {0: {"FJI", "TON"}}) == ["TON-P"]
    assert _matched_ids(store, travellers, {0: {"WSM"}}) == ["WSM-P"]
    assert _matched_ids(store, travellers, {1: {"WSM", "TON"}}) == []  # jurisdiction of another manifest
    assert _matched_ids(store, travellers, None) == []


def test_new_list_replaces_the_owners_previous_list_only():
    store = _store(("FJI", REGIONAL, [_entry("FJI-OLD")]), ("TON", REGIONAL, [_entry("TON-1")]))
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=[_entry("FJI-NEW", surname="Fifita", given="Ana")]))
    assert store.count("FJI") == 1
    assert sorted(store.entries["entry_id"].to_list()) == ["FJI-NEW", "TON-1"]
    travellers = _travellers(("Mueller", "Jean-Pierre", (1980, 7, 14)), ("Fifita", "Ana", (1980, 7, 14)))
    assert store.matches(travellers).select("traveller_index", "entry_id").rows() == [(0, "TON-1"), (1, "FJI-NEW")]


def test_empty_list_or_tombstone_clears_the_owner():
    store = _store(("FJI", REGIONAL, [_entry("FJI-1")]), ("TON", REGIONAL, [_entry("TON-1")]))
    store.apply(delivery_pb2.Watchlist(owner="FJI"))
    assert store.owners == ["TON"]
    store.apply_record(b"TON", None)
    assert store.owners == []
    assert store.entries.is_empty()
    assert _matched_ids(store, _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))) == []


def test_record_value_is_a_serialised_watchlist():
    store = WatchlistStore()
    value = delivery_pb2.Watchlist(owner="ton", scope=PRIVATE, entries=[_entry("TON-1")]).SerializeToString()
    assert store.apply_record(b"TON", value) == "TON"
    assert store.entries.select("owner", "scope").rows() == [("TON", "private")]


def test_the_lists_owner_is_authoritative_over_entry_owner_fields():
    entry = _entry("E-1")
    entry.owner = "AUS"
    store = _store(("FJI", REGIONAL, [entry]))
    assert store.entries["owner"].to_list() == ["FJI"]


def test_list_without_owner_is_rejected():
    with pytest.raises(ValueError):
        WatchlistStore().apply(delivery_pb2.Watchlist(entries=[_entry("E-1")]))


def test_no_entries_or_no_travellers_give_an_empty_match_frame():
    travellers = _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))
    assert WatchlistStore().matches(travellers).schema.names() == list(MATCH_SCHEMA)
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    assert store.matches(travellers.clear()).schema.names() == list(MATCH_SCHEMA)
    assert store.matches(travellers.clear()).is_empty()
    assert store.matches(travellers.drop("documents"))["entry_id"].to_list() == ["WL-0007"]
