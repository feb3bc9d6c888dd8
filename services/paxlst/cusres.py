"""UN/EDIFACT CUSRES D:05B for the interactive API (iAPI): the hub's answer to a carrier's iAPI PAXLST request,
one directive per traveller. render_cusres writes an interchange; parse_cusres reads one (tests, the carrier
simulator, and a carrier's side of the exchange).

Segment layout (the China NIA "IAPI" profile observed in deyoz/astra:src/ts/iapi_china.ts, copied to
/work/shared/samples/paxlst/astra_iapi_china_paxlst_cusres.txt; /work/shared/reference/api-standards.md section 7):

    UNA:+.? '                                        optional (written when the delimiters are not the defaults)
    UNB+UNOA:4+<sender>+<recipient>+YYMMDD:HHMM+<interchange ref>++IAPI'
    UNG+CUSRES+<sender>+<recipient>+YYMMDD:HHMM+<group ref>+UN+D:05B'        optional (when the request had one)
      UNH+<message ref>+CUSRES:D:05B:UN:IATA+<common access ref>+01:F'       echoes the request's UNH
      BGM+962'
      RFF+TN:<the request's RFF+TN>'
      RFF+AF:<flight, e.g. CA339>'
      DTM+189:YYMMDDHHMM:201'                        departure, local time at the origin (as in the request)
      DTM+232:YYMMDDHHMM:201'                        arrival, local time at the destination
      LOC+125+<origin>'
      LOC+87+<destination>'
        ERP+2'                                       per traveller:
        RFF+AVF:<reservation locator>'               (left out when empty)
        RFF+ABO:<passenger reference>'               the carrier's key for the traveller (left out when empty)
        ERC+<directive code>'
        FTX+AAP+++<text>[:<text>...]'                 (left out when the text is empty)
      UNT+<segments UNH..UNT>+<message ref>'
    UNE+<messages in the group>+<group ref>'
    UNZ+<groups, or messages without a group>+<interchange ref>'

The codes. api-standards.md section 7: ERC 0Z "OK TO BOARD" and 1Z "NO BOARD" are observed; 2Z is a third
directive of the WCO CUSRES guide whose meaning is unverified, and other countries use codes of their own. This
module knows no directive: the caller passes each traveller's ERC code, taken from the settings
(services.config iapi_erc_codes: directive name -> code; OK_TO_BOARD 0Z, DO_NOT_BOARD 1Z, CONTACT_AUTHORITY 2Z,
INSUFFICIENT_DATA 4Z by default), and its free text.

Free text (FTX 4440) is kept printable within the syntax level, by ftx_text: letters are transliterated to
ASCII where they are not in the level (accents dropped, "ß" -> "SS", "Æ" -> "AE" ...), white space becomes one
space, and what still does not fit is dropped. UNOA (the default) is upper case A-Z, digits, space and
. , - ( ) / = ' + : ? (the last four escaped with the release character); UNOB adds lower case and ! " % & * ; < >;
any other syntax identifier keeps every printable character its character set can encode (and delimiters without
a release character drop the service characters from the text). The text is then cut
into components of at most FTX_COMPONENT_CHARS (70) characters at spaces (a longer word is cut inside), at most
FTX_COMPONENTS (5, the components of C108) of them: text beyond 350 characters is dropped. The reader joins the
components with one space, so a text comes back as written unless a word longer than 70 characters was cut.

Other values (references, locator, flight, ports) are echoed as given, escaped, never transliterated: the carrier
matches its travellers by them. Times: an aware datetime is written as local time at the port
(services.geo.port_zone; UTC for a port without a known zone), a naive one as it is; to the minute. The reader
gives aware datetimes in UTC (local time at the port, like the PAXLST reader).

Reading uses the PAXLST reader's envelope (services.paxlst.reader): the same tolerance (UNA or the defaults or
a carrier profile's delimiters; junk around the interchange, a truncated message, control counts and references
in UNT, UNE, UNZ that do not match are warnings), and a message that is not CUSRES is an error and left out.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.geo import port_zone
from services.paxlst.dates import BadDate, flight_time_fields, near_year
from services.paxlst.reader import MAX_BYTES, PaxlstMessage, _Envelope
from services.paxlst.syntax import DEFAULT_DELIMITERS, Delimiters, Segment, codec_of
from services.paxlst.violations import Violation, Violations, violation
from services.paxlst.writer import SegmentWriter, resolve_delimiters

FTX_COMPONENT_CHARS = 70
FTX_COMPONENTS = 5
# The message identifier of the answer (UNH S009) and its functional group (UNG 0051, 0052:0054).
MESSAGE_TYPE = ("CUSRES", "D", "05B", "UN", "IATA")

# UN/EDIFACT level A: the letters, digits and punctuation every receiver can read (' + : ? are escaped).
_LEVEL_A = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-()/='+:?")
_LEVEL_B = _LEVEL_A | frozenset('abcdefghijklmnopqrstuvwxyz!"%&*;<>')
# Letters NFKD does not decompose into ASCII.
_TRANSLITERATION = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "ø": "o",
    "Ø": "O",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "-",
}


# -- the data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CusresTraveller:
    """One traveller's answer (the ERP group): the carrier's references echoed, the directive's ERC code and
    its free text."""

    passenger_ref: str  # RFF+ABO
    reservation_locator: str  # RFF+AVF
    code: str  # ERC, e.g. 0Z (from settings iapi_erc_codes)
    text: str  # FTX+AAP


@dataclass(frozen=True)
class CusresMessage:
    """One CUSRES message (UNH ... UNT): the answer to one PAXLST message of the request."""

    message_ref: str  # UNH 0062, the request's
    transaction_ref: str  # RFF+TN, the request's
    flight: str  # RFF+AF, carrier and number ("CA339")
    departure: datetime | None  # DTM+189
    arrival: datetime | None  # DTM+232
    origin: str  # LOC+125
    destination: str  # LOC+87
    travellers: list[CusresTraveller]
    common_access_ref: str = ""  # UNH 0068, the request's


@dataclass
class CusresInterchange:
    sender: str
    recipient: str
    interchange_ref: str
    application_ref: str
    messages: list[CusresMessage]  # the messages read; a rejected one is an error instead
    errors: list[Violation]  # the interchange's, and each rejected message's
    warnings: list[Violation]
    group: bool = False  # whether the messages came in a functional group (UNG ... UNE)


# -- free text ----------------------------------------------------------------------------------------------


def ftx_text(text: str, syntax: str = "UNOA") -> str:
    """The free text as written in FTX under the syntax level (see the module's docstring): transliterated,
    white space collapsed, what does not fit dropped."""
    if syntax == "UNOA":
        allowed = _LEVEL_A.__contains__
        text = text.upper()
    elif syntax == "UNOB":
        allowed = _LEVEL_B.__contains__
    else:
        codec = codec_of(syntax)

        def allowed(c: str) -> bool:
            if not c.isprintable():
                return False
            try:
                c.encode(codec)
            except UnicodeEncodeError:
                return False
            return True

    out: list[str] = []
    for c in text:
        if c.isspace():
            out.append(" ")
        elif allowed(c):
            out.append(c)
        else:
            ascii_form = _TRANSLITERATION.get(c)
            if ascii_form is None:
                ascii_form = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
            if syntax == "UNOA":
                ascii_form = ascii_form.upper()
            out.extend(x for x in ascii_form if allowed(x))
    return " ".join("".join(out).split())


def ftx_components(text: str) -> list[str]:
    """The text cut into FTX components: at spaces, at most FTX_COMPONENT_CHARS each, at most FTX_COMPONENTS."""
    parts: list[str] = []
    rest = text
    while rest and len(parts) < FTX_COMPONENTS:
        if len(rest) <= FTX_COMPONENT_CHARS:
            parts.append(rest)
            break
        cut = rest.rfind(" ", 0, FTX_COMPONENT_CHARS + 1)
        if cut <= 0:
            parts.append(rest[:FTX_COMPONENT_CHARS])
            rest = rest[FTX_COMPONENT_CHARS:].lstrip()
        else:
            parts.append(rest[:cut])
            rest = rest[cut + 1 :].lstrip()
    return parts


# -- the writer ---------------------------------------------------------------------------------------------


def _stamp(when: datetime) -> tuple[str, str]:
    """UNB/UNG date and time (YYMMDD, HHMM): an aware datetime in UTC, a naive one as it is."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%y%m%d}", f"{when:%H%M}"


class _CusresWriter(SegmentWriter):
    def __init__(self, d: Delimiters, syntax: str, ref: date):
        super().__init__(d)
        self.syntax = syntax
        self.ref = ref

    def time(self, qualifier: str, when: datetime, port: str) -> str:
        local = when.astimezone(port_zone(port) or UTC) if when.tzinfo is not None else when
        if near_year(local.year % 100, self.ref) == local.year:
            return self.seg("DTM", (qualifier, local.strftime("%y%m%d%H%M"), "201"))
        return self.seg("DTM", (qualifier, f"{local.year:04d}" + local.strftime("%m%d%H%M"), "203"))

    def message(self, m: CusresMessage) -> list[str]:
        segs = [
            self.seg("UNH", m.message_ref, MESSAGE_TYPE, m.common_access_ref, ("01", "F")),
            self.seg("BGM", "962"),
        ]
        if m.transaction_ref:
            segs.append(self.seg("RFF", ("TN", m.transaction_ref)))
        if m.flight:
            segs.append(self.seg("RFF", ("AF", m.flight)))
        if m.departure is not None:
            segs.append(self.time("189", m.departure, m.origin))
        if m.arrival is not None:
            segs.append(self.time("232", m.arrival, m.destination))
        if m.origin:
            segs.append(self.seg("LOC", "125", m.origin))
        if m.destination:
            segs.append(self.seg("LOC", "87", m.destination))
        for t in m.travellers:
            if not t.code:
                raise ValueError("a traveller's answer has no ERC code")
            segs.append(self.seg("ERP", "2"))
            if t.reservation_locator:
                segs.append(self.seg("RFF", ("AVF", t.reservation_locator)))
            if t.passenger_ref:
                segs.append(self.seg("RFF", ("ABO", t.passenger_ref)))
            segs.append(self.seg("ERC", t.code))
            text = ftx_text(t.text, self.syntax)
            if self.no_release:  # delimiters without a release character: the text drops what it cannot escape
                text = " ".join("".join(c for c in text if c not in self.specials).split())
            text = ftx_components(text)
            if text:
                segs.append(self.seg("FTX", "AAP", "", "", tuple(text)))
        segs.append(self.seg("UNT", str(len(segs) + 1), m.message_ref))
        return segs


def render_cusres(
    messages: list[CusresMessage],
    *,
    sender: str,
    recipient: str,
    interchange_ref: str,
    now: datetime,
    delimiters: Delimiters | str | None = None,
    una: bool | None = None,
    application_ref: str = "IAPI",
    syntax: str = "UNOA",
    syntax_version: str = "4",
    group: bool = False,
    group_ref: str = "1",
    one_line: bool = False,
) -> bytes:
    """One CUSRES interchange holding the messages (see the module's docstring for the layout).

    `now` stamps UNB (and UNG); `una` None writes a UNA only for delimiters other than the defaults; `group`
    wraps the messages in UNG ... UNE (answer with one when the request had one: PaxlstInterchange.group).
    Raises ValueError for no message, a traveller without an ERC code, a service character in a value under
    delimiters without a release character, or a value the syntax's character set cannot encode."""
    if not messages:
        raise ValueError("a CUSRES interchange needs at least one message")
    d = resolve_delimiters(delimiters)
    w = _CusresWriter(d, syntax, (now.astimezone(UTC) if now.tzinfo else now).date())
    body: list[str] = []
    for m in messages:
        body += w.message(m)
    stamp = _stamp(now)
    if group:
        ung = w.seg("UNG", MESSAGE_TYPE[0], sender, recipient, stamp, group_ref, MESSAGE_TYPE[3], MESSAGE_TYPE[1:3])
        body = [ung, *body, w.seg("UNE", str(len(messages)), group_ref)]
    unb = w.seg("UNB", (syntax, syntax_version), sender, recipient, stamp, interchange_ref, "", application_ref)
    unz = w.seg("UNZ", "1" if group else str(len(messages)), interchange_ref)
    joiner = d.terminator if one_line else d.terminator + "\n"
    text = joiner.join([unb, *body, unz]) + joiner
    if (d != DEFAULT_DELIMITERS) if una is None else una:
        text = d.una() + ("" if one_line else "\n") + text
    return text.encode(codec_of(syntax))


# -- the reader ---------------------------------------------------------------------------------------------


def parse_cusres(data: bytes | str, *, delimiters: Delimiters | None = None) -> CusresInterchange:
    """Read a CUSRES interchange. Never raises: what cannot be read is in errors, what was read past in
    warnings (each naming its segment, "#14 ERC"). `delimiters` apply without a UNA (a carrier profile)."""
    if len(data) > MAX_BYTES:
        error = violation("", "too_large", f"interchange larger than {MAX_BYTES // (1024 * 1024)} MiB")
        return CusresInterchange("", "", "", "", [], [error], [])
    try:
        return _CusresEnvelope(data, delimiters).read_cusres()
    except Exception:  # a bug must cost one interchange, never the caller
        error = violation("", "internal_error", "the CUSRES reader failed on this interchange")
        return CusresInterchange("", "", "", "", [], [error], [])


class _CusresEnvelope(_Envelope):
    """The PAXLST reader's envelope walk, each message read as CUSRES."""

    def __init__(self, data: bytes | str, delimiters: Delimiters | None):
        super().__init__(data, delimiters, None)
        self.found: dict[int, CusresMessage] = {}  # index in self.messages -> the message read

    def read_cusres(self) -> CusresInterchange:
        out = self.read()
        errors, warnings = list(out.errors), list(out.warnings)
        messages: list[CusresMessage] = []
        for i, msg in enumerate(out.messages):
            errors += msg.errors
            warnings += msg.warnings
            if i in self.found:
                messages.append(self.found[i])
        return CusresInterchange(
            out.sender, out.recipient, out.interchange_ref, out.application_ref, messages, errors, warnings, out.group
        )

    def _message(self, segs: list[Segment]) -> None:
        reader = _MessageReader(segs, self.ref_date)
        found = reader.read()
        if found is not None:
            self.found[len(self.messages)] = found
        unh = segs[0]
        raw = self._raw(segs)
        self.messages.append(PaxlstMessage(None, reader.errors, reader.warnings, raw, {}, unh.value(0), unh.value(2)))


class _MessageReader:
    """One CUSRES message's segments onto a CusresMessage."""

    def __init__(self, segs: list[Segment], ref: date):
        self.segs = segs
        self.ref = ref
        self.errors: list[Violation] = []
        self.warnings = Violations()
        self.refs = {"TN": "", "AF": ""}  # RFF of the header
        self.ports = {"125": "", "87": ""}  # LOC
        self.times: dict[str, Segment] = {}  # DTM 189, 232
        self.travellers: list[CusresTraveller] = []
        self.erp: Segment | None = None  # the open traveller group ...
        self.traveller: dict[str, str] = {}  # ... and what it said so far
        self.bgm = False

    def warn(self, code: str, description: str, seg: Segment) -> None:
        self.warnings.add(violation("", code, description, seg))

    def read(self) -> CusresMessage | None:
        segs = self.segs
        unh, unt = segs[0], segs[-1]
        kind = unh.value(1, 0)
        if kind != "CUSRES":
            self.errors.append(violation("", "not_cusres", f"not a CUSRES message: UNH names {kind[:12]!r}", unh))
            return None
        for seg in segs[1:-1]:
            if not self.segment(seg):
                self.warn("unknown_segment", f"segment {seg.tag[:3]!r} ignored here", seg)
        self.close()
        if not self.bgm:
            self.warn("missing_bgm", "no BGM segment", segs[1] if len(segs) > 2 else unh)
        count = unt.value(0)
        if count != str(len(segs)):
            self.warn("segment_count", f"UNT counts {count[:8]!r} segments, the message has {len(segs)}", unt)
        if unt.value(1) != unh.value(0):
            self.warn("control_reference", "UNT reference differs from UNH", unt)
        self.warnings.close()
        origin, destination = self.ports["125"], self.ports["87"]
        return CusresMessage(
            message_ref=unh.value(0),
            transaction_ref=self.refs["TN"],
            flight=self.refs["AF"],
            departure=self.time(self.times.get("189"), origin),
            arrival=self.time(self.times.get("232"), destination),
            origin=origin,
            destination=destination,
            travellers=self.travellers,
            common_access_ref=unh.value(2),
        )

    def segment(self, seg: Segment) -> bool:
        """Read one segment between UNH and UNT; False when it has no place here."""
        tag, qualifier = seg.tag, seg.value(0, 0)
        t = self.traveller if self.erp is not None else None
        if tag == "ERP":
            self.close()
            self.erp, self.traveller = seg, {"ABO": "", "AVF": "", "ERC": "", "FTX": ""}
        elif tag == "RFF" and qualifier in (self.refs if t is None else ("ABO", "AVF")):
            (self.refs if t is None else t)[qualifier] = seg.value(0, 1)
        elif tag == "ERC" and t is not None:
            t["ERC"] = qualifier
        elif tag == "FTX" and t is not None:
            if qualifier == "AAP":  # other free text is read past
                t["FTX"] = " ".join(p for p in [t["FTX"], *seg.parts(3)] if p)
        elif tag == "BGM" and not self.bgm:
            self.bgm = True
            if qualifier != "962":
                self.warn("unknown_function", f"BGM {qualifier[:6]!r} is not 962 (a response)", seg)
        elif tag == "DTM" and t is None and qualifier in ("189", "232"):
            self.times[qualifier] = seg
        elif tag == "LOC" and t is None and qualifier in self.ports:
            self.ports[qualifier] = seg.value(1)
        else:
            return False
        return True

    def close(self) -> None:
        """End the open traveller group."""
        if self.erp is None:
            return
        t = self.traveller
        if not t["ERC"]:
            self.warn("missing_erc", "a traveller's answer (ERP group) without ERC", self.erp)
        self.travellers.append(CusresTraveller(t["ABO"], t["AVF"], t["ERC"], t["FTX"]))
        self.erp, self.traveller = None, {}

    def time(self, seg: Segment | None, port: str) -> datetime | None:
        """A DTM 189/232 as UTC: local time at the port, UTC for a port without a known zone (warning)."""
        if seg is None:
            return None
        value, fmt = seg.value(0, 1).replace(" ", ""), seg.value(0, 2)
        try:
            fmt, year, month, day, hour, minute = flight_time_fields(value, fmt, self.ref)
        except BadDate as exc:
            self.warn("invalid_date", f"{exc}: {value[:14]!r}: left out", seg)
            return None
        zone = port_zone(port) if port else None
        if zone is None:
            self.warn("time_zone_unknown", f"no time zone known for port {port[:8]!r}: taken as UTC", seg)
        try:
            return datetime(year, month, day, hour, minute, tzinfo=zone or UTC).astimezone(UTC)
        except (OverflowError, ValueError):
            self.warn("invalid_date", "flight time out of range: left out", seg)
            return None


__all__ = [
    "FTX_COMPONENTS",
    "FTX_COMPONENT_CHARS",
    "CusresInterchange",
    "CusresMessage",
    "CusresTraveller",
    "ftx_components",
    "ftx_text",
    "parse_cusres",
    "render_cusres",
]
