"""Members' watchlists as one polars frame, indexed for fuzzy screening of traveller frames.

The watchlists topic is compacted with one record per owner member: a record replaces the owner's whole list,
and an empty list (or a tombstone) clears it. Every profiler process replays the topic into a WatchlistStore,
so all of them converge on the same lists.

Screening (WatchlistStore.matches) has two stages. The index (blocking, built once per list change) maps
keys to entries; a traveller's keys find a few candidate entries, so the cost per traveller stays nearly
flat as lists grow. services.profiler.matching then scores the candidates. Keys, computed with the same expressions on
both sides:

    pair      the transliteration folds of two name parts, in either field and either order (so swapped
              fields, missing middle names, transliterations, vowel typos and MRZ cuts still share one);
              adjacent parts of a field also count joined (JEAN PIERRE ~ JEANPIERRE)
    birth     full date of birth + fold of one part (initials, consonant typos); travellers also ask with
              day and month swapped (as for the next key)
    initials  full date of birth + first letters of the first two parts of each field, either field
              first (a typo in every part changes every fold, rarely a first letter)
    document  OCR-canonical document number

The index also counts how many entries carry each name part and takes how common each part is among the
region's travellers (matching.traveller_name_shares), so the matcher can down-weight name-only matches on
common names.

Keys shared by more than MAX_POSTINGS entries are not indexed: they would make every traveller with a
common name cost a scan of a block, and the other keys of the same person remain.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping

import numpy as np
import polars as pl

from services import codec
from services.config import DEFAULT_SCREENING_ALERT, DEFAULT_SCREENING_REVIEW, HubSettings
from services.errors import ConfigError
from services.profiler import matching
from services.profiler.frames import name_key
from services.wire import delivery_pb2

REGIONAL = "regional"
PRIVATE = "private"

ENTRY_SCHEMA: dict[str, pl.DataType] = {
    "entry_id": pl.String(),
    "owner": pl.String(),
    "scope": pl.String(),
    "category": pl.String(),
    "surname_key": pl.String(),
    "given_key": pl.String(),
    "dob": pl.String(),
    "document_number": pl.String(),
}

# A (traveller, entry) pair: the traveller's coordinates (manifest_index, traveller_index) and the entry's. The
# exact join the screening benchmark compares with (benchmarks/exact_join.py) returns these columns.
EXACT_SCHEMA: dict[str, pl.DataType] = {
    "manifest_index": pl.Int64(),
    "traveller_index": pl.Int64(),
    "entry_id": pl.String(),
    "owner": pl.String(),
    "scope": pl.String(),
    "category": pl.String(),
}

# Fuzzy-match rows (matches): the pair columns plus the pair's score and its explanation.
MATCH_SCHEMA: dict[str, pl.DataType] = {
    **EXACT_SCHEMA,
    "score": pl.Float64(),
    "explanation": pl.String(),
    # The traveller's document number equals the entry's (exactly or after OCR normalisation): what a member's
    # board policy asks of a lost or stolen document (services.board).
    "document_match": pl.Boolean(),
}

# The default bands (services.config: members set their own, APIHUB_SCREENING_BANDS): a pair scoring at least
# MATCH_THRESHOLD is an alert for a human, one at least REVIEW_THRESHOLD reaches members marked for review.
# Chosen on the tuning part of the quality evaluation (python -m benchmarks.quality --report: generated sets and
# public real-world names, README "Screening quality"), never on its held-out part.
MATCH_THRESHOLD = DEFAULT_SCREENING_ALERT
REVIEW_THRESHOLD = DEFAULT_SCREENING_REVIEW
# Index keys shared by more entries than this are dropped (see the module docstring).
MAX_POSTINGS = 500


def traveller_names(settings: HubSettings) -> Mapping[str, float]:
    """The table of how common name parts are among travellers that settings name (the region's by default).
    Raises ConfigError, naming the setting, for a file that is missing or malformed."""
    path = settings.traveller_names_file or matching.TRAVELLER_NAMES
    try:
        return matching.traveller_name_shares(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"APIHUB_TRAVELLER_NAMES_FILE {path}: {exc}") from None


def scope_name(scope: int) -> str:
    """Scope label of a WatchlistScope: unspecified is regional, the documented default."""
    return PRIVATE if scope == delivery_pb2.WATCHLIST_SCOPE_PRIVATE else REGIONAL


def watchlist_frame(watchlist: delivery_pb2.Watchlist) -> pl.DataFrame:
    """The entries of one member's list with normalised keys (ENTRY_SCHEMA).

    The list's owner, not each entry's owner field, is authoritative: a member loads only its own list.
    """
    owner = watchlist.owner.strip().upper()
    scope = scope_name(watchlist.scope)
    entries = watchlist.entries
    frame = pl.DataFrame(
        {
            "entry_id": [e.entry_id for e in entries],
            "owner": [owner] * len(entries),
            "scope": [scope] * len(entries),
            "category": [e.category for e in entries],
            "surname_key": [e.surname for e in entries],
            "given_key": [e.given_names for e in entries],
            "dob": [codec.format_partial_date(e.date_of_birth) for e in entries],
            "document_number": [e.document_number for e in entries],
        },
        schema=ENTRY_SCHEMA,
    )
    return frame.with_columns(surname_key=name_key(pl.col("surname_key")), given_key=name_key(pl.col("given_key")))


class WatchlistStore:
    """The latest watchlist of every owner member (replace semantics), queried as one frame."""

    def __init__(self, traveller_names: Mapping[str, float] | None = None) -> None:
        """traveller_names: share of travellers whose name has each part (matching.traveller_name_shares), beside
        the entries' own counts when the index weighs how common a name is; None: the region's table shipped
        with the hub; {}: the entries alone. Every process that should score alike needs the same table."""
        self._frames: dict[str, pl.DataFrame] = {}
        self._entries: pl.DataFrame | None = None
        self._index: _Index | None = None
        self._shares = matching.traveller_name_shares() if traveller_names is None else traveller_names
        # Readers may screen from several threads at once (the batch loop, the interactive checks): the lazy frame
        # and index are built by one of them, never by each (a 100,000-entry index per thread once took 8 GB).
        self._building = threading.RLock()

    def apply(self, watchlist: delivery_pb2.Watchlist) -> str:
        """Replace the owner's list with this one (no entries: clear it); returns the owner."""
        owner = watchlist.owner.strip().upper()
        if not owner:
            raise ValueError("watchlist has no owner")
        if watchlist.entries:
            self._frames[owner] = watchlist_frame(watchlist)
        else:
            self._frames.pop(owner, None)
        self._entries = None
        self._index = None
        return owner

    def apply_record(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one record of the watchlists topic; a tombstone (no value) clears the owner named by the key.

        Raises ValueError (or protobuf's DecodeError) for a record that cannot be applied.
        """
        if value is None:
            owner = (key or b"").decode("utf-8", errors="strict").strip().upper()
            if not owner:
                raise ValueError("tombstone without an owner key")
            self.clear(owner)
            return owner
        return self.apply(delivery_pb2.Watchlist.FromString(value))

    def clear(self, owner: str) -> None:
        self._frames.pop(owner.strip().upper(), None)
        self._entries = None
        self._index = None

    @property
    def owners(self) -> list[str]:
        return sorted(self._frames)

    def count(self, owner: str) -> int:
        frame = self._frames.get(owner.strip().upper())
        return 0 if frame is None else frame.height

    @property
    def entries(self) -> pl.DataFrame:
        """Every entry of every owner (ENTRY_SCHEMA), rebuilt lazily after a change."""
        with self._building:
            if self._entries is None:
                frames = [self._frames[o] for o in sorted(self._frames)]
                self._entries = pl.concat(frames) if frames else pl.DataFrame(schema=ENTRY_SCHEMA)
            return self._entries

    @property
    def index(self) -> _Index:
        """The blocking index of entries, rebuilt lazily after a change (the first screening pays for it)."""
        with self._building:
            if self._index is None:
                self._index = _Index(self.entries, self._shares)
            return self._index

    def matches(
        self,
        travellers: pl.DataFrame,
        jurisdiction: Mapping[int, Collection[str]] | None = None,
        threshold: float = MATCH_THRESHOLD,
    ) -> pl.DataFrame:
        """Fuzzy matches of travellers against every entry, scored by services.profiler.matching (MATCH_SCHEMA rows).

        travellers is a traveller frame (frames.TRAVELLER_SCHEMA; an optional "documents" column holds each
        traveller's document numbers, see frames.read_travellers). jurisdiction maps a manifest index (column
        manifest_index) to the members with jurisdiction over that flight's route
        (Directory.jurisdiction(route_of(manifest))): private entries only match on flights in their owner's
        jurisdiction (see within_jurisdiction). One row per
        (traveller, entry) scoring at least threshold, sorted by manifest_index, traveller_index, owner, entry_id.
        """
        if self.entries.is_empty() or travellers.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)
        index = self.index
        documents = pl.col("documents") if "documents" in travellers.columns else pl.lit([], pl.List(pl.String))
        rows = travellers.select(
            "manifest_index", "traveller_index", "surname_key", "given_key", "dob", documents=documents
        ).with_row_index("row")
        candidates = index.candidates(rows)
        if candidates.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)
        # Dates and documents first (integer and list columns, cheap), names only for the pairs they leave.
        dated = matching.date_document_evidence(
            candidates.join(
                rows.select(
                    "row",
                    "manifest_index",
                    **matching.traveller_evidence_columns(pl.col("dob"), pl.col("documents")),
                    t_several=pl.concat_str("surname_key", "given_key", separator=" ")
                    .str.strip_chars()
                    .str.contains(" "),
                ),
                on="row",
            ).join(index.evidence, on="e")
        ).filter(matching.could_reach(threshold, pl.col("e_common") * pl.col("t_several").cast(pl.Float64)))
        dated = within_jurisdiction(dated.join(index.coordinates, on="e"), jurisdiction)
        if dated.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)
        named = dated.join(
            rows.select("row", "traveller_index", t_surname="surname_key", t_given="given_key"), on="row"
        ).join(index.names, on="e")
        named = named.with_columns(quick=matching.quick_name_score(named))
        evidence = named.filter(matching.worth_aligning(threshold))
        if evidence.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)
        scored = matching.finish_pairs(evidence, index.rarity, threshold).filter(pl.col("score") >= threshold)
        scored = scored.with_columns(document_match=pl.col("document").is_in(list(matching.DOCUMENT_SCORE)))
        return (
            scored.select(MATCH_SCHEMA.keys())
            .unique(["manifest_index", "traveller_index", "owner", "entry_id"], keep="first", maintain_order=True)
            .sort("manifest_index", "traveller_index", "owner", "entry_id")
        )


def within_jurisdiction(pairs: pl.DataFrame, jurisdiction: Mapping[int, Collection[str]] | None) -> pl.DataFrame:
    """The pairs (columns manifest_index, owner, scope) screening may report: regional entries on every flight,
    private ones only on flights (column manifest_index) in their owner's jurisdiction, so a manifest missing from
    the mapping gets no private matches."""
    owners = [(m, owner) for m, members in (jurisdiction or {}).items() for owner in members]
    allowed = pl.DataFrame(
        {"manifest_index": [p[0] for p in owners], "owner": [p[1].upper() for p in owners]},
        schema={"manifest_index": pl.Int64(), "owner": pl.String()},
    )
    private = pairs.filter(pl.col("scope") == PRIVATE).join(allowed, on=["manifest_index", "owner"], how="semi")
    return pl.concat([pairs.filter(pl.col("scope") != PRIVATE), private])


# -- the blocking index -------------------------------------------------------------------------------------

# Multipliers that combine two 64-bit hashes into one key (wrapping arithmetic); a different one per key
# kind, so a pair key never equals a birth or document key by construction of its parts.
_PAIR, _BIRTH, _DOCUMENT = 0x9E3779B97F4A7C15, 0x165667B19E3779F9, 0x27D4EB2F165667C5
_INITIALS = 0x85EBCA77C2B2AE63
_WHOLE = 0xC2B2AE3D27D4EB4F
_ANCHOR = 0xFF51AFD7ED558CCD
_MAX_PARTS = 4  # name parts per field that make keys: beyond that, long names only add cost


def _name_parts(rows: pl.DataFrame) -> pl.DataFrame:
    """(row, part, fold, h) for every name part (the first _MAX_PARTS of each field) and, for a field of several
    parts, its first two parts joined (JEAN PIERRE -> JEANPIERRE, the usual compound)."""
    frames = []  # one frame per kind of part, concatenated: 3x faster than pl.concat_list of the four
    for column in ("surname_key", "given_key"):
        name = pl.col(column)
        frames.append(rows.select("row", part=name.str.split(" ").list.head(_MAX_PARTS)).explode("part"))
        several = rows.filter(name.str.contains(" ", literal=True))
        frames.append(several.select("row", part=name.str.replace(r"^(\S+) (\S+).*$", "${1}${2}")))
    tokens = pl.concat(frames).filter(pl.col("part").is_not_null() & (pl.col("part") != "")).unique()
    # Names repeat a lot within a batch (and a list): fold and hash each distinct part once.
    distinct = tokens.select("part").unique().with_columns(fold=matching.fold_expr(pl.col("part")))
    return tokens.join(distinct.with_columns(h=pl.col("fold").hash(1)), on="part")


def _initials(name: pl.Expr) -> pl.Expr:
    """First letters of a name field's first two parts (string slices: 5x faster than a regex)."""
    space = name.str.find(" ", literal=True)
    return name.str.slice(0, 1) + pl.when(space.is_not_null()).then(name.str.slice(space + 1, 1)).otherwise(pl.lit(""))


def _keys(rows: pl.DataFrame, query: bool) -> pl.DataFrame:
    """(row, key) of every index key of these rows (columns row, surname_key, given_key, dob, documents).

    query: the traveller side, which also asks with day and month of the birth date swapped.
    """
    parts = _name_parts(rows)
    long = parts.filter(pl.col("part").str.len_chars() >= 2).select("row", "fold", "h")
    pairs = long.join(long, on="row", suffix="_b").filter(pl.col("fold") < pl.col("fold_b"))
    pair_keys = pairs.select("row", key=pl.col("h") * _PAIR + pl.col("h_b"))
    dob = pl.col("dob")
    full = rows.filter(dob.str.len_chars() == 10, ~dob.str.ends_with("-01-01"))
    dates = [full.select("row", d=dob.hash(4))]
    if query:
        swapped = full.filter(dob.str.slice(8, 2).cast(pl.Int32) <= 12)
        swapped_dob = dob.str.slice(0, 5) + dob.str.slice(8, 2) + "-" + dob.str.slice(5, 2)
        dates.append(swapped.select("row", d=swapped_dob.hash(4)))
    dates = pl.concat(dates)
    birth_keys = dates.join(parts.select("row", "h"), on="row").select("row", key=pl.col("d") * _BIRTH + pl.col("h"))
    # Date of birth and the first letters of the first two parts of each field, either field first (swapped
    # fields): a typo in every part (HUANK RAHLU) changes every fold, rarely a first letter.
    surname, given = _initials(pl.col("surname_key")), _initials(pl.col("given_key"))
    forward, backward = surname + "|" + given, given + "|" + surname
    letters = rows.select("row", i=pl.min_horizontal(forward, backward)).filter(pl.col("i").str.len_chars() >= 3)
    initial_keys = dates.join(letters, on="row").select("row", key=pl.col("d") * _INITIALS + pl.col("i").hash(6))
    canonical = (
        rows.select("row", "documents")
        .explode("documents")
        .select("row", c=matching.document_canonical_expr(pl.col("documents")))
        .filter(pl.col("c").str.len_chars() >= 5)
    )
    document_keys = canonical.select("row", key=pl.col("c").hash(5) * _DOCUMENT)
    keys = pl.concat(
        [pair_keys, birth_keys, initial_keys, document_keys, _whole_name_keys(rows, query), _anchor_keys(rows, parts)]
    )
    # The index counts postings per key, so its (row, key) pairs must be distinct; a traveller's repeated key
    # only repeats candidates, which candidates() makes distinct anyway.
    return keys if query else keys.unique()


def _whole_name_keys(rows: pl.DataFrame, query: bool) -> pl.DataFrame:
    """(row, key) of the whole name: a single name (ICAO 9303: primary identifier only) has no pair of parts to
    key on, and a name split differently (ABDULRAHMAN, ABDUL RAHMAN; LAUREN TNKUNDA, LAURENT NKUNDA) shares none.
    All parts run together, given names first (entries also surname first, so a traveller whose fields are
    swapped asks with the one order); for a single name also its set of letters (a transposition or a doubled
    letter keeps it: AFIZ ~ FAIZ). Letters as written, not folded: a boundary moved keeps every letter."""
    surname, given = pl.col("surname_key").str.replace_all(" ", ""), pl.col("given_key").str.replace_all(" ", "")
    whole = [rows.select("row", w=given + surname)]
    if not query:
        whole.append(
            rows.filter(pl.col("surname_key") != "", pl.col("given_key") != "").select("row", w=surname + given)
        )
    joined = pl.concat(whole).filter(pl.col("w").str.len_chars() >= 3).select("row", k="w")
    single = rows.filter(
        (pl.col("surname_key") == "") ^ (pl.col("given_key") == ""),
        ~pl.concat_str("surname_key", "given_key").str.contains(" ", literal=True),
    )
    letters = single.select(
        "row",
        k="#" + pl.concat_str("surname_key", "given_key").str.split("").list.unique().list.sort().list.join(""),
    )
    return pl.concat([joined, letters]).select("row", key=pl.col("k").hash(7) * _WHOLE)


def _anchor_keys(rows: pl.DataFrame, parts: pl.DataFrame) -> pl.DataFrame:
    """(row, key) of a two-part name: the fold of one part with the first three letters of the other, and with
    its last three. A typo in one part changes the only pair key such a name has, and without a full date of
    birth no birth or initials key stands in (MUNANADR ~ MUNANDAR, UMDACUMURA ~ MUDACUMURA): one part stays
    whole and the other keeps its start or its end. Names of three parts or more keep a pair key instead.
    parts: _name_parts of the rows (the fold hash of each part, computed once)."""
    two = rows.select(
        "row", p=pl.concat_str("surname_key", "given_key", separator=" ").str.strip_chars().str.split(" ")
    ).filter(pl.col("p").list.len() == 2)
    first, second = pl.col("p").list.get(0), pl.col("p").list.get(1)
    ordered = pl.concat([two.select("row", a=first, b=second), two.select("row", a=second, b=first)]).filter(
        pl.col("a").str.len_chars() >= 2, pl.col("b").str.len_chars() >= 4
    )
    anchored = ordered.join(parts.select("row", a="part", h="h"), on=["row", "a"])
    anchor = pl.col("h") * _ANCHOR
    return pl.concat(
        [
            anchored.select("row", key=anchor + pl.col("b").str.slice(0, 3).hash(9)),
            anchored.select("row", key=anchor + pl.col("b").str.slice(-3, 3).hash(10)),
        ]
    )


class _Index:
    """Sorted (key, entry) arrays of every entry's keys; a lookup is a binary search per traveller key."""

    def __init__(self, entries: pl.DataFrame, shares: Mapping[str, float] | None = None) -> None:
        self.entries = entries.with_row_index("e")
        self.evidence = self.entries.select(
            "e", **matching.entry_evidence_columns(pl.col("dob"), pl.col("document_number"))
        )
        self.coordinates = self.entries.select("e", "entry_id", "owner", "scope", "category")
        self.names = self.entries.select("e", e_surname="surname_key", e_given="given_key")
        # How rare each name part is (common-name down-weighting), counted once per list change.
        self.rarity = matching.name_rarity(matching.NameCounts.of(self.entries), shares)
        self.evidence = self.evidence.with_columns(
            e_common=self.entries.select(
                matching.least_common_name_penalty(self.rarity, pl.col("surname_key"), pl.col("given_key"))
            ).to_series()
        )
        rows = self.entries.select(
            row=pl.col("e"),
            surname_key="surname_key",
            given_key="given_key",
            dob="dob",
            documents=pl.concat_list(pl.col("document_number")).list.eval(pl.element().filter(pl.element() != "")),
        )
        keys = _keys(rows, query=False)
        keys = keys.filter(pl.len().over("key") <= MAX_POSTINGS).sort("key")
        self.keys = keys["key"].to_numpy()
        self.postings = keys["row"].to_numpy()

    def candidates(self, travellers: pl.DataFrame) -> pl.DataFrame:
        """Distinct (row, e) pairs of travellers (with a row column) and entries sharing at least one key."""
        # Sorted needles: NumPy's binary search then starts each look-up where the previous one ended, which
        # keeps the index's memory pages warm (8x faster than random order on a million-entry list).
        query = _keys(travellers, query=True).sort("key")
        keys = query["key"].to_numpy()
        left = np.searchsorted(self.keys, keys, side="left")
        counts = np.searchsorted(self.keys, keys, side="right") - left
        hit = counts > 0
        left, counts = left[hit], counts[hit]
        rows = query["row"].to_numpy()[hit]
        total = int(counts.sum())
        # Expand each [left, left + count) range: position = left of its range + rank within the range.
        starts = np.repeat(left - np.cumsum(counts) + counts, counts) + np.arange(total)
        return pl.DataFrame(
            {"row": np.repeat(rows, counts), "e": self.postings[starts]},
            schema={"row": pl.UInt32(), "e": pl.UInt32()},
        ).unique()
