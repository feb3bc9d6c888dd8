"""Synthetic demo traffic: Pacific flights with made-up travellers, and watchlists that some of them are on.

Every name, date and document number here is invented. Seeded, so a demo run and a test see the same data. Used by
the demo (synthetic.demo), the tests and the benchmarks; never by the hub's runtime.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from services.wire import delivery_pb2, manifest_pb2

# (carrier, flight number, route): real city pairs of the region, invented schedules.
ROUTES = [
    ("FJ", "411", ["NAN", "SYD"]),
    ("FJ", "911", ["SYD", "NAN", "TBU"]),
    ("OL", "761", ["APW", "NAN"]),
    ("NZ", "946", ["AKL", "RAR"]),
    ("PX", "4", ["BNE", "POM"]),
    ("IE", "700", ["HIR", "BNE"]),
    ("NF", "21", ["VLI", "NOU"]),
    ("FJ", "271", ["NAN", "TRW", "HNL"]),
    ("ON", "1", ["BNE", "INU", "TRW"]),
    ("NZ", "996", ["AKL", "APW"]),
]
COUNTRIES = ["FJI", "WSM", "TON", "AUS", "NZL", "PNG", "SLB", "VUT", "KIR", "COK", "USA", "CHN", "PHL", "IND"]
SURNAMES = [
    "Tavola",
    "Fonoti",
    "Havili",
    "Kaufusi",
    "Waqa",
    "Rarotonga",
    "Tamapua",
    "Naivalu",
    "Kalsakau",
    "Morrison",
    "Chen",
    "Singh",
    "Nguyen",
    "Tamatea",
    "Leota",
    "Lagi",
    "Baravilala",
    "Kwaimani",
    "Tekanene",
    "Nakamura",
    "Aufai",
    "Vete",
    "Ratu",
    "Mariner",
    "Okafor",
]
GIVEN = [
    "Josefa",
    "Mele",
    "Sione",
    "Ana",
    "Tevita",
    "Losa",
    "Peni",
    "Grace",
    "John",
    "Mere",
    "Ioane",
    "Lani",
    "David",
    "Salote",
    "Viliami",
    "Emele",
    "Pita",
    "Ruth",
    "Kalo",
    "Amy",
    "Tomasi",
    "Luisa",
]


@dataclass(frozen=True)
class Person:
    surname: str
    given_names: str
    dob: manifest_pb2.PartialDate
    sex: int
    nationality: str
    document: str


def _person(rng: random.Random) -> Person:
    year = rng.randint(1950, 2012)
    dob = manifest_pb2.PartialDate(year=year, month=rng.randint(1, 12), day=rng.randint(1, 28))
    given = rng.choice(GIVEN) + (f" {rng.choice(GIVEN)}" if rng.random() < 0.3 else "")
    return Person(
        rng.choice(SURNAMES).upper(),
        given.upper(),
        dob,
        rng.choice([manifest_pb2.SEX_MALE, manifest_pb2.SEX_FEMALE]),
        rng.choice(COUNTRIES),
        f"{rng.choice('ABEFNPRS')}{rng.randint(1000000, 9999999)}",
    )


# Watchlisted people of the demo: (owner member, category, person). Built from a fixed seed.
def demo_watchlists(seed: int = 7) -> dict[str, list[delivery_pb2.WatchlistEntry]]:
    rng = random.Random(seed)
    categories = ["criminal_deportee", "people_smuggling", "document_fraud", "trafficking"]
    lists: dict[str, list[delivery_pb2.WatchlistEntry]] = {}
    for owner in ("FJI", "WSM", "AUS", "TON"):
        entries = []
        for i in range(5):
            p = _person(rng)
            entries.append(
                delivery_pb2.WatchlistEntry(
                    entry_id=f"{owner}-WL-{i + 1:04d}",
                    surname=p.surname,
                    given_names=p.given_names,
                    date_of_birth=p.dob,
                    sex=p.sex,
                    nationality=p.nationality,
                    document_number=p.document,
                    document_issuer=p.nationality,
                    category=rng.choice(categories),
                    owner=owner,
                )
            )
        lists[owner] = entries
    return lists


def _traveller(
    p: Person, role: int, ref: str, expiry: manifest_pb2.PartialDate, seat: str, locator: str
) -> manifest_pb2.Traveller:
    return manifest_pb2.Traveller(
        role=role,
        surname=p.surname,
        given_names=p.given_names,
        sex=p.sex,
        date_of_birth=p.dob,
        nationality=p.nationality,
        residence=p.nationality,
        passenger_ref=ref,
        seat=seat,
        reservation_locator=locator,
        documents=[
            manifest_pb2.Document(
                type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
                number=p.document,
                issuing_state=p.nationality,
                expiry=expiry,
            )
        ],
    )


class DemoTraffic:
    """An endless, repeatable sequence of manifests; roughly one in three carries a watchlisted person."""

    def __init__(self, seed: int = 11, start: datetime | None = None):
        self._rng = random.Random(seed)
        self._start = start or datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=6)
        self._n = 0
        # Passenger reference of the watchlisted person planted in the last manifest, if any.
        self.planted: str | None = None
        self._listed = [e for entries in demo_watchlists().values() for e in entries]

    def next_manifest(self, passengers: int | None = None) -> manifest_pb2.Manifest:
        rng = self._rng
        carrier, number, route = ROUTES[self._n % len(ROUTES)]
        departure = self._start + timedelta(minutes=37 * self._n)
        self._n += 1
        m = manifest_pb2.Manifest(
            carrier=carrier,
            transport_mode=manifest_pb2.TRANSPORT_MODE_AIR,
            flight_number=number,
            function=manifest_pb2.MESSAGE_FUNCTION_ORIGINAL,
            message_ref=f"DEMO{self._n:06d}",
            revision=1,
        )
        m.sent_at.GetCurrentTime()
        t = departure
        for origin, destination in zip(route, route[1:], strict=False):
            leg = m.legs.add(origin=origin, destination=destination)
            leg.scheduled_departure.CopyFrom(_ts(t))
            t += timedelta(hours=rng.randint(2, 5))
            leg.scheduled_arrival.CopyFrom(_ts(t))
            t += timedelta(hours=1)
        count = passengers or rng.randint(20, 60)
        add_passengers(m, rng, count, departure, f"{carrier}{number}")
        self.planted = None
        if rng.random() < 0.35:
            self.planted = f"{carrier}{number}-{count + 1:03d}"
            add_planted(m, rng.choice(self._listed), self.planted, departure)
        add_crew(m, rng, rng.randint(2, 6), departure, f"{carrier}{number}")
        return m


def add_passengers(
    m: manifest_pb2.Manifest,
    rng: random.Random,
    count: int,
    departure: datetime,
    ref: str,
    *,
    digits: int = 3,
    seat_rows: int = 40,
    seat_letters: str = "ABCDEF",
) -> None:
    """Append ``count`` made-up passengers; about one in 200 carries an expired passport."""
    for i in range(count):
        p = _person(rng)
        expiry_year = departure.year + rng.randint(1, 9)
        if rng.random() < 0.005:
            expiry_year = departure.year - 1  # an expired passport: the hub's starter rule flags it
        m.travellers.append(
            _traveller(
                p,
                manifest_pb2.TRAVELLER_ROLE_PASSENGER,
                f"{ref}-{i + 1:0{digits}d}",
                manifest_pb2.PartialDate(year=expiry_year, month=rng.randint(1, 12), day=rng.randint(1, 28)),
                f"{rng.randint(1, seat_rows)}{rng.choice(seat_letters)}",
                f"{rng.randrange(36**6):06X}"[:6],
            )
        )


def add_planted(m: manifest_pb2.Manifest, entry: delivery_pb2.WatchlistEntry, ref: str, departure: datetime) -> None:
    """Append the person of a watchlist entry as a passenger, exactly as listed."""
    listed = Person(
        entry.surname, entry.given_names, entry.date_of_birth, entry.sex, entry.nationality, entry.document_number
    )
    m.travellers.append(
        _traveller(
            listed,
            manifest_pb2.TRAVELLER_ROLE_PASSENGER,
            ref,
            manifest_pb2.PartialDate(year=departure.year + 3, month=6, day=1),
            "12C",
            "Q7ZK2M",
        )
    )


def add_crew(
    m: manifest_pb2.Manifest, rng: random.Random, count: int, departure: datetime, ref: str, *, digits: int = 2
) -> None:
    for j in range(count):
        m.travellers.append(
            _traveller(
                _person(rng),
                manifest_pb2.TRAVELLER_ROLE_CREW,
                f"{ref}-C{j + 1:0{digits}d}",
                manifest_pb2.PartialDate(year=departure.year + 4, month=1, day=1),
                "",
                "",
            )
        )


def change_of(manifest: manifest_pb2.Manifest, ref: str, amendment: int) -> manifest_pb2.Manifest:
    """The next version of a manifest: a change (CP, XR, RP as ``amendment`` says) naming the traveller with this
    reference."""
    change = manifest_pb2.Manifest()
    change.CopyFrom(manifest)
    change.function = manifest_pb2.MESSAGE_FUNCTION_CHANGE
    change.amendment = amendment
    change.revision = manifest.revision + 1
    change.sent_at.GetCurrentTime()
    del change.travellers[:]
    change.travellers.extend(t for t in manifest.travellers if t.passenger_ref == ref)
    return change


def cancelled_reservation(manifest: manifest_pb2.Manifest, ref: str) -> manifest_pb2.Manifest:
    """The next version of a manifest: a change (XR) taking the traveller with this reference off the flight."""
    return change_of(manifest, ref, manifest_pb2.AMENDMENT_CANCELLED_RESERVATION)


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts
