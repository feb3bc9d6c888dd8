"""Dates of birth: the graded relation of two partial dates and what it does to a pair's score."""

from __future__ import annotations

import polars as pl

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
