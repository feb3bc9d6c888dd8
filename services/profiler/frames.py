"""Manifest batches as polars frames: one row per traveller, with the normalised keys screening joins on."""

from __future__ import annotations

import functools
from datetime import UTC, date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from services import codec, geo
from services.wire import manifest_pb2

# Column -> dtype of the traveller frame. Fixed, so an empty batch yields a frame the joins still accept.
TRAVELLER_SCHEMA: dict[str, pl.DataType] = {
    "m": pl.Int64(),  # index of the manifest in the batch
    "t": pl.Int64(),  # index of the traveller in its manifest
    "manifest_id": pl.String(),
    "carrier": pl.String(),
    "flight_number": pl.String(),
    "departure_date": pl.Date(),
    "role": pl.Int32(),
    "surname_key": pl.String(),
    "given_key": pl.String(),
    "dob": pl.String(),
    "nationality": pl.String(),
    "doc_expiry": pl.Date(),
}

# Apostrophes, including the ʻokina (U+02BB) and modifier apostrophe (U+02BC) that Pacific names use, are
# deleted: ICAO 9303 omits them in the MRZ (O'BRIEN -> OBRIEN, Tuilaʻepa -> TUILAEPA), so a name read from a
# scanned document and one typed from the visual zone get the same key.
_APOSTROPHES = "['`\u2018\u2019\u02bb\u02bc]"
# Separators that become spaces: every dash (Unicode Pd), dots and the MRZ filler "<".
_SEPARATORS = r"[\p{Pd}.<]"


def name_key(name: pl.Expr) -> pl.Expr:
    """The exact-match key of a name column: the one definition both travellers and watchlist entries use.

    NFKD splits letters from their diacritics (and ligatures such as "ﬁ" into "fi"), the non-spacing marks
    are dropped, then upper case, separators to spaces, whitespace collapsed and stripped. All of it runs in
    polars (Rust) over the whole column: no Python call per name.
    """
    return (
        name.str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}+", "")
        .str.to_uppercase()
        .str.replace_all(_APOSTROPHES, "")
        .str.replace_all(_SEPARATORS, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def normalise_name(text: str) -> str:
    """name_key for one string ("Jean-Pierre Müller" -> "JEAN PIERRE MULLER").

    Evaluated by the same polars expression as the frames rather than re-implemented with unicodedata, so a
    watchlist entry and a traveller can never disagree because two implementations drifted (Unicode tables,
    regex whitespace classes, upper-casing of "ß").
    """
    return pl.select(name_key(pl.lit(text, dtype=pl.String))).item()


@functools.cache
def _port_zone(port: str) -> ZoneInfo | None:
    airport = geo._airports().get(port.strip().upper())
    if not airport or not airport.get("tz"):
        return None
    try:
        return ZoneInfo(airport["tz"])
    except (ZoneInfoNotFoundError, ValueError):
        return None


def departure_date(manifest: manifest_pb2.Manifest) -> date | None:
    """Calendar date of the first scheduled departure, local to the origin airport (UTC when unknown).

    Local, because document validity is judged on the day of travel where the traveller boards: a 20:00
    departure from Rarotonga (UTC-10) is already the next day in UTC, and the UTC date would call a document
    that is valid that evening expired. Seaports (UN/LOCODE) have no time zone in our tables: UTC.
    """
    departure = codec.first_departure(manifest)
    if departure is None:
        return None
    zone = _port_zone(manifest.legs[0].origin) if manifest.legs[0].origin else None
    return departure.astimezone(zone).date() if zone else departure.astimezone(UTC).date()


def earliest_expiry(traveller: manifest_pb2.Traveller) -> date | None:
    """Earliest complete expiry among the traveller's documents; partial or impossible dates are ignored."""
    expiries = [d for d in (codec.complete_date(doc.expiry) for doc in traveller.documents) if d is not None]
    return min(expiries, default=None)


def manifests_to_frame(manifests: list[manifest_pb2.Manifest]) -> pl.DataFrame:
    """One row per traveller of every manifest in the batch, with normalised name keys (TRAVELLER_SCHEMA)."""
    columns: dict[str, list] = {name: [] for name in TRAVELLER_SCHEMA}
    columns["surname"] = []
    columns["given_names"] = []
    # Protobuf messages can only be read field by field from Python, so one pass over the travellers is
    # unavoidable; it only copies values into column lists. Everything else is done on whole columns below.
    for m, manifest in enumerate(manifests):
        mid = manifest.manifest_id or codec.manifest_id(manifest)
        departure = departure_date(manifest)
        for t, traveller in enumerate(manifest.travellers):
            columns["m"].append(m)
            columns["t"].append(t)
            columns["manifest_id"].append(mid)
            columns["carrier"].append(manifest.carrier)
            columns["flight_number"].append(manifest.flight_number)
            columns["departure_date"].append(departure)
            columns["role"].append(traveller.role)
            columns["surname"].append(traveller.surname)
            columns["given_names"].append(traveller.given_names)
            columns["dob"].append(codec.format_partial_date(traveller.date_of_birth))
            columns["nationality"].append(traveller.nationality)
            columns["doc_expiry"].append(earliest_expiry(traveller))
    columns["surname_key"] = columns.pop("surname")
    columns["given_key"] = columns.pop("given_names")
    frame = pl.DataFrame(columns, schema=TRAVELLER_SCHEMA)
    return frame.with_columns(
        surname_key=name_key(pl.col("surname_key")),
        given_key=name_key(pl.col("given_key")),
        nationality=pl.col("nationality").str.to_uppercase(),
    )
