"""How common a name is: name parts counted on the lists and among the region's travellers, and what a common
name (or a single name) loses when the date of birth or a document does not corroborate it."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import polars as pl

from services.profiler.matching.documents import DOCUMENT_SCORE

# Common-name down-weighting (reference/name-matching.md §3, "same surname, different person": Splink and
# Watchman weight name agreement by term frequency). A name part's rarity is counted in decades, log10 of
# one over its share of names: a part on 1 % of names carries 2 decades, one on 0.01 % carries 4. Shares
# are counted on the watchlist entries (NameCounts), with the names counted taken to be at least
# NAME_COUNT_FLOOR so that a part a short list repeats is not called common, and among the region's travellers
# (traveller_name_shares); a part counted nowhere is as rare as the floor allows. Agreeing parts weigh their
# rarity in the name score, and a name whose agreeing parts add up to few decades is down-weighted unless
# the date of birth or a document corroborates it.
NAME_COUNT_FLOOR = 10_000
UNCOUNTED_DECADES = math.log10(NAME_COUNT_FLOOR)
INITIAL_DECADES = 1.0  # an initial agrees with one name in ~10 (first letters are far from uniform)
# Decades of agreement at or below which a name counts as fully common, and at or above which as rare:
# one person in 10,000 has a 4-decade name (hundreds of the region's travellers a year), one in 3 million
# a 6.5-decade one.
COMMON_NAME_DECADES = (4.0, 6.5)
# What a fully common name loses when nothing but the name supports the pair. Date-of-birth relations and
# document agreement corroborate by the share given here (1: the name's commonness no longer matters): an
# exact full date or a document number is strong evidence on its own, a clerical variant of a full date a
# little less; a day or a month off, or agreement on the year alone (one person in ~60 shares it by chance),
# much less: a fully common name with nothing better reaches the review band, not an alert, while a rare
# complete name alerts on it. Relations not listed corroborate nothing.
COMMON_NAME_PENALTY = 0.16
DOB_CORROBORATION = {
    "exact": 1.0,
    "day_month_swapped": 0.85,
    "year_off_by_one": 0.85,
    "partial_agrees": 0.3,
    "day_within_3": 0.4,
    "day_within_week": 0.3,
    "month_off_by_one": 0.3,
    "approx_1_year": 0.1,
}


@dataclass(frozen=True)
class NameCounts:
    """How many names carry each name part (a name counts a part once): the input of name_rarity().

    parts: columns part (String) and count (Int64); names: how many names were counted.
    """

    parts: pl.DataFrame
    names: int

    @staticmethod
    def of(names: pl.DataFrame) -> NameCounts:
        """Counts of the parts of names (columns surname_key and given_key in name_key form, one row a name):
        watchlist entries, or travellers seen (a reference for WatchlistStore)."""
        parts = (
            names.select(part=pl.concat_str("surname_key", pl.lit(" "), "given_key").str.split(" ").list.unique())
            .explode("part")
            .filter(pl.col("part").is_not_null() & (pl.col("part") != ""))
            .group_by("part")
            .agg(count=pl.len().cast(pl.Int64))
        )
        return NameCounts(parts, names.height)


def name_rarity(counts: NameCounts, shares: Mapping[str, float] | None = None) -> dict[str, float]:
    """Decades of rarity of every counted name part: log10(max(names, NAME_COUNT_FLOOR) / count) on the lists,
    and log10(1 / share) among travellers (shares: traveller_name_shares()); a part is as common as the more
    common of the two says ("common" means common among the people screened, not only on the lists).

    Deterministic: the same counts give the same weights in every process (profilers replaying the same
    watchlists agree on every score).
    """
    scale = max(counts.names, NAME_COUNT_FLOOR)
    rarity = counts.parts.select("part", decades=(scale / pl.col("count")).log10())
    decades = dict(zip(rarity["part"].to_list(), rarity["decades"].to_list(), strict=True))
    for part, share in (shares or {}).items():
        if share > 0:
            decades[part] = min(decades.get(part, UNCOUNTED_DECADES), math.log10(1.0 / share))
    return decades


# The region's table of how common name parts are among travellers (traveller_name_shares): shipped with the
# hub, replaced by a deployment's own counts (settings traveller_names_file).
TRAVELLER_NAMES = Path(__file__).resolve().parents[2] / "data" / "traveller_names.csv"


@functools.cache
def traveller_name_shares(path: Path = TRAVELLER_NAMES) -> Mapping[str, float]:
    """Share of travellers whose name has each part (name_key form), from a CSV of part,per_100k ('#' lines
    are comments). Raises OSError or ValueError for a missing or malformed file."""
    table = pl.read_csv(path, comment_prefix="#", schema={"part": pl.String, "per_100k": pl.Float64})
    if table["per_100k"].is_null().any() or (table["per_100k"] < 0).any():
        raise ValueError(f"{path}: per_100k must be a non-negative number on every row")
    return MappingProxyType(dict(zip(table["part"].str.to_uppercase(), (table["per_100k"] / 100_000), strict=True)))


def _decades(token: str, rarity: dict[str, float] | None) -> float:
    return UNCOUNTED_DECADES if rarity is None else rarity.get(token, UNCOUNTED_DECADES)


def corroboration(dob: str, document: str) -> float:
    """How much the date-of-birth and document relations corroborate a name (0 nothing, 1 fully)."""
    return 1.0 if document in DOCUMENT_SCORE else DOB_CORROBORATION.get(dob, 0.0)


def common_name_penalty(decades: float, dob: str, document: str) -> float:
    """What a name agreeing on this many decades of rarity loses under this date-of-birth and document
    relation: COMMON_NAME_PENALTY for a fully common name with nothing else, less as corroboration grows."""
    low, high = COMMON_NAME_DECADES
    commonness = min(max((high - decades) / (high - low), 0.0), 1.0)
    return COMMON_NAME_PENALTY * commonness * (1.0 - corroboration(dob, document))


# A single name (ICAO 9303: primary identifier only) is one part of evidence, however well it agrees: screened
# like any name, it needs the date of birth or a document to reach a band. Its penalty replaces the common-name
# penalty (one part is never rare enough to escape that anyway): SINGLE_NAME_PENALTY less what the date or a
# document corroborates, and SINGLE_NAME_UNCORROBORATED when nothing does (no date, or one that corroborates
# nothing), which keeps it out of every band.
SINGLE_NAME_PENALTY = 0.15
SINGLE_NAME_UNCORROBORATED = 0.40


def single_name_penalty(dob: str, document: str) -> float:
    support = corroboration(dob, document)
    return SINGLE_NAME_PENALTY * (1.0 - support) if support > 0 else SINGLE_NAME_UNCORROBORATED


def least_common_name_penalty(rarity: Mapping[str, float], surname: pl.Expr, given: pl.Expr) -> pl.Expr:
    """Per entry (name_key columns): the least common-name penalty any alignment with it can incur before the
    date corroborates (common_name_penalty of all its parts agreeing: the parts that agree weigh no more than
    all of them), and 0 for a single name (single_name_penalty applies instead). Computed once per list change;
    it lets screening skip, without aligning names, namesakes whose date can never lift their common name."""
    low, high = COMMON_NAME_DECADES
    parts = pl.concat_str(surname, given, separator=" ").str.strip_chars().str.split(" ")
    decades = parts.list.eval(
        pl.element().replace_strict(dict(rarity), default=UNCOUNTED_DECADES, return_dtype=pl.Float64)
    ).list.sum()
    commonness = ((high - decades) / (high - low)).clip(0.0, 1.0)
    return pl.when(parts.list.len() > 1).then(COMMON_NAME_PENALTY * commonness).otherwise(0.0)
