"""The flight part of one PAXLST message (TDT, LOC 125/87/92, DTM 189/232) onto the Manifest's carrier, flight
number, transport mode and legs. Used by services.paxlst.message.MessageReader, which hands it the segments
before the first traveller.

Leg times are local times at the airport (WCO/IATA PAXLST guide): converted to UTC with the airport's IANA zone
(services.geo.port_zone), and taken as UTC, with a warning, for ports without a known zone. An unreadable time
is left out with a warning: whether a leg without its departure time still names the flight is intake's call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.geo import port_zone
from services.paxlst.dates import BadDate, flight_time_fields
from services.paxlst.syntax import Segment
from services.wire import manifest_pb2

Warn = Callable[[str, str, str, Segment], None]


class _LegDraft:
    __slots__ = ("index", "tdt", "origin", "destination", "has_origin", "has_destination", "dep", "arr")

    def __init__(self, index: int, tdt: Segment):
        self.index, self.tdt = index, tdt
        self.origin = self.destination = ""
        self.has_origin = self.has_destination = False
        self.dep: Segment | None = None
        self.arr: Segment | None = None


class FlightReader:
    """Collects the legs of one message as its TDT, LOC and DTM segments come, and writes them at the end."""

    def __init__(self, m: manifest_pb2.Manifest, ref: date, locations: dict[str, str], warn: Warn):
        self.m, self.ref, self.locations, self.warn = m, ref, locations, warn
        self.legs: list[_LegDraft] = []
        self.leg: _LegDraft | None = None
        self.seen = False  # a TDT was read
        self.tdt: Segment | None = None
        self.ident = ""

    def on_tdt(self, seg: Segment) -> None:
        self.leg = None
        ident = seg.value(1).replace(" ", "")
        carrier = seg.value(4).upper()
        if not self.seen:
            self.seen = True
            m = self.m
            if not carrier:
                letters = re.match(r"[A-Z]{2,3}(?=\d)|[A-Z]\d(?=\d)|\d[A-Z](?=\d)", ident.upper())
                carrier = letters.group(0) if letters else ""
            m.carrier = carrier
            if carrier and ident.upper().startswith(carrier):
                m.flight_number = ident[len(carrier) :]
            else:
                designator = re.match(r"[A-Z]{2,3}(?=\d)", ident.upper())
                m.flight_number = ident[designator.end() :] if designator else ident
            mode = seg.value(2)
            m.transport_mode = manifest_pb2.TRANSPORT_MODE_SEA if mode == "1" else manifest_pb2.TRANSPORT_MODE_AIR
            for name in ("carrier", "flight_number", "transport_mode", "legs"):
                self.locations[name] = seg.label
            self.ident = ident
        elif ident != self.ident:
            self.warn("flight_number", "flight_differs", "a later TDT names another flight; the first is kept", seg)
        self.tdt = seg

    def new_leg(self) -> _LegDraft:
        assert self.tdt is not None  # legs start after a TDT (on_loc checks)
        leg = _LegDraft(len(self.legs), self.tdt)
        self.legs.append(leg)
        self.leg = leg
        return leg

    def on_loc(self, seg: Segment, qualifier: str) -> None:
        if not self.seen:
            self.warn("", "out_of_order", "LOC before the first TDT ignored", seg)
            return
        port = seg.value(1)
        leg = self.leg
        if qualifier == "125" or (qualifier == "92" and (leg is None or leg.has_destination)):
            if qualifier == "92" and leg is not None and port != leg.destination:
                # A lone LOC+92 after a complete leg continues the route from its destination.
                previous = leg
                leg = self.new_leg()
                leg.origin, leg.has_origin = previous.destination, True
                self.set_destination(leg, port, seg)
                return
            if leg is None or leg.has_origin or leg.has_destination:
                leg = self.new_leg()
            leg.origin, leg.has_origin = port, True
            self.locations[f"legs[{leg.index}].origin"] = seg.label
        elif qualifier in ("87", "92"):
            if leg is None or leg.has_destination:
                leg = self.new_leg()
            self.set_destination(leg, port, seg)
        elif qualifier != "130":
            self.warn("legs", "unknown_qualifier", f"LOC qualifier {qualifier[:4]!r} in a flight leg ignored", seg)

    def set_destination(self, leg: _LegDraft, port: str, seg: Segment) -> None:
        leg.destination, leg.has_destination = port, True
        self.locations[f"legs[{leg.index}].destination"] = seg.label

    def on_time(self, seg: Segment, qualifier: str) -> None:
        """DTM 189 (departure) or 232 (arrival) of the current leg."""
        if not self.seen:
            return
        leg = self.leg
        if leg is None:
            self.warn("legs", "out_of_order", "DTM before any LOC of the flight leg ignored", seg)
        elif qualifier == "189":
            leg.dep = seg
        else:
            leg.arr = seg

    def finish(self) -> None:
        for leg in self.legs:
            path = f"legs[{leg.index}]"
            self.locations[path] = leg.tdt.label
            out = self.m.legs.add(origin=leg.origin, destination=leg.destination)
            if leg.dep is not None:
                self.leg_time(out.scheduled_departure, leg.dep, leg.origin, path + ".scheduled_departure")
            if leg.arr is not None:
                self.leg_time(out.scheduled_arrival, leg.arr, leg.destination, path + ".scheduled_arrival")

    def leg_time(self, ts: Timestamp, seg: Segment, port: str, path: str) -> None:
        self.locations[path] = seg.label
        value, fmt = seg.value(0, 1).replace(" ", ""), seg.value(0, 2)
        try:
            fmt, year, month, day, hour, minute = flight_time_fields(value, fmt, self.ref)
        except BadDate as exc:
            self.warn(path, "invalid_date", f"{exc}: {value[:14]!r}: left out", seg)
            return
        if fmt in ("101", "102"):
            self.warn(path, "no_time", "flight date without a time of day: midnight assumed", seg)
        zone = port_zone(port) if port else None
        if zone is None:
            self.warn(path, "time_zone_unknown", f"no time zone known for port {port[:8]!r}: taken as UTC", seg)
        try:
            instant = datetime(year, month, day, hour, minute, tzinfo=zone or UTC).astimezone(UTC)
        except (OverflowError, ValueError):  # a local time at the edge of year 1 or 9999
            self.warn(path, "invalid_date", "flight time out of range: left out", seg)
            return
        ts.FromDatetime(instant)
