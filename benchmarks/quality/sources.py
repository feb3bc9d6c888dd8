"""The data the quality report measures screening on, loaded into two common structures.

A ScreeningSet is a watchlist (entries) and travellers screened against it: every traveller row has
manifest_index, traveller_index, surname_key, given_key (frames.name_key form), dob ("YYYY", "YYYY-MM",
"YYYY-MM-DD" or ""), documents, kind, truth (the entry_id of the listed person the traveller is, null for
everyone else), part ("tuning" or "held-out", split.py) and comma (the traveller's name was written
"SURNAME, GIVEN NAMES").

A PairSet is labelled name pairs scored on names alone: cluster, part, is_match, the traveller's side
(t_surname, t_given, t_comma) and the entry's side (e_surname, e_given, e_comma), names in name_key form.

Sources:

    generated(seed)   the seeded generator (benchmarks.quality.generator); its part is the caller's (seeds)
    un_sanctions()    people of the UN consolidated list (un_untreated.csv: the list) and a corrupted copy of
                      each (un_treated.csv, row-aligned: the travellers), plus innocent travellers
                      (negatives_global.csv); opensanctions/yente contrib fixtures
    name_bench()      nomenklatura's labelled name pairs (name_bench_cases.csv), Person rows only
    aliases()         labelled alias pairs (aliases.csv), if present

Full names are split as a carrier would key them: "LAST, FIRST NAMES" puts the part before the comma in the
surname; otherwise the last word is the surname and the rest the given names; one word is a surname only (a
single name: ICAO 9303's primary identifier alone).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from benchmarks.quality import generator
from benchmarks.quality.split import TUNING, part_of, person_key
from services.profiler.frames import name_keys
from services.wire import delivery_pb2, manifest_pb2

DATA = Path(__file__).resolve().parent / "data"
UN_UNTREATED = "un_untreated.csv"
UN_TREATED = "un_treated.csv"
NEGATIVES = "negatives_global.csv"
NAME_BENCH = "name_bench_cases.csv"
ALIASES = "aliases.csv"

GENERATED = "generated"
UN_SANCTIONS = "un_sanctions"
NAME_BENCH_SOURCE = "name_bench"
ALIASES_SOURCE = "aliases"
SCREENING_SOURCES = (GENERATED, UN_SANCTIONS)
PAIR_SOURCES = (NAME_BENCH_SOURCE, ALIASES_SOURCE)
ALL_SOURCES = SCREENING_SOURCES + PAIR_SOURCES

LISTED = "listed"  # kind of a UN traveller who is a listed person
INNOCENT = "innocent"  # kind of a traveller on no list (the generator's label too)

TRAVELLER_SCHEMA: dict[str, pl.DataType] = {
    "manifest_index": pl.Int64(),
    "traveller_index": pl.Int64(),
    "surname_key": pl.String(),
    "given_key": pl.String(),
    "dob": pl.String(),
    "documents": pl.List(pl.String()),
    "kind": pl.String(),
    "truth": pl.String(),
    "part": pl.String(),
    "comma": pl.Boolean(),
}
PAIR_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.String(),
    "part": pl.String(),
    "is_match": pl.Boolean(),
    "t_surname": pl.String(),
    "t_given": pl.String(),
    "t_comma": pl.Boolean(),
    "e_surname": pl.String(),
    "e_given": pl.String(),
    "e_comma": pl.Boolean(),
}


@dataclass
class ScreeningSet:
    source: str
    entries: list[delivery_pb2.WatchlistEntry]
    travellers: pl.DataFrame  # TRAVELLER_SCHEMA
    seed: int | None = None
    notes: tuple[str, ...] = ()  # aggregate remarks for the report (no names, no dates)
    entry_commas: frozenset[str] = frozenset()  # entry ids whose name was written "SURNAME, GIVEN NAMES"


@dataclass
class PairSet:
    source: str
    pairs: pl.DataFrame  # PAIR_SCHEMA


# -- names and dates as a carrier keys them -----------------------------------------------------------------


def split_full_name(full_name: str) -> tuple[str, str, bool]:
    """(surname, given names, written with a comma) of a full name as a carrier would key it."""
    text = " ".join((full_name or "").split())
    if "," in text:
        surname, _, given = text.partition(",")
        return surname.strip(), given.strip(), True
    words = text.split()
    if not words:
        return "", "", False
    if len(words) == 1:
        return words[0], "", False
    return words[-1], " ".join(words[:-1]), False


_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def parse_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of "YYYY[-M[M][-D[D]]]" (0: not given); out-of-range values are kept as they are
    ("1974-01-32" -> (1974, 1, 32)): a carrier sends what it has. None for an empty or unreadable date."""
    match = _DATE.fullmatch((text or "").strip())
    if not match:
        return None
    year, month, day = (int(g) if g else 0 for g in match.groups())
    return year, month, day


def format_date(parts: tuple[int, int, int] | None) -> str:
    """Zero-padded "YYYY", "YYYY-MM" or "YYYY-MM-DD" ("" for None): the traveller frame's dob form."""
    if parts is None or not parts[0]:
        return ""
    year, month, day = parts
    if not month:
        return f"{year:04d}"
    if not day:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def normalise_date(text: str) -> str:
    return format_date(parse_date(text))


def _read_csv(path: Path) -> pl.DataFrame:
    """Every column as a string, empty cells as "" (the files are small). FileNotFoundError names the file."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "data file not found", str(path))
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    return frame.with_columns(pl.all().fill_null(""))


def _travellers(
    names: list[str], dobs: list[str], kinds: list[str], truths: list[str | None], parts: list[str]
) -> pl.DataFrame:
    split = [split_full_name(n) for n in names]
    frame = pl.DataFrame(
        {
            "manifest_index": [0] * len(names),
            "traveller_index": list(range(len(names))),
            "surname_key": [s for s, _, _ in split],
            "given_key": [g for _, g, _ in split],
            "dob": [normalise_date(d) for d in dobs],
            "documents": [[] for _ in names],
            "kind": kinds,
            "truth": truths,
            "part": parts,
            "comma": [c for _, _, c in split],
        },
        schema=TRAVELLER_SCHEMA,
    )
    return frame.with_columns(
        surname_key=name_keys(frame["surname_key"]), given_key=name_keys(frame["given_key"])
    ).select(TRAVELLER_SCHEMA.keys())


# -- sources ------------------------------------------------------------------------------------------------


def generated(
    seed: int,
    part: str = TUNING,
    per_variant: int | None = None,
    background: int | None = None,
    decoys: int | None = None,
    innocents: int | None = None,
) -> ScreeningSet:
    """One generated set (the generator's defaults where a size is None); every traveller in `part`."""
    sizes = {"per_variant": per_variant, "background": background, "decoys": decoys, "innocents": innocents}
    quality = generator.generate(seed=seed, **{k: v for k, v in sizes.items() if v is not None})
    # Only the reversed_comma type writes "SURNAME, GIVEN" (name_key then drops the comma).
    travellers = quality.travellers.with_columns(part=pl.lit(part), comma=pl.col("kind") == "reversed_comma")
    for column, dtype in TRAVELLER_SCHEMA.items():
        if column not in travellers.columns:
            travellers = travellers.with_columns(pl.lit(None, dtype).alias(column))
    return ScreeningSet(GENERATED, list(quality.entries), travellers.select(TRAVELLER_SCHEMA.keys()), seed=seed)


def _entry(entry_id: str, full_name: str, dob: str) -> delivery_pb2.WatchlistEntry:
    surname, given, _ = split_full_name(full_name)
    year, month, day = parse_date(dob) or (0, 0, 0)
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname=surname,
        given_names=given,
        date_of_birth=manifest_pb2.PartialDate(year=year, month=month, day=day),
        category="sanctions",
    )


def un_sanctions(data: Path = DATA) -> ScreeningSet:
    """The UN list (un_untreated.csv) as entries; its row-aligned corrupted copies (un_treated.csv) and the
    innocents (negatives_global.csv; none when the file is absent) as travellers. No documents on either
    side."""
    listed = _read_csv(data / UN_UNTREATED)
    treated = _read_csv(data / UN_TREATED)
    if listed.height != treated.height:
        raise ValueError(f"{UN_TREATED} has {treated.height} rows, {UN_UNTREATED} {listed.height}: not row-aligned")
    negatives = data / NEGATIVES
    innocents = _read_csv(negatives) if negatives.exists() else pl.DataFrame({"full_name": [], "date_of_birth": []})
    names, dobs = listed["full_name"].to_list(), listed["date_of_birth"].to_list()
    entry_ids = [f"UN-{i:05d}" for i in range(listed.height)]
    entries = [_entry(i, n, d) for i, n, d in zip(entry_ids, names, dobs, strict=True)]
    listed_parts = [part_of(UN_SANCTIONS, person_key(n, d)) for n, d in zip(names, dobs, strict=True)]
    innocent_names, innocent_dobs = innocents["full_name"].to_list(), innocents["date_of_birth"].to_list()
    innocent_parts = [
        part_of(UN_SANCTIONS, person_key(n, d)) for n, d in zip(innocent_names, innocent_dobs, strict=True)
    ]
    all_dobs = dobs + treated["date_of_birth"].to_list() + innocent_dobs
    unreadable = sum(1 for d in all_dobs if d.strip() and parse_date(d) is None)
    travellers = _travellers(
        treated["full_name"].to_list() + innocent_names,
        treated["date_of_birth"].to_list() + innocent_dobs,
        [LISTED] * treated.height + [INNOCENT] * innocents.height,
        list(entry_ids) + [None] * innocents.height,
        listed_parts + innocent_parts,
    )
    notes = (f"{unreadable} unreadable dates of birth read as missing",) if unreadable else ()
    if not negatives.exists():
        notes += (f"no innocent travellers ({NEGATIVES} absent)",)
    commas = frozenset(i for i, n in zip(entry_ids, names, strict=True) if "," in n)
    return ScreeningSet(UN_SANCTIONS, entries, travellers, notes=notes, entry_commas=commas)


def _pairs(source: str, clusters: list[str], first: list[str], second: list[str], labels: list[str]) -> PairSet:
    t = [split_full_name(n) for n in first]
    e = [split_full_name(n) for n in second]
    frame = pl.DataFrame(
        {
            "cluster": clusters,
            "part": [part_of(source, c) for c in clusters],
            "is_match": [label.strip().lower() in ("true", "1", "yes") for label in labels],
            "t_surname": [s for s, _, _ in t],
            "t_given": [g for _, g, _ in t],
            "t_comma": [c for _, _, c in t],
            "e_surname": [s for s, _, _ in e],
            "e_given": [g for _, g, _ in e],
            "e_comma": [c for _, _, c in e],
        },
        schema=PAIR_SCHEMA,
    )
    return PairSet(
        source, frame.with_columns(name_keys(frame[c]) for c in ("t_surname", "t_given", "e_surname", "e_given"))
    )


def name_bench(data: Path = DATA) -> PairSet:
    """nomenklatura's name_bench Person pairs: name1 as the traveller, name2 (the reference name, the
    cluster) as the entry."""
    rows = _read_csv(data / NAME_BENCH).filter(pl.col("schema") == "Person")
    names = rows["name2"].to_list()
    return _pairs(NAME_BENCH_SOURCE, names, rows["name1"].to_list(), names, rows["is_match"].to_list())


def aliases(data: Path = DATA) -> PairSet | None:
    """Labelled alias pairs clustered by group (name1 the traveller, name2 the entry); None when absent."""
    path = data / ALIASES
    if not path.exists():
        return None
    rows = _read_csv(path)
    return _pairs(
        ALIASES_SOURCE,
        rows["group"].to_list(),
        rows["name1"].to_list(),
        rows["name2"].to_list(),
        rows["is_match"].to_list(),
    )
