"""Pure comparison of (traveller, watchlist entry) pairs: names, dates of birth and document numbers.

Screening runs in two stages (reference/name-matching.md §1): watchlist.py finds candidate pairs through
an index, this module scores them. Everything that can be computed on whole columns is (folds, date and
document evidence, a quick rapidfuzz score that discards hopeless pairs); only the token alignment of the
pairs that survive runs in Python, a handful per thousand travellers.

The score of a pair, in [0, 1]:

    name   token alignment of both names, order-free (swapped fields cost 3 %), per token: exact 1.0,
           MRZ-truncated prefix 0.97, initial 0.8, otherwise the OSA similarity (1 - edits / length),
           lifted half-way to 1 when the transliteration folds agree; unmatched parts cost their length
           (fully when both sides have unmatched parts, 35 % when one side only has an extra or missing name)
    base   name + date-of-birth adjustment (DOB_ADJUSTMENT) - 0.03 when both have documents that differ
    score  1 - (1 - document) * (1 - base): a document number equal as sent (0.97) or after OCR
           normalisation (0.93) is strong evidence on its own, whatever the names say

Explanations say how each part compared and never quote a name, date or number: they travel to members.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from rapidfuzz.process import cpdist

MATCHER_VERSION = "fuzzy-1"

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

# How a date-of-birth relation moves the name score. Partial dates are compared at the precision both
# sides have, and 1 January is treated as year-only (a common placeholder for an unknown birthday). A year
# apart or a day/month swap is the usual clerical error and is tolerated; a conflict sinks any name.
# Agreement on the year alone is weak evidence (one person in ~60 shares it by chance), so it lowers the
# score a little: an exact name still alerts, a name with a missing or extra part rarely does.
DOB_ADJUSTMENT = {
    "exact": 0.08,
    "day_month_swapped": 0.02,
    "partial_agrees": -0.04,
    "missing": -0.04,
    "year_off_by_one": -0.05,
    "partial_year_off_by_one": -0.12,
    "day_differs": -0.22,
    "month_differs": -0.30,
    "conflict": -0.40,
}
DOB_TEXT = {
    "exact": "date of birth exact",
    "day_month_swapped": "date of birth: day and month swapped",
    "partial_agrees": "date of birth agrees at the precision both sides have",
    "missing": "date of birth not on both sides",
    "year_off_by_one": "date of birth: a year apart",
    "partial_year_off_by_one": "date of birth: a year apart at the precision both sides have",
    "day_differs": "date of birth: day differs",
    "month_differs": "date of birth: month differs",
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
    both_months = (tm > 0) & (em > 0)
    return (
        pl.when((ty == 0) | (ey == 0))
        .then(pl.lit("missing"))
        .when(full & (ty == ey) & (tm == em) & (td == ed))
        .then(pl.lit("exact"))
        .when(full & (ty == ey) & (tm == ed) & (td == em))
        .then(pl.lit("day_month_swapped"))
        .when(full & (years_apart == 1) & (tm == em) & (td == ed))
        .then(pl.lit("year_off_by_one"))
        .when(full & (ty == ey) & (tm == em))
        .then(pl.lit("day_differs"))
        .when(full & (ty == ey) & (td == ed))
        .then(pl.lit("month_differs"))
        .when(full)
        .then(pl.lit("conflict"))
        .when((ty == ey) & (~both_months | (tm == em)))
        .then(pl.lit("partial_agrees"))
        .when((years_apart == 1) & (~both_months | (tm == em)))
        .then(pl.lit("partial_year_off_by_one"))
        .otherwise(pl.lit("conflict"))
    )


def dob_relation_expr(traveller: pl.Expr, entry: pl.Expr) -> pl.Expr:
    """The DOB_ADJUSTMENT key relating two 'YYYY[-MM[-DD]]' columns."""
    return dob_relation_parts(*date_parts(traveller), *date_parts(entry))


# -- documents ----------------------------------------------------------------------------------------------

DOCUMENT_SCORE = {"equal": 0.97, "equal_after_ocr": 0.93}
DOCUMENT_DIFFERENT_ADJUSTMENT = -0.03
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


# -- names ------------------------------------------------------------------------------------------------

# MRZ name field lengths (ICAO 9303: TD1 30, TD2 31, TD3 39 characters, "SURNAME<<GIVEN<NAMES"). A name
# whose MRZ form has exactly one of these lengths may have been cut: its last token matches as a prefix.
MRZ_NAME_LENGTHS = (30, 31, 39)
_MIN_TOKEN_SIMILARITY = 0.6
_EXTRA_PART_COST = 0.35  # share of an unmatched name's length charged when only one side has extras
_TRUNCATED_PART_COST = 0.1  # an entry's names beyond an MRZ cut are expected to be missing
_SWAP_FACTOR = 0.97


def mrz_truncated(surname: str, given: str) -> bool:
    """Whether a name (name_key form) fills an MRZ name field exactly, so its last part may be cut."""
    length = len(surname) + (2 + len(given) if given else 0)
    return length in MRZ_NAME_LENGTHS


@dataclass(frozen=True)
class _Token:
    text: str
    fold: str
    field: str  # "surname" or "given"
    joined: bool = False


def _tokens(surname: str, given: str, folds: dict[str, str]) -> list[_Token]:
    return [_Token(t, folds[t], "surname") for t in surname.split()] + [
        _Token(t, folds[t], "given") for t in given.split()
    ]


def _join_compounds(side: list[_Token], other: list[_Token], folds: dict[str, str]) -> list[_Token]:
    """Merge adjacent parts of one field that the other side writes as one word (JEAN PIERRE ~ JEANPIERRE)."""
    words = {t.text for t in other} | {t.fold for t in other}
    out: list[_Token] = []
    i = 0
    while i < len(side):
        joined = side[i].text + side[i + 1].text if i + 1 < len(side) else ""
        if joined and side[i].field == side[i + 1].field and (joined in words or folds.get(joined) in words):
            text = side[i].text + side[i + 1].text
            out.append(_Token(text, folds.get(text, ""), side[i].field, joined=True))
            i += 2
        else:
            out.append(side[i])
            i += 1
    return out


def _token_similarity(t: _Token, e: _Token, prefix_ok: bool) -> tuple[float, str]:
    if t.text == e.text:
        return 1.0, "joined" if (t.joined or e.joined) else "exact"
    if len(t.text) == 1 or len(e.text) == 1:
        return (0.8, "initial") if t.text[0] == e.text[0] else (0.0, "")
    if prefix_ok and len(t.text) >= 2 and e.text.startswith(t.text):
        return 0.97, "truncated"
    similarity = OSA.normalized_similarity(t.text, e.text)
    if t.fold and t.fold == e.fold:
        return max(similarity, 0.5 + 0.5 * similarity), "transliteration"
    if min(len(t.text), len(e.text)) <= 3:
        # Short names fail closed (no fuzzy match of LI and LU), except a letter dropped from a longer one.
        if max(len(t.text), len(e.text)) >= 4 and OSA.distance(t.text, e.text) == 1:
            return similarity, "spelling"
        return 0.0, ""
    if similarity < _MIN_TOKEN_SIMILARITY:
        return 0.0, ""
    return similarity, "spelling"


_KIND_TEXT = {
    "spelling": "spelling difference",
    "transliteration": "transliteration variant",
    "initial": "initials",
    "truncated": "cut at the MRZ field length",
    "joined": "compound name written differently",
}


@dataclass(frozen=True)
class NameEvidence:
    score: float
    explanation: str


def compare_names(
    t_surname: str, t_given: str, e_surname: str, e_given: str, folds: dict[str, str], truncated: bool = False
) -> NameEvidence:
    """Order-free token alignment of a traveller's and an entry's names (name_key forms); folds from
    fold_tokens() must cover every token and the concatenation of adjacent tokens."""
    traveller = _tokens(t_surname, t_given, folds)
    entry = _tokens(e_surname, e_given, folds)
    if not traveller or not entry:
        return NameEvidence(0.0, "no name to compare")
    traveller, entry = _join_compounds(traveller, entry, folds), _join_compounds(entry, traveller, folds)
    last = len(traveller) - 1
    candidates = []
    for i, t in enumerate(traveller):
        for j, e in enumerate(entry):
            similarity, kind = _token_similarity(t, e, truncated and i == last)
            if similarity > 0:
                candidates.append((similarity, max(len(t.text), len(e.text)), i, j, kind))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    used_t: set[int] = set()
    used_e: dict[int, tuple[float, int, str, int]] = {}
    for similarity, weight, i, j, kind in candidates:
        if i not in used_t and j not in used_e:
            used_t.add(i)
            used_e[j] = (similarity, weight, kind, i)
    if not used_e:
        return NameEvidence(0.0, "names do not match")
    matched = sum(s * w for s, w, _, _ in used_e.values())
    weight = sum(w for _, w, _, _ in used_e.values())
    extra = [t for i, t in enumerate(traveller) if i not in used_t]
    missing = [e for j, e in enumerate(entry) if j not in used_e]
    if extra and missing:
        penalty = sum(len(t.text) for t in extra) + sum(len(e.text) for e in missing)
    else:
        penalty = _EXTRA_PART_COST * sum(len(t.text) for t in extra)
        penalty += (_TRUNCATED_PART_COST if truncated else _EXTRA_PART_COST) * sum(len(e.text) for e in missing)
    score = matched / (weight + penalty)
    crossed = sum(w for j, (_, w, _, i) in used_e.items() if traveller[i].field != entry[j].field)
    swapped = crossed * 2 > weight
    if swapped:
        score *= _SWAP_FACTOR

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
        parts.append(f"{label} token match {field_score:.2f} ({', '.join(notes)})")
    if extra:
        parts.append(f"{len(extra)} extra name {'part' if len(extra) == 1 else 'parts'} on the traveller")
    if swapped:
        parts.append("surname and given names in swapped fields")
    return NameEvidence(min(score, 1.0), ", ".join(parts))


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


def could_reach(threshold: float) -> pl.Expr:
    """Pairs that may still score at least threshold on their dates and documents alone: a document match,
    or a date of birth that does not already rule the pair out (the best name scores 1)."""
    return (pl.col("document_score") > 0) | (1.0 + pl.col("dob_adjustment") >= threshold)


def quick_name_score(pairs: pl.DataFrame) -> pl.Series:
    """rapidfuzz token_set_ratio of the full names (0-1), vectorised over the pairs."""
    full_t = (pairs["t_surname"] + " " + pairs["t_given"]).to_list()
    full_e = (pairs["e_surname"] + " " + pairs["e_given"]).to_list()
    quick = cpdist(full_t, full_e, scorer=fuzz.token_set_ratio, workers=-1) / 100.0 if full_t else []
    return pl.Series("quick", quick, dtype=pl.Float64)


# Pairs whose quick name score is below this (and no document match) are not aligned: no name that far
# apart reaches the threshold (checked on the quality set).
QUICK_FLOOR = 0.5


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


def finish_pairs(evidence: pl.DataFrame) -> pl.DataFrame:
    """Name alignment, final score and explanation of pairs with pair_evidence() columns.

    The one per-row Python step of screening; callers keep it to the pairs could_reach() lets through.
    """
    folds = _folds_for(
        evidence["t_surname"].to_list() + evidence["e_surname"].to_list(),
        evidence["t_given"].to_list() + evidence["e_given"].to_list(),
    )
    scores: list[float] = []
    names: list[float] = []
    texts: list[str] = []
    rows = evidence.select(
        "t_surname", "t_given", "e_surname", "e_given", "dob", "dob_adjustment", "document", "document_score"
    ).iter_rows()
    for t_surname, t_given, e_surname, e_given, dob, dob_adjustment, document, document_score in rows:
        name = compare_names(t_surname, t_given, e_surname, e_given, folds, mrz_truncated(t_surname, t_given))
        base = name.score + dob_adjustment + (DOCUMENT_DIFFERENT_ADJUSTMENT if document == "different" else 0.0)
        score = 1.0 - (1.0 - document_score) * (1.0 - min(max(base, 0.0), 1.0))
        scores.append(round(score, 4))
        names.append(round(name.score, 4))
        texts.append(f"{name.explanation}; {DOB_TEXT[dob]}; {DOCUMENT_TEXT[document]}; score {score:.2f}")
    return evidence.with_columns(
        score=pl.Series(scores, dtype=pl.Float64),
        name_score=pl.Series(names, dtype=pl.Float64),
        explanation=pl.Series(texts, dtype=pl.String),
    )


def score_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """pair_evidence() then finish_pairs() for every pair (no pre-filter): for tests and small frames."""
    if pairs.is_empty():
        return pairs.with_columns(
            score=pl.lit(None, pl.Float64), name_score=pl.lit(None, pl.Float64), explanation=pl.lit(None, pl.String)
        )
    return finish_pairs(pair_evidence(pairs))


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


def score_pair(traveller: Person, entry: Person) -> PairScore:
    """Score one (traveller, entry) pair: the same code path as screening, for tests and analysts."""
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
    row = score_pairs(frame).row(0, named=True)
    return PairScore(row["score"], row["name_score"], row["dob"], row["document"], row["explanation"])
