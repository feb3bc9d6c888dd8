"""The naive baseline of issue #10: what a quick screening script would do.

A traveller matches an entry when rapidfuzz's token_sort_ratio of the full names (name keys, surname then
given names) is at least NAIVE_RATIO and the birth years are at most NAIVE_YEARS apart (a missing year on
either side passes). Vectorised with rapidfuzz.process.cdist and blocked by birth year: the travellers born
in year y are compared with the entries born in y-1..y+1 and the entries without a year only; travellers
without a year with every entry.

For pair sets (names only) the naive score is token_sort_ratio / 100, with a threshold chosen on the tuning
part like the matcher's.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.process import cdist, cpdist

NAIVE_RATIO = 88
NAIVE_YEARS = 1
# Cells of one cdist block (queries x choices, one byte each): bounds memory on large sets.
_BLOCK_CELLS = 50_000_000

NAIVE_SCHEMA: dict[str, pl.DataType] = {"traveller_index": pl.Int64(), "entry_id": pl.String(), "naive": pl.Float64()}


def full_names(frame: pl.DataFrame) -> pl.Series:
    """surname_key + " " + given_key, stripped (name_key forms)."""
    return frame.select(name=pl.concat_str(pl.col("surname_key"), pl.lit(" "), pl.col("given_key")).str.strip_chars())[
        "name"
    ]


def _years(dob: pl.Series) -> np.ndarray:
    return dob.str.slice(0, 4).cast(pl.Int32, strict=False).fill_null(0).to_numpy()


def naive_matches(
    travellers: pl.DataFrame, entries: pl.DataFrame, ratio: int = NAIVE_RATIO, years: int = NAIVE_YEARS
) -> pl.DataFrame:
    """(t, entry_id, naive score 0-1) of every pair the naive matcher matches.

    travellers: columns t, surname_key, given_key, dob; entries: entry_id, surname_key, given_key, dob.
    """
    if travellers.is_empty() or entries.is_empty():
        return pl.DataFrame(schema=NAIVE_SCHEMA)
    t_names, e_names = full_names(travellers).to_list(), full_names(entries).to_list()
    t_ids, e_ids = travellers["traveller_index"].to_numpy(), entries["entry_id"].to_numpy()
    t_years, e_years = _years(travellers["dob"]), _years(entries["dob"])
    undated = np.flatnonzero(e_years == 0)
    found_t: list[np.ndarray] = []
    found_e: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    for year in np.unique(t_years):
        queries = np.flatnonzero(t_years == year)
        if year == 0:
            choices = np.arange(len(e_names))
        else:
            near = np.flatnonzero((e_years != 0) & (np.abs(e_years - year) <= years))
            choices = np.concatenate([near, undated])
        if not len(choices):
            continue
        step = max(1, _BLOCK_CELLS // len(choices))
        choice_names = [e_names[j] for j in choices]
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            scores = cdist(
                [t_names[i] for i in block],
                choice_names,
                scorer=fuzz.token_sort_ratio,
                score_cutoff=ratio,
                dtype=np.uint8,
                workers=-1,
            )
            rows, columns = np.nonzero(scores)
            found_t.append(t_ids[block[rows]])
            found_e.append(e_ids[choices[columns]])
            found_s.append(scores[rows, columns] / 100.0)
    if not found_t:
        return pl.DataFrame(schema=NAIVE_SCHEMA)
    return pl.DataFrame(
        {
            "traveller_index": np.concatenate(found_t),
            "entry_id": np.concatenate(found_e),
            "naive": np.concatenate(found_s),
        },
        schema=NAIVE_SCHEMA,
    )


def pair_scores(t_names: list[str], e_names: list[str]) -> np.ndarray:
    """token_sort_ratio / 100 of each (traveller, entry) full-name pair (name_key forms)."""
    if not t_names:
        return np.zeros(0)
    return cpdist(t_names, e_names, scorer=fuzz.token_sort_ratio, workers=-1) / 100.0
