"""Evaluating targeting rules over a batch of manifests: the one implementation, wherever rules run.

Each rule (services.rules.rule.Rule) is a documented criterion compiled to a polars expression over the traveller
frame (services.rules.frames, with add_features for rules that read derived features), and a whole batch is
evaluated in one with_columns. The profiler scores with it (services.profiler.rules re-exports it, with the breaker's
logs and metrics), `apihub rules test` backtests files with it, and the member console backtests an edited rule file
on recent manifests with it.

A member's rule applies only to flights in that member's jurisdiction (the frame's JURISDICTION column), and only to
flights departing within its validity dates. A breaker suspends, for one batch, a rule that suddenly flags a large
share of one flight, so a mistaken rule cannot flood members.

Pure: no Kafka, no clock, no logging of the people evaluated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from services import codec
from services.directory import Directory
from services.rules.frames import FEATURE_SCHEMA, add_features, manifests_to_frame
from services.rules.rule import HUB_RULES, JURISDICTION, Rule
from services.wire import manifest_pb2

_REMOVING = (manifest_pb2.AMENDMENT_CANCELLED_RESERVATION, manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY)


def removes_travellers(manifest: manifest_pb2.Manifest) -> bool:
    """A cancellation, or a change that takes the travellers it names off the flight: such versions are not
    screened (the profiler withdraws what they remove instead)."""
    return manifest.function == manifest_pb2.MESSAGE_FUNCTION_CANCEL or (
        manifest.function == manifest_pb2.MESSAGE_FUNCTION_CHANGE and manifest.amendment in _REMOVING
    )


def _check_unique(rules: Sequence[Rule]) -> None:
    columns = [rule.column for rule in rules]
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate rule ids in {[(r.owner, r.id) for r in rules]}")


def with_jurisdiction(frame: pl.DataFrame, jurisdiction: Mapping[int, Collection[str]]) -> pl.DataFrame:
    """The frame with a JURISDICTION column: the members with jurisdiction over each row's manifest (column
    manifest_index).

    jurisdiction maps a manifest index to Directory.jurisdiction(route_of(manifest)); a manifest missing
    from it gets an empty list, so no member rule applies to it.
    """
    ms = sorted(jurisdiction)
    flights = pl.DataFrame(
        {"manifest_index": ms, JURISDICTION: [sorted(o.upper() for o in jurisdiction[m]) for m in ms]},
        schema={"manifest_index": pl.Int64(), JURISDICTION: pl.List(pl.String())},
    )
    return (
        frame.drop(JURISDICTION, strict=False)
        .join(flights, on="manifest_index", how="left", maintain_order="left")
        .with_columns(pl.col(JURISDICTION).fill_null(pl.lit([], dtype=pl.List(pl.String()))))
    )


def evaluate_rules(frame: pl.DataFrame, rules: Sequence[Rule] = HUB_RULES) -> pl.DataFrame:
    """The frame with one boolean column per rule (Rule.column), all evaluated in a single with_columns."""
    _check_unique(rules)
    if not rules:
        return frame
    if JURISDICTION not in frame.columns and any(rule.owner for rule in rules):
        # Never evaluate a member's rule without its jurisdiction: it would flag flights of other members.
        raise ValueError("member rules need the jurisdiction column: use with_jurisdiction or prepare_frame")
    # Lazily, so polars evaluates each subexpression that several rules share once (common subexpression
    # elimination): the owner's jurisdiction test of every member rule, `role: passenger`, a booking window.
    return frame.lazy().with_columns(rule.applies().alias(rule.column) for rule in rules).collect()


@dataclass(frozen=True)
class Breaker:
    """When a rule is suspended: it flags more than max_share of one flight's travellers, on a flight of
    at least min_travellers (small flights are left alone: 2 of 5 is not a flood)."""

    max_share: float = 0.30
    min_travellers: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.max_share <= 1.0:
            raise ValueError(f"breaker max_share must be in (0, 1], got {self.max_share}")
        if self.min_travellers < 1:
            raise ValueError(f"breaker min_travellers must be at least 1, got {self.min_travellers}")


DEFAULT_BREAKER = Breaker()


@dataclass(frozen=True)
class BreakerTrip:
    """One rule that tripped the breaker on one flight of a batch: ids and counts only."""

    owner: str
    rule_id: str
    manifest_index: int  # manifest index in the batch
    flagged: int
    travellers: int


def apply_breaker(
    evaluated: pl.DataFrame, rules: Sequence[Rule], breaker: Breaker | None = DEFAULT_BREAKER
) -> tuple[pl.DataFrame, list[BreakerTrip]]:
    """Switch off, for the whole batch, every rule that flagged too large a share of any one flight.

    A rule that suddenly hits a third of a flight is far more likely mistaken (a typo, a changed carrier
    format) than right, and its hits elsewhere in the same batch are suspect too.
    """
    if breaker is None or not rules or evaluated.is_empty():
        return evaluated, []
    columns = [rule.column for rule in rules]
    # One row per flight: a handful of rows, so the loop below is over flights x rules, not travellers.
    counts = evaluated.group_by("manifest_index").agg(pl.len().alias("_n"), *(pl.col(c).sum() for c in columns))
    counts = counts.filter(pl.col("_n") >= breaker.min_travellers).sort("manifest_index")
    trips = []
    for row in counts.iter_rows(named=True):
        for rule in rules:
            if row[rule.column] > breaker.max_share * row["_n"]:
                trips.append(BreakerTrip(rule.owner, rule.id, row["manifest_index"], row[rule.column], row["_n"]))
    tripped = {(t.owner, t.rule_id) for t in trips}
    suspended = [r.column for r in rules if (r.owner, r.id) in tripped]
    if suspended:
        evaluated = evaluated.with_columns(pl.lit(False).alias(c) for c in suspended)
    return evaluated, trips


def reads_features(rules: Sequence[Rule]) -> bool:
    """Whether any of these rules reads a derived feature (frames.FEATURE_SCHEMA), so needs add_features."""
    return any(name in FEATURE_SCHEMA for rule in rules for name in rule.expression.meta.root_names())


def prepare_frame(
    frame: pl.DataFrame,
    manifests: Sequence[manifest_pb2.Manifest],
    rules: Sequence[Rule],
    jurisdiction: Mapping[int, Collection[str]],
) -> pl.DataFrame:
    """The batch frame with what these rules read: derived features (once per batch, only when some rule
    reads one and the frame does not carry them yet) and the jurisdiction column (only when a member rule is
    among them)."""
    if reads_features(rules) and not FEATURE_SCHEMA.keys() <= set(frame.columns):
        frame = add_features(frame, list(manifests))
    if any(rule.owner for rule in rules):
        frame = with_jurisdiction(frame, jurisdiction)
    return frame


def match_rules(
    frame: pl.DataFrame, rules: Sequence[Rule] = HUB_RULES, breaker: Breaker | None = DEFAULT_BREAKER
) -> tuple[pl.DataFrame, list[BreakerTrip]]:
    """(manifest_index, traveller_index, one boolean column per rule) for the travellers still flagged after the
    breaker, and the trips.

    Pure: the caller reports the trips (the profiler: services.profiler.rules.report_trips). The frame must carry
    the columns the rules read (frames.add_features, and with_jurisdiction when member rules are among them:
    prepare_frame, or rule_frame from manifests).
    """
    if not rules:
        return frame.select("manifest_index", "traveller_index").clear(), []
    columns = [rule.column for rule in rules]
    evaluated, trips = apply_breaker(
        evaluate_rules(frame, rules).select("manifest_index", "traveller_index", *columns), rules, breaker
    )
    return evaluated.filter(pl.any_horizontal(columns)), trips


def flagged(frame: pl.DataFrame, rules: Sequence[Rule] = HUB_RULES) -> pl.DataFrame:
    """(manifest_index, traveller_index, one boolean column per rule) for the travellers that at least one rule
    flags (no breaker)."""
    return match_rules(frame, rules, breaker=None)[0]


def rule_frame(manifests: Sequence[manifest_pb2.Manifest], rules: Sequence[Rule], directory: Directory) -> pl.DataFrame:
    """The traveller frame of these manifests with what these rules read (prepare_frame), each manifest's
    jurisdiction taken from the directory (Directory.jurisdiction of its route): what match_rules takes, for a
    backtest of rules on manifests read from files or a topic."""
    batch = list(manifests)
    jurisdiction = {m: directory.jurisdiction(codec.route_of(manifest)) for m, manifest in enumerate(batch)}
    return prepare_frame(manifests_to_frame(batch), batch, rules, jurisdiction)
