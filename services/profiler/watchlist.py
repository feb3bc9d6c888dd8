"""Members' watchlists as one polars frame, and exact screening of a traveller frame against it.

The watchlists topic is compacted with one record per owner member: a record replaces the owner's whole list,
and an empty list (or a tombstone) clears it. Every profiler process replays the topic into a WatchlistStore,
so all of them converge on the same lists.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from services import codec
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
}

MATCH_SCHEMA: dict[str, pl.DataType] = {
    "m": pl.Int64(),
    "t": pl.Int64(),
    "entry_id": pl.String(),
    "owner": pl.String(),
    "scope": pl.String(),
    "category": pl.String(),
}

_KEYS = ["surname_key", "given_key", "dob"]


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
        },
        schema=ENTRY_SCHEMA,
    )
    return frame.with_columns(surname_key=name_key(pl.col("surname_key")), given_key=name_key(pl.col("given_key")))


class WatchlistStore:
    """The latest watchlist of every owner member (replace semantics), queried as one frame."""

    def __init__(self) -> None:
        self._frames: dict[str, pl.DataFrame] = {}
        self._entries: pl.DataFrame | None = None

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

    @property
    def owners(self) -> list[str]:
        return sorted(self._frames)

    def count(self, owner: str) -> int:
        frame = self._frames.get(owner.strip().upper())
        return 0 if frame is None else frame.height

    @property
    def entries(self) -> pl.DataFrame:
        """Every entry of every owner (ENTRY_SCHEMA), rebuilt lazily after a change."""
        if self._entries is None:
            frames = [self._frames[o] for o in sorted(self._frames)]
            self._entries = pl.concat(frames) if frames else pl.DataFrame(schema=ENTRY_SCHEMA)
        return self._entries

    def exact_matches(
        self,
        travellers: pl.DataFrame,
        jurisdiction: Mapping[int, Collection[str]] | None = None,
    ) -> pl.DataFrame:
        """Travellers whose surname, given names and date of birth all equal an entry's (MATCH_SCHEMA rows).

        "Exact" means all three present on both sides and equal after name normalisation: an entry or
        traveller with an empty surname, given names or date of birth never matches here, and a partial date
        only matches the same partial date ("1980" does not match "1980-07-14"). Fuzzy and partial matching
        come later.

        jurisdiction maps a manifest index (column m) to the members with jurisdiction over that flight's
        route (Directory.jurisdiction(route_of(manifest))). Regional entries match on every flight; private
        entries only on flights in their owner's jurisdiction, so a manifest missing from the mapping gets no
        private matches.
        """
        entries = self.entries.filter(*(pl.col(k) != "" for k in _KEYS))
        if entries.is_empty() or travellers.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)
        candidates = (
            travellers.select("m", "t", *_KEYS)
            .filter(*(pl.col(k) != "" for k in _KEYS))
            .join(entries, on=_KEYS, how="inner")
            .select(MATCH_SCHEMA.keys())
        )
        pairs = [(m, owner) for m, owners in (jurisdiction or {}).items() for owner in owners]
        allowed = pl.DataFrame(
            {"m": [p[0] for p in pairs], "owner": [p[1].upper() for p in pairs]},
            schema={"m": pl.Int64(), "owner": pl.String()},
        )
        private = candidates.filter(pl.col("scope") == PRIVATE).join(allowed, on=["m", "owner"], how="semi")
        return (
            pl.concat([candidates.filter(pl.col("scope") != PRIVATE), private])
            .unique(["m", "t", "owner", "entry_id"], keep="first", maintain_order=True)
            .sort("m", "t", "owner", "entry_id")
        )
