"""Load generator: realistic, seeded synthetic Pacific traffic and an open-loop pacer.

Traffic: scheduled flights among member airports and the regional gateways (Sydney, Brisbane, Auckland,
Honolulu, Manila...), each with an aircraft whose seat count bounds the load factor; cruise calls with thousands of
passengers and hundreds of crew on voyages between UN/LOCODE seaports; crew lists on every movement; and
amendments (a cancelled reservation, XR) of manifests sent earlier. Names, dates and documents are invented
(synthetic.traffic's person generator); a share of manifests carries a person from the demo watchlists so the
hub raises hits that a member then receives.

The same seed gives the same sequence of manifests (apart from ``sent_at``, stamped when built).

The pacer is open loop: it sends at the offered rate whatever the system under test does (a slow reply does not
slow the offered load; it queues in the sender's thread pool instead), and records every send time, so latency
includes queueing (no coordinated omission).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.wire import manifest_pb2
from synthetic.traffic import _ts, add_crew, add_passengers, add_planted, cancelled_reservation, demo_watchlists

# Aircraft on Pacific routes and their typical seat counts (manufacturers' typical two-class layouts).
AIRCRAFT = {
    "A350": 334,
    "B789": 290,
    "A332": 270,
    "B738": 170,
    "A320": 168,
    "A21N": 200,
    "ATR72": 68,
    "DH8": 50,
}

# (carrier, flight number, route of IATA airports, aircraft, departures per week): real city pairs of the
# region; the numbers and frequencies are invented but of the right order.
FLIGHTS: list[tuple[str, str, list[str], str, int]] = [
    ("FJ", "911", ["SYD", "NAN"], "A350", 14),
    ("FJ", "411", ["BNE", "NAN"], "A332", 7),
    ("FJ", "281", ["NAN", "AKL"], "A332", 10),
    ("FJ", "271", ["NAN", "TRW", "HNL"], "B738", 2),
    ("FJ", "231", ["NAN", "APW"], "B738", 7),
    ("FJ", "261", ["NAN", "VLI"], "ATR72", 4),
    ("NZ", "946", ["AKL", "RAR"], "A21N", 10),
    ("NZ", "990", ["AKL", "APW"], "A320", 7),
    ("NZ", "970", ["AKL", "TBU"], "A320", 5),
    ("NZ", "52", ["AKL", "NAN"], "B789", 10),
    ("QF", "101", ["SYD", "NOU"], "B738", 3),
    ("PX", "4", ["BNE", "POM"], "B738", 14),
    ("PX", "84", ["POM", "HIR"], "DH8", 4),
    ("IE", "700", ["HIR", "BNE"], "A320", 5),
    ("NF", "21", ["VLI", "NOU"], "ATR72", 3),
    ("NF", "10", ["BNE", "VLI"], "B738", 5),
    ("OL", "761", ["APW", "NAN"], "B738", 4),
    ("SB", "810", ["NOU", "SYD"], "A320", 4),
    ("TN", "101", ["PPT", "AKL"], "B789", 3),
    ("UA", "154", ["HNL", "MAJ", "KWA", "PNI", "GUM"], "B738", 3),
    ("UA", "155", ["GUM", "ROR"], "B738", 5),
    ("ON", "1", ["BNE", "INU", "TRW"], "B738", 2),
    ("PR", "215", ["MNL", "POM"], "A320", 2),
]

# Cruise ships calling in the region: (line code, voyage prefix, ports as UN/LOCODE, berths, crew).
CRUISES: list[tuple[str, str, list[str], int, int]] = [
    ("CCL", "PCE", ["AUSYD", "NCNOU", "VUVLI", "FJSUV"], 2600, 900),
    ("RCL", "OVS", ["AUBNE", "NCLIF", "VUVLI", "FJLTK"], 4200, 1500),
    ("PCL", "MAJ", ["NZAKL", "TOTBU", "WSAPW", "FJSUV"], 2000, 900),
    ("CCL", "PEN", ["AUBNE", "PGGUR", "SBHIR", "VUSAN"], 2000, 850),
    ("NCL", "JWL", ["PFPPT", "CKRAR", "TOTBU", "FJSUV"], 2400, 1100),
]
SEA_CARRIER_CODES = {"CCL": "CC", "RCL": "RC", "PCL": "PO", "NCL": "NC"}


@dataclass(frozen=True)
class TrafficMix:
    """Shares of the synthetic traffic; every knob is a probability per generated manifest."""

    # Share of manifests that are cruise calls (thousands of passengers in one message).
    cruise_share: float = 0.02
    # Share of manifests that amend an earlier one (cancelled reservation, XR).
    amendment_share: float = 0.08
    # Share of flights with a watchlisted person aboard (a hit the member receives).
    planted_share: float = 0.35
    # Seat load factor range of flights.
    load_factor: tuple[float, float] = (0.6, 0.95)
    # Cap on a cruise ship's passengers (quick runs use smaller ships to stay within time).
    max_cruise_passengers: int = 5000


@dataclass
class PacificTraffic:
    """An endless, repeatable sequence of Pacific manifests (air, sea, amendments)."""

    seed: int = 2018
    mix: TrafficMix = field(default_factory=TrafficMix)
    run: str = "BENCH"
    start: datetime | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0
        self._start = self.start or datetime(2030, 1, 1, 6, tzinfo=UTC)
        self._listed = [e for entries in demo_watchlists().values() for e in entries]
        self._sent: list[tuple[manifest_pb2.Manifest, str]] = []
        weights = [f[4] for f in FLIGHTS]
        self._flight_weights = weights

    def __iter__(self) -> Iterator[manifest_pb2.Manifest]:
        while True:
            yield self.next_manifest()

    def take(self, count: int) -> list[manifest_pb2.Manifest]:
        return [self.next_manifest() for _ in range(count)]

    def next_manifest(self) -> manifest_pb2.Manifest:
        rng = self._rng
        self._n += 1
        roll = rng.random()
        if self._sent and roll < self.mix.amendment_share:
            original, ref = self._sent.pop(rng.randrange(len(self._sent)))
            change = cancelled_reservation(original, ref)
            change.message_ref = f"{self.run}{self._n:07d}"
            return change
        if roll < self.mix.amendment_share + self.mix.cruise_share:
            return self._cruise()
        return self._flight()

    # -- movements -----------------------------------------------------------------------------------------

    def _departure(self) -> datetime:
        return self._start + timedelta(minutes=11 * self._n)

    def _header(self, carrier: str, number: str, mode: int) -> manifest_pb2.Manifest:
        m = manifest_pb2.Manifest(
            carrier=carrier,
            transport_mode=mode,
            flight_number=number,
            function=manifest_pb2.MESSAGE_FUNCTION_ORIGINAL,
            message_ref=f"{self.run}{self._n:07d}",
            revision=1,
        )
        m.sent_at.GetCurrentTime()
        return m

    def _legs(self, m: manifest_pb2.Manifest, route: list[str], departure: datetime, hours: tuple[int, int]) -> None:
        t = departure
        for origin, destination in zip(route, route[1:], strict=False):
            leg = m.legs.add(origin=origin, destination=destination)
            leg.scheduled_departure.CopyFrom(_ts(t))
            t += timedelta(hours=self._rng.randint(*hours))
            leg.scheduled_arrival.CopyFrom(_ts(t))
            t += timedelta(hours=1)

    def _flight(self) -> manifest_pb2.Manifest:
        rng = self._rng
        carrier, number, route, aircraft, _ = rng.choices(FLIGHTS, weights=self._flight_weights)[0]
        departure = self._departure()
        m = self._header(carrier, number, manifest_pb2.TRANSPORT_MODE_AIR)
        self._legs(m, route, departure, (1, 6))
        seats = AIRCRAFT[aircraft]
        passengers = max(1, int(seats * rng.uniform(*self.mix.load_factor)))
        crew = 2 + seats // 50
        self._people(m, passengers, crew, departure, f"{carrier}{number}")
        return m

    def _cruise(self) -> manifest_pb2.Manifest:
        rng = self._rng
        line, prefix, ports, berths, crew = rng.choice(CRUISES)
        departure = self._departure()
        voyage = f"{prefix}{rng.randint(100, 999)}"
        m = self._header(SEA_CARRIER_CODES[line], voyage, manifest_pb2.TRANSPORT_MODE_SEA)
        self._legs(m, ports, departure, (14, 40))
        passengers = min(self.mix.max_cruise_passengers, int(berths * rng.uniform(0.85, 1.05)))
        self._people(m, passengers, crew, departure, voyage)
        return m

    def _people(self, m: manifest_pb2.Manifest, passengers: int, crew: int, departure: datetime, ref: str) -> None:
        rng = self._rng
        add_passengers(m, rng, passengers, departure, ref, digits=5, seat_rows=60, seat_letters="ABCDEFGHJK")
        if rng.random() < self.mix.planted_share:
            planted_ref = f"{ref}-{passengers + 1:05d}"
            add_planted(m, rng.choice(self._listed), planted_ref, departure)
            self._sent.append((m, planted_ref))
            del self._sent[:-50]  # amend only recent manifests; bounded memory
        add_crew(m, rng, crew, departure, ref, digits=4)


def travellers_of(manifests: list[manifest_pb2.Manifest]) -> int:
    return sum(len(m.travellers) for m in manifests)


@dataclass
class PacedRun:
    """What the pacer did: when each item was due and sent, when its reply came, and failures."""

    offered_rate: float
    due: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.done)

    @property
    def achieved_rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0


def schedule(rate: float, duration: float, max_items: int) -> list[float]:
    """Offsets (s) of an evenly paced open-loop schedule: ``rate`` per second for ``duration``, at most
    ``max_items``."""
    if rate <= 0 or duration <= 0:
        return []
    count = min(max_items, int(rate * duration))
    return [i / rate for i in range(count)]


def pace(
    items: list,
    send: Callable[[object], object],
    rate: float,
    duration: float,
    workers: int = 16,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.perf_counter,
) -> PacedRun:
    """Send ``items`` (cycled) at ``rate`` per second for at most ``duration`` seconds, open loop.

    Each send runs in a worker thread so a slow reply does not delay the next due send; ``timeout`` bounds the
    wait for outstanding replies after the last send.
    """
    offsets = schedule(rate, duration, max_items=len(items))
    run = PacedRun(offered_rate=rate)
    lock = threading.Lock()

    def one(item, due_at: float) -> None:
        sent_at = clock()
        try:
            send(item)
        except Exception:
            with lock:
                run.errors += 1
            return
        with lock:
            run.sent.append(sent_at)
            run.due.append(due_at)
            run.done.append(clock())

    start = clock()
    with ThreadPoolExecutor(workers) as pool:
        futures = []
        for item, offset in zip(items, offsets, strict=False):
            delay = start + offset - clock()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, item, start + offset))
        deadline = time.monotonic() + timeout
        for f in futures:
            f.result(timeout=max(0.1, deadline - time.monotonic()))
    run.elapsed = clock() - start
    return run
