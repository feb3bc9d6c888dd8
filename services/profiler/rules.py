"""Targeting rules as data: each rule is a documented criterion compiled to a polars expression over the
traveller frame (services.profiler.frames), and a whole batch is evaluated in one with_columns.

The hub ships the starter rules below; member-written rules (YAML) will compile to the same Rule shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Rule:
    id: str
    # Member that owns the rule ("" for hub-wide).
    owner: str
    category: str
    # Strength of the reason in (0, 1]; combined over reasons as 1 - prod(1 - score).
    score: float
    # What the rule looks for and why, for the people who review rule lists.
    description: str
    # The text every reason from this rule carries: it must never contain personal data.
    explanation: str
    # Boolean over traveller-frame columns; null (missing data) counts as not flagged.
    expression: pl.Expr

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a rule needs an id")
        if not (0.0 < self.score <= 1.0) or math.isnan(self.score):
            raise ValueError(f"rule {self.id}: score must be in (0, 1], got {self.score}")

    @property
    def column(self) -> str:
        """Name of the boolean column this rule adds to the batch frame."""
        return f"rule:{self.id}"


DOCUMENT_EXPIRED = Rule(
    id="HUB-DOC-EXPIRED",
    owner="",
    category="document",
    score=0.5,
    description=(
        "The traveller's earliest-expiring travel document (complete expiry dates only) expires before the "
        "flight's departure date at the origin: the traveller may not be admissible on arrival."
    ),
    explanation="a travel document on the manifest expires before the departure date",
    expression=pl.col("doc_expiry") < pl.col("departure_date"),
)

HUB_RULES: tuple[Rule, ...] = (DOCUMENT_EXPIRED,)


def evaluate_rules(frame: pl.DataFrame, rules: Sequence[Rule] = HUB_RULES) -> pl.DataFrame:
    """The frame with one boolean column per rule (Rule.column), all evaluated in a single with_columns."""
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate rule ids in {ids}")
    if not rules:
        return frame
    return frame.with_columns(rule.expression.fill_null(False).alias(rule.column) for rule in rules)


def flagged(frame: pl.DataFrame, rules: Sequence[Rule] = HUB_RULES) -> pl.DataFrame:
    """(m, t, one boolean column per rule) for the travellers that at least one rule flags."""
    if not rules:
        return frame.select("m", "t").clear()
    columns = [rule.column for rule in rules]
    return evaluate_rules(frame, rules).select("m", "t", *columns).filter(pl.any_horizontal(columns))
