"""Pairs of (traveller, entry): the evidence columns, the filters that keep name alignment to the pairs that can
reach a band, the score of a pair and its explanation, and score_pair for tests and analysts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from services.profiler.matching.dates import DOB_ADJUSTMENT, DOB_TEXT, date_parts, dob_relation_parts
from services.profiler.matching.documents import (
    DOCUMENT_DIFFERENT_ADJUSTMENT,
    DOCUMENT_SCORE,
    DOCUMENT_TEXT,
    document_canonical_expr,
    document_raw_expr,
    document_relation_expr,
)
from services.profiler.matching.names import _compare, _Token, _tokens, fold_tokens, mrz_truncated
from services.profiler.matching.rarity import DOB_CORROBORATION, common_name_penalty, single_name_penalty

# Recorded by the quality report and the screening benchmark: which matcher a figure is about.
MATCHER_VERSION = "fuzzy-3"

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
