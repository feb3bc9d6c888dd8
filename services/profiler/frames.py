"""Manifest batches as polars frames: one row per traveller, with the normalised keys screening joins on."""

from __future__ import annotations

import functools
from datetime import UTC, date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from anyascii import anyascii

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

# ICAO Doc 9303 Part 3 (section 6, transliteration of multinational Latin-based characters) writes these
# letters as two letters in the MRZ: a German passport of Müller reads MUELLER, a Danish Åse reads AASE.
# API data is mostly read from the MRZ, so the key follows the MRZ; the single-letter forms that some
# carriers and list keepers type (MULLER) meet it in the matcher's transliteration fold, not here.
# Every other Latin diacritic is dropped (É -> E, Ñ -> N, Ō -> O), as the same table does.
_ICAO_LATIN = {
    "Ä": "AE", "ä": "ae", "Æ": "AE", "æ": "ae", "Å": "AA", "å": "aa",
    "Ö": "OE", "ö": "oe", "Ø": "OE", "ø": "oe", "Œ": "OE", "œ": "oe",
    "Ü": "UE", "ü": "ue", "ß": "SS", "ẞ": "SS", "Þ": "TH", "þ": "th",
    "Ĳ": "IJ", "ĳ": "ij", "Ð": "D", "ð": "d", "Đ": "D", "đ": "d",
    "Ł": "L", "ł": "l", "Ħ": "H", "ħ": "h", "ı": "i", "Ŋ": "N", "ŋ": "n",
}  # fmt: skip
# Apostrophes, including the ʻokina (U+02BB) and modifier apostrophe (U+02BC) that Pacific names use, are
# deleted: ICAO 9303 omits them in the MRZ (O'BRIEN -> OBRIEN, Tuilaʻepa -> TUILAEPA), so a name read from a
# scanned document and one typed from the visual zone get the same key.
_APOSTROPHES = "['`\u2018\u2019\u02bb\u02bc]"
# Separators that become spaces: every dash (Unicode Pd), dots, commas and the MRZ filler "<".
_SEPARATORS = r"[\p{Pd}.,<]"
# Honorifics and styles that carriers append to names ("SMITH/JOHN MR" in reservation systems) and that
# are never part of the person's name in a passport. A word is dropped only when the field has other words,
# so a surname that happens to be one of these survives. The Fijian chiefly styles RATU and ROKO are
# dropped too; ADI and TUI are not, since they are also ordinary given names (Indonesian, Samoan).
HONORIFICS = ("MR", "MRS", "MS", "MISS", "MSTR", "MSTER", "MASTER", "DR", "PROF", "REV", "HON", "SIR", "RATU", "ROKO")
_HONORIFIC = r"\b(?:" + "|".join(HONORIFICS) + r")\b"


def _to_ascii(names: pl.Series) -> pl.Series:
    """Transliterate the names still outside ASCII (Cyrillic, Greek, Arabic, CJK) with anyascii.

    Only distinct non-ASCII values go through Python (one anyascii call each); API data is almost always
    ASCII already, so the common batch never leaves Rust.
    """
    foreign = names.str.contains(r"[^\x00-\x7F]")
    if not foreign.any():
        return names
    distinct = names.filter(foreign).unique().to_list()
    return names.replace({text: anyascii(text) for text in distinct})


def name_key(name: pl.Expr) -> pl.Expr:
    """The key of a name column: the one definition both travellers and watchlist entries use.

    NFC first (so a decomposed Ü is one letter), the ICAO two-letter forms, then NFKD splits letters from
    their remaining diacritics (and ligatures such as "ﬁ" into "fi") and the non-spacing marks are dropped;
    other scripts are transliterated with anyascii; then upper case, apostrophes deleted, separators to
    spaces, whitespace collapsed and honorifics dropped. Runs in polars over the whole column.
    """
    spaced = (
        name.str.normalize("NFC")
        .str.replace_many(_ICAO_LATIN)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}+", "")
        .map_batches(_to_ascii, return_dtype=pl.String)
        .str.to_uppercase()
        .str.replace_all(_APOSTROPHES, "")
        .str.replace_all(_SEPARATORS, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    untitled = spaced.str.replace_all(_HONORIFIC, "").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(untitled == "").then(spaced).otherwise(untitled)


def normalise_name(text: str) -> str:
    """name_key for one string ("Jean-Pierre Müller" -> "JEAN PIERRE MUELLER").

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


# -- derived features for targeting rules ------------------------------------------------------------------
# Kept apart from the screening keys above: rules (services.profiler.ruleset) read these columns, the
# watchlist joins never do. Nationality, sex and names are deliberately not features: published guidance
# (reference/name-matching.md §6) rules them out as targeting criteria; only "nationality differs from the
# issuing state" is offered, as a weak document indicator.

# Column -> dtype that add_features() adds to a traveller frame. Null means "not known for this traveller".
FEATURE_SCHEMA: dict[str, pl.DataType] = {
    "age": pl.Int32(),  # whole years on the departure date; null unless the birth date is complete
    "doc_validity_days": pl.Int32(),  # days from departure to the earliest complete document expiry
    "nationality_differs": pl.Boolean(),  # nationality != issuing state of the first document naming one
    "role_kind": pl.String(),  # "passenger" or "crew" (transit roles included), "unspecified"
    "in_transit": pl.Boolean(),  # transit passenger or transit crew
    "transport_mode": pl.String(),  # "air", "sea", or null
    "carrier_code": pl.String(),
    "origin": pl.String(),  # first port of the flight's route
    "destination": pl.String(),  # last port of the flight's route
    "ports": pl.List(pl.String()),  # every port of the route, in order
    "transit_ports": pl.List(pl.String()),  # ports between origin and destination
    "transit_count": pl.Int32(),
    "reservation_locator": pl.String(),  # null when the carrier sent none
    "party_size": pl.Int32(),  # travellers of this manifest under the same locator; null without one
    "booking_lead_days": pl.Int32(),  # days from the (complete) booking date to departure
    "payment_form": pl.String(),  # upper case as sent; null when absent
    "one_way": pl.Boolean(),  # null when the carrier did not say
}

_CREW = (manifest_pb2.TRAVELLER_ROLE_CREW, manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW)
_TRANSIT = (manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER, manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW)
_MODES = {manifest_pb2.TRANSPORT_MODE_AIR: "air", manifest_pb2.TRANSPORT_MODE_SEA: "sea"}


def _issuing_state(traveller: manifest_pb2.Traveller) -> str | None:
    for doc in traveller.documents:
        if doc.issuing_state:
            return doc.issuing_state.strip().upper()
    return None


def add_features(frame: pl.DataFrame, manifests: list[manifest_pb2.Manifest]) -> pl.DataFrame:
    """The traveller frame of these manifests (manifests_to_frame, same order) with FEATURE_SCHEMA columns.

    Computed once per batch, so every rule of every member reads the same columns.
    """
    flights: dict[str, list] = {"m": [], "transport_mode": [], "ports": [], "transit_ports": []}
    for m, manifest in enumerate(manifests):  # one row per manifest, not per traveller: cheap
        route = codec.route_of(manifest)
        flights["m"].append(m)
        flights["transport_mode"].append(_MODES.get(manifest.transport_mode))
        flights["ports"].append(route)
        flights["transit_ports"].append(route[1:-1])
    raw: dict[str, list] = {k: [] for k in ("m", "t", "role_code", "issuer", "locator", "booked", "payment", "one_way")}
    # Protobuf fields can only be read one traveller at a time from Python; this pass copies the few values
    # rules need into column lists (manifests_to_frame does not carry them), everything else is columnar.
    for m, manifest in enumerate(manifests):
        for t, traveller in enumerate(manifest.travellers):
            raw["m"].append(m)
            raw["t"].append(t)
            raw["role_code"].append(traveller.role)
            raw["issuer"].append(_issuing_state(traveller))
            raw["locator"].append(traveller.reservation_locator.strip() or None)
            if traveller.HasField("booking"):
                booking = traveller.booking
                raw["booked"].append(codec.complete_date(booking.booking_date))
                raw["payment"].append(booking.payment_form.strip().upper() or None)
                raw["one_way"].append(booking.one_way if booking.HasField("one_way") else None)
            else:
                raw["booked"].append(None)
                raw["payment"].append(None)
                raw["one_way"].append(None)
    travellers = pl.DataFrame(
        raw,
        schema={
            "m": pl.Int64(),
            "t": pl.Int64(),
            "role_code": pl.Int32(),
            "issuer": pl.String(),
            "locator": pl.String(),
            "booked": pl.Date(),
            "payment": pl.String(),
            "one_way": pl.Boolean(),
        },
    )
    routes = pl.DataFrame(
        flights,
        schema={
            "m": pl.Int64(),
            "transport_mode": pl.String(),
            "ports": pl.List(pl.String()),
            "transit_ports": pl.List(pl.String()),
        },
    )
    departure = pl.col("departure_date")
    born = pl.col("dob").str.to_date("%Y-%m-%d", strict=False)
    birthday_later = (departure.dt.month().cast(pl.Int32) * 100 + departure.dt.day().cast(pl.Int32)) < (
        born.dt.month().cast(pl.Int32) * 100 + born.dt.day().cast(pl.Int32)
    )
    nationality = pl.when(pl.col("nationality") != "").then(pl.col("nationality"))
    features = (
        frame.join(travellers, on=["m", "t"], how="left", maintain_order="left")
        .join(routes, on="m", how="left", maintain_order="left")
        .with_columns(
            age=departure.dt.year().cast(pl.Int32) - born.dt.year().cast(pl.Int32) - birthday_later.cast(pl.Int32),
            doc_validity_days=(pl.col("doc_expiry") - departure).dt.total_days().cast(pl.Int32),
            nationality_differs=nationality != pl.col("issuer"),
            role_kind=pl.when(pl.col("role_code").is_in(list(_CREW)))
            .then(pl.lit("crew"))
            .when(pl.col("role_code") == manifest_pb2.TRAVELLER_ROLE_UNSPECIFIED)
            .then(pl.lit("unspecified"))
            .otherwise(pl.lit("passenger")),
            in_transit=pl.col("role_code").is_in(list(_TRANSIT)),
            carrier_code=pl.col("carrier").str.strip_chars().str.to_uppercase(),
            origin=pl.col("ports").list.first(),
            destination=pl.col("ports").list.last(),
            transit_count=pl.col("transit_ports").list.len().cast(pl.Int32),
            reservation_locator=pl.col("locator"),
            party_size=pl.when(pl.col("locator").is_not_null()).then(pl.len().over("m", "locator").cast(pl.Int32)),
            booking_lead_days=(departure - pl.col("booked")).dt.total_days().cast(pl.Int32),
            payment_form=pl.col("payment"),
        )
        .drop("role_code", "issuer", "locator", "booked", "payment")
    )
    return features.with_columns(pl.col(name).cast(dtype) for name, dtype in FEATURE_SCHEMA.items())
