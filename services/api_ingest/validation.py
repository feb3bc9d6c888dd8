"""Checks at the edge: pure functions from a Manifest to field-level violations.

Every violation names a Manifest path ("travellers[3].documents[0].expiry"), a stable code and a description
a carrier's developer can act on. Descriptions never carry personal data (names, birth dates, document
numbers, MRZ text); codes, ports and country codes are fine.

Rules (E = error, the manifest is rejected; W = warning, it is accepted and the receipt says why):

  manifest  carrier                        E invalid_carrier
            flight_number                  E required
            transport_mode, function       E required / invalid_value
            amendment                      E invalid_value (an enum number that does not exist)
            travellers (ORIGINAL, CLOSE_OUT, CHANGE; not CANCEL)   E required
  legs      legs                           E required
            origin, destination            E required / unknown_port
            origin == destination          E same_port
            scheduled_departure            E required / invalid_date
            scheduled_arrival              E invalid_date / arrival_before_departure
            leg i destination != leg i+1 origin                    W legs_not_connected
            SEA with a port that is not a 5-character UN/LOCODE    W not_a_locode
  traveller role                           E required / invalid_value
            surname                        E required
            sex                            E invalid_value (UNSPECIFIED is fine)
            date_of_birth                  E invalid_date / birth_date_in_future / birth_date_too_old,
                                           W missing / impossible_date (a year with an impossible month or
                                           day, e.g. day 32: screened on its parts, not rejected)
            nationality, residence         E invalid_country
            passenger_ref                  E required (CHANGE) / duplicate_passenger_ref
            embarkation, debarkation       E unknown_port
            documents                      W missing (not asked of a CHANGE that removes: XR / RP)
  document  number                         E required
            type                           E invalid_value
            issuing_state                  E invalid_country
            expiry                         E invalid_date, W document_expired
            mrz                            E invalid_mrz / mrz_check_digit
            MRZ vs number, expiry, issuing_state, nationality, date_of_birth   W mrz_mismatch

Passengers and crew (all four roles) get the same traveller checks. Country fields take ISO 3166-1
alpha-3 or the ICAO Doc 9303 Part 3 codes below, in any case; Germany's "D" (MRZ "D<<") equals DEU when
an MRZ is compared with the structured fields. "Now" for dates is the first leg's scheduled departure
(UTC date), or today when there is none; a birth date may be up to the local date at UTC+14 then.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

from services.geo import is_country, port_country
from services.paxlst.mrz import MrzFormatError, verify_mrz
from services.wire import intake_pb2, manifest_pb2

Violation = intake_pb2.FieldViolation

# ICAO Doc 9303 Part 3 codes that are not ISO 3166-1 countries but are valid nationalities / issuers.
ICAO_SPECIAL_CODES = frozenset(
    {
        "D",  # Germany (printed "D<<" in the MRZ; same as DEU)
        "EUE",  # European Union
        "GBD",  # British Overseas Territories Citizen
        "GBN",  # British National (Overseas)
        "GBO",  # British Overseas Citizen
        "GBP",  # British Protected Person
        "GBS",  # British Subject
        "UNO",  # United Nations Organization
        "UNA",  # specialized agency of the United Nations
        "UNK",  # resident of Kosovo, UNMIK travel document
        "XBA",  # African Development Bank
        "XIM",  # African Export-Import Bank
        "XCC",  # Caribbean Community (CARICOM)
        "XCE",  # Council of Europe
        "XCO",  # Common Market for Eastern and Southern Africa (COMESA)
        "XDC",  # Southern African Development Community (SADC)
        "XEC",  # Economic Community of West African States (ECOWAS)
        "XES",  # Organisation of Eastern Caribbean States
        "XOM",  # Sovereign Military Order of Malta
        "XPO",  # INTERPOL
        "XXA",  # stateless person (1954 Convention)
        "XXB",  # refugee (1951 Convention)
        "XXC",  # refugee, other
        "XXX",  # unspecified nationality
        "RKS",  # Kosovo: not ICAO-endorsed, but printed on Republic of Kosovo passports
    }
)
# Codes that mean the same country, for comparing an MRZ with the structured fields.
_SAME_COUNTRY = {"D": "DEU"}

_ROLES = frozenset(manifest_pb2.TravellerRole.values()) - {manifest_pb2.TRAVELLER_ROLE_UNSPECIFIED}
_SEXES = frozenset(manifest_pb2.Sex.values())
_DOCUMENT_TYPES = frozenset(manifest_pb2.DocumentType.values())
_TRANSPORT_MODES = frozenset(manifest_pb2.TransportMode.values()) - {manifest_pb2.TRANSPORT_MODE_UNSPECIFIED}
_FUNCTIONS = frozenset(manifest_pb2.MessageFunction.values()) - {manifest_pb2.MESSAGE_FUNCTION_UNSPECIFIED}
_AMENDMENTS = frozenset(manifest_pb2.Amendment.values())
_REMOVALS = frozenset({manifest_pb2.AMENDMENT_CANCELLED_RESERVATION, manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY})
_CHANGE = manifest_pb2.MESSAGE_FUNCTION_CHANGE
_CANCEL = manifest_pb2.MESSAGE_FUNCTION_CANCEL

# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_TS_MIN, _TS_MAX = -62135596800, 253402300799
_MAX_AGE_YEARS = 130
_LATEST_OFFSET = 14 * 3600  # UTC+14 (Kiribati, Line Islands): where the calendar day starts first
_MRZ_CHECK_NAMES = {
    "document_number": "document number",
    "birth_date": "date of birth",
    "expiry": "expiry date",
    "optional_data": "optional data (personal number)",
    "composite": "composite",
}
_MRZ_ALNUM = re.compile(r"[0-9A-Z]*")
_NOT_MRZ_ALNUM = re.compile(r"[^0-9A-Z]")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LOOKUP_CACHE = 4096  # bounded: codes come from carriers, so the set of distinct keys is theirs to grow


# -- lookups (cached on the normalised code) -----------------------------------------------------------
@functools.lru_cache(maxsize=_LOOKUP_CACHE)
def _country(code: str) -> str | None:
    """The code itself when it is ISO 3166-1 alpha-3 or an ICAO special code, else None. `code` is
    upper-case; the MRZ spelling of Germany, "D<<", counts as "D"."""
    if code == "D<<":
        code = "D"
    return code if code in ICAO_SPECIAL_CODES or is_country(code) else None


def country_ok(code: str) -> bool:
    return _country(code.upper()) is not None


def _same_country(a: str, b: str) -> bool:
    if a == b:
        return True
    a, b = _country(a.upper()) or a.upper(), _country(b.upper()) or b.upper()
    return _SAME_COUNTRY.get(a, a) == _SAME_COUNTRY.get(b, b)


@functools.lru_cache(maxsize=_LOOKUP_CACHE)
def _port(port: str) -> str | None:
    """Country of an upper-case, stripped port code, or None when unknown."""
    return port_country(port)


def _norm_port(port: str) -> str:
    return port.strip().upper()


# -- dates as YYYYMMDD integers ------------------------------------------------------------------------
def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month]


def _ymd_ok(year: int, month: int, day: int) -> bool:
    """A possible (partial) date: unknown parts are 0, only from the right (day, then month)."""
    if 1 <= day <= 28 and 1 <= month <= 12 and 1 <= year <= 9999:
        return True  # the common case, decided without a calendar
    if not year:
        return not (month or day)
    if not 1 <= year <= 9999:
        return False
    if not month:
        return not day
    if not 1 <= month <= 12:
        return False
    return not day or 1 <= day <= _days_in_month(year, month)


def _ts_ok(ts) -> bool:
    return _TS_MIN <= ts.seconds <= _TS_MAX and 0 <= ts.nanos < 1_000_000_000


def _reference_days(m: manifest_pb2.Manifest) -> tuple[int, int]:
    """YYYYMMDD of the first leg's scheduled departure (or of now): its UTC date, and the latest local
    date anywhere at that moment (UTC+14), which a birth date may not be after."""
    when = None
    if m.legs and m.legs[0].HasField("scheduled_departure"):
        ts = m.legs[0].scheduled_departure
        if _TS_MIN <= ts.seconds <= _TS_MAX - _LATEST_OFFSET:
            when = datetime.fromtimestamp(ts.seconds, UTC)
    when = when or datetime.now(UTC)
    ahead = when + timedelta(seconds=_LATEST_OFFSET)
    return (
        when.year * 10000 + when.month * 100 + when.day,
        ahead.year * 10000 + ahead.month * 100 + ahead.day,
    )


def _yymmdd_differs(mrz_date: str, year: int, month: int, day: int) -> bool:
    """Whether an MRZ date (YYMMDD, '<' for unknown parts) contradicts a partial date's known parts."""
    yy, mm, dd = mrz_date[0:2], mrz_date[2:4], mrz_date[4:6]
    return bool(
        (year and yy.isdigit() and int(yy) != year % 100)
        or (month and mm.isdigit() and int(mm) != month)
        or (day and dd.isdigit() and int(dd) != day)
    )


def _mrz_text(value: str) -> str:
    """A structured field in MRZ form: upper case, A-Z and 0-9 only."""
    if _MRZ_ALNUM.fullmatch(value):
        return value
    return _NOT_MRZ_ALNUM.sub("", value.upper())


def _shown(value: str, longest: int) -> str:
    """A rejected code quoted, when it looks like a code; anything else may be personal data that a
    carrier put in the wrong field, so it is not echoed."""
    value = value.strip()
    if len(value) <= longest and value.isascii() and value.replace("<", "").isalnum():
        return f"'{value}'"
    return "the value given"


def _invalid_country(err, field: str, code: str) -> None:
    err(
        field,
        "invalid_country",
        f"{_shown(code, 3)} is not an ISO 3166-1 alpha-3 code or an ICAO Doc 9303 code (e.g. FJI, XXA)",
    )


def _unknown_port(err, field: str, port: str) -> None:
    err(
        field,
        "unknown_port",
        f"{_shown(port, 5)} is neither a known IATA airport code (e.g. NAN) nor a UN/LOCODE (e.g. FJSUV)",
    )


# -- the checks ----------------------------------------------------------------------------------------
def validate_manifest(m: manifest_pb2.Manifest) -> tuple[list[Violation], list[Violation]]:
    """(errors, warnings). Any error rejects the whole manifest; warnings travel in the receipt."""
    errors: list[Violation] = []
    warnings: list[Violation] = []

    def err(field: str, code: str, description: str) -> None:
        errors.append(Violation(field=field, code=code, description=description))

    def warn(field: str, code: str, description: str) -> None:
        warnings.append(Violation(field=field, code=code, description=description))

    if not (2 <= len(m.carrier) <= 3 and m.carrier.isascii() and m.carrier.isalnum()):
        err("carrier", "invalid_carrier", "carrier must be a 2-character IATA (or 3-character ICAO) code")
    if not m.flight_number.strip():
        err("flight_number", "required", "flight or voyage number is required")
    mode, function = m.transport_mode, m.function
    if mode == manifest_pb2.TRANSPORT_MODE_UNSPECIFIED:
        err("transport_mode", "required", "transport mode must be AIR or SEA")
    elif mode not in _TRANSPORT_MODES:
        err("transport_mode", "invalid_value", f"transport mode {mode} does not exist; use AIR or SEA")
    if function == manifest_pb2.MESSAGE_FUNCTION_UNSPECIFIED:
        err("function", "required", "message function must be ORIGINAL, CHANGE, CANCEL or CLOSE_OUT")
    elif function not in _FUNCTIONS:
        err(
            "function",
            "invalid_value",
            f"message function {function} does not exist; use ORIGINAL, CHANGE, CANCEL or CLOSE_OUT",
        )
    if m.amendment not in _AMENDMENTS:
        err(
            "amendment",
            "invalid_value",
            f"amendment {m.amendment} does not exist; use CHANGED_DATA, CANCELLED_RESERVATION or REDUCTION_IN_PARTY",
        )

    _validate_legs(m, mode == manifest_pb2.TRANSPORT_MODE_SEA, err, warn)

    if not m.travellers and function != _CANCEL:
        err(
            "travellers",
            "required",
            "a manifest must list at least one traveller (only a CANCEL may have none)",
        )
    today, latest_today = _reference_days(m)
    change = function == _CHANGE
    documents_expected = not (change and m.amendment in _REMOVALS)
    seen_refs: dict[str, int] = {}
    for i, t in enumerate(m.travellers):
        ref = t.passenger_ref
        if ref:
            first = seen_refs.setdefault(ref, i)
            if first != i:
                err(
                    f"travellers[{i}].passenger_ref",
                    "duplicate_passenger_ref",
                    f"passenger_ref is already used by travellers[{first}]; each traveller needs its own "
                    "carrier reference (RFF+ABO)",
                )
        elif change:
            err(
                f"travellers[{i}].passenger_ref",
                "required",
                "a CHANGE names the traveller it replaces or removes by passenger_ref (RFF+ABO); "
                "send the reference given in the original manifest",
            )
        _validate_traveller(i, t, today, latest_today, documents_expected, err, warn)
    return errors, warnings


def _validate_legs(m: manifest_pb2.Manifest, sea: bool, err, warn) -> None:
    legs = m.legs
    if not legs:
        err("legs", "required", "at least one leg with origin and destination is required")
        return
    previous_destination = None
    for i, leg in enumerate(legs):
        ports = []
        for name in ("origin", "destination"):
            port = _norm_port(getattr(leg, name))
            ports.append(port)
            if not port:
                err(f"legs[{i}].{name}", "required", f"{name} port is required")
            elif _port(port) is None:
                _unknown_port(err, f"legs[{i}].{name}", port)
            elif sea and len(port) != 5:
                warn(
                    f"legs[{i}].{name}",
                    "not_a_locode",
                    f"a sea voyage names ports by 5-character UN/LOCODE (e.g. FJSUV), not '{port}'",
                )
        origin, destination = ports
        if origin and origin == destination:
            err(
                f"legs[{i}].destination",
                "same_port",
                f"destination is the same port as the origin ({_shown(origin, 5)}); a leg goes between two ports",
            )
        if i and previous_destination and origin and origin != previous_destination:
            warn(
                f"legs[{i}].origin",
                "legs_not_connected",
                f"leg {i} starts at {_shown(origin, 5)} but leg {i - 1} ends at "
                f"{_shown(previous_destination, 5)}; "
                "legs are expected in order, each starting where the previous one ends",
            )
        previous_destination = destination

        departure = arrival = None
        if not leg.HasField("scheduled_departure"):
            err(f"legs[{i}].scheduled_departure", "required", "scheduled departure time is required")
        elif not _ts_ok(leg.scheduled_departure):
            err(f"legs[{i}].scheduled_departure", "invalid_date", "scheduled departure is not a valid time")
        else:
            departure = leg.scheduled_departure
        if leg.HasField("scheduled_arrival"):
            if not _ts_ok(leg.scheduled_arrival):
                err(f"legs[{i}].scheduled_arrival", "invalid_date", "scheduled arrival is not a valid time")
            else:
                arrival = leg.scheduled_arrival
        if (
            departure is not None
            and arrival is not None
            and (arrival.seconds, arrival.nanos) <= (departure.seconds, departure.nanos)
        ):
            err(
                f"legs[{i}].scheduled_arrival",
                "arrival_before_departure",
                "scheduled arrival must be after scheduled departure (both are UTC)",
            )


def _validate_traveller(
    i: int, t: manifest_pb2.Traveller, today: int, latest_today: int, documents_expected: bool, err, warn
) -> None:
    role = t.role
    if role not in _ROLES:
        if role == manifest_pb2.TRAVELLER_ROLE_UNSPECIFIED:
            err(
                f"travellers[{i}].role",
                "required",
                "role must be PASSENGER, CREW, TRANSIT_PASSENGER or TRANSIT_CREW",
            )
        else:
            err(
                f"travellers[{i}].role",
                "invalid_value",
                f"role {role} does not exist; use PASSENGER, CREW, TRANSIT_PASSENGER or TRANSIT_CREW",
            )
    if not t.surname.strip():
        err(f"travellers[{i}].surname", "required", "surname is required")
    if t.sex not in _SEXES:
        err(
            f"travellers[{i}].sex",
            "invalid_value",
            f"sex {t.sex} does not exist; use MALE, FEMALE, X or leave it unset",
        )

    _validate_birth_date(i, t.date_of_birth, today, latest_today, err, warn)

    code = t.nationality
    if code and _country(code.upper()) is None:
        _invalid_country(err, f"travellers[{i}].nationality", code)
    code = t.residence
    if code and _country(code.upper()) is None:
        _invalid_country(err, f"travellers[{i}].residence", code)
    port = t.embarkation
    if port and _port(_norm_port(port)) is None:
        _unknown_port(err, f"travellers[{i}].embarkation", port)
    port = t.debarkation
    if port and _port(_norm_port(port)) is None:
        _unknown_port(err, f"travellers[{i}].debarkation", port)

    if not t.documents:
        if documents_expected:
            warn(
                f"travellers[{i}].documents",
                "missing",
                "no travel document given: members cannot check the traveller's document",
            )
        return
    for j, doc in enumerate(t.documents):
        _validate_document(i, j, t, doc, today, err, warn)


def _validate_birth_date(i: int, dob: manifest_pb2.PartialDate, today: int, latest_today: int, err, warn) -> None:
    year, month, day = dob.year, dob.month, dob.day
    # A slip in one part of a year-month(-day) date (day 32, 30 February, month 13) leaves a date that screening
    # still compares part by part: a warning, since rejecting the manifest would leave everyone on it unscreened.
    possible = _ymd_ok(year, month, day)
    slip = not possible and 1 <= year <= 9999 and 1 <= month <= 99 and 0 <= day <= 99
    if not possible and not slip:
        err(
            f"travellers[{i}].date_of_birth",
            "invalid_date",
            "date of birth is not a possible date (unknown parts must be 0, the day before the month)",
        )
    elif not year:
        warn(
            f"travellers[{i}].date_of_birth",
            "missing",
            "date of birth is missing: watchlist screening is weaker",
        )
    else:
        if slip:
            warn(
                f"travellers[{i}].date_of_birth",
                "impossible_date",
                "date of birth is not a possible date: screened on its parts as sent",
            )
        month, day = min(month, 12), min(day, 31)
        if year * 10000 + (month or 1) * 100 + (day or 1) > latest_today:
            err(
                f"travellers[{i}].date_of_birth",
                "birth_date_in_future",
                "date of birth is after the flight's departure date; check the century of a 2-digit year",
            )
        elif year * 10000 + (month or 12) * 100 + (day or 31) < today - _MAX_AGE_YEARS * 10000:
            err(
                f"travellers[{i}].date_of_birth",
                "birth_date_too_old",
                f"date of birth is more than {_MAX_AGE_YEARS} years before departure; "
                "check the century of a 2-digit year",
            )


def _validate_document(
    i: int, j: int, t: manifest_pb2.Traveller, doc: manifest_pb2.Document, today: int, err, warn
) -> None:
    if not doc.number.strip():
        err(f"travellers[{i}].documents[{j}].number", "required", "document number is required")
    if doc.type not in _DOCUMENT_TYPES:
        err(
            f"travellers[{i}].documents[{j}].type",
            "invalid_value",
            f"document type {doc.type} does not exist",
        )
    state = doc.issuing_state
    if state and _country(state.upper()) is None:
        _invalid_country(err, f"travellers[{i}].documents[{j}].issuing_state", state)
    expiry = doc.expiry
    year, month, day = expiry.year, expiry.month, expiry.day
    if not _ymd_ok(year, month, day):
        err(
            f"travellers[{i}].documents[{j}].expiry",
            "invalid_date",
            "expiry is not a possible date (unknown parts must be 0, the day before the month)",
        )
    elif year and year * 10000 + (month or 12) * 100 + (day or 31) < today:
        warn(
            f"travellers[{i}].documents[{j}].expiry",
            "document_expired",
            "the document expired before the flight's departure date",
        )
    if doc.mrz:
        _validate_mrz(i, j, t, doc, err, warn)


def _validate_mrz(i: int, j: int, t: manifest_pb2.Traveller, doc: manifest_pb2.Document, err, warn) -> None:
    path = f"travellers[{i}].documents[{j}]"
    try:
        zone = verify_mrz(doc.mrz)
    except MrzFormatError as exc:
        err(f"{path}.mrz", "invalid_mrz", f"not an ICAO 9303 machine-readable zone: {exc}")
        return
    for check in zone.failed_checks:
        err(
            f"{path}.mrz",
            "mrz_check_digit",
            f"the {_MRZ_CHECK_NAMES[check]} check digit in the MRZ ({check}) does not match its data "
            "(ICAO 9303 7-3-1 rule): the zone was mis-read or mis-typed; send it exactly as printed",
        )

    def mismatch(field: str, what: str) -> None:
        warn(
            field,
            "mrz_mismatch",
            f"{what} differs from the one in the {zone.format} MRZ ({path}.mrz); one of them is wrong",
        )

    if doc.number.strip() and _mrz_text(doc.number) != zone.document_number.replace("<", ""):
        mismatch(f"{path}.number", "document number")
    expiry = doc.expiry
    if expiry.year and _yymmdd_differs(zone.expiry, expiry.year, expiry.month, expiry.day):
        mismatch(f"{path}.expiry", "expiry date")
    if doc.issuing_state and zone.issuing_state and not _same_country(doc.issuing_state, zone.issuing_state):
        mismatch(f"{path}.issuing_state", "issuing state")
    dob = t.date_of_birth
    if dob.year and _yymmdd_differs(zone.birth_date, dob.year, dob.month, dob.day):
        mismatch(f"travellers[{i}].date_of_birth", "date of birth")
    if t.nationality and zone.nationality and not _same_country(t.nationality, zone.nationality):
        mismatch(f"travellers[{i}].nationality", "nationality")
