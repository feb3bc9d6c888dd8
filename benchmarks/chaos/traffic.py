"""The fault suite's traffic: demo manifests (synthetic.traffic) whose hits are known before they are sent, with
amendments and withdrawals in between, and the carrier that sends them and keeps every receipt.

What makes the expected hits exact: every manifest is its own flight (its own flight number), so no two manifests
share hit ids; nobody carries an expired document (the hub-wide rule would flag them); and ordinary travellers whose
made-up names happen to come close to a listed person are taken off before sending, found by screening the
manifests offline with the profiler's own scoring (the reference run without faults). What is left raises exactly
one hit per planted watchlist traveller.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from benchmarks.chaos.counting import AMENDED, FIRST, WITHDRAWN, Submission
from services import client, codec
from services.config import HubSettings
from services.directory import Directory
from services.wire import delivery_pb2, intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic, cancelled_reservation, change_of, demo_watchlists

# The reservation locator an amendment gives a planted traveller: how the suite tells an amended copy of a hit.
AMENDED_LOCATOR = "CHAOS2"
# Shares of the manifests with a planted traveller that are amended later, and whose traveller is withdrawn later.
AMEND_SHARE = 0.5
WITHDRAW_SHARE = 0.4
_STATUS = {
    intake_pb2.RECEIPT_STATUS_ACCEPTED: "accepted",
    intake_pb2.RECEIPT_STATUS_DUPLICATE: "duplicate",
}


@dataclass
class Planned:
    manifest: manifest_pb2.Manifest
    record: Submission


class Screen:
    """The profiler's scoring, offline, with the demo watchlists: which travellers of each manifest raise a hit."""

    def __init__(self, settings: HubSettings, directory: Directory):
        from services.profiler.watchlist import WatchlistStore, traveller_names

        self._store = WatchlistStore(traveller_names(settings))
        for owner, entries in demo_watchlists().items():
            self._store.apply(
                delivery_pb2.Watchlist(owner=owner, scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL, entries=entries)
            )
        self._directory = directory
        self._threshold = settings.lowest_screening_review

    def flagged(self, manifests: list[manifest_pb2.Manifest]) -> list[set[str]]:
        """Per manifest, the passenger references of its travellers that raise a hit."""
        from services.profiler.scoring import score_batch

        hits = score_batch(
            manifests, self._store, self._directory, datetime.now(UTC), watchlist_threshold=self._threshold
        )
        numbers = {m.flight_number: i for i, m in enumerate(manifests)}
        out: list[set[str]] = [set() for _ in manifests]
        for hit in hits:
            out[numbers[hit.flight.number]].add(hit.traveller.passenger_ref)
        return out


def _original(traffic: DemoTraffic, number: int) -> tuple[manifest_pb2.Manifest, str | None]:
    m = traffic.next_manifest()
    m.flight_number, m.message_ref = str(number), f"CHAOS{number}"
    year = m.legs[0].scheduled_departure.ToDatetime().year
    for t in m.travellers:
        for d in t.documents:
            d.expiry.year = max(d.expiry.year, year + 1)  # no expired documents: only watchlists raise hits
    return m, traffic.planted


def _clean(originals: list[tuple[manifest_pb2.Manifest, str | None]], screen: Screen) -> list[set[str]]:
    """Take off the ordinary travellers that raise a hit; return what each manifest raises then (planted only)."""
    manifests = [m for m, _ in originals]
    for (m, planted), refs in zip(originals, screen.flagged(manifests), strict=True):
        stray = refs - {planted}
        if stray:
            kept = [t for t in m.travellers if t.passenger_ref not in stray]
            del m.travellers[:]
            m.travellers.extend(kept)
    flagged = screen.flagged(manifests)
    for (m, planted), refs in zip(originals, flagged, strict=True):
        if refs - {planted}:
            raise RuntimeError(f"chaos traffic: flight {m.flight_number} still raises unplanned hits")
    return flagged


def _hit_ids(m: manifest_pb2.Manifest, refs: set[str]) -> tuple[str, ...]:
    key = codec.flight_key(m)
    return tuple(sorted(codec.hit_id(key, codec.traveller_key(t)) for t in m.travellers if t.passenger_ref in refs))


def amended(manifest: manifest_pb2.Manifest, ref: str) -> manifest_pb2.Manifest:
    """The next version of a manifest: a change (CP) correcting the reservation locator of one traveller."""
    change = change_of(manifest, ref, manifest_pb2.AMENDMENT_CHANGED_DATA)
    for t in change.travellers:
        t.reservation_locator = AMENDED_LOCATOR
    return change


def plan_traffic(count: int, first_number: int, seed: int, screen: Screen) -> list[Planned]:
    """``count`` original manifests (flight numbers from ``first_number``) and, a few manifests after some of those
    with a planted traveller, an amendment of that traveller and/or the withdrawal of its reservation, in the
    order they are to be sent."""
    rng = random.Random(seed)
    traffic = DemoTraffic(seed=seed)
    originals = [_original(traffic, first_number + i) for i in range(count)]
    flagged = _clean(originals, screen)
    later: dict[int, list[tuple[str, manifest_pb2.Manifest, tuple[str, ...], int]]] = {}
    order: list[Planned] = []
    for i, ((m, planted), refs) in enumerate(zip(originals, flagged, strict=True)):
        for kind, change, ids, origin in later.pop(i, []):
            order.append(Planned(change, Submission(0, kind, ids, tuple(codec.route_of(change)), after=origin)))
        ids = _hit_ids(m, refs)
        order.append(Planned(m, Submission(0, FIRST, ids, tuple(codec.route_of(m)))))
        if not ids or planted is None:
            continue
        origin, latest = len(order) - 1, m
        if rng.random() < AMEND_SHARE:
            latest = amended(m, planted)
            later.setdefault(i + rng.randint(2, 6), []).append((AMENDED, latest, ids, origin))
        if rng.random() < WITHDRAW_SHARE:
            cancel = cancelled_reservation(latest, planted)
            later.setdefault(i + rng.randint(7, 12), []).append((WITHDRAWN, cancel, ids, origin))
    for i in sorted(later):
        for kind, change, ids, origin in later[i]:
            order.append(Planned(change, Submission(0, kind, ids, tuple(codec.route_of(change)), after=origin)))
    for seq, p in enumerate(order):
        p.record.seq = seq
    return order


class Carrier(threading.Thread):
    """Sends a plan's manifests one by one, ``interval`` apart, as their carriers; retries one the hub could not
    answer (down, busy) until it gets a receipt or ``give_up_s`` passed, as a carrier keeping every receipt would.
    A change is sent only once its original is held. stop() ends it after the manifest in hand."""

    def __init__(
        self,
        plan: list[Planned],
        address: str,
        token: Callable[[str], str],
        interval: float,
        give_up_s: float = 180.0,
    ):
        super().__init__(daemon=True, name="chaos-carrier")
        self.plan, self._address, self._token = plan, address, token
        self._interval, self._give_up_s = interval, give_up_s
        self._halt = threading.Event()
        self._channel: grpc.Channel | None = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            for p in self.plan:
                if self._halt.is_set():
                    break
                if p.record.after is not None and not self.plan[p.record.after].record.held:
                    p.record.status = "skipped"
                    continue
                self._send(p)
                self._halt.wait(self._interval)
        finally:
            if self._channel is not None:
                self._channel.close()

    def _send(self, p: Planned) -> None:
        r = p.record
        r.first_try = time.monotonic()
        wait = 0.5
        while True:
            r.tries += 1
            if self._channel is None:
                self._channel = client.channel(self._address)
            try:
                receipt = client.submit(self._channel, self._token(p.manifest.carrier), [p.manifest], timeout=20)[0]
            except grpc.RpcError as exc:
                if exc.code() not in client.RETRY_LATER:  # as `apihub submit` tells a carrier
                    r.status = f"failed ({exc.code().name})"
                    return
                # A fresh channel each time: a channel's own reconnect backoff would outlast the service's restart.
                self._channel.close()
                self._channel = None
                if time.monotonic() - r.first_try > self._give_up_s:
                    r.status = "unconfirmed"
                    return
                time.sleep(wait)
                wait = min(wait * 2, 2.0)
                continue
            r.receipt_at = time.monotonic()
            r.status = _STATUS.get(receipt.status, "rejected")
            return
