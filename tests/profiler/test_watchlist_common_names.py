"""The store's side of common-name down-weighting, and the index keys that find typos in every name part."""

import polars as pl
import pytest

from services.profiler.watchlist import REVIEW_THRESHOLD, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2


def _entry(entry_id, surname, given, dob=(1980, 7, 14)):
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname=surname,
        given_names=given,
        date_of_birth=manifest_pb2.PartialDate(year=dob[0], month=dob[1], day=dob[2]),
        category="people_smuggling",
    )


def _travellers(*people):
    """A traveller frame as WatchlistStore.matches reads it; people are (surname key, given key, dob)."""
    return pl.DataFrame(
        {
            "manifest_index": [0] * len(people),
            "traveller_index": list(range(len(people))),
            "surname_key": [p[0] for p in people],
            "given_key": [p[1] for p in people],
            "dob": [p[2] for p in people],
            "documents": [[] for _ in people],
        },
        schema_overrides={"documents": pl.List(pl.String)},
    )


def _store(entries, traveller_names=None):
    """A store of these entries; traveller_names None: the lists' own counts only (no regional table)."""
    store = WatchlistStore({} if traveller_names is None else traveller_names)
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=entries))
    return store


def _listed():
    """1,002 entries: SMITH on 500 of them, JOHN on 500, and two targets, one common name and one rare."""
    background = [
        _entry(f"S-{i}", "Smith", f"Given{chr(65 + i % 26)}{i}", (1950 + i % 40, 1 + i % 12, 2)) for i in range(500)
    ]
    background += [
        _entry(f"J-{i}", f"Surname{chr(65 + i % 26)}{i}", "John", (1950 + i % 40, 1 + i % 12, 3)) for i in range(500)
    ]
    return [*background, _entry("T-COMMON", "Smith", "John"), _entry("T-RARE", "Fifita", "Semisi")]


def test_a_name_only_traveller_alerts_on_a_rare_listed_name_not_on_a_common_one():
    store = _store(_listed())
    travellers = _travellers(("SMITH", "JOHN", ""), ("FIFITA", "SEMISI", ""))  # no date of birth sent
    assert store.matches(travellers).select("traveller_index", "entry_id").rows() == [(1, "T-RARE")]
    [row] = store.matches(travellers, threshold=0.5).filter(pl.col("entry_id") == "T-COMMON").rows(named=True)
    assert "common name: down-weighted" in row["explanation"]


def test_the_date_of_birth_lifts_the_common_name_to_an_alert_and_the_year_alone_to_review():
    store = _store(_listed())
    travellers = _travellers(("SMITH", "JOHN", "1980-07-14"), ("SMITH", "JOHN", "1980"))
    assert store.matches(travellers).select("traveller_index", "entry_id").rows() == [(0, "T-COMMON")]
    reviewed = store.matches(travellers, threshold=REVIEW_THRESHOLD)
    assert reviewed.select("traveller_index", "entry_id").rows() == [(0, "T-COMMON"), (1, "T-COMMON")]


def test_names_common_among_travellers_are_common_even_when_the_list_has_them_once():
    entries = [_entry("T-1", "Tupou", "Sione")]
    traveller = _travellers(("TUPOU", "SIONE", ""))
    assert _store(entries).matches(traveller)["entry_id"].to_list() == ["T-1"]
    assert _store(entries, {"TUPOU": 0.03, "SIONE": 0.03}).matches(traveller).is_empty()
    # The region's table shipped with the hub (the store's default) knows Tongan names are common.
    regional = WatchlistStore()
    regional.apply(delivery_pb2.Watchlist(owner="FJI", entries=entries))
    assert regional.index.rarity["TUPOU"] < 3.0 and regional.index.rarity["SIONE"] < 3.0


def test_typos_in_every_name_part_are_found_through_date_of_birth_and_initials():
    store = _store([_entry("WL-1", "Huang", "Rahul", (1979, 11, 5)), _entry("WL-2", "Hopa", "Reuben", (1979, 11, 5))])
    travellers = _travellers(("HUANK", "RAHLU", "1979-11-05"), ("RAHLU", "HUANK", "1979-05-11"))
    assert store.matches(travellers).select("traveller_index", "entry_id").rows() == [(0, "WL-1")]
    # In swapped fields, with day and month swapped too, the pair is still found (and scored below an alert).
    assert store.matches(travellers, threshold=0.5).select("traveller_index", "entry_id").rows() == [
        (0, "WL-1"),
        (1, "WL-1"),
    ]
    # Nothing else shares a name part's fold with the entry: only the date and the initials found it.
    assert store.matches(_travellers(("HUANK", "RAHLU", "1979-11-06")), threshold=0.5).is_empty()


def test_a_deployment_brings_its_own_table_of_traveller_names(tmp_path):
    from services.config import HubSettings
    from services.profiler.watchlist import traveller_names

    table = tmp_path / "names.csv"
    table.write_text("# our own traffic\npart,per_100k\nTUPOU,3000\nSIONE,3000\n")
    shares = traveller_names(HubSettings(traveller_names_file=table))
    assert shares == pytest.approx({"TUPOU": 0.03, "SIONE": 0.03})
    assert _store([_entry("T-1", "Tupou", "Sione")], shares).matches(_travellers(("TUPOU", "SIONE", ""))).is_empty()
    # The shipped regional table by default: the region's common names are in it.
    assert traveller_names(HubSettings())["PRASAD"] > 0.001


def test_a_malformed_table_of_traveller_names_is_refused(tmp_path):
    from services.profiler.matching import traveller_name_shares

    table = tmp_path / "names.csv"
    table.write_text("part,per_100k\nTUPOU,lots\n")
    with pytest.raises(Exception, match="per_100k|lots|conversion"):
        traveller_name_shares(table)
