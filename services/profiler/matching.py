"""Pure comparison of (traveller, watchlist entry) pairs: names, dates of birth and document numbers.

Screening runs in two stages (reference/name-matching.md §1): watchlist.py finds candidate pairs through
an index, this module scores them. Everything that can be computed on whole columns is (folds, date and
document evidence, a quick rapidfuzz score that discards hopeless pairs); only the token alignment of the
pairs that survive runs in Python, a handful per thousand travellers.

The score of a pair, in [0, 1]. No single piece of evidence vetoes a match: each is graded.

    name   token alignment of both names, order-free (swapped fields cost 3 %, and only when both sides
           have both fields), after merging parts split differently on the two sides (JEAN PIERRE,
           JEANPIERRE; ABDUL RAHMAN, ABDULRAHMAN; LAURENT NKUNDA, LAUREN TNKUNDA). Per token: exact 1.0,
           MRZ-truncated prefix 0.97, an ICAO two-letter form against the plain letter (MUELLER, MULLER)
           0.95, initial 0.8, otherwise the OSA similarity (1 - edits / length; two adjacent letters swapped
           count half an edit), lifted half-way to 1 when the transliteration folds agree and the spellings
           share at least half. Parts of three letters or fewer fail closed except for a letter doubled,
           dropped or swapped (SON, SSON; ALI, AL; SOK, SKO). Agreeing parts weigh their rarity (name_rarity:
           a shared rare part says more than a shared common one, "common" counted on the lists and among
           the region's travellers); an unmatched part costs a fixed weight, 35 % of it when one side only
           has extra or missing parts, all of it when the one missing is the first given name, and when both
           sides have unmatched parts each of the entry's costs at least its own rarity (another name stands
           where the entry has one)
    base   name + date-of-birth adjustment (DOB_ADJUSTMENT: graded by how far apart the dates are, from an
           exact date's +0.08 to dates that agree on nothing, -0.40) - common-name penalty (a name whose
           agreeing parts are common, without date-of-birth or document corroboration: common_name_penalty;
           for a single name single_name_penalty instead, which needs the date to corroborate it)
           - DOCUMENT_DIFFERENT_ADJUSTMENT when both have documents and none agree
    score  1 - (1 - document) * (1 - base): a document number equal as sent (0.97) or after OCR
           normalisation (0.93) is strong evidence on its own, whatever the names say

Explanations say how each part compared and never quote a name, date or number: they travel to members.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from rapidfuzz.process import cpdist

MATCHER_VERSION = "fuzzy-3"

# -- folds and canonical forms ------------------------------------------------------------------------------

# Letters and digraphs that transliterations of one name disagree on (MOHAMMED, MUHAMMAD; YUSUF, YOUSEF;
# MUELLER, MULLER; KHALID, HALID). Applied in this order: digraphs, then an H after any letter is dropped,
# vowel runs become one A, doubled letters one letter. Coarse on purpose: it feeds the index (recall) and
# lifts a token similarity half-way, never decides a match alone.
_FOLD_LETTERS = {
    "PH": "F", "CK": "K", "KH": "K", "GH": "G", "DH": "D", "TH": "T",
    "Q": "K", "Z": "S", "W": "V", "C": "K", "X": "KS", "Y": "I",
}  # fmt: skip
_DOUBLES = [c + c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def fold_expr(token: pl.Expr) -> pl.Expr:
    """Transliteration fold of a column of single name tokens (name_key form): MUHAMMAD -> MAMAD."""
    return (
        token.str.replace_many(_FOLD_LETTERS, leftmost=True)
        .str.replace_all(r"(.)H", "${1}")
        .str.replace_all(r"[AEIOU]+", "A")
        .str.replace_many(_DOUBLES, [d[0] for d in _DOUBLES])
    )


def fold_tokens(tokens: Iterable[str]) -> dict[str, str]:
    """fold_expr for a few tokens at once, as a dict (the same expression: one definition)."""
    distinct = sorted(set(tokens))
    folded = pl.Series("t", distinct, dtype=pl.String).to_frame().select(fold_expr(pl.col("t")))["t"]
    return dict(zip(distinct, folded.to_list(), strict=True))


# OCR confusions of letters with digits in document numbers (reference/name-matching.md §3): the letter
# side is mapped to the digit, so O1234567 and 01234567 have one canonical form.
_OCR_DIGITS = {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6"}


def document_raw_expr(number: pl.Expr) -> pl.Expr:
    """Document number as compared: upper case, letters and digits only (spaces, dashes, '<' dropped)."""
    return number.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def document_canonical_expr(number: pl.Expr) -> pl.Expr:
    """document_raw_expr with OCR-confusable letters mapped to their digits."""
    return document_raw_expr(number).str.replace_many(_OCR_DIGITS)


# -- dates of birth -----------------------------------------------------------------------------------------

# How a date-of-birth relation moves the name score: graded by how far apart the dates are, never a veto on its
# own (reference/name-matching.md §3; Watchman grades a year 0.1 a year up to five, Oracle tolerates five years
# of year of birth, Splink has day, month and year levels). Partial dates are compared at the precision both
# sides have, and 1 January is treated as year-only (a common placeholder for an unknown birthday). An exact
# full date adds to the name. A clerical error (day and month swapped, a year apart on a full date) costs
# little. A day or a month off costs more the further it is; a year-only date ("approximately 1965", as many
# lists record it) a few years away costs by the years. A rare complete name keeps enough to reach the review
# band under any of these; only dates that agree on nothing (a conflict) sink a name. Agreement on the year
# alone is weak evidence (one person in ~60 shares it by chance): it lowers the score a little.
DOB_ADJUSTMENT = {
    "exact": 0.08,
    "day_month_swapped": 0.0,
    "partial_agrees": -0.04,
    "missing": -0.04,
    "year_off_by_one": -0.03,
    "day_within_3": -0.05,
    "day_within_week": -0.07,
    "day_differs": -0.14,
    "month_off_by_one": -0.07,
    "month_differs": -0.14,
    "approx_1_year": -0.06,
    "approx_3_years": -0.10,
    "approx_5_years": -0.14,
    "same_year": -0.20,
    "years_off_1": -0.26,
    "years_off_5": -0.32,
    "conflict": -0.40,
}
# Explanations name the relation in bands: a recipient who knows the traveller's date cannot derive the
# listed one from them.
DOB_TEXT = {
    "exact": "date of birth exact",
    "day_month_swapped": "date of birth: day and month swapped",
    "partial_agrees": "date of birth agrees at the precision both sides have",
    "missing": "date of birth not on both sides",
    "year_off_by_one": "date of birth: a year apart",
    "day_within_3": "date of birth within 3 days",
    "day_within_week": "date of birth within a week",
    "day_differs": "date of birth in the same month, day differs",
    "month_off_by_one": "date of birth: month one apart",
    "month_differs": "date of birth: month differs",
    "approx_1_year": "date of birth within a year of a year-only date",
    "approx_3_years": "date of birth within 3 years of a year-only date",
    "approx_5_years": "date of birth within 5 years of a year-only date",
    "same_year": "date of birth: same year, month and day differ",
    "years_off_1": "date of birth: a year apart, month and day differ",
    "years_off_5": "date of birth: within 5 years, month and day differ",
    "conflict": "date of birth conflicts",
}


def date_parts(dob: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Year, month and day of a 'YYYY[-MM[-DD]]' column as integers (0 unknown); 1 January is year-only."""
    year = dob.str.slice(0, 4).cast(pl.Int32, strict=False).fill_null(0)
    month = dob.str.slice(5, 2).cast(pl.Int32, strict=False).fill_null(0)
    day = dob.str.slice(8, 2).cast(pl.Int32, strict=False).fill_null(0)
    placeholder = (month == 1) & (day == 1)
    return year, pl.when(placeholder).then(0).otherwise(month), pl.when(placeholder).then(0).otherwise(day)


def dob_relation_parts(ty: pl.Expr, tm: pl.Expr, td: pl.Expr, ey: pl.Expr, em: pl.Expr, ed: pl.Expr) -> pl.Expr:
    """The DOB_ADJUSTMENT key relating two dates given as date_parts() columns (integers only: fast)."""
    full = (tm > 0) & (td > 0) & (em > 0) & (ed > 0)
    years_apart = (ty - ey).abs()
    days_apart = (td - ed).abs()
    both_months = (tm > 0) & (em > 0)
    same_year_month = (ty == ey) & (tm == em)
    return (
        pl.when((ty == 0) | (ey == 0))
        .then(pl.lit("missing"))
        .when(full & same_year_month & (td == ed))
        .then(pl.lit("exact"))
        .when(full & (ty == ey) & (tm == ed) & (td == em))
        .then(pl.lit("day_month_swapped"))
        .when(full & (years_apart == 1) & (tm == em) & (td == ed))
        .then(pl.lit("year_off_by_one"))
        .when(full & same_year_month & (days_apart <= 3))
        .then(pl.lit("day_within_3"))
        .when(full & same_year_month & (days_apart <= 7))
        .then(pl.lit("day_within_week"))
        .when(full & same_year_month)
        .then(pl.lit("day_differs"))
        .when(full & (ty == ey) & (td == ed) & ((tm - em).abs() == 1))
        .then(pl.lit("month_off_by_one"))
        .when(full & (ty == ey) & (td == ed))
        .then(pl.lit("month_differs"))
        # Full dates that agree on no more than the year, or are a few years apart: the date says "probably
        # not", in proportion, and leaves a rare complete name the chance to reach review.
        .when(full & (ty == ey))
        .then(pl.lit("same_year"))
        .when(full & (years_apart == 1))
        .then(pl.lit("years_off_1"))
        .when(full & (years_apart <= 5))
        .then(pl.lit("years_off_5"))
        .when(full)
        .then(pl.lit("conflict"))
        .when((ty == ey) & (~both_months | (tm == em)))
        .then(pl.lit("partial_agrees"))
        .when(ty == ey)
        .then(pl.lit("month_differs"))
        # One side a year only (or a month the other lacks): how many years apart.
        .when(years_apart == 1)
        .then(pl.lit("approx_1_year"))
        .when(years_apart <= 3)
        .then(pl.lit("approx_3_years"))
        .when(years_apart <= 5)
        .then(pl.lit("approx_5_years"))
        .otherwise(pl.lit("conflict"))
    )


def dob_relation_expr(traveller: pl.Expr, entry: pl.Expr) -> pl.Expr:
    """The DOB_ADJUSTMENT key relating two 'YYYY[-MM[-DD]]' columns."""
    return dob_relation_parts(*date_parts(traveller), *date_parts(entry))


# -- documents ----------------------------------------------------------------------------------------------

DOCUMENT_SCORE = {"equal": 0.97, "equal_after_ocr": 0.93}
# Both sides have document numbers and none agree: a little evidence against (a renewed passport looks like this,
# so never a veto), enough that a name agreeing with a near-miss date alone does not alert on namesakes.
DOCUMENT_DIFFERENT_ADJUSTMENT = -0.05
DOCUMENT_TEXT = {
    "equal": "document number equal",
    "equal_after_ocr": "document number equal after OCR normalisation",
    "different": "document numbers differ",
    "missing": "document number not on both sides",
}


def document_relation_expr(traveller_raw: pl.Expr, traveller_canonical: pl.Expr, entry_raw: pl.Expr) -> pl.Expr:
    """Relation of an entry's number (document_raw_expr form) to a traveller's numbers (list columns of
    document_raw_expr and document_canonical_expr forms). Numbers shorter than 5 characters are ignored."""
    usable = entry_raw.str.len_chars() >= 5
    return (
        pl.when(usable & traveller_raw.list.contains(entry_raw))
        .then(pl.lit("equal"))
        .when(usable & traveller_canonical.list.contains(document_canonical_expr(entry_raw)))
        .then(pl.lit("equal_after_ocr"))
        .when(usable & (traveller_raw.list.len() > 0))
        .then(pl.lit("different"))
        .otherwise(pl.lit("missing"))
    )


# -- name frequencies ---------------------------------------------------------------------------------------

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
TRAVELLER_NAMES = Path(__file__).resolve().parent.parent / "data" / "traveller_names.csv"


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


# -- names ------------------------------------------------------------------------------------------------

# MRZ name field lengths (ICAO 9303: TD1 30, TD2 31, TD3 39 characters, "SURNAME<<GIVEN<NAMES"). A name
# whose MRZ form has exactly one of these lengths may have been cut: its last token matches as a prefix.
MRZ_NAME_LENGTHS = (30, 31, 39)
_MIN_TOKEN_SIMILARITY = 0.6
_EXTRA_PART_COST = 0.35  # share of _PART_DECADES charged for an unmatched part when only one side has extras
_TRUNCATED_PART_COST = 0.1  # an entry's names beyond an MRZ cut are expected to be missing
_SWAP_FACTOR = 0.97
# What an unmatched name part costs, in the decades that agreeing parts weigh (name_rarity), before the
# _EXTRA_PART_COST share: like a part that one person in a hundred has. A part's absence says as much
# whether the part is rare or common, so the cost does not depend on which part it is.
_PART_DECADES = 2.0
# The ICAO two-letter forms (frames.name_key: Ü -> UE, Ø -> OE, Å -> AA) against the plain letter that other
# keyboards type: one name written two documented ways, nearly as good as equal.
_ICAO_PLAIN = re.compile(r"(?<=[AOU])E|(?<=A)A")
_ICAO_PLAIN_SIMILARITY = 0.95
# Folds agree for any two names with the same consonants (MELE, MALIA): they lift a similarity half-way to 1
# only when the spellings already share at least this much (MOHAMMED ~ MUHAMMAD 0.75, YUSUF ~ YOUSSEF 0.57),
# and never for parts of three letters or fewer, where a vowel is a third of the name (LI, LU; SON, SUN).
_MIN_FOLD_LIFT = 0.5


def mrz_truncated(surname: str, given: str) -> bool:
    """Whether a name (name_key form) fills an MRZ name field exactly, so its last part may be cut."""
    length = len(surname) + (2 + len(given) if given else 0)
    return length in MRZ_NAME_LENGTHS


class _Token(NamedTuple):
    text: str
    fold: str
    field: str  # "surname" or "given"
    plain: str  # text without the second letter of the ICAO two-letter forms (_ICAO_PLAIN)
    joined: bool = False
    parts: tuple[str, ...] = ()  # a joined part: the parts it joins (its rarity is theirs together)


def _token_decades(token: _Token, rarity: dict[str, float] | None) -> float:
    """Rarity of a part (name_rarity); a part joined from several weighs what they weigh together."""
    if token.parts:
        return sum(_decades(part, rarity) for part in token.parts)
    return _decades(token.text, rarity)


def _tokens(surname: str, given: str, folds: dict[str, str]) -> list[_Token]:
    return [_Token(t, folds[t], "surname", _ICAO_PLAIN.sub("", t)) for t in surname.split()] + [
        _Token(t, folds[t], "given", _ICAO_PLAIN.sub("", t)) for t in given.split()
    ]


def _join_compounds(side: list[_Token], other: list[_Token], folds: dict[str, str]) -> list[_Token]:
    """Merge adjacent parts of one field that the other side writes as one word (JEAN PIERRE ~ JEANPIERRE;
    three parts too: PLAT ONO VICH ~ PLATONOVICH)."""
    texts = {t.text for t in other}
    if len(side) < 2 or all(t.text in texts for t in side):
        return side
    words = texts | {t.fold for t in other}
    out: list[_Token] = []
    i = 0
    while i < len(side):
        for width in (3, 2):
            run = side[i : i + width]
            # Never an initial (SAID H is not SAIDH, whose fold is SAID's), never across fields.
            if len(run) < width or any(len(t.text) < 2 or t.field != run[0].field for t in run):
                continue
            joined = "".join(t.text for t in run)
            if joined in words or folds.get(joined, "-") in words:
                token = _Token(joined, folds.get(joined, ""), run[0].field, _ICAO_PLAIN.sub("", joined), True)
                out.append(token._replace(parts=tuple(t.text for t in run)))
                i += width
                break
        else:
            out.append(side[i])
            i += 1
    return out


def _merge_boundaries(traveller: list[_Token], entry: list[_Token]) -> tuple[list[_Token], list[_Token]]:
    """Merge parts that are one name split differently on the two sides, in any field and either order
    (given names and surname run together either way): two parts on one side whose letters run together equal
    one part on the other (ABDULRAHMAN ~ ABDUL RAHMAN across fields: what _join_compounds leaves), or two parts
    on each side whose letters run together agree while the parts do not (LAUREN TNKUNDA ~ LAURENT NKUNDA: a
    letter moved across the space). Equal, or one edit apart over 8 letters or more. Only parts without an
    exact equal on the other side take part; the first pairing found is merged."""
    t_texts, e_texts = {t.text for t in traveller}, {e.text for e in entry}
    t_loose = [i for i, t in enumerate(traveller) if t.text not in e_texts and len(t.text) > 1]
    e_loose = [j for j, e in enumerate(entry) if e.text not in t_texts and len(e.text) > 1]
    if not t_loose or not e_loose or len(t_loose) + len(e_loose) < 3:
        return traveller, entry
    t_joined = [(traveller[i].text + traveller[k].text, i, k) for i in t_loose for k in t_loose if i != k]
    e_joined = [(entry[j].text + entry[m].text, j, m) for j in e_loose for m in e_loose if j != m]
    for t_text, i, k in t_joined:
        for e_text, j, m in e_joined:
            if _same_letters(t_text, e_text):
                return _merged(traveller, i, k, t_text), _merged(entry, j, m, e_text)
    for t_text, i, k in t_joined:
        for j in e_loose:
            if _same_letters(t_text, entry[j].text):
                return _merged(traveller, i, k, t_text), _merged(entry, j, j, entry[j].text)
    for e_text, j, m in e_joined:
        for i in t_loose:
            if _same_letters(traveller[i].text, e_text):
                return _merged(traveller, i, i, traveller[i].text), _merged(entry, j, m, e_text)
    return traveller, entry


def _same_letters(a: str, b: str) -> bool:
    return a == b or (len(a) >= 8 and abs(len(a) - len(b)) <= 1 and OSA.distance(a, b) <= 1)


def _merged(side: list[_Token], i: int, k: int, text: str) -> list[_Token]:
    """side with parts i and k replaced by one joined part (i == k: part i marked joined)."""
    parts = (side[i].parts or (side[i].text,)) + (() if k == i else side[k].parts or (side[k].text,))
    token = _Token(text, "", side[i].field, _ICAO_PLAIN.sub("", text), True, parts)
    return [token if n == i else t for n, t in enumerate(side) if n != k or k == i]


# Slips in short parts (three letters or fewer), which otherwise fail closed (no fuzzy match of LI and LU): one
# edit in a three-letter part is a third of it, yet a letter doubled or dropped (SON, SSON; ALI, AL) or two
# adjacent letters swapped (SOK, SKO) is what a keyboard does, not another name.
_SHORT_DOUBLED_SIMILARITY = 0.9
_SHORT_SWAPPED_SIMILARITY = 0.85
_DOUBLED = re.compile(r"(.)\1+")


def _token_similarity(t: _Token, e: _Token, prefix_ok: bool) -> tuple[float, str]:
    if t.text == e.text:
        return 1.0, "joined" if (t.joined or e.joined) else "exact"
    if len(t.text) == 1 or len(e.text) == 1:
        return (0.8, "initial") if t.text[0] == e.text[0] else (0.0, "")
    if prefix_ok and len(t.text) >= 2 and e.text.startswith(t.text):
        return 0.97, "truncated"
    if t.plain == e.plain and min(len(t.text), len(e.text)) >= 4:
        return _ICAO_PLAIN_SIMILARITY, "transliteration"  # MUELLER ~ MULLER, SOEREN ~ SOREN
    similarity = OSA.normalized_similarity(t.text, e.text)
    swapped = len(t.text) == len(e.text) >= 4 and sorted(t.text) == sorted(e.text)
    if swapped and OSA.distance(t.text, e.text) == 1:  # two adjacent letters swapped: half an edit (AFIZ ~ FAIZ)
        similarity = 1.0 - 0.5 / len(t.text)
    short = min(len(t.text), len(e.text)) <= 3
    if t.fold and t.fold == e.fold and similarity >= _MIN_FOLD_LIFT and not short:
        return 0.5 + 0.5 * similarity, "transliteration"
    if short:
        if _DOUBLED.sub(r"\1", t.text) == _DOUBLED.sub(r"\1", e.text):
            return max(similarity, _SHORT_DOUBLED_SIMILARITY), "spelling"
        if len(t.text) == len(e.text) and sorted(t.text) == sorted(e.text) and OSA.distance(t.text, e.text) == 1:
            return _SHORT_SWAPPED_SIMILARITY, "spelling"
        if OSA.distance(t.text, e.text) == 1 and len(t.text) != len(e.text):
            # A letter dropped from a part, or added: from a longer one, its similarity; from a three-letter one
            # (ALI, AL; VAN, VN), as good as a swap, which a lone letter changed (LI, LU) never is.
            return max(similarity, _SHORT_SWAPPED_SIMILARITY if min(len(t.text), len(e.text)) == 2 else 0.0), "spelling"
        return 0.0, ""
    if similarity < _MIN_TOKEN_SIMILARITY:
        return 0.0, ""
    return similarity, "spelling"


_KIND_TEXT = {
    "spelling": "spelling difference",
    "transliteration": "transliteration variant",
    "initial": "initials",
    "truncated": "cut at the MRZ field length",
    "joined": "name parts split or joined differently",
}


@dataclass(frozen=True)
class NameEvidence:
    score: float
    explanation: str
    decades: float = 0.0  # rarity of what agreed (name_rarity): how few people share the matched parts
    single: bool = False  # one side has a single name (ICAO 9303: primary identifier only)
    describe: Callable[[], str] | None = None  # the explanation, for a comparison made without one


def _both_fields(side: list[_Token]) -> bool:
    return len({t.field for t in side}) == 2


def _first_given_unmatched(side: list[_Token], aligned: Collection[int]) -> int | None:
    """Index of this side's first given name when it is unaligned while a later given name is aligned."""
    given = [k for k, token in enumerate(side) if token.field == "given"]
    if len(given) >= 2 and given[0] not in aligned and any(k in aligned for k in given[1:]):
        return given[0]
    return None


def compare_names(
    t_surname: str,
    t_given: str,
    e_surname: str,
    e_given: str,
    folds: dict[str, str],
    truncated: bool = False,
    rarity: dict[str, float] | None = None,
) -> NameEvidence:
    """Order-free token alignment of a traveller's and an entry's names (name_key forms); folds from
    fold_tokens() must cover every token and the concatenation of adjacent tokens; rarity from name_rarity()
    (None: every part as rare as an uncounted one)."""
    return _compare(_tokens(t_surname, t_given, folds), _tokens(e_surname, e_given, folds), folds, truncated, rarity)


def _compare(
    traveller: list[_Token],
    entry: list[_Token],
    folds: dict[str, str],
    truncated: bool,
    rarity: dict[str, float] | None,
    explain: bool = True,
) -> NameEvidence:
    if not traveller or not entry:
        return NameEvidence(0.0, "no name to compare")
    single = len(traveller) == 1 or len(entry) == 1
    traveller, entry = _join_compounds(traveller, entry, folds), _join_compounds(entry, traveller, folds)
    traveller, entry = _merge_boundaries(traveller, entry)
    last = len(traveller) - 1
    used_t: set[int] = set()
    used_e: dict[int, tuple[float, float, str, int]] = {}
    # Equal parts first (what the ranked alignment below would pair first anyway: nothing else scores 1), so
    # that only the parts left over are compared with each other.
    equal: dict[str, list[int]] = {}
    for j, e in enumerate(entry):
        equal.setdefault(e.text, []).append(j)
    for i, t in enumerate(traveller):
        same = equal.get(t.text)
        if same:
            j = same.pop(0)
            used_t.add(i)
            used_e[j] = (1.0, len(t.text), "joined" if (t.joined or entry[j].joined) else "exact", i)
    candidates = []
    for i, t in enumerate(traveller):
        if i in used_t:
            continue
        for j, e in enumerate(entry):
            if j in used_e:
                continue
            similarity, kind = _token_similarity(t, e, truncated and i == last)
            if similarity > 0:
                candidates.append((similarity, max(len(t.text), len(e.text)), i, j, kind))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    for similarity, weight, i, j, kind in candidates:
        if i not in used_t and j not in used_e:
            used_t.add(i)
            used_e[j] = (similarity, weight, kind, i)
    if not used_e:
        return NameEvidence(0.0, "names do not match")
    # Agreeing parts weigh their rarity (a shared rare surname says more than a shared common given name);
    # the alignment above ranked them by similarity, then length.
    used_e = {j: (s, _token_decades(entry[j], rarity), k, i) for j, (s, _, k, i) in used_e.items()}
    matched = sum(s * w for s, w, _, _ in used_e.values())
    weight = sum(w for _, w, _, _ in used_e.values())
    extra = [t for i, t in enumerate(traveller) if i not in used_t]
    missing = [e for j, e in enumerate(entry) if j not in used_e]
    # A middle name dropped or added is the usual variant; the first given name absent on one side while a
    # later one agrees is not (records keep the name a person is called by), and it is what relatives and
    # namesakes share: that part is charged in full, like parts unmatched on both sides.
    first_missing = _first_given_unmatched(entry, used_e)
    first_extra = _first_given_unmatched(traveller, used_t)
    if extra and missing:
        # A part on each side that agrees with nothing: another name where the entry has one (AL RAWI, AL
        # MOSULI), evidence against as strong as the entry's part is rare.
        penalty = _PART_DECADES * len(extra) + sum(max(_PART_DECADES, _token_decades(e, rarity)) for e in missing)
    else:
        missing_cost = _TRUNCATED_PART_COST if truncated else _EXTRA_PART_COST
        penalty = _PART_DECADES * sum(
            1.0 if i == first_extra else _EXTRA_PART_COST for i in range(len(traveller)) if i not in used_t
        )
        penalty += _PART_DECADES * sum(
            1.0 if j == first_missing else missing_cost for j in range(len(entry)) if j not in used_e
        )
    score = matched / (weight + penalty)
    # Fields count as swapped only when both sides have both: a name written whole in one field ("NOORZAI,
    # ABDUL BASIR" in the surname) says nothing about which part is which.
    crossed = sum(w for j, (_, w, _, i) in used_e.items() if traveller[i].field != entry[j].field)
    swapped = crossed * 2 > weight and _both_fields(traveller) and _both_fields(entry)
    if swapped:
        score *= _SWAP_FACTOR
    decades = sum(
        min(INITIAL_DECADES, _token_decades(entry[j], rarity))
        if kind == "initial"
        else s * _token_decades(entry[j], rarity)
        for j, (s, _, kind, _) in used_e.items()
    )
    described = functools.partial(_describe, entry, used_e, first_missing, extra, first_extra, swapped, single)
    return NameEvidence(min(score, 1.0), described() if explain else "", decades, single, described)


def _describe(
    entry: list[_Token],
    used_e: dict[int, tuple[float, float, str, int]],
    first_missing: int | None,
    extra: list[_Token],
    first_extra: int | None,
    swapped: bool,
    single: bool,
) -> str:
    """The explanation of an alignment made by _compare (only for the pairs that reach a band)."""
    parts = []
    for field, label in (("surname", "surname"), ("given", "given names")):
        indices = [j for j, e in enumerate(entry) if e.field == field]
        if not indices:
            continue
        aligned = [used_e[j] for j in indices if j in used_e]
        if not aligned:
            parts.append(f"{label} not matched")
            continue
        kinds = sorted({k for _, _, k, _ in aligned} - {"exact"}, key=list(_KIND_TEXT).index)
        absent = len(indices) - len(aligned)
        if not kinds and not absent:
            parts.append(f"{label} exact")
            continue
        field_score = sum(s * w for s, w, _, _ in aligned) / sum(w for _, w, _, _ in aligned)
        notes = [_KIND_TEXT[k] for k in kinds]
        if absent:
            notes.append(f"{absent} {'part' if absent == 1 else 'parts'} missing on the traveller")
        if field == "given" and first_missing is not None:
            notes.append("first given name among them")
        parts.append(f"{label} token match {field_score:.2f} ({', '.join(notes)})")
    if extra:
        first = ", the first given name among them" if first_extra is not None else ""
        parts.append(f"{len(extra)} extra name {'part' if len(extra) == 1 else 'parts'} on the traveller{first}")
    if swapped:
        parts.append("surname and given names in swapped fields")
    if single:
        parts.append("single name")
    return ", ".join(parts)


# -- pairs --------------------------------------------------------------------------------------------------

# Columns a frame of candidate pairs must have for score_pairs(): the traveller side (t_*) and the entry
# side (e_*); names in name_key form, dates 'YYYY[-MM[-DD]]', documents as sent.
PAIR_COLUMNS = ("t_surname", "t_given", "t_dob", "t_documents", "e_surname", "e_given", "e_dob", "e_document")


def traveller_evidence_columns(dob: pl.Expr, documents: pl.Expr) -> dict[str, pl.Expr]:
    """Per-traveller columns that pair evidence reads (computed once per traveller, not per pair)."""
    year, month, day = date_parts(dob)
    return {
        "t_y": year,
        "t_m": month,
        "t_d": day,
        "t_raw": documents.list.eval(document_raw_expr(pl.element())),
        "t_canonical": documents.list.eval(document_canonical_expr(pl.element())),
    }


def entry_evidence_columns(dob: pl.Expr, document: pl.Expr) -> dict[str, pl.Expr]:
    """Per-entry columns that pair evidence reads (computed once per watchlist change)."""
    year, month, day = date_parts(dob)
    return {"e_y": year, "e_m": month, "e_d": day, "e_raw": document_raw_expr(document)}


def date_document_evidence(pairs: pl.DataFrame) -> pl.DataFrame:
    """dob, dob_adjustment, document and document_score of pairs with the *_evidence_columns()."""
    return pairs.with_columns(
        dob=dob_relation_parts(*(pl.col(c) for c in ("t_y", "t_m", "t_d", "e_y", "e_m", "e_d"))),
        document=document_relation_expr(pl.col("t_raw"), pl.col("t_canonical"), pl.col("e_raw")),
    ).with_columns(
        dob_adjustment=pl.col("dob").replace_strict(DOB_ADJUSTMENT, return_dtype=pl.Float64),
        document_score=pl.col("document").replace_strict(DOCUMENT_SCORE, default=0.0, return_dtype=pl.Float64),
    )


def could_reach(threshold: float, least_common: pl.Expr | None = None) -> pl.Expr:
    """Pairs that may still score at least threshold on their dates and documents alone: a document match,
    or a date of birth that does not already rule the pair out (the best name scores 1). least_common: the
    least common-name penalty the pair's name can incur (least_common_name_penalty of the entry; 0 where the
    traveller has a single name, whose penalty is another), which the date corroborates away in part."""
    best = 1.0 + pl.col("dob_adjustment")
    if least_common is not None:
        support = pl.col("dob").replace_strict(DOB_CORROBORATION, default=0.0, return_dtype=pl.Float64)
        best = best - least_common * (1.0 - support)
    return (pl.col("document_score") > 0) | (best >= threshold)


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


def quick_name_score(pairs: pl.DataFrame) -> pl.Series:
    """rapidfuzz token_set_ratio of the full names (0-1), vectorised over the pairs."""
    full_t = (pairs["t_surname"] + " " + pairs["t_given"]).to_list()
    full_e = (pairs["e_surname"] + " " + pairs["e_given"]).to_list()
    quick = cpdist(full_t, full_e, scorer=fuzz.token_set_ratio, workers=-1) / 100.0 if full_t else []
    return pl.Series("quick", quick, dtype=pl.Float64)


# Pairs whose quick name score is below this (and no document match) are not aligned: no name that far
# apart reaches the threshold (checked on the quality set).
QUICK_FLOOR = 0.5
# A pair whose date of birth leaves little room (a year apart, only the year agreeing) reaches the threshold
# only on a nearly perfect name, so it needs a quick score near what the name must reach: at most this much
# under it (checked on the quality sets: the quick score of a true pair is rarely more than 0.15 under its
# name score, and then on names that need no such room).
QUICK_MARGIN = 0.25


def worth_aligning(threshold: float) -> pl.Expr:
    """Pairs (with date_document_evidence and quick columns) whose names are worth aligning: a document
    match, or a quick name score no further under what the name must reach than QUICK_MARGIN (and never
    under QUICK_FLOOR)."""
    room = (
        threshold
        - pl.col("dob_adjustment")
        - pl.when(pl.col("document") == "different").then(DOCUMENT_DIFFERENT_ADJUSTMENT).otherwise(0.0)
    )
    return (pl.col("document_score") > 0) | (pl.col("quick") >= pl.max_horizontal(room - QUICK_MARGIN, QUICK_FLOOR))


def pair_evidence(pairs: pl.DataFrame) -> pl.DataFrame:
    """Date, document and quick name evidence of pairs with PAIR_COLUMNS (for score_pairs and tests)."""
    evidence = date_document_evidence(
        pairs.with_columns(
            **traveller_evidence_columns(pl.col("t_dob"), pl.col("t_documents")),
            **entry_evidence_columns(pl.col("e_dob"), pl.col("e_document")),
        )
    )
    return evidence.with_columns(quick=quick_name_score(evidence))


def _folds_for(surnames: Sequence[str], givens: Sequence[str]) -> dict[str, str]:
    tokens: set[str] = set()
    for name in (*surnames, *givens):
        parts = name.split()
        tokens.update(parts)
        tokens.update(a + b for a, b in zip(parts, parts[1:], strict=False))
    return fold_tokens(tokens)


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


def finish_pairs(
    evidence: pl.DataFrame, rarity: dict[str, float] | None = None, threshold: float | None = None
) -> pl.DataFrame:
    """Name alignment, final score and explanation of pairs with pair_evidence() columns; rarity of name parts
    from name_rarity() (None: no part is common). With a threshold, only pairs scoring at least that much are
    explained (the others' explanation is null): most pairs screening aligns are not matches.

    The one per-row Python step of screening; callers keep it to the pairs could_reach() lets through.
    """
    folds = _folds_for(
        evidence["t_surname"].to_list() + evidence["e_surname"].to_list(),
        evidence["t_given"].to_list() + evidence["e_given"].to_list(),
    )
    scores: list[float] = []
    names: list[float] = []
    texts: list[str | None] = []
    rows = evidence.select(
        "t_surname", "t_given", "e_surname", "e_given", "dob", "dob_adjustment", "document", "document_score"
    ).iter_rows()
    tokenised: dict[tuple[str, str], list[_Token]] = {}  # a traveller (or an entry) is often in several pairs
    for t_surname, t_given, e_surname, e_given, dob, dob_adjustment, document, document_score in rows:
        traveller = tokenised.get((t_surname, t_given))
        if traveller is None:
            traveller = tokenised[t_surname, t_given] = _tokens(t_surname, t_given, folds)
        entry = tokenised.get((e_surname, e_given))
        if entry is None:
            entry = tokenised[e_surname, e_given] = _tokens(e_surname, e_given, folds)
        truncated = mrz_truncated(t_surname, t_given)
        name = _compare(traveller, entry, folds, truncated, rarity, explain=threshold is None)
        if name.score <= 0:
            common = 0.0
        elif name.single:
            common = single_name_penalty(dob, document)
        else:
            common = common_name_penalty(name.decades, dob, document)
        base = name.score + dob_adjustment + (DOCUMENT_DIFFERENT_ADJUSTMENT if document == "different" else 0.0)
        score = 1.0 - (1.0 - document_score) * (1.0 - min(max(base - common, 0.0), 1.0))
        scores.append(round(score, 4))
        names.append(round(name.score, 4))
        if threshold is not None:
            if round(score, 4) < threshold:
                texts.append(None)
                continue
            name = replace(name, explanation=name.describe() if name.describe else name.explanation)
        weighed = (
            f", {'single' if name.single else 'common'} name: down-weighted {common:.2f} for want of date-of-birth"
            " or document corroboration"
            if common >= 0.005
            else ""
        )
        texts.append(f"{name.explanation}{weighed}; {DOB_TEXT[dob]}; {DOCUMENT_TEXT[document]}; score {score:.2f}")
    return evidence.with_columns(
        score=pl.Series(scores, dtype=pl.Float64),
        name_score=pl.Series(names, dtype=pl.Float64),
        explanation=pl.Series(texts, dtype=pl.String),
    )


def score_pairs(pairs: pl.DataFrame, rarity: dict[str, float] | None = None) -> pl.DataFrame:
    """pair_evidence() then finish_pairs() for every pair (no pre-filter): for tests and small frames."""
    if pairs.is_empty():
        return pairs.with_columns(
            score=pl.lit(None, pl.Float64), name_score=pl.lit(None, pl.Float64), explanation=pl.lit(None, pl.String)
        )
    return finish_pairs(pair_evidence(pairs), rarity)


@dataclass(frozen=True)
class Person:
    """One side of a pair for score_pair(): raw names (normalised here), date, document numbers."""

    surname: str
    given_names: str = ""
    dob: str = ""
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairScore:
    score: float
    name_score: float
    dob: str
    document: str
    explanation: str


def score_pair(traveller: Person, entry: Person, rarity: dict[str, float] | None = None) -> PairScore:
    """Score one (traveller, entry) pair: the same code path as screening, for tests and analysts; rarity of
    name parts from name_rarity() (a store's index.rarity), None: no part counted, none common."""
    from services.profiler.frames import name_key

    frame = pl.DataFrame(
        {
            "t_surname": [traveller.surname],
            "t_given": [traveller.given_names],
            "t_dob": [traveller.dob],
            "t_documents": [list(traveller.documents)],
            "e_surname": [entry.surname],
            "e_given": [entry.given_names],
            "e_dob": [entry.dob],
            "e_document": [entry.documents[0] if entry.documents else ""],
        },
        schema_overrides={"t_documents": pl.List(pl.String)},
    ).with_columns(name_key(pl.col(c)) for c in ("t_surname", "t_given", "e_surname", "e_given"))
    row = score_pairs(frame, rarity).row(0, named=True)
    return PairScore(row["score"], row["name_score"], row["dob"], row["document"], row["explanation"])
