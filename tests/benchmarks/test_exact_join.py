"""The screening benchmark's baseline: the exact join on normalised names and full dates of birth."""

from datetime import UTC, datetime

from benchmarks.exact_join import exact_matches
from services.profiler.frames import read_travellers
from services.profiler.watchlist import EXACT_SCHEMA, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2


def _date(y, m, d):
    return manifest_pb2.PartialDate(year=y, month=m, day=d)


def _travellers(*people):
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id="m-1")
    manifest.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, 7, tzinfo=UTC)
    )
    for surname, given, dob in people:
        manifest.travellers.add(surname=surname, given_names=given, date_of_birth=_date(*dob))
    return read_travellers([manifest], features=False).frame


def _store(owner, scope, *entries):
    store = WatchlistStore()
    listed = [
        delivery_pb2.WatchlistEntry(entry_id=entry_id, surname="Müller", given_names="Jean-Pierre", date_of_birth=dob)
        for entry_id, dob in entries
    ]
    store.apply(delivery_pb2.Watchlist(owner=owner, scope=scope, entries=listed))
    return store


def test_only_equal_names_and_the_same_full_date_of_birth_match():
    store = _store(
        "FJI", delivery_pb2.WATCHLIST_SCOPE_REGIONAL, ("WL-0007", _date(1980, 7, 14)), ("WL-Y", _date(1980, 0, 0))
    )
    travellers = _travellers(("MUELLER", "JEAN PIERRE", (1980, 7, 14)), ("Muller", "Jean-Pierre", (1980, 7, 14)))
    exact = exact_matches(store, travellers, {0: {"FJI"}})
    assert exact.schema.names() == list(EXACT_SCHEMA)
    assert exact.select("traveller_index", "entry_id").rows() == [(0, "WL-0007")]


def test_private_entries_match_only_in_their_owners_jurisdiction():
    store = _store("TON", delivery_pb2.WATCHLIST_SCOPE_PRIVATE, ("TON-1", _date(1980, 7, 14)))
    travellers = _travellers(("Müller", "Jean-Pierre", (1980, 7, 14)))
    assert exact_matches(store, travellers, {0: {"FJI"}}).is_empty()
    assert exact_matches(store, travellers).is_empty()
    assert exact_matches(store, travellers, {0: {"TON"}})["entry_id"].to_list() == ["TON-1"]
