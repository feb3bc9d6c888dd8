"""A targeting rule as the hub runs it: an id, an owner, a score, documentation, and a boolean polars expression
over the traveller frame, restricted to its validity dates and its owner's jurisdiction (Rule.applies).

Member rules are written in the rule language (services.rules.language) and compiled into this shape; the hub
ships HUB_RULES below. They are evaluated over a batch's traveller frame (services.rules.frames) by
services.rules.evaluate, wherever rules run: the profiler, `apihub rules test`, the member console's backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import polars as pl

# Column of the batch frame listing the members with jurisdiction over each traveller's flight (see
# services.rules.evaluate.with_jurisdiction); member rules read it, hub-wide rules do not need it.
JURISDICTION = "jurisdiction"


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
    # The rule applies to flights departing (local date at the origin) on or after valid_from and on or
    # before valid_to; None leaves that side open. Judged on the departure date, not the clock, so a
    # backtest of last month's manifests gives the answer the live profiler gave.
    valid_from: date | None = None
    valid_to: date | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a rule needs an id")
        if not (0.0 < self.score <= 1.0) or math.isnan(self.score):
            raise ValueError(f"rule {self.id}: score must be in (0, 1], got {self.score}")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError(f"rule {self.id}: valid_from {self.valid_from} is after valid_to {self.valid_to}")

    @property
    def column(self) -> str:
        """Name of the boolean column this rule adds to the batch frame (owners may reuse each other's ids)."""
        return f"rule:{self.id}" if not self.owner else f"rule:{self.owner}:{self.id}"

    def applies(self) -> pl.Expr:
        """The rule's condition restricted to its validity dates and its owner's jurisdiction; never null."""
        condition = self.expression
        if self.valid_from is not None:
            condition = condition & (pl.col("departure_date") >= self.valid_from)
        if self.valid_to is not None:
            condition = condition & (pl.col("departure_date") <= self.valid_to)
        if self.owner:
            condition = condition & pl.col(JURISDICTION).list.contains(pl.lit(self.owner))
        return condition.fill_null(False)


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
