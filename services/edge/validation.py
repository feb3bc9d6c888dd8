"""Checks at the edge: pure functions from a Manifest to field-level violations.

Every violation names a Manifest path ("travellers[3].documents[0].expiry"), a stable code and a description
a carrier's developer can act on. Descriptions never carry personal data (names, birth dates, document
numbers, MRZ text); codes, ports, country codes and carrier passenger references are fine.

Reject only what cannot be screened. An error (E) rejects the whole manifest; it is kept for what identifies and
routes the flight, and for a manifest with nobody to screen:

  the flight  carrier (2-3 letters/digits: routes the manifest and keys the flight)       E invalid_carrier
              flight_number (keys the flight)                                            E required
              legs: at least one; the FIRST leg's origin and destination known ports and its
              scheduled_departure a valid time (they make the flight key and route it)   E required / unknown_port /
                                                                                           invalid_date
  travellers  none at all (only a CANCEL may have none)                                  E required
              none with a usable name (a letter in the surname or the given names; a
              removal may name the traveller by passenger_ref alone)                     E no_usable_name

Everything else is a warning (W): the manifest is accepted and screened, the receipt says why. A warning whose
code is in DROPPED_CODES means intake cleaning (services.edge.cleaning) drops the flagged value (clears the
field) before storing the manifest, because screening on it would mislead; other warnings keep the value.

  manifest  transport_mode missing/unknown  W required / invalid_value  (screened as the ports show: SEA when
                                                                        every port is a 5-character UN/LOCODE)
            function missing/unknown        W required / invalid_value  (screened as an ORIGINAL)
            amendment unknown               W invalid_value             (dropped: a CHANGE then replaces)
  legs      later legs' ports               W required / unknown_port   (dropped: not used for routing)
            origin == destination           W same_port
            leg i destination != leg i+1 origin                         W legs_not_connected
            SEA with a port that is not a 5-character UN/LOCODE         W not_a_locode
            later legs' departure           W required / invalid_date (dropped)
            scheduled_arrival               W invalid_date (dropped) / arrival_before_departure (kept: which of
                                              the two times is wrong is unknown, e.g. UTC sent as local time)
            departure before the previous leg's departure               W departure_before_previous_leg
  traveller no usable name                  W no_usable_name on travellers[i]: the traveller is skipped (not
                                              stored, not screened); named by index and passenger_ref only
            surname (given names present)   W required (screened on the given names as a single name)
            role                            W required / invalid_value (dropped: screened as unspecified)
            sex                             W invalid_value (dropped; UNSPECIFIED is fine)
            date_of_birth                   W missing, impossible_date (a slip in one part, e.g. day 32: kept,
                                              screened on its parts), invalid_date / birth_date_in_future /
                                              birth_date_too_old (dropped)
            nationality, residence          W invalid_country (dropped)
            passenger_ref                   W required (CHANGE) / duplicate_passenger_ref (the repeat's dropped)
            embarkation, debarkation        W unknown_port (dropped)
            documents                       W missing (not asked of a CHANGE that removes: XR / RP)
  document  number                          W required
            type                            W invalid_value (dropped)
            issuing_state                   W invalid_country (dropped)
            expiry                          W invalid_date (dropped), document_expired (kept)
            mrz                             W invalid_mrz / mrz_check_digit (dropped: the structured fields are
                                              screened)
            MRZ vs number, expiry, issuing_state, nationality, date_of_birth   W mrz_mismatch (both kept)

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
# Warnings whose flagged value intake cleaning drops (clears the field) before storing the manifest: screening on
# it would mislead. The flagged field of every other warning keeps its value.
DROPPED_CODES = frozenset(
    {
        "invalid_value",
        "invalid_country",
        "unknown_port",
        "invalid_date",
        "birth_date_in_future",
        "birth_date_too_old",
        "invalid_mrz",
        "mrz_check_digit",
        "duplicate_passenger_ref",
    }
)
# The code of a warning on travellers[i] that skips the traveller (cleaning leaves it out of the stored manifest).
SKIPPED_TRAVELLER = "no_usable_name"
_DROPPED_NOTE = ": dropped"


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


def _invalid_country(report, field: str, code: str) -> None:
    report(
        field,
        "invalid_country",
        f"{_shown(code, 3)} is not an ISO 3166-1 alpha-3 code or an ICAO Doc 9303 code (e.g. FJI, XXA){_DROPPED_NOTE}",
    )


def _unknown_port(report, field: str, port: str, note: str = "") -> None:
    report(
        field,
        "unknown_port",
        f"{_shown(port, 5)} is neither a known IATA airport code (e.g. NAN) nor a UN/LOCODE (e.g. FJSUV){note}",
    )


def _shown_ref(ref: str) -> str:
    """A carrier passenger reference quoted when it is plain printable ASCII of a reference's size."""
    ref = ref.strip()
    if ref and len(ref) <= 35 and ref.isascii() and ref.isprintable() and " " not in ref and "'" not in ref:
        return f"passenger_ref '{ref}'"
    return "no usable passenger_ref"


def has_letter(text: str) -> bool:
    """Whether a name holds a letter of any script (what screening can compare)."""
    return any(map(str.isalpha, text))


def transport_mode_of(m: manifest_pb2.Manifest) -> int:
    """The manifest's transport mode; when missing or unknown, the one its port codes show: SEA when every port
    given is a 5-character UN/LOCODE, else AIR."""
    if m.transport_mode in _TRANSPORT_MODES:
        return m.transport_mode
    ports = [p for leg in m.legs for p in (_norm_port(leg.origin), _norm_port(leg.destination)) if p]
    return (
        manifest_pb2.TRANSPORT_MODE_SEA
        if ports and all(len(p) == 5 for p in ports)
        else manifest_pb2.TRANSPORT_MODE_AIR
    )


def function_of(m: manifest_pb2.Manifest) -> int:
    """The manifest's message function; ORIGINAL when missing or unknown."""
    return m.function if m.function in _FUNCTIONS else manifest_pb2.MESSAGE_FUNCTION_ORIGINAL


def removes_travellers(m: manifest_pb2.Manifest) -> bool:
    """A CANCEL, or a CHANGE that takes the travellers it names off the flight (XR / RP)."""
    return m.function == _CANCEL or (m.function == _CHANGE and m.amendment in _REMOVALS)


# -- the checks ----------------------------------------------------------------------------------------
def validate_manifest(m: manifest_pb2.Manifest) -> tuple[list[Violation], list[Violation]]:
    """(errors, warnings). Any error rejects the whole manifest; warnings travel in the receipt, and intake
    cleaning drops the values flagged by a warning whose code is in DROPPED_CODES."""
    errors: list[Violation] = []
    warnings: list[Violation] = []

    def err(field: str, code: str, description: str) -> None:
        errors.append(Violation(field=field, code=code, description=description))

    def warn(field: str, code: str, description: str) -> None:
        warnings.append(Violation(field=field, code=code, description=description))

    _validate_header(m, err, warn)
    _validate_legs(m, transport_mode_of(m) == manifest_pb2.TRANSPORT_MODE_SEA, err, warn)
    _validate_travellers(m, err, warn)
    return errors, warnings


def _validate_header(m: manifest_pb2.Manifest, err, warn) -> None:
    if not (2 <= len(m.carrier) <= 3 and m.carrier.isascii() and m.carrier.isalnum()):
        err("carrier", "invalid_carrier", "carrier must be a 2-character IATA (or 3-character ICAO) code")
    if not m.flight_number.strip():
        err("flight_number", "required", "flight or voyage number is required")
    mode, function = m.transport_mode, m.function
    if mode not in _TRANSPORT_MODES:
        shown = manifest_pb2.TransportMode.Name(transport_mode_of(m)).removeprefix("TRANSPORT_MODE_")
        if mode == manifest_pb2.TRANSPORT_MODE_UNSPECIFIED:
            warn("transport_mode", "required", f"transport mode (AIR or SEA) is missing: screened as {shown}")
        else:
            warn(
                "transport_mode",
                "invalid_value",
                f"transport mode {mode} does not exist (use AIR or SEA): screened as {shown}, as its ports show",
            )
    if function == manifest_pb2.MESSAGE_FUNCTION_UNSPECIFIED:
        warn(
            "function",
            "required",
            "message function (ORIGINAL, CHANGE, CANCEL or CLOSE_OUT) is missing: screened as an ORIGINAL",
        )
    elif function not in _FUNCTIONS:
        warn(
            "function",
            "invalid_value",
            f"message function {function} does not exist (use ORIGINAL, CHANGE, CANCEL or CLOSE_OUT): "
            "screened as an ORIGINAL",
        )
    if m.amendment not in _AMENDMENTS:
        warn(
            "amendment",
            "invalid_value",
            f"amendment {m.amendment} does not exist (use CHANGED_DATA, CANCELLED_RESERVATION or "
            "REDUCTION_IN_PARTY): dropped, so a CHANGE replaces the travellers it names",
        )


def _validate_legs(m: manifest_pb2.Manifest, sea: bool, err, warn) -> None:
    """The first leg keys and routes the flight: its ports and departure are errors; later legs only warn."""
    legs = m.legs
    if not legs:
        err("legs", "required", "at least one leg with origin, destination and scheduled departure is required")
        return
    previous_destination = None
    previous_departure = None
    for i, leg in enumerate(legs):
        origin, destination = _validate_ports(i, leg, sea, err if i == 0 else warn, warn)
        if origin and origin == destination:
            warn(
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
        departure = _validate_times(i, leg, err if i == 0 else warn, warn)
        if departure is not None and previous_departure is not None and departure < previous_departure:
            warn(
                f"legs[{i}].scheduled_departure",
                "departure_before_previous_leg",
                f"leg {i} departs before leg {i - 1} (both times must be UTC): legs are expected in order; "
                "kept as sent",
            )
        if departure is not None:
            previous_departure = departure


def _validate_ports(i: int, leg: manifest_pb2.Leg, sea: bool, report, warn) -> tuple[str, str]:
    """The leg's (origin, destination), normalised; `report` is err for the first leg, warn for the others."""
    note = "" if i == 0 else ": dropped (members of that port's country are not reached through it)"
    ports = []
    for name in ("origin", "destination"):
        port = _norm_port(getattr(leg, name))
        ports.append(port)
        if not port:
            report(
                f"legs[{i}].{name}",
                "required",
                f"{name} port is required" + (" (the first leg keys and routes the flight)" if i == 0 else ""),
            )
        elif _port(port) is None:
            _unknown_port(report, f"legs[{i}].{name}", port, note)
        elif sea and len(port) != 5:
            warn(
                f"legs[{i}].{name}",
                "not_a_locode",
                f"a sea voyage names ports by 5-character UN/LOCODE (e.g. FJSUV), not '{port}'",
            )
    return ports[0], ports[1]


def _validate_times(i: int, leg: manifest_pb2.Leg, report, warn) -> tuple[int, int] | None:
    """The leg's valid departure as (seconds, nanos), or None; `report` as in _validate_ports."""
    departure = arrival = None
    dropped = "" if i == 0 else ": dropped"
    if not leg.HasField("scheduled_departure"):
        report(f"legs[{i}].scheduled_departure", "required", "scheduled departure time is required")
    elif not _ts_ok(leg.scheduled_departure):
        report(f"legs[{i}].scheduled_departure", "invalid_date", f"scheduled departure is not a valid time{dropped}")
    else:
        departure = (leg.scheduled_departure.seconds, leg.scheduled_departure.nanos)
    if leg.HasField("scheduled_arrival"):
        if not _ts_ok(leg.scheduled_arrival):
            warn(f"legs[{i}].scheduled_arrival", "invalid_date", "scheduled arrival is not a valid time: dropped")
        else:
            arrival = (leg.scheduled_arrival.seconds, leg.scheduled_arrival.nanos)
    if departure is not None and arrival is not None and arrival <= departure:
        warn(
            f"legs[{i}].scheduled_arrival",
            "arrival_before_departure",
            "scheduled arrival is not after scheduled departure (both must be UTC; a local time sent as UTC "
            "shifts one of them): both kept as sent, the travellers are screened",
        )
    return departure


def _validate_travellers(m: manifest_pb2.Manifest, err, warn) -> None:
    function = m.function
    if not m.travellers:
        if function != _CANCEL:
            err("travellers", "required", "a manifest must list at least one traveller (only a CANCEL may have none)")
        return
    today, latest_today = _reference_days(m)
    change = function == _CHANGE
    removal = removes_travellers(m)
    documents_expected = not (change and m.amendment in _REMOVALS)
    seen_refs: dict[str, int] = {}
    usable = 0
    for i, t in enumerate(m.travellers):
        if not _named(i, t, removal, warn):
            continue
        usable += 1
        ref = t.passenger_ref
        if ref:
            first = seen_refs.setdefault(ref, i)
            if first != i:
                warn(
                    f"travellers[{i}].passenger_ref",
                    "duplicate_passenger_ref",
                    f"passenger_ref is already used by travellers[{first}]; each traveller needs its own "
                    "carrier reference (RFF+ABO): dropped from this traveller",
                )
        elif change:
            warn(
                f"travellers[{i}].passenger_ref",
                "required",
                "a CHANGE names the traveller it replaces or removes by passenger_ref (RFF+ABO); without one "
                "the traveller is screened as a new one: send the reference given in the original manifest",
            )
        _validate_traveller(i, t, today, latest_today, documents_expected, warn)
    if not usable and function != _CANCEL:
        err(
            "travellers",
            "no_usable_name",
            f"none of the {len(m.travellers)} travellers has a usable name (a letter in the surname or the "
            "given names): there is nobody to screen",
        )


def _named(i: int, t: manifest_pb2.Traveller, removal: bool, warn) -> bool:
    """Whether the traveller can be screened (or, in a removal, found): a letter in a name, or a removal's
    passenger_ref. A traveller that cannot is skipped with a warning naming it by index and reference only."""
    if has_letter(t.surname):
        return True
    if has_letter(t.given_names):
        warn(
            f"travellers[{i}].surname",
            "required",
            "surname is missing: screened on the given names as a single name (ICAO 9303 primary identifier)",
        )
        return True
    if removal and t.passenger_ref.strip():
        warn(f"travellers[{i}].surname", "required", "surname is missing: the traveller is found by passenger_ref")
        return True
    warn(
        f"travellers[{i}]",
        "no_usable_name",
        f"travellers[{i}] ({_shown_ref(t.passenger_ref)}) skipped: neither the surname nor the given names "
        "hold a letter, so it cannot be screened; it is not stored",
    )
    return False


def _validate_traveller(
    i: int, t: manifest_pb2.Traveller, today: int, latest_today: int, documents_expected: bool, warn
) -> None:
    role = t.role
    if role not in _ROLES:
        if role == manifest_pb2.TRAVELLER_ROLE_UNSPECIFIED:
            warn(
                f"travellers[{i}].role",
                "required",
                "role (PASSENGER, CREW, TRANSIT_PASSENGER or TRANSIT_CREW) is missing: screened as unspecified",
            )
        else:
            warn(
                f"travellers[{i}].role",
                "invalid_value",
                f"role {role} does not exist (use PASSENGER, CREW, TRANSIT_PASSENGER or TRANSIT_CREW): "
                "dropped, screened as unspecified",
            )
    if t.sex not in _SEXES:
        warn(
            f"travellers[{i}].sex",
            "invalid_value",
            f"sex {t.sex} does not exist (use MALE, FEMALE, X or leave it unset){_DROPPED_NOTE}",
        )

    _validate_birth_date(i, t.date_of_birth, today, latest_today, warn)

    for name in ("nationality", "residence"):
        code = getattr(t, name)
        if code and _country(code.upper()) is None:
            _invalid_country(warn, f"travellers[{i}].{name}", code)
    for name in ("embarkation", "debarkation"):
        port = getattr(t, name)
        if port and _port(_norm_port(port)) is None:
            _unknown_port(warn, f"travellers[{i}].{name}", port, _DROPPED_NOTE)

    if not t.documents:
        if documents_expected:
            warn(
                f"travellers[{i}].documents",
                "missing",
                "no travel document given: members cannot check the traveller's document",
            )
        return
    for j, doc in enumerate(t.documents):
        _validate_document(i, j, t, doc, today, warn)


def _validate_birth_date(i: int, dob: manifest_pb2.PartialDate, today: int, latest_today: int, warn) -> None:
    year, month, day = dob.year, dob.month, dob.day
    field = f"travellers[{i}].date_of_birth"
    # A slip in one part of a year-month(-day) date (day 32, 30 February, month 13) leaves a date that screening
    # still compares part by part: kept. A date that is no date, or one that cannot be the traveller's (after the
    # flight, more than 130 years before it), would mislead screening: dropped.
    possible = _ymd_ok(year, month, day)
    slip = not possible and 1 <= year <= 9999 and 1 <= month <= 99 and 0 <= day <= 99
    if not possible and not slip:
        warn(
            field,
            "invalid_date",
            f"date of birth is not a possible date (unknown parts must be 0, the day before the month){_DROPPED_NOTE}",
        )
    elif not year:
        warn(field, "missing", "date of birth is missing: watchlist screening is weaker")
    else:
        if slip:
            warn(field, "impossible_date", "date of birth is not a possible date: screened on its parts as sent")
        month, day = min(month, 12), min(day, 31)
        if year * 10000 + (month or 1) * 100 + (day or 1) > latest_today:
            warn(
                field,
                "birth_date_in_future",
                "date of birth is after the flight's departure date; check the century of a 2-digit year"
                f"{_DROPPED_NOTE}",
            )
        elif year * 10000 + (month or 12) * 100 + (day or 31) < today - _MAX_AGE_YEARS * 10000:
            warn(
                field,
                "birth_date_too_old",
                f"date of birth is more than {_MAX_AGE_YEARS} years before departure; "
                f"check the century of a 2-digit year{_DROPPED_NOTE}",
            )


def _validate_document(i: int, j: int, t: manifest_pb2.Traveller, doc: manifest_pb2.Document, today: int, warn) -> None:
    path = f"travellers[{i}].documents[{j}]"
    if not doc.number.strip():
        warn(f"{path}.number", "required", "document number is missing: the document cannot be matched")
    if doc.type not in _DOCUMENT_TYPES:
        warn(f"{path}.type", "invalid_value", f"document type {doc.type} does not exist{_DROPPED_NOTE}")
    state = doc.issuing_state
    if state and _country(state.upper()) is None:
        _invalid_country(warn, f"{path}.issuing_state", state)
    expiry = doc.expiry
    year, month, day = expiry.year, expiry.month, expiry.day
    if not _ymd_ok(year, month, day):
        warn(
            f"{path}.expiry",
            "invalid_date",
            f"expiry is not a possible date (unknown parts must be 0, the day before the month){_DROPPED_NOTE}",
        )
    elif year and year * 10000 + (month or 12) * 100 + (day or 31) < today:
        warn(f"{path}.expiry", "document_expired", "the document expired before the flight's departure date")
    if doc.mrz:
        _validate_mrz(i, j, t, doc, warn)


def _validate_mrz(i: int, j: int, t: manifest_pb2.Traveller, doc: manifest_pb2.Document, warn) -> None:
    path = f"travellers[{i}].documents[{j}]"
    try:
        zone = verify_mrz(doc.mrz)
    except MrzFormatError as exc:
        warn(
            f"{path}.mrz",
            "invalid_mrz",
            f"not an ICAO 9303 machine-readable zone: {exc}: dropped, the structured fields are screened",
        )
        return
    for check in zone.failed_checks:
        warn(
            f"{path}.mrz",
            "mrz_check_digit",
            f"the {_MRZ_CHECK_NAMES[check]} check digit in the MRZ ({check}) does not match its data "
            "(ICAO 9303 7-3-1 rule): the zone was mis-read or mis-typed; send it exactly as printed. "
            "Dropped, the structured fields are screened",
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
