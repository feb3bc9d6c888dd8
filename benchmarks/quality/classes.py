"""Classes of true (entry, traveller) pairs, derived from the data alone: the same rules for every source, so
that recall per class is comparable between the generated set and real data.

Date classes (exactly one per pair; dates "YYYY[-MM[-DD]]", "YYYY-01-01" read as a year-only placeholder
when the other side is a full date that is not also 1 January, as services.profiler.matching reads it):

    same     equal at the precision both sides have (both missing too)
    missing  one side has no date
    day      same year and month, the day differs (distance: days apart)
    month    same year and day, the month differs (distance: days apart)
    swap     same year, day and month swapped
    year     full dates a year apart, same month and day
    approx   one side year-only and the years 1-5 apart
    far      anything else

Near-miss dates: day and month classes at most NEAR_MISS_DAYS apart, swap, year and approx.

Name classes (any that apply; names in name_key form, parts = surname parts then given-name parts). The
parts are aligned first: equal parts; then runs of parts whose spelling joined without spaces is equal or
one edit apart while the runs cut it differently (3+ parts in all: JEAN PIERRE ~ JEANPIERRE, LAURENT NKUNDA ~
LAUREN TNKUNDA); then a part to a part by spelling, fold or initial:

    exact             the name keys are equal as a set of parts
    single_name       either side has one part
    reversed_order    the traveller's name was written "SURNAME, GIVEN" (and the entry's not, or the other
                      way round), or the aligned parts come in another order than the entry's
    short_token_typo  a part of at most 3 letters one edit (OSA) from the other side's
    boundary          a run aligned as above (the parts are cut at other places)
    typo              a part of 4+ letters 1-2 edits from the other side's
    transliteration   parts further apart than that whose transliteration folds agree (matching.fold_tokens)
    initials          a one-letter part standing for a longer part of the other side
    missing_parts     after alignment, one side has more unaligned parts than the other
    other             none of the above
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
from rapidfuzz.distance import OSA

from services.profiler import matching

DATE_CLASSES = ("same", "missing", "day", "month", "swap", "year", "approx", "far")
NAME_CLASSES = (
    "exact",
    "single_name",
    "reversed_order",
    "short_token_typo",
    "boundary",
    "typo",
    "transliteration",
    "initials",
    "missing_parts",
    "other",
)
NEAR_MISS_DAYS = 31
APPROX_YEARS = 5


# -- dates --------------------------------------------------------------------------------------------------


def _date_parts(text: str) -> tuple[int, int, int]:
    """(year, month, day) of a "YYYY[-MM[-DD]]" string, 0 where not given (or not a number)."""
    pieces = [p for p in (text or "").strip().split("-") if p][:3]
    values = [int(p) if p.isdigit() else 0 for p in pieces] + [0, 0, 0]
    return values[0], values[1], values[2]


def _days_apart(year: int, a: tuple[int, int], b: tuple[int, int]) -> int:
    """Days between two (month, day) of one year; out-of-range values (a carrier's day 32) approximated."""
    try:
        return abs((date(year, *a) - date(year, *b)).days)
    except ValueError:
        return round(abs((a[0] - b[0]) * 30.44 + (a[1] - b[1])))


@dataclass(frozen=True)
class DateClass:
    name: str
    distance: int | None = None  # days apart, for the day and month classes

    @property
    def near_miss(self) -> bool:
        if self.name in ("day", "month"):
            return self.distance is not None and self.distance <= NEAR_MISS_DAYS
        return self.name in ("swap", "year", "approx")


def date_class(traveller: str, entry: str) -> DateClass:
    """The date class of a traveller's and an entry's date of birth (see the module docstring)."""
    t, e = _date_parts(traveller), _date_parts(entry)
    if not t[0] and not e[0]:
        return DateClass("same")
    if not t[0] or not e[0]:
        return DateClass("missing")
    # 1 January is the usual placeholder for an unknown birthday: year-only against another full date.
    if t[1:] == (1, 1) and e[1:] != (1, 1) and e[2]:
        t = (t[0], 0, 0)
    elif e[1:] == (1, 1) and t[1:] != (1, 1) and t[2]:
        e = (e[0], 0, 0)
    (ty, tm, td), (ey, em, ed) = t, e
    months = tm > 0 and em > 0
    days = months and td > 0 and ed > 0
    if ty == ey and (not months or tm == em) and (not days or td == ed):
        return DateClass("same")
    if days:
        if ty == ey and tm == em:
            return DateClass("day", abs(td - ed))
        if ty == ey and tm == ed and td == em:
            return DateClass("swap")
        if ty == ey and td == ed:
            return DateClass("month", _days_apart(ty, (tm, td), (em, ed)))
        if abs(ty - ey) == 1 and tm == em and td == ed:
            return DateClass("year")
        return DateClass("far")
    if (not tm or not em) and 1 <= abs(ty - ey) <= APPROX_YEARS:
        return DateClass("approx")
    return DateClass("far")


# -- names --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairClasses:
    date: DateClass
    names: tuple[str, ...]

    @property
    def same_or_near(self) -> bool:
        return self.date.name == "same" or self.date.near_miss


def _runs(items: Sequence[int]) -> Iterable[tuple[int, ...]]:
    """Every contiguous run of the sequence (its index order), longest first."""
    for length in range(len(items), 0, -1):
        for start in range(len(items) - length + 1):
            yield tuple(items[start : start + length])


def _boundary_runs(
    t_parts: list[str], e_parts: list[str], t_free: list[int], e_free: list[int], t_split: int, e_split: int
) -> tuple[set[int], set[int]]:
    """Runs of unaligned parts that spell the same (within one edit) joined, cut differently: the traveller's
    and the entry's parts consumed. Tried with each side's parts in surname-first and given-first order."""

    def orders(free: list[int], split: int) -> list[list[int]]:
        surname, given = [i for i in free if i < split], [i for i in free if i >= split]
        return [surname + given, given + surname]

    for t_order, e_order in itertools.product(orders(t_free, t_split), orders(e_free, e_split)):
        for a in _runs(t_order):
            for b in _runs(e_order):
                if len(a) + len(b) < 3:
                    continue
                joined_t = "".join(t_parts[i] for i in a)
                joined_e = "".join(e_parts[j] for j in b)
                if OSA.distance(joined_t, joined_e, score_cutoff=1) <= 1:
                    return set(a), set(b)
    return set(), set()


def _part_relation(t: str, e: str, folds: dict[str, str]) -> tuple[float, str] | None:
    """(cost, class) of aligning two unequal parts, None when they do not correspond."""
    shortest = min(len(t), len(e))
    if (len(t) == 1) != (len(e) == 1):
        return (3.0, "initials") if t[0] == e[0] else None
    distance = OSA.distance(t, e)
    if distance == 1 and shortest <= 3:
        return 1.0, "short_token_typo"
    if distance <= 2 and shortest >= 4:
        return float(distance), "typo"
    if folds.get(t, t) == folds.get(e, e):
        return 2.5, "transliteration"
    return None


def name_classes(
    t_surname: str,
    t_given: str,
    e_surname: str,
    e_given: str,
    folds: dict[str, str],
    t_comma: bool = False,
    e_comma: bool = False,
) -> tuple[str, ...]:
    """The name classes of a pair (name_key forms; folds from matching.fold_tokens covering every part)."""
    t_parts, e_parts = t_surname.split() + t_given.split(), e_surname.split() + e_given.split()
    t_split, e_split = len(t_surname.split()), len(e_surname.split())
    found: set[str] = set()
    if not t_parts or not e_parts:
        return ("other",)
    if set(t_parts) == set(e_parts):
        found.add("exact")
    if len(t_parts) == 1 or len(e_parts) == 1:
        found.add("single_name")
    aligned: dict[int, int] = {}  # traveller part -> entry part
    used: set[int] = set()
    for i, part in enumerate(t_parts):
        j = next((j for j, other in enumerate(e_parts) if other == part and j not in used), None)
        if j is not None:
            aligned[i] = j
            used.add(j)
    t_free = [i for i in range(len(t_parts)) if i not in aligned]
    e_free = [j for j in range(len(e_parts)) if j not in used]
    t_run, e_run = _boundary_runs(t_parts, e_parts, t_free, e_free, t_split, e_split)
    if t_run:
        found.add("boundary")
        t_free = [i for i in t_free if i not in t_run]
        e_free = [j for j in e_free if j not in e_run]
    relations = []
    for i, j in itertools.product(t_free, e_free):
        relation = _part_relation(t_parts[i], e_parts[j], folds)
        if relation is not None:
            cost, kind = relation
            relations.append((cost, -max(len(t_parts[i]), len(e_parts[j])), i, j, kind))
    taken_t: set[int] = set()
    for _, _, i, j, kind in sorted(relations):
        if i not in taken_t and j not in used:
            taken_t.add(i)
            used.add(j)
            aligned[i] = j
            found.add(kind)
    t_left = [i for i in t_free if i not in taken_t]
    e_left = [j for j in e_free if j not in used]
    if len(t_left) != len(e_left):
        found.add("missing_parts")
    order = [aligned[i] for i in sorted(aligned)]
    if t_comma != e_comma or any(a > b for a, b in itertools.pairwise(order)):
        found.add("reversed_order")
    return tuple(c for c in NAME_CLASSES if c in found) or ("other",)


def _fold_all(names: Iterable[str]) -> dict[str, str]:
    return matching.fold_tokens(part for name in names for part in name.split())


def classify(
    t_surname: str,
    t_given: str,
    t_dob: str,
    e_surname: str,
    e_given: str,
    e_dob: str,
    t_comma: bool = False,
    e_comma: bool = False,
) -> PairClasses:
    """The classes of one pair (name_key forms; for tests and a few pairs: classify_frame for many)."""
    folds = _fold_all([t_surname, t_given, e_surname, e_given])
    return PairClasses(
        date_class(t_dob, e_dob), name_classes(t_surname, t_given, e_surname, e_given, folds, t_comma, e_comma)
    )


def classify_frame(pairs: pl.DataFrame) -> pl.DataFrame:
    """date_class, date_distance, near (same or near-miss date) and name_classes (list) of a frame of true
    pairs with columns t_surname, t_given, t_dob, t_comma, e_surname, e_given, e_dob, e_comma."""
    folds = _fold_all(
        pairs["t_surname"].to_list()
        + pairs["t_given"].to_list()
        + pairs["e_surname"].to_list()
        + pairs["e_given"].to_list()
    )
    dates, distances, near, names = [], [], [], []
    rows = pairs.select("t_surname", "t_given", "t_dob", "t_comma", "e_surname", "e_given", "e_dob", "e_comma")
    for ts, tg, td, tc, es, eg, ed, ec in rows.iter_rows():
        dated = date_class(td, ed)
        dates.append(dated.name)
        distances.append(dated.distance)
        near.append(dated.name == "same" or dated.near_miss)
        names.append(list(name_classes(ts, tg, es, eg, folds, bool(tc), bool(ec))))
    return pairs.with_columns(
        date_class=pl.Series(dates, dtype=pl.String),
        date_distance=pl.Series(distances, dtype=pl.Int64),
        near=pl.Series(near, dtype=pl.Boolean),
        name_classes=pl.Series(names, dtype=pl.List(pl.String)),
    )
