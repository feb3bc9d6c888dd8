"""Checks at the edge: pure functions from a Manifest to field-level violations.

The walking skeleton checks what the pipeline relies on (who, which flight, where, which travellers);
the carrier-intake work deepens it (MRZ check digits, expiry, message-type rules).
"""

from __future__ import annotations

from services.codec import complete_date
from services.geo import is_country, is_port
from services.wire import intake_pb2, manifest_pb2

Violation = intake_pb2.FieldViolation

# ICAO Doc 9303 codes that are not ISO 3166 countries but are valid nationalities / issuers.
ICAO_SPECIAL_CODES = frozenset(
    {
        "UNO",
        "UNA",
        "UNK",
        "XXA",
        "XXB",
        "XXC",
        "XXX",
        "XOM",
        "XPO",
        "XES",
        "XCC",
        "XBA",
        "XIM",
        "EUE",
        "GBD",
        "GBN",
        "GBO",
        "GBP",
        "GBS",
        "RKS",
        "D",
    }
)


def _country_ok(code: str) -> bool:
    return is_country(code) or code.upper() in ICAO_SPECIAL_CODES


def _date_ok(d: manifest_pb2.PartialDate) -> bool:
    if not d.year:
        return not (d.month or d.day)
    if not d.month:
        return not d.day
    if not 1 <= d.month <= 12:
        return False
    return not d.day or complete_date(d) is not None


def validate_manifest(m: manifest_pb2.Manifest) -> tuple[list[Violation], list[Violation]]:
    """(errors, warnings). Any error rejects the whole manifest."""
    errors: list[Violation] = []
    warnings: list[Violation] = []

    def err(field: str, code: str, description: str) -> None:
        errors.append(Violation(field=field, code=code, description=description))

    if not (2 <= len(m.carrier) <= 3 and m.carrier.isalnum()):
        err("carrier", "invalid_carrier", "carrier must be a 2-character IATA (or 3-character ICAO) code")
    if not m.flight_number.strip():
        err("flight_number", "required", "flight or voyage number is required")
    if m.transport_mode == manifest_pb2.TRANSPORT_MODE_UNSPECIFIED:
        err("transport_mode", "required", "transport mode must be AIR or SEA")
    if m.function == manifest_pb2.MESSAGE_FUNCTION_UNSPECIFIED:
        err("function", "required", "message function must be ORIGINAL, CHANGE, CANCEL or CLOSE_OUT")
    if not m.legs:
        err("legs", "required", "at least one leg with origin and destination is required")
    for i, leg in enumerate(m.legs):
        for name in ("origin", "destination"):
            port = getattr(leg, name)
            if not port:
                err(f"legs[{i}].{name}", "required", f"{name} port is required")
            elif not is_port(port):
                err(
                    f"legs[{i}].{name}",
                    "unknown_port",
                    f"'{port}' is neither a known IATA airport nor a UN/LOCODE",
                )
        if not leg.HasField("scheduled_departure"):
            err(f"legs[{i}].scheduled_departure", "required", "scheduled departure time is required")
    if not m.travellers and m.function != manifest_pb2.MESSAGE_FUNCTION_CANCEL:
        err("travellers", "required", "a manifest must list at least one traveller")
    for i, t in enumerate(m.travellers):
        _validate_traveller(f"travellers[{i}]", t, err, warnings)
    return errors, warnings


def _validate_traveller(path: str, t: manifest_pb2.Traveller, err, warnings: list[Violation]) -> None:
    if t.role == manifest_pb2.TRAVELLER_ROLE_UNSPECIFIED:
        err(f"{path}.role", "required", "role must be PASSENGER, CREW, TRANSIT_PASSENGER or TRANSIT_CREW")
    if not t.surname.strip():
        err(f"{path}.surname", "required", "surname is required")
    if not _date_ok(t.date_of_birth):
        err(f"{path}.date_of_birth", "invalid_date", "date of birth is not a possible (partial) date")
    elif not t.date_of_birth.year:
        warnings.append(
            Violation(
                field=f"{path}.date_of_birth",
                code="missing",
                description="date of birth is missing: watchlist screening is weaker",
            )
        )
    for name in ("nationality", "residence"):
        code = getattr(t, name)
        if code and not _country_ok(code):
            err(f"{path}.{name}", "invalid_country", f"'{code}' is not an ISO 3166-1 alpha-3 or ICAO code")
    for j, doc in enumerate(t.documents):
        dpath = f"{path}.documents[{j}]"
        if not doc.number.strip():
            err(f"{dpath}.number", "required", "document number is required")
        if doc.issuing_state and not _country_ok(doc.issuing_state):
            err(
                f"{dpath}.issuing_state",
                "invalid_country",
                f"'{doc.issuing_state}' is not an ISO 3166-1 alpha-3 or ICAO code",
            )
        if not _date_ok(doc.expiry):
            err(f"{dpath}.expiry", "invalid_date", "expiry is not a possible date")
