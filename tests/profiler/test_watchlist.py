from datetime import UTC, datetime

import pytest

from services.profiler.frames import manifests_to_frame
from services.profiler.watchlist import MATCH_SCHEMA, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2

REGIONAL = delivery_pb2.WATCHLIST_SCOPE_REGIONAL
PRIVATE = delivery_pb2.WATCHLIST_SCOPE_PRIVATE


def _date(ymd):
    return manifest_pb2.PartialDate(year=ymd[0], month=ymd[1], day=ymd[2])


def _travellers(*people):
    """A one-manifest traveller frame; people are (surname, given names, (y, m, d))."""
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id="m-1")
    manifest.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, 7, tzinfo=UTC)
    )
    for surname, given, dob in people:
        manifest.travellers.add(surname=surname, given_names=given, date_of_birth=_date(dob))
    return manifests_to_frame([manifest])


def _entry(entry_id, surname="Müller", given="Jean-Pierre", dob=(1980, 7, 14), category="people_smuggling"):
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id, surname=surname, given_names=given, date_of_birth=_date(dob), category=category
    )


def _store(*lists):
    store = WatchlistStore()
    for owner, scope, entries in lists:
        store.apply(delivery_pb2.Watchlist(owner=owner, scope=scope, entries=entries))
    return store


def _matched_ids(store, travellers, jurisdiction=None):
    return store.exact_matches(travellers, jurisdiction)["entry_id"].to_list()


def test_exact_match_on_normalised_names_and_full_date_of_birth():
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    travellers = _travellers(("Tupou", "Sione", (1975, 1, 1)), ("MULLER", "JEAN PIERRE", (1980, 7, 14)))
    matches = store.exact_matches(travellers, {0: {"FJI", "TON"}})
    assert matches.schema.names() == list(MATCH_SCHEMA)
    assert matches.rows(named=True) == [
        {
            "m": 0,
            "t": 1,
            "entry_id": "WL-0007",
            "owner": "FJI",
            "scope": "regional",
            "category": "people_smuggling",
        }
    ]


@pytest.mark.parametrize(
    "traveller",
    [
        ("Muller", "Jean-Pierre", (1980, 7, 15)),  # date of birth one day off
        ("Muller", "Jean-Pierre", (1981, 7, 14)),  # year off
        ("Muller", "Jean", (1980, 7, 14)),  # given names differ
        ("Mueller", "Jean-Pierre", (1980, 7, 14)),  # transliteration: not exact
    ],
)
def test_near_misses_do_not_match(traveller):
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    assert _matched_ids(store, _travellers(traveller)) == []


def test_partial_date_of_birth_on_the_entry_does_not_match_a_full_date():
    store = _store(("FJI", REGIONAL, [_entry("WL-Y", dob=(1980, 0, 0)), _entry("WL-YM", dob=(1980, 7, 0))]))
    assert _matched_ids(store, _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))) == []
    # The same partial date on both sides is equal and present: it matches.
    assert _matched_ids(store, _travellers(("Muller", "Jean-Pierre", (1980, 0, 0)))) == ["WL-Y"]


def test_entry_without_a_date_of_birth_never_matches():
    store = _store(("FJI", REGIONAL, [_entry("WL-NODOB", dob=(0, 0, 0))]))
    assert _matched_ids(store, _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)))) == []
    assert _matched_ids(store, _travellers(("Muller", "Jean-Pierre", (0, 0, 0)))) == []


def test_entry_without_given_names_never_matches():
    store = _store(("FJI", REGIONAL, [_entry("WL-MONO", given="")]))
    assert _matched_ids(store, _travellers(("Muller", "", (1980, 7, 14)))) == []


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
    travellers = _travellers(("Muller", "Jean-Pierre", (1980, 7, 14)), ("Fifita", "Ana", (1980, 7, 14)))
    assert store.exact_matches(travellers).select("t", "entry_id").rows() == [(0, "TON-1"), (1, "FJI-NEW")]


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
    assert WatchlistStore().exact_matches(travellers).schema.names() == list(MATCH_SCHEMA)
    store = _store(("FJI", REGIONAL, [_entry("WL-0007")]))
    assert store.exact_matches(travellers.clear()).is_empty()
