"""Conversions shared by every service: ids, flight keys, partial dates, and the JSON forms users see."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime

from google.protobuf import json_format

from services.wire import delivery_pb2, hit_pb2, manifest_pb2

PASSENGER_ROLES = (
    manifest_pb2.TRAVELLER_ROLE_PASSENGER,
    manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER,
)
CREW_ROLES = (manifest_pb2.TRAVELLER_ROLE_CREW, manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW)
# A reader's name (SubscribeRequest.reader): one of a member's tools with a cursor of its own ("cli", "console");
# "" (not matched here) is the member's contact point.
READER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
READER_RULE = "1-32 characters of a-z, 0-9 and '-', starting with a letter or digit (e.g. cli, console)"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def manifest_id(manifest: manifest_pb2.Manifest) -> str:
    """Deterministic id of one manifest version.

    With a carrier message reference the id is (carrier, reference, revision), so a resend of the same
    version gets the same id; without one it is the content itself.
    """
    if manifest.message_ref:
        parts = ("ref", manifest.carrier, manifest.message_ref, str(manifest.revision))
        return "m-" + _digest(*parts, *([str(manifest.part)] if manifest.part > 1 else []))[:24]
    body = manifest_pb2.Manifest()
    body.CopyFrom(manifest)
    body.ClearField("manifest_id")
    body.ClearField("received_at")
    return "m-" + hashlib.sha256(b"id\x1f" + body.SerializeToString(deterministic=True)).hexdigest()[:24]


def duplicate_keys(manifest: manifest_pb2.Manifest) -> list[str]:
    """Keys under which intake recognises a resend: the carrier's reference and revision, and the content.

    The content key ignores what a resend changes without changing the message (the envelope's send time,
    the hub's own fields), so the same interchange sent twice is one manifest; it keeps the reference and
    revision, so a new version is never mistaken for an old one that happened to list the same people.
    """
    body = manifest_pb2.Manifest()
    body.CopyFrom(manifest)
    for name in ("manifest_id", "received_at", "sent_at", "source_format"):
        body.ClearField(name)
    content = hashlib.sha256(b"content\x1f" + body.SerializeToString(deterministic=True)).hexdigest()
    keys = ["content:" + content[:32]]
    if manifest.message_ref:
        keys.append(f"ref:{manifest.carrier}|{manifest.message_ref}|{manifest.revision}|{manifest.part}")
    return keys


def route_of(manifest: manifest_pb2.Manifest) -> list[str]:
    """Ports of the itinerary in order, each once: origin, transits, destination."""
    route: list[str] = []
    for leg in manifest.legs:
        for port in (leg.origin, leg.destination):
            if port and (not route or route[-1] != port):
                route.append(port)
    return route


def first_departure(manifest: manifest_pb2.Manifest) -> datetime | None:
    if manifest.legs and manifest.legs[0].HasField("scheduled_departure"):
        return manifest.legs[0].scheduled_departure.ToDatetime(tzinfo=UTC)
    return None


def flight_key(manifest: manifest_pb2.Manifest) -> str:
    """(carrier, flight number, departure date, origin): every version of one flight shares it."""
    dep = first_departure(manifest)
    origin = manifest.legs[0].origin if manifest.legs else ""
    return f"{manifest.carrier}{manifest.flight_number}/{dep.date().isoformat() if dep else ''}/{origin}"


def flight_key_of(ref: hit_pb2.FlightRef) -> str:
    """The flight key of a hit's flight: the same string as flight_key() of the manifest it came from."""
    dep = ref.departure.ToDatetime(tzinfo=UTC) if ref.HasField("departure") else None
    origin = ref.route[0] if ref.route else ref.origin
    return f"{ref.carrier}{ref.number}/{dep.date().isoformat() if dep else ''}/{origin}"


def traveller_key(traveller: manifest_pb2.Traveller) -> str:
    """What identifies a traveller across versions of a flight's manifest.

    The carrier's passenger reference when there is one (a change message names whom it replaces by it);
    otherwise name, birth date and first document, which a correction of those fields changes.
    """
    if traveller.passenger_ref:
        return "ref:" + traveller.passenger_ref
    doc = traveller.documents[0].number if traveller.documents else ""
    name = " ".join(f"{traveller.surname}|{traveller.given_names}".upper().split())
    return f"id:{name}|{format_partial_date(traveller.date_of_birth)}|{doc.upper()}"


def hit_id(flight: str, traveller: str) -> str:
    """One hit id per traveller per flight: replays and later versions of the manifest keep it."""
    return "h-" + _digest("hit", flight, traveller)[:24]


def hit_fingerprint(hit: hit_pb2.Hit) -> str:
    """What a member would see change between two versions of a hit: reasons, score, traveller, flight and
    state; not which manifest version or when (a resend that changes nothing is not news), nor the version number
    the router gives a copy (Hit.version: it numbers what this fingerprint tells apart)."""
    body = hit_pb2.Hit()
    body.CopyFrom(hit)
    for name in ("recipient", "manifest_id", "raised_at", "manifest_received_at", "withdrawn_hit_ids", "version"):
        body.ClearField(name)
    return hashlib.sha256(b"fp\x1f" + body.SerializeToString(deterministic=True)).hexdigest()[:16]


def flight_ref(manifest: manifest_pb2.Manifest) -> hit_pb2.FlightRef:
    ref = hit_pb2.FlightRef(carrier=manifest.carrier, number=manifest.flight_number)
    route = route_of(manifest)
    ref.route.extend(route)
    if route:
        ref.origin, ref.destination = route[0], route[-1]
    if manifest.legs and manifest.legs[0].HasField("scheduled_departure"):
        ref.departure.CopyFrom(manifest.legs[0].scheduled_departure)
    return ref


def format_partial_date(d: manifest_pb2.PartialDate) -> str:
    """'YYYY-MM-DD', 'YYYY-MM', 'YYYY', or '' when unknown."""
    if not d.year:
        return ""
    if not d.month:
        return f"{d.year:04d}"
    if not d.day:
        return f"{d.year:04d}-{d.month:02d}"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def parse_partial_date(text: str) -> manifest_pb2.PartialDate:
    """Inverse of format_partial_date; raises ValueError naming what is wrong."""
    text = text.strip()
    if not text:
        return manifest_pb2.PartialDate()
    parts = text.split("-")
    if len(parts) > 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError(f"'{text}' is not YYYY-MM-DD, YYYY-MM or YYYY")
    year, month, day = (int(p) for p in parts + ["0"] * (3 - len(parts)))
    if month and not 1 <= month <= 12:
        raise ValueError(f"'{text}': month {month} does not exist")
    if day:
        date(year, month, day)  # raises ValueError for 2023-02-30
    return manifest_pb2.PartialDate(year=year, month=month, day=day)


def complete_date(d: manifest_pb2.PartialDate) -> date | None:
    """A full calendar date, or None when any part is unknown or impossible."""
    if not (d.year and d.month and d.day):
        return None
    try:
        return date(d.year, d.month, d.day)
    except ValueError:
        return None


def passenger_ref(traveller: manifest_pb2.Traveller, index: int) -> str:
    """How hits name a traveller: the carrier's reference, else the position in the manifest."""
    return traveller.passenger_ref or f"#{index + 1}"


def count_roles(manifest: manifest_pb2.Manifest) -> tuple[int, int]:
    """(passengers, crew)."""
    crew = sum(1 for t in manifest.travellers if t.role in CREW_ROLES)
    return len(manifest.travellers) - crew, crew


def _timestamp_iso(ts) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z") if ts.seconds or ts.nanos else ""


_REASON_SOURCES = {
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}
# A watchlist reason's screening band in a member's copy; "" for other reasons and untailored hits.
_SCREENING_BANDS = {
    hit_pb2.SCREENING_BAND_ALERT: "alert",
    hit_pb2.SCREENING_BAND_REVIEW: "review",
}


def hit_to_json(hit: hit_pb2.Hit, cursor: int | None = None) -> dict:
    """The JSON form of a hit that `apihub hits follow --json` prints (and later `apihub screen`)."""
    t = hit.traveller
    doc = t.documents[0].number if t.documents else ""
    out = {
        "hit_id": hit.hit_id,
        # Members de-duplicate on (hit_id, version): a copy delivered again after a crash repeats its version.
        "version": hit.version,
        "recipient": hit.recipient,
        "manifest_id": hit.manifest_id,
        "state": "withdrawn" if hit.state == hit_pb2.HIT_STATE_WITHDRAWN else "active",
        "flight": {
            "carrier": hit.flight.carrier,
            "number": hit.flight.number,
            "departure": _timestamp_iso(hit.flight.departure),
            "origin": hit.flight.origin,
            "destination": hit.flight.destination,
            "route": list(hit.flight.route),
        },
        "passenger": {
            "ref": t.passenger_ref,
            "role": manifest_pb2.TravellerRole.Name(t.role).removeprefix("TRAVELLER_ROLE_").lower(),
            "surname": t.surname,
            "given_names": t.given_names,
            "date_of_birth": format_partial_date(t.date_of_birth),
            "nationality": t.nationality,
            "document_number": doc,
            "reservation_locator": t.reservation_locator,
        },
        "score": round(hit.score, 4),
        "reasons": [
            {
                "source": _REASON_SOURCES.get(r.source, "unspecified"),
                "id": r.id,
                "score": round(r.score, 4),
                "explanation": r.explanation,
                "owner": r.owner,
                "category": r.category,
                "band": _SCREENING_BANDS.get(r.band, ""),
            }
            for r in hit.reasons
        ],
        # Only review-band watchlist matches and/or the risk model's ranking: for a human to review first.
        "for_review": hit.for_review,
        "raised_at": _timestamp_iso(hit.raised_at),
    }
    if cursor is not None:
        out["cursor"] = cursor
    return out


def manifest_from_json(text: str) -> manifest_pb2.Manifest:
    """The JSON form of the proto (field names as in the .proto or lowerCamelCase); raises ParseError."""
    return json_format.Parse(text, manifest_pb2.Manifest())


def watchlist_scope_name(scope: int) -> str:
    return delivery_pb2.WatchlistScope.Name(scope).removeprefix("WATCHLIST_SCOPE_").lower()


def warm_up_manifest() -> manifest_pb2.Manifest:
    """Nobody's manifest (one passenger on a flight departing now), for the services' warm-up before they serve:
    intake cleans and validates it, the profiler scores it; nothing about it is ever sent."""
    sample = manifest_pb2.Manifest(carrier="ZZ", flight_number="1", message_ref="warm-up", manifest_id="warm-up")
    sample.legs.add(origin="SYD", destination="NAN").scheduled_departure.GetCurrentTime()
    traveller = sample.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="WARM",
        given_names="UP",
        nationality="AUS",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=1, day=1),
        passenger_ref="W1",
    )
    traveller.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number="X0000000",
        issuing_state="AUS",
        expiry=manifest_pb2.PartialDate(year=2040, month=1, day=1),
    )
    return sample
