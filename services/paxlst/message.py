"""One PAXLST message (UNH ... UNT) onto a Manifest: a handler per segment tag (BGM, RFF, TDT, LOC, DTM, NAD,
ATT, NAT, DOC, CNT), collecting violations and where each Manifest field came from.

The flight part (TDT, LOC, DTM 189/232: carrier, flight and legs, leg times from local time to UTC) is read by
services.paxlst.legs; the travellers, the header and the trailer here.

Reject only what cannot be screened: a message is rejected here only when it is not PAXLST or names no flight
(no TDT). What the reader cannot make sense of otherwise is read past with a warning naming the segment, and the
travellers are screened: an unknown or missing message function (BGM) is read as an original list (nothing is
removed), an unknown NAD qualifier as a passenger, an unreadable date or revision is left out. Whether what is
left is enough (a surname, a departure time) and the sizes of fields are intake's to judge
(services.api_ingest): this module keeps values as sent, apart from segments the tokeniser cut for size.

Not supported: multi-part messages (UNH ...+01:C ... nn:F) are read part by part, not joined (warning); segments
the Manifest has no field for (addresses, MEA bags, GEI, FTX bag tags, COM, EMP, LOC 22/180, DTM 182, other RFF
qualifiers) are read past.
"""

from __future__ import annotations

from datetime import date

from services.paxlst.dates import BadDate, birth_year, check_day, dtm_fields, expiry_year, possible_birth_parts
from services.paxlst.legs import FlightReader
from services.paxlst.syntax import Segment, warn_cut
from services.paxlst.violations import Violation, Violations, violation
from services.wire import manifest_pb2

# Directories of the UN/EDIFACT PAXLST message this reader follows; others are read with a warning.
DIRECTORIES = frozenset({"02B", "05B", "15B"})

_ROLES = {
    "FL": manifest_pb2.TRAVELLER_ROLE_PASSENGER,
    "FM": manifest_pb2.TRAVELLER_ROLE_CREW,
    "DDU": manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER,
    "DDT": manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW,
}
_SEXES = {"M": manifest_pb2.SEX_MALE, "F": manifest_pb2.SEX_FEMALE, "X": manifest_pb2.SEX_X, "U": 0, "": 0}
_DOC_TYPES = {
    "P": manifest_pb2.DOCUMENT_TYPE_PASSPORT,
    "I": manifest_pb2.DOCUMENT_TYPE_IDENTITY_CARD,
    "V": manifest_pb2.DOCUMENT_TYPE_VISA,
    "AC": manifest_pb2.DOCUMENT_TYPE_CREW_LICENCE,
}
_CHANGE = manifest_pb2.MESSAGE_FUNCTION_CHANGE
# BGM 1001 (document) and 1004 (function) -> (function, amendment, boarding).
_LIST_FUNCTIONS = {
    "": (manifest_pb2.MESSAGE_FUNCTION_ORIGINAL, 0, 0),
    "CP": (_CHANGE, manifest_pb2.AMENDMENT_CHANGED_DATA, 0),
    "XR": (_CHANGE, manifest_pb2.AMENDMENT_CANCELLED_RESERVATION, 0),
    "RP": (_CHANGE, manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY, 0),
}
# Crew-list variants of BGM 250 (regular crew, crew change, domestic continuance, ...): each a full list.
_CREW_VARIANTS = ("C", "CC", "B", "BC", "A", "D", "E", "EC", "F", "FC")
_STATUS_FUNCTIONS = {
    "CLOB": (manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT, 0, manifest_pb2.BOARDING_STATUS_BOARDED),
    "CLNB": (manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT, 0, manifest_pb2.BOARDING_STATUS_NOT_BOARDED),
    "XF": (manifest_pb2.MESSAGE_FUNCTION_CANCEL, 0, 0),
}
_TRAVELLER_PLACES = {"174": "residence", "178": "embarkation", "179": "debarkation"}
# Segments of the guide's subset the Manifest has no field for: read past without a warning.
_KNOWN_UNUSED = frozenset({"COM", "MEA", "GEI", "FTX", "EMP", "QTY", "GIS", "CTA", "ERP", "ERC"})


class MessageReader:
    """Maps one message's segments onto a Manifest, collecting violations and field locations."""

    def __init__(self, segs: list[Segment], ref_date: date, text: str = "", cut: list[Segment] | None = None):
        self.segs = segs
        self.ref = ref_date
        self.text = text  # the decoded interchange, for positions in warnings
        self.cut = cut or []  # its segments the tokeniser cut for size
        self.errors: list[Violation] = []
        self.warnings = Violations()
        self.locations: dict[str, str] = {}
        self.m = manifest_pb2.Manifest(source_format="paxlst")
        self.flight = FlightReader(self.m, ref_date, self.locations, self.warn)
        self.traveller: manifest_pb2.Traveller | None = None
        self.tpath = ""
        self.doc: manifest_pb2.Document | None = None
        self.dpath = ""
        self.bgm: Segment | None = None
        self.boarding = 0
        self.counts = {"42": 0, "41": 0}
        self.control: dict[str, tuple[Segment, str]] = {}

    def error(self, field_: str, code: str, description: str, seg: Segment) -> None:
        self.errors.append(violation(field_, code, description, seg))

    def warn(self, field_: str, code: str, description: str, seg: Segment) -> None:
        self.warnings.add(violation(field_, code, description, seg))

    def read(self) -> manifest_pb2.Manifest | None:
        segs = self.segs
        unh, unt = segs[0], segs[-1]
        self.locations[""] = unh.label
        kind = unh.value(1, 0)
        if kind != "PAXLST":
            self.error("", "not_paxlst", f"not a PAXLST message: UNH names {kind[:12]!r}", unh)
            return None
        directory = unh.value(1, 2)
        if unh.value(1, 1) != "D" or directory not in DIRECTORIES:
            self.warn("", "directory", f"directory {unh.value(1, 1)[:4]}:{directory[:8]} is not D:02B/05B/15B", unh)
        if unh.value(3, 0).isdigit():
            self.m.part = int(unh.value(3, 0))
        if unh.value(3, 1) == "C":
            self.warn("", "multi_part", "part of a multi-part message: parts are read one by one", unh)
        for seg in self.cut:
            warn_cut(self.warnings, self.text, seg)
        handlers = self.handlers
        for seg in segs[1:-1]:
            handler = handlers.get(seg.tag)
            if handler is not None:
                handler(self, seg)
            elif seg.tag not in _KNOWN_UNUSED:
                self.warn("", "unknown_segment", f"segment {seg.tag[:3]!r} ignored", seg)
        if self.bgm is None:
            where = segs[1] if len(segs) > 2 else unh
            self.locations["function"] = where.label
            self.warn("function", "missing_bgm", "no BGM segment: read as an original list", where)
            self.m.function = manifest_pb2.MESSAGE_FUNCTION_ORIGINAL
        self.flight.finish()
        self.check_unt(unh, unt)
        self.check_counts()
        if self.boarding:
            for t in self.m.travellers:
                t.boarding = self.boarding
        if not self.flight.seen:
            self.error("legs", "missing_tdt", "no TDT segment: carrier and flight are unknown", unh)
        self.warnings.close()
        return None if self.errors else self.m

    # -- header ---------------------------------------------------------------------------------------------
    def on_bgm(self, seg: Segment) -> None:
        if self.bgm is not None:
            self.warn("function", "repeated", "second BGM ignored", seg)
            return
        self.bgm = seg
        self.locations["function"] = self.locations["amendment"] = seg.label
        doc, fn = seg.value(0), seg.value(1)
        if doc in ("745", "250"):
            found = _LIST_FUNCTIONS.get(fn)
            if found is None and doc == "250" and fn in _CREW_VARIANTS:
                found = _LIST_FUNCTIONS[""]
        elif doc == "266":
            found = _STATUS_FUNCTIONS.get(fn)
        else:
            found = None
        if found is None:
            # Screened as a full list: nothing is removed or closed on a function the hub does not know.
            what = f"BGM {doc[:6]!r} with function {fn[:6]!r}" if fn else f"BGM {doc[:6]!r}"
            description = f"{what} is not a known message function: read as an original list"
            self.warn("function", "unknown_function", description, seg)
            found = _LIST_FUNCTIONS[""]
        self.m.function, self.m.amendment, self.boarding = found

    def on_rff(self, seg: Segment) -> None:
        parts = seg.parts(0)
        qualifier, value = parts[0], parts[1] if len(parts) > 1 else ""
        t = self.traveller
        if t is None:
            if qualifier == "TN" and not self.flight.seen:
                self.m.message_ref = value
                self.locations["message_ref"] = self.locations["revision"] = seg.label
                revision = parts[4] if len(parts) > 4 else ""
                if revision and not (revision.isdigit() and len(revision) <= 9):
                    self.warn("revision", "invalid_revision", "RFF+TN revision is not a number: left out", seg)
                elif revision:
                    self.m.revision = int(revision)
            return
        if qualifier == "AVF":
            t.reservation_locator = value
            self.locations[self.tpath + ".reservation_locator"] = seg.label
        elif qualifier == "ABO":
            t.passenger_ref = value
            self.locations[self.tpath + ".passenger_ref"] = seg.label
        elif qualifier == "SEA":
            t.seat = value
            self.locations[self.tpath + ".seat"] = seg.label

    # -- flight legs (services.paxlst.legs) -----------------------------------------------------------------
    def on_tdt(self, seg: Segment) -> None:
        if self.traveller is not None:
            self.warn("legs", "out_of_order", "TDT after the travellers ignored", seg)
        else:
            self.flight.on_tdt(seg)

    def on_loc(self, seg: Segment) -> None:
        qualifier = seg.value(0)
        if self.traveller is not None:
            self.traveller_loc(seg, qualifier)
        else:
            self.flight.on_loc(seg, qualifier)

    # -- travellers -----------------------------------------------------------------------------------------
    def on_nad(self, seg: Segment) -> None:
        qualifier = seg.value(0)
        if qualifier == "MS":
            return
        role = _ROLES.get(qualifier)
        index = len(self.m.travellers)
        path = f"travellers[{index}]"
        if not index:
            self.locations["travellers"] = seg.label
        if role is None:
            # A person all the same: screened as a passenger rather than left out.
            description = f"NAD qualifier {qualifier[:4]!r} is not FL/FM/DDU/DDT: read as a passenger"
            self.warn(path + ".role", "unknown_role", description, seg)
            role = manifest_pb2.TRAVELLER_ROLE_PASSENGER
        t = self.m.travellers.add(role=role)
        self.traveller, self.tpath, self.doc = t, path, None
        name = seg.parts(3)
        surname = name[0]
        given = name[1] if len(name) > 1 else ""
        second = name[2] if len(name) > 2 else ""
        t.surname = surname
        t.given_names = f"{given} {second}" if given and second else given or second
        label = seg.label
        loc = self.locations
        loc[path] = loc[path + ".role"] = loc[path + ".surname"] = loc[path + ".given_names"] = label
        # A traveller without a surname is kept: intake judges whether the name is usable and says so.
        if qualifier in ("FM", "DDT"):
            self.counts["41"] += 1
        else:
            self.counts["42"] += 1

    def no_traveller(self, seg: Segment) -> bool:
        if self.traveller is None:
            self.warn("", "out_of_order", f"{seg.tag} outside a traveller group ignored", seg)
            return True
        return False

    def on_att(self, seg: Segment) -> None:
        if self.no_traveller(seg) or seg.value(0) != "2":
            return
        code = seg.value(2).upper()
        sex = _SEXES.get(code)
        if sex is None:
            self.warn(self.tpath + ".sex", "unknown_code", f"sex code {code[:3]!r} is not M/F/X/U", seg)
            return
        self.traveller.sex = sex
        self.locations[self.tpath + ".sex"] = seg.label

    def on_nat(self, seg: Segment) -> None:
        if self.no_traveller(seg):
            return
        self.traveller.nationality = seg.value(1)
        self.locations[self.tpath + ".nationality"] = seg.label

    def traveller_loc(self, seg: Segment, qualifier: str) -> None:
        port = seg.value(1)
        if qualifier == "91":
            if self.doc is None:
                self.warn("", "out_of_order", "LOC+91 outside a DOC group ignored", seg)
                return
            self.doc.issuing_state = port
            self.locations[self.dpath + ".issuing_state"] = seg.label
            return
        name = _TRAVELLER_PLACES.get(qualifier)
        if name is not None:
            setattr(self.traveller, name, port)
            self.locations[f"{self.tpath}.{name}"] = seg.label

    def on_doc(self, seg: Segment) -> None:
        if self.no_traveller(seg):
            return
        t = self.traveller
        self.dpath = f"{self.tpath}.documents[{len(t.documents)}]"
        code = seg.value(0, 0).upper()
        self.doc = t.documents.add(type=_DOC_TYPES.get(code, manifest_pb2.DOCUMENT_TYPE_OTHER), number=seg.value(1))
        label = seg.label
        loc = self.locations
        loc[self.dpath] = loc[self.dpath + ".type"] = loc[self.dpath + ".number"] = label

    def on_dtm(self, seg: Segment) -> None:
        parts = seg.parts(0)
        qualifier = parts[0]
        if self.traveller is None:
            if qualifier in ("189", "232"):
                self.flight.on_time(seg, qualifier)
            return
        if qualifier == "329":
            self.person_date(self.traveller.date_of_birth, seg, parts, self.tpath + ".date_of_birth", True)
        elif qualifier == "36":
            if self.doc is None:
                self.warn("", "out_of_order", "DTM+36 outside a DOC group ignored", seg)
            else:
                self.person_date(self.doc.expiry, seg, parts, self.dpath + ".expiry", False)

    def person_date(
        self, out: manifest_pb2.PartialDate, seg: Segment, parts: list[str], path: str, birth: bool
    ) -> None:
        self.locations[path] = seg.label
        value = parts[1].replace(" ", "") if len(parts) > 1 else ""
        fmt = parts[2] if len(parts) > 2 else ""
        if not value:
            self.warn(path, "missing", "empty date ignored", seg)
            return
        try:
            fmt, year, month, day, _, _ = dtm_fields(value, fmt)
            if fmt in ("101", "201"):
                year = birth_year(year, month, day, self.ref) if birth else expiry_year(year, self.ref)
            check_day(year, month, day)
        except BadDate as exc:
            possible = possible_birth_parts(value, fmt, self.ref) if birth else None
            if possible is None:
                # No value in the description: birth dates are personal data.
                self.warn(path, "invalid_date", f"{exc}: left out", seg)
                return
            # A traveller is screened on what the date does say (a day 32 or a month 13 is a slip in one part):
            # rejecting the manifest would leave everyone on it unscreened.
            self.warn(path, "impossible_date", f"{exc}: date of birth kept to its possible parts", seg)
            year, month, day = possible
        if birth and (year, month or 1, day or 1) > (self.ref.year, self.ref.month, self.ref.day):
            self.warn(path, "invalid_date", "date of birth after the message date: left out", seg)
            return
        out.year, out.month, out.day = year, month, day

    # -- trailer --------------------------------------------------------------------------------------------
    def on_cnt(self, seg: Segment) -> None:
        qualifier, value = seg.value(0, 0), seg.value(0, 1)
        if not value and len(seg.elements) > 1:
            value = seg.value(1)
            self.warn("", "cnt_form", "CNT written as qualifier+count; expected qualifier:count", seg)
        self.control[qualifier] = (seg, value)

    def check_counts(self) -> None:
        # CNT is the total on the flight, not in this message: only a total below the message's own count is
        # certainly wrong.
        for qualifier, (seg, value) in self.control.items():
            if not value.isdigit():
                self.warn("", "control_total", f"CNT+{qualifier[:3]} value is not a number", seg)
            elif qualifier in self.counts and int(value) < self.counts[qualifier]:
                kind = "crew" if qualifier == "41" else "passengers"
                self.warn(
                    "travellers",
                    "control_total",
                    f"CNT+{qualifier} flight total {value} is below the {kind} in this message "
                    f"({self.counts[qualifier]})",
                    seg,
                )

    def check_unt(self, unh: Segment, unt: Segment) -> None:
        count = unt.value(0)
        actual = len(self.segs)
        if count != str(actual):
            self.warn("", "segment_count", f"UNT counts {count[:8]!r} segments, the message has {actual}", unt)
        if unt.value(1) != unh.value(0):
            self.warn("", "control_reference", "UNT reference differs from UNH", unt)

    handlers = {
        "BGM": on_bgm,
        "RFF": on_rff,
        "TDT": on_tdt,
        "LOC": on_loc,
        "DTM": on_dtm,
        "NAD": on_nad,
        "ATT": on_att,
        "NAT": on_nat,
        "DOC": on_doc,
        "CNT": on_cnt,
    }
