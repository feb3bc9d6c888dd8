"""The exact join: the watchlist screening the hub had before fuzzy matching, kept as the screening benchmark's
baseline (benchmarks/screening.py times it beside WatchlistStore.matches on the same traveller frame).

"Exact" means surname, given names and date of birth all present on both sides and equal after name normalisation
(the store's name keys): an entry or traveller with an empty surname, given names or date of birth never matches
here, and a partial date only matches the same partial date ("1980" does not match "1980-07-14").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from services.profiler.watchlist import EXACT_SCHEMA, WatchlistStore, within_jurisdiction

KEYS = ["surname_key", "given_key", "dob"]


def exact_matches(
    store: WatchlistStore,
    travellers: pl.DataFrame,
    jurisdiction: Mapping[int, Collection[str]] | None = None,
) -> pl.DataFrame:
    """Travellers whose surname, given names and date of birth all equal an entry's (EXACT_SCHEMA rows), sorted
    by manifest_index, traveller_index, owner, entry_id.

    jurisdiction as for WatchlistStore.matches: regional entries match on every flight, private entries only on
    flights in their owner's jurisdiction, so a manifest missing from the mapping gets no private matches.
    """
    entries = store.entries.filter(*(pl.col(k) != "" for k in KEYS))
    if entries.is_empty() or travellers.is_empty():
        return pl.DataFrame(schema=EXACT_SCHEMA)
    candidates = (
        travellers.select("manifest_index", "traveller_index", *KEYS)
        .filter(*(pl.col(k) != "" for k in KEYS))
        .join(entries, on=KEYS, how="inner")
        .select(EXACT_SCHEMA.keys())
    )
    return (
        within_jurisdiction(candidates, jurisdiction)
        .unique(["manifest_index", "traveller_index", "owner", "entry_id"], keep="first", maintain_order=True)
        .sort("manifest_index", "traveller_index", "owner", "entry_id")
    )
