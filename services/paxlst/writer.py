"""UN/EDIFACT PAXLST writer: Manifests in, an interchange out, for tests, demos and benchmarks.

parse_paxlst(render_paxlst(m)) gives back m, apart from what PAXLST cannot carry:
  * manifest_id, received_at (set by the hub), document MRZ and booking data: not written;
  * sent_at travels in UNB to the minute (seconds dropped; every message of an interchange shares it; when
    unset, the current time is written); leg times travel to the minute as local time at the airport (ports
    without a known time zone: UTC), so a time inside a daylight-saving fold may come back an hour off;
  * boarding is written only for a close-out, where every traveller must share one status (CLOB or CLNB);
  * document types without a PAXLST code (residence permit, seafarer id, unspecified) are written as "ZZZ"
    (mutually defined) and read back as OTHER; transport mode UNSPECIFIED is written as AIR's default;
  * values are trimmed and lose CR/LF; a given name and second name come back joined by one space.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.geo import port_zone
from services.paxlst.dates import birth_year, expiry_year, near_year
from services.paxlst.syntax import DEFAULT_DELIMITERS, Delimiters
from services.wire import manifest_pb2

_ROLE_CODES = {
    manifest_pb2.TRAVELLER_ROLE_PASSENGER: "FL",
    manifest_pb2.TRAVELLER_ROLE_CREW: "FM",
    manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER: "DDU",
    manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW: "DDT",
}
_CREW = (manifest_pb2.TRAVELLER_ROLE_CREW, manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW)
_SEX_CODES = {manifest_pb2.SEX_MALE: "M", manifest_pb2.SEX_FEMALE: "F", manifest_pb2.SEX_X: "X"}
_DOC_CODES = {
    manifest_pb2.DOCUMENT_TYPE_PASSPORT: "P",
    manifest_pb2.DOCUMENT_TYPE_IDENTITY_CARD: "I",
    manifest_pb2.DOCUMENT_TYPE_VISA: "V",
    manifest_pb2.DOCUMENT_TYPE_CREW_LICENCE: "AC",
}
_AMENDMENTS = {
    manifest_pb2.AMENDMENT_CHANGED_DATA: "CP",
    manifest_pb2.AMENDMENT_CANCELLED_RESERVATION: "XR",
    manifest_pb2.AMENDMENT_REDUCTION_IN_PARTY: "RP",
}


class SegmentWriter:
    """Segments as text under a set of delimiters: values escaped with the release character (the service
    characters ' + : ? in a value, or the UNA's own), trailing empty elements dropped. Shared by the PAXLST
    writer here and the CUSRES writer (services.paxlst.cusres)."""

    def __init__(self, d: Delimiters):
        self.d = d
        specials = (d.release, d.component, d.element, d.terminator)
        self.no_release = d.release == " "
        self.specials = frozenset(specials[1:]) if self.no_release else frozenset(specials)
        self.table = {} if self.no_release else {ord(c): d.release + c for c in specials}

    def esc(self, value: str) -> str:
        if self.no_release:
            if any(c in value for c in self.specials):
                raise ValueError("a value holds a service character and the delimiters have no release")
            return value
        return value.translate(self.table)

    def seg(self, tag: str, *elements) -> str:
        """A segment from elements, each a string (escaped here) or a tuple of components."""
        d = self.d
        out = [tag]
        for e in elements:
            if isinstance(e, tuple):
                out.append(d.component.join(self.esc(c) for c in e))
            else:
                out.append(self.esc(e))
        while len(out) > 1 and out[-1] == "":
            out.pop()
        return d.element.join(out)


class _Writer(SegmentWriter):
    def __init__(self, d: Delimiters, sent: datetime):
        super().__init__(d)
        self.ref = sent.date()

    def person_date(self, qualifier: str, p: manifest_pb2.PartialDate, birth: bool) -> str | None:
        if not p.year:
            return None
        if not p.month:
            return self.seg("DTM", (qualifier, f"{p.year:04d}", "602"))
        if not p.day:
            return self.seg("DTM", (qualifier, f"{p.year:04d}{p.month:02d}", "610"))
        yy = p.year % 100
        short = birth_year(yy, p.month, p.day, self.ref) if birth else expiry_year(yy, self.ref)
        if short == p.year:
            return self.seg("DTM", (qualifier, f"{yy:02d}{p.month:02d}{p.day:02d}"))
        return self.seg("DTM", (qualifier, f"{p.year:04d}{p.month:02d}{p.day:02d}", "102"))

    def leg_time(self, qualifier: str, ts, port: str) -> str:
        local = ts.ToDatetime(tzinfo=UTC).astimezone(port_zone(port) or UTC)
        if near_year(local.year % 100, self.ref) == local.year:
            return self.seg("DTM", (qualifier, local.strftime("%y%m%d%H%M"), "201"))
        return self.seg("DTM", (qualifier, f"{local.year:04d}" + local.strftime("%m%d%H%M"), "203"))

    def bgm(self, m: manifest_pb2.Manifest) -> str:
        crew_only = bool(m.travellers) and all(t.role in _CREW for t in m.travellers)
        listing = "250" if crew_only else "745"
        fn = m.function
        if fn == manifest_pb2.MESSAGE_FUNCTION_ORIGINAL:
            return self.seg("BGM", listing)
        if fn == manifest_pb2.MESSAGE_FUNCTION_CHANGE:
            return self.seg("BGM", listing, _AMENDMENTS.get(m.amendment, "CP"))
        if fn == manifest_pb2.MESSAGE_FUNCTION_CANCEL:
            return self.seg("BGM", "266", "XF")
        if fn == manifest_pb2.MESSAGE_FUNCTION_CLOSE_OUT:
            states = {t.boarding for t in m.travellers}
            if states <= {manifest_pb2.BOARDING_STATUS_BOARDED}:
                return self.seg("BGM", "266", "CLOB")
            if states == {manifest_pb2.BOARDING_STATUS_NOT_BOARDED}:
                return self.seg("BGM", "266", "CLNB")
            raise ValueError("a close-out message carries one boarding status (CLOB or CLNB) for everyone")
        raise ValueError("the manifest has no message function")

    def message(self, m: manifest_pb2.Manifest, unh_ref: str) -> list[str]:
        segs = [self.seg("UNH", unh_ref, ("PAXLST", "D", "15B", "UN", "IATA")), self.bgm(m)]
        if m.message_ref or m.revision:
            rff = ("TN", m.message_ref, "", "", str(m.revision)) if m.revision else ("TN", m.message_ref)
            segs.append(self.seg("RFF", rff))
        segs.append(self.seg("NAD", "MS", "", "", (m.carrier or "APIHUB",)))
        mode = "1" if m.transport_mode == manifest_pb2.TRANSPORT_MODE_SEA else ""
        tdt = self.seg("TDT", "20", m.carrier + m.flight_number, (mode,), "", (m.carrier,))
        if not m.legs:
            segs.append(tdt)
        for i, leg in enumerate(m.legs):
            dep, arr = ("125", "87") if i == 0 else ("92", "92")
            segs += [tdt, self.seg("LOC", dep, leg.origin)]
            if leg.HasField("scheduled_departure"):
                segs.append(self.leg_time("189", leg.scheduled_departure, leg.origin))
            segs.append(self.seg("LOC", arr, leg.destination))
            if leg.HasField("scheduled_arrival"):
                segs.append(self.leg_time("232", leg.scheduled_arrival, leg.destination))
        for t in m.travellers:
            segs += self.traveller(t)
        crew = sum(1 for t in m.travellers if t.role in _CREW)
        passengers = len(m.travellers) - crew
        if passengers or not crew:
            segs.append(self.seg("CNT", ("42", str(passengers))))
        if crew:
            segs.append(self.seg("CNT", ("41", str(crew))))
        segs.append(self.seg("UNT", str(len(segs) + 1), unh_ref))
        return segs

    def traveller(self, t: manifest_pb2.Traveller) -> list[str]:
        role = _ROLE_CODES.get(t.role)
        if role is None:
            raise ValueError("a traveller has no role")
        name = (t.surname, t.given_names) if t.given_names else (t.surname,)
        segs = [self.seg("NAD", role, "", "", name)]
        if t.sex in _SEX_CODES:
            segs.append(self.seg("ATT", "2", "", _SEX_CODES[t.sex]))
        dob = self.person_date("329", t.date_of_birth, birth=True)
        if dob:
            segs.append(dob)
        for qualifier, value in (("174", t.residence), ("178", t.embarkation), ("179", t.debarkation)):
            if value:
                segs.append(self.seg("LOC", qualifier, value))
        if t.nationality:
            segs.append(self.seg("NAT", "2", t.nationality))
        for qualifier, value in (("AVF", t.reservation_locator), ("ABO", t.passenger_ref), ("SEA", t.seat)):
            if value:
                segs.append(self.seg("RFF", (qualifier, value)))
        for doc in t.documents:
            segs.append(self.seg("DOC", (_DOC_CODES.get(doc.type, "ZZZ"),), doc.number))
            expiry = self.person_date("36", doc.expiry, birth=False)
            if expiry:
                segs.append(expiry)
            if doc.issuing_state:
                segs.append(self.seg("LOC", "91", doc.issuing_state))
        return segs


def resolve_delimiters(delimiters: Delimiters | str | None) -> Delimiters:
    """Delimiters from None (the defaults), a Delimiters, or six UNA service characters ("UNA" optional).
    Raises ValueError for an invalid set."""
    if delimiters is None:
        return DEFAULT_DELIMITERS
    if isinstance(delimiters, Delimiters):
        return delimiters
    found = Delimiters.from_una(delimiters.removeprefix("UNA"))
    if found is None:
        raise ValueError("delimiters must be six valid UNA service characters, e.g. ':+.? \\''")
    return found


def render_interchange(
    manifests: list[manifest_pb2.Manifest],
    *,
    interchange_ref: str = "1",
    una: bool = True,
    delimiters: Delimiters | str | None = None,
    one_line: bool = False,
    sender: str = "",
    recipient: str = "APIHUB",
) -> bytes:
    """One interchange holding one PAXLST message per manifest. Raises ValueError for what PAXLST cannot say
    (no role, no message function, mixed boarding in a close-out)."""
    d = resolve_delimiters(delimiters)
    first = manifests[0] if manifests else manifest_pb2.Manifest()
    sent = first.sent_at.ToDatetime(tzinfo=UTC) if first.HasField("sent_at") else datetime.now(UTC)
    w = _Writer(d, sent)
    body: list[str] = []
    for i, m in enumerate(manifests):
        body += w.message(m, str(i + 1))
    # The reader puts a two-digit UNB year within 50 years of its own clock.
    short = near_year(sent.year % 100, datetime.now(UTC).date()) == sent.year
    sent_date = f"{sent:%y%m%d}" if short else f"{sent:%Y%m%d}"
    tail = w.seg("UNZ", str(len(manifests)), interchange_ref)
    text_check = "".join(body) + sender + recipient + interchange_ref
    syntax = "UNOA" if text_check.isascii() else "UNOW"
    unb = w.seg(
        "UNB",
        (syntax, "4"),
        sender or first.carrier or "APIHUB",
        recipient,
        (sent_date, f"{sent:%H%M}"),
        interchange_ref,
        "",
        "APIS",
    )
    joiner = d.terminator if one_line else d.terminator + "\n"
    text = joiner.join([unb, *body, tail]) + joiner
    if una:
        text = d.una() + ("" if one_line else "\n") + text
    return text.encode("ascii" if syntax == "UNOA" else "utf-8")


def render_paxlst(
    manifest: manifest_pb2.Manifest,
    *,
    interchange_ref: str = "1",
    una: bool = True,
    delimiters: Delimiters | str | None = None,
    one_line: bool = False,
    sender: str = "",
    recipient: str = "APIHUB",
) -> bytes:
    """One interchange with one PAXLST message for the manifest (see render_interchange)."""
    return render_interchange(
        [manifest],
        interchange_ref=interchange_ref,
        una=una,
        delimiters=delimiters,
        one_line=one_line,
        sender=sender,
        recipient=recipient,
    )
