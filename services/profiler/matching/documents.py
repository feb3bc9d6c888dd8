"""Document numbers: canonical forms (OCR confusions) and the relation of an entry's number to a traveller's."""

from __future__ import annotations

import polars as pl

# OCR confusions of letters with digits in document numbers (reference/name-matching.md §3): the letter
# side is mapped to the digit, so O1234567 and 01234567 have one canonical form.
_OCR_DIGITS = {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6"}


def document_raw_expr(number: pl.Expr) -> pl.Expr:
    """Document number as compared: upper case, letters and digits only (spaces, dashes, '<' dropped)."""
    return number.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def document_canonical_expr(number: pl.Expr) -> pl.Expr:
    """document_raw_expr with OCR-confusable letters mapped to their digits."""
    return document_raw_expr(number).str.replace_many(_OCR_DIGITS)


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
