"""Manifest batches as polars frames: one row per traveller, with the normalised keys screening joins on.

Platform code: the profiler screens and scores these frames (services.profiler.frames re-exports this module), and
rule evaluation (services.rules.evaluate) reads them wherever rules run: the profiler, `apihub rules test`, the member
console's backtest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date

import numpy as np
import polars as pl
from anyascii import anyascii

from services import codec, geo
from services.wire import manifest_pb2

# Column -> dtype of the traveller frame. Fixed, so an empty batch yields a frame the joins still accept.
TRAVELLER_SCHEMA: dict[str, pl.DataType] = {
    "manifest_index": pl.Int64(),  # index of the manifest in the batch
    "traveller_index": pl.Int64(),  # index of the traveller in its manifest
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
# scanned document and one typed from the visual zone get the same key. A "?" or U+FFFD, which systems put
# where they could not encode a letter (MUS?AB for MUS'AB), is deleted with them.
_APOSTROPHES = "['`\u2018\u2019\u02bb\u02bc?\ufffd]"
# Separators that become spaces: every dash (Unicode Pd), dots, commas and the MRZ filler "<".
_SEPARATORS = r"[\p{Pd}.,<]"
# Honorifics and styles that carriers append to names ("SMITH/JOHN MR" in reservation systems) and that
# are never part of the person's name in a passport. A word is dropped only when the field has other words,
# so a surname that happens to be one of these survives. The Fijian chiefly styles RATU and ROKO are
# dropped too; ADI and TUI are not, since they are also ordinary given names (Indonesian, Samoan).
HONORIFICS = ("MR", "MRS", "MS", "MISS", "MSTR", "MSTER", "MASTER", "DR", "PROF", "REV", "HON", "SIR", "RATU", "ROKO")
_HONORIFIC = r"\b(?:" + "|".join(HONORIFICS) + r")\b"
# What carriers and lists put in a name field that has no name (ICAO 9303: a person with one name has it all in
# the primary identifier and nothing in the secondary; US and other systems write FNU "first name unknown",
# LNU, NFN or XXX instead). A field that holds only one of these keys as empty, so a one-name traveller is one.
NAME_PLACEHOLDERS = ("FNU", "LNU", "NFN", "NLN", "XXX", "XX", "X", "UNKNOWN", "NONE")


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
    spaces, whitespace collapsed and honorifics dropped. Runs in polars over the whole column; name_keys
    evaluates the same steps faster on a list of strings.
    """
    spaced = _spaced(_folded(name))
    return _untitled_or_spaced(spaced, _untitled(spaced))


# The steps of name_key. In the one expression above, `spaced` appears three times and polars evaluates it
# more than once (about twice the work); name_keys evaluates each step once.


def _folded(name: pl.Expr) -> pl.Expr:
    """Letters folded to ASCII: NFC, ICAO forms, NFKD without marks, anyascii. The identity on ASCII text."""
    return (
        name.str.normalize("NFC")
        .str.replace_many(_ICAO_LATIN)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}+", "")
        .map_batches(_to_ascii, return_dtype=pl.String)
    )


# Digits in a name are letters misread (OCR of a document, a scanned list: IG0R, SECH1N) or typed in their
# place: no person's name has them.
_DIGIT_LETTERS = {"0": "O", "1": "I", "2": "Z", "3": "E", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B", "9": "G"}


def _spaced(folded: pl.Expr) -> pl.Expr:
    return (
        folded.str.to_uppercase()
        .str.replace_many(_DIGIT_LETTERS)
        .str.replace_all(_APOSTROPHES, "")
        .str.replace_all(_SEPARATORS, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def _untitled(spaced: pl.Expr) -> pl.Expr:
    return spaced.str.replace_all(_HONORIFIC, "").str.replace_all(r"\s+", " ").str.strip_chars()


def _untitled_or_spaced(spaced: pl.Expr, untitled: pl.Expr) -> pl.Expr:
    key = pl.when(untitled == "").then(spaced).otherwise(untitled)
    return pl.when(~key.is_in(NAME_PLACEHOLDERS)).then(key).otherwise(pl.lit(""))


def name_keys(names: pl.Series) -> pl.Series:
    """name_key of every name of a String Series: the same values as name_key over that column, in about a third
    of the time (less when names repeat). Each distinct string is keyed once, each step of name_key is evaluated
    once, and the folding steps (the identity on ASCII text) only run on the strings outside ASCII."""
    distinct = names.unique()
    foreign = distinct.str.contains(r"[^\x00-\x7F]")
    plain, other = distinct.filter(~foreign), distinct.filter(foreign)
    texts = pl.concat([plain, other.to_frame("n").select(_folded(pl.col("n"))).to_series()]).to_frame("n")
    spaced = texts.select(spaced=_spaced(pl.col("n")))
    keys = spaced.with_columns(untitled=_untitled(pl.col("spaced"))).select(
        key=_untitled_or_spaced(pl.col("spaced"), pl.col("untitled"))
    )
    lookup = pl.concat([pl.concat([plain, other]).to_frame("n"), keys], how="horizontal")
    keyed = names.to_frame("n").join(lookup, on="n", how="left", maintain_order="left", nulls_equal=True)
    return keyed["key"].alias(names.name)


def normalise_name(text: str) -> str:
    """name_key for one string ("Jean-Pierre Müller" -> "JEAN PIERRE MUELLER").

    Evaluated by the same polars expression as the frames rather than re-implemented with unicodedata, so a
    watchlist entry and a traveller can never disagree because two implementations drifted (Unicode tables,
    regex whitespace classes, upper-casing of "ß").
    """
    return pl.select(name_key(pl.lit(text, dtype=pl.String))).item()


def departure_date(manifest: manifest_pb2.Manifest) -> date | None:
    """Calendar date of the first scheduled departure, local to the origin airport (UTC when unknown).

    Local, because document validity is judged on the day of travel where the traveller boards: a 20:00
    departure from Rarotonga (UTC-10) is already the next day in UTC, and the UTC date would call a document
    that is valid that evening expired. Seaports (UN/LOCODE) have no time zone in our tables: UTC.
    """
    departure = codec.first_departure(manifest)
    if departure is None:
        return None
    zone = geo.port_zone(manifest.legs[0].origin) if manifest.legs[0].origin else None
    return departure.astimezone(zone).date() if zone else departure.astimezone(UTC).date()


def manifests_to_frame(manifests: list[manifest_pb2.Manifest]) -> pl.DataFrame:
    """One row per traveller of every manifest in the batch, with normalised name keys (TRAVELLER_SCHEMA)."""
    return read_travellers(manifests, features=False).frame


# -- the batch, read once ---------------------------------------------------------------------------------------
# Protobuf messages can only be read field by field from Python, so one pass over the travellers cannot be
# avoided; read_travellers makes it once per batch for the frame, the document numbers and the feature inputs.
# The pass only copies field values into lists (no Python function call per traveller), values of a manifest
# are read once and spread over its travellers, and everything else (name keys, dates, earliest expiry,
# features) is done on whole columns.


@dataclass(frozen=True)
class TravellerBatch:
    """What the profiler reads from a batch of manifests (read_travellers).

    frame      the traveller frame (TRAVELLER_SCHEMA): manifests_to_frame(manifests)
    documents  every traveller's document numbers as sent, one list per row of frame: the "documents" column
               WatchlistStore.matches reads
    inputs     the values the derived features are computed from, row-aligned with frame; None when the batch
               was read without features
    """

    frame: pl.DataFrame
    documents: pl.Series
    inputs: pl.DataFrame | None = None

    def with_features(self) -> pl.DataFrame:
        """frame with the FEATURE_SCHEMA columns: add_features(frame, manifests), without reading them again."""
        if self.inputs is None:
            raise ValueError("the batch was read without features")
        return _derive_features(pl.concat([self.frame, self.inputs], how="horizontal"))


def read_travellers(manifests: Sequence[manifest_pb2.Manifest], *, features: bool = True) -> TravellerBatch:
    """The traveller frame, the document numbers and (with features) the feature inputs of a batch, in one pass
    over its travellers."""
    manifests = list(manifests)
    m, t = _positions(manifests)
    flights = _flights(manifests).select(pl.all().gather(m))
    values, docs = _read(manifests, features=features)
    documents = _documents(docs, len(m))
    # Surnames and given names share one look-up: the same strings often appear in both fields.
    keys = name_keys(pl.Series("names", values["surname"] + values["given_names"], dtype=pl.String))
    surname_key, given_key = keys.slice(0, len(m)), keys.slice(len(m))
    travelling = pl.DataFrame(
        {
            "manifest_index": m,
            "traveller_index": t,
            "role": values["role"],
            "surname_key": surname_key,
            "given_key": given_key,
            "year": values["born_year"],
            "month": values["born_month"],
            "day": values["born_day"],
            "nationality": values["nationality"],
        },
        schema={
            "manifest_index": pl.Int64(),
            "traveller_index": pl.Int64(),
            "role": pl.Int32(),
            "surname_key": pl.String(),
            "given_key": pl.String(),
            "year": pl.Int32(),
            "month": pl.Int32(),
            "day": pl.Int32(),
            "nationality": pl.String(),
        },
    )
    columns = {name: pl.col(name) for name in TRAVELLER_SCHEMA}
    columns["dob"] = format_partial_date(pl.col("year"), pl.col("month"), pl.col("day"))
    columns["nationality"] = pl.col("nationality").str.to_uppercase()
    frame = pl.concat([travelling, flights, documents], how="horizontal").select(**columns)
    inputs = None
    if features:
        inputs = pl.concat(
            [_traveller_inputs(values, documents["issuer"]), flights.select(_ROUTE_SCHEMA.keys())], how="horizontal"
        )
    return TravellerBatch(frame, documents["documents"], inputs)


def _positions(manifests: Sequence[manifest_pb2.Manifest]) -> tuple[pl.Series, pl.Series]:
    """Columns manifest_index (of each traveller's manifest in the batch) and traveller_index (its index in the
    manifest)."""
    counts = np.array([len(manifest.travellers) for manifest in manifests], dtype=np.int64)
    m = np.repeat(np.arange(len(manifests), dtype=np.int64), counts)
    t = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return pl.Series("manifest_index", m, dtype=pl.Int64), pl.Series("traveller_index", t, dtype=pl.Int64)


def _flights(manifests: Sequence[manifest_pb2.Manifest]) -> pl.DataFrame:
    """One row per manifest: the manifest's values the traveller frame carries, then its route (_routes)."""
    flights = pl.DataFrame(
        {
            "manifest_id": [manifest.manifest_id or codec.manifest_id(manifest) for manifest in manifests],
            "carrier": [manifest.carrier for manifest in manifests],
            "flight_number": [manifest.flight_number for manifest in manifests],
            "departure_date": [departure_date(manifest) for manifest in manifests],
        },
        schema={
            "manifest_id": pl.String(),
            "carrier": pl.String(),
            "flight_number": pl.String(),
            "departure_date": pl.Date(),
        },
    )
    return pl.concat([flights, _routes(manifests)], how="horizontal")


def _routes(manifests: Sequence[manifest_pb2.Manifest]) -> pl.DataFrame:
    """One row per manifest: the route columns of the features (_ROUTE_SCHEMA)."""
    routes = [codec.route_of(manifest) for manifest in manifests]
    return pl.DataFrame(
        {
            "transport_mode": [_MODES.get(manifest.transport_mode) for manifest in manifests],
            "ports": routes,
            "transit_ports": [route[1:-1] for route in routes],
        },
        schema=_ROUTE_SCHEMA,
    )


# What the pass reads (_read): from each traveller, from its booking (only when features are read), and from
# each of its documents.
_TRAVELLER_FIELDS = ("role", "surname", "given_names", "nationality", "born_year", "born_month", "born_day")
_BOOKING_FIELDS = ("locator", "payment", "one_way", "booked_year", "booked_month", "booked_day")
_DOCUMENT_FIELDS = ("row", "number", "issuer", "year", "month", "day")


def _read(
    manifests: Sequence[manifest_pb2.Manifest], *, frame: bool = True, features: bool = True
) -> tuple[dict[str, list], dict[str, list]]:
    """The pass over the travellers: field -> one value per traveller (_TRAVELLER_FIELDS, with features also
    _BOOKING_FIELDS), and field -> one value per document (_DOCUMENT_FIELDS; row: its traveller's row). Without
    frame, only what the features need: role, and the row and issuer of each document.

    A plain loop appending to lists: the protobuf wrappers it touches (travellers, dates, documents) live only
    for their iteration, and the lists hold only strings, integers and None, which the garbage collector does
    not track. (Tuples or lists of wrappers kept for the batch would trigger full collections of the process.)
    """
    values: dict[str, list] = {name: [] for name in _TRAVELLER_FIELDS + _BOOKING_FIELDS}
    docs: dict[str, list] = {name: [] for name in _DOCUMENT_FIELDS}
    role, surname, given_names, nationality, born_year, born_month, born_day = (
        values[name].append for name in _TRAVELLER_FIELDS
    )
    locator, payment, one_way, booked_year, booked_month, booked_day = (values[name].append for name in _BOOKING_FIELDS)
    doc_row, doc_number, doc_issuer, doc_year, doc_month, doc_day = (docs[name].append for name in _DOCUMENT_FIELDS)
    row = 0
    for manifest in manifests:
        for traveller in manifest.travellers:
            role(traveller.role)
            if frame:
                surname(traveller.surname)
                given_names(traveller.given_names)
                nationality(traveller.nationality)
                born = traveller.date_of_birth
                born_year(born.year)
                born_month(born.month)
                born_day(born.day)
            if features:
                locator(traveller.reservation_locator)
                # An absent booking reads as the default message: no date, no payment form, one_way unset.
                booking = traveller.booking
                payment(booking.payment_form)
                one_way(booking.one_way if booking.HasField("one_way") else None)
                booked = booking.booking_date
                booked_year(booked.year)
                booked_month(booked.month)
                booked_day(booked.day)
            for doc in traveller.documents:
                doc_row(row)
                doc_issuer(doc.issuing_state)
                if frame:
                    doc_number(doc.number)
                    expiry = doc.expiry
                    doc_year(expiry.year)
                    doc_month(expiry.month)
                    doc_day(expiry.day)
            row += 1
    return values, docs


def _documents(docs: dict[str, list], travellers: int) -> pl.DataFrame:
    """One row per traveller, in order: documents (numbers as sent, empty ones left out), doc_expiry (earliest
    complete expiry; partial or impossible dates ignored) and issuer (issuing state of the first document
    naming one, stripped and upper case)."""
    rows, numbers, issuers, year, month, day = (docs[name] for name in _DOCUMENT_FIELDS)
    states = {state: state.strip().upper() for state in set(issuers) if state}
    flat = pl.DataFrame(
        {
            "row": rows,
            "number": numbers,
            "issuer": [states.get(state) for state in issuers],
            "year": year,
            "month": month,
            "day": day,
        },
        schema={
            "row": pl.Int64(),
            "number": pl.String(),
            "issuer": pl.String(),
            "year": pl.Int32(),
            "month": pl.Int32(),
            "day": pl.Int32(),
        },
    )
    expiry = complete_date(pl.col("year"), pl.col("month"), pl.col("day"))
    none = pl.lit([], dtype=pl.List(pl.String()))
    every = pl.int_range(travellers, eager=True, dtype=pl.Int64).alias("row")
    if flat["row"].equals(every):  # one document each (rows are in order): nothing to group
        return flat.select(
            documents=pl.when(pl.col("number") != "").then(pl.concat_list("number")).otherwise(none),
            doc_expiry=expiry,
            issuer="issuer",
        )
    per_row = flat.group_by("row").agg(
        documents=pl.col("number").filter(pl.col("number") != ""),
        doc_expiry=expiry.min(),
        issuer=pl.col("issuer").drop_nulls().first(),
    )
    return (
        every.to_frame()
        .join(per_row, on="row", how="left", maintain_order="left")
        .drop("row")
        .with_columns(pl.col("documents").fill_null(none))
    )


def _issuers(docs: dict[str, list], travellers: int) -> pl.Series:
    """The issuer column of _documents alone (what add_features needs)."""
    states = {state: state.strip().upper() for state in set(docs["issuer"]) if state}
    flat = pl.DataFrame(
        {"row": docs["row"], "issuer": [states.get(state) for state in docs["issuer"]]},
        schema={"row": pl.Int64(), "issuer": pl.String()},
    )
    every = pl.int_range(travellers, eager=True, dtype=pl.Int64).alias("row")
    if flat["row"].equals(every):  # one document each
        return flat["issuer"]
    per_row = flat.drop_nulls().group_by("row").agg(pl.col("issuer").first())
    return every.to_frame().join(per_row, on="row", how="left", maintain_order="left")["issuer"]


def _traveller_inputs(values: dict[str, list], issuer: pl.Series) -> pl.DataFrame:
    """The feature inputs of each traveller (role_code, issuer, locator, booked, payment, one_way)."""
    return pl.DataFrame(
        {
            "role_code": values["role"],
            "issuer": issuer,
            "locator": [locator.strip() or None for locator in values["locator"]],
            "year": values["booked_year"],
            "month": values["booked_month"],
            "day": values["booked_day"],
            "payment": _payment_forms(values["payment"]),
            "one_way": values["one_way"],
        },
        schema={
            "role_code": pl.Int32(),
            "issuer": pl.String(),
            "locator": pl.String(),
            "year": pl.Int32(),
            "month": pl.Int32(),
            "day": pl.Int32(),
            "payment": pl.String(),
            "one_way": pl.Boolean(),
        },
    ).select(
        "role_code",
        "issuer",
        "locator",
        booked=complete_date(pl.col("year"), pl.col("month"), pl.col("day")),
        payment="payment",
        one_way="one_way",
    )


def complete_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """codec.complete_date over integer columns: the date, or null when a part is 0 or the date impossible."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = pl.when(month == 2).then(28 + leap.cast(pl.Int32)).when(month.is_in([4, 6, 9, 11])).then(30)
    # datetime.date's range (MINYEAR..MAXYEAR). pl.date raises on an impossible date, so it only sees valid ones.
    valid = year.is_between(1, 9999) & month.is_between(1, 12) & day.is_between(1, month_days.otherwise(31))
    return pl.when(valid).then(pl.date(*(pl.when(valid).then(part).otherwise(1) for part in (year, month, day))))


def format_partial_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """codec.format_partial_date over integer columns: 'YYYY-MM-DD', 'YYYY-MM', 'YYYY', or '' when unknown."""
    month_part = pl.when(month != 0).then(pl.concat_str(pl.lit("-"), month.cast(pl.String).str.zfill(2)))
    day_part = pl.when((month != 0) & (day != 0)).then(pl.concat_str(pl.lit("-"), day.cast(pl.String).str.zfill(2)))
    text = pl.concat_str(year.cast(pl.String).str.zfill(4), month_part, day_part, ignore_nulls=True)
    return pl.when(year == 0).then(pl.lit("")).otherwise(text)


def _payment_forms(values: Sequence[str]) -> list[str | None]:
    """Payment forms stripped, upper case, None when blank; once per distinct value (carriers use a handful)."""
    lookup = {value: value.strip().upper() or None for value in set(values)}
    return [lookup[value] for value in values]


# -- derived features for targeting rules ------------------------------------------------------------------
# Kept apart from the screening keys above: rules (services.rules.language) read these columns, the
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
# Columns of the features that are values of the flight's route, the same for all its travellers.
_ROUTE_SCHEMA: dict[str, pl.DataType] = {
    "transport_mode": pl.String(),
    "ports": pl.List(pl.String()),
    "transit_ports": pl.List(pl.String()),
}


def add_features(frame: pl.DataFrame, manifests: list[manifest_pb2.Manifest]) -> pl.DataFrame:
    """The traveller frame of these manifests (manifests_to_frame, same order) with FEATURE_SCHEMA columns.

    Computed once per batch, so every rule of every member reads the same columns. A caller that has not
    built the frame yet reads both at once with read_travellers(manifests).with_features().
    """
    manifests = list(manifests)
    m, t = _positions(manifests)
    values, docs = _read(manifests, frame=False)
    inputs = _traveller_inputs(values, _issuers(docs, len(m)))
    routes = _routes(manifests).with_columns(manifest_index=pl.int_range(pl.len(), dtype=pl.Int64))
    joined = frame.join(
        pl.concat([pl.DataFrame([m, t]), inputs], how="horizontal"),
        on=["manifest_index", "traveller_index"],
        how="left",
        maintain_order="left",
    ).join(routes, on="manifest_index", how="left", maintain_order="left")
    return _derive_features(joined)


def _derive_features(frame: pl.DataFrame) -> pl.DataFrame:
    """FEATURE_SCHEMA columns from a traveller frame carrying the inputs (role_code, issuer, locator, booked,
    payment, one_way, then _ROUTE_SCHEMA); the inputs other than one_way and the route are dropped."""
    departure = pl.col("departure_date")
    born = pl.col("dob").str.to_date("%Y-%m-%d", strict=False)
    birthday_later = (departure.dt.month().cast(pl.Int32) * 100 + departure.dt.day().cast(pl.Int32)) < (
        born.dt.month().cast(pl.Int32) * 100 + born.dt.day().cast(pl.Int32)
    )
    nationality = pl.when(pl.col("nationality") != "").then(pl.col("nationality"))
    features = frame.with_columns(
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
        party_size=pl.when(pl.col("locator").is_not_null()).then(
            pl.len().over("manifest_index", "locator").cast(pl.Int32)
        ),
        booking_lead_days=(departure - pl.col("booked")).dt.total_days().cast(pl.Int32),
        payment_form=pl.col("payment"),
    ).drop("role_code", "issuer", "locator", "booked", "payment")
    return features.with_columns(pl.col(name).cast(dtype) for name, dtype in FEATURE_SCHEMA.items())
