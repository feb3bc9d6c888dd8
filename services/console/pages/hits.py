"""The hit queue, its live stream, the hit page with its disposition form, and the CSV export of hits.

- ``GET /hits``: the member's hits, newest first, filtered by flight, departure date, source, category, band and
  state, paged. The page listens to ``/hits/live`` (server-sent events, htmx's sse extension): new hits appear at
  the top of the first page, a hit that changes (update, withdrawal, disposition, an officer taking it) is swapped
  in place by its row's id, and a polite live region tells screen readers how many hits arrived.
- ``GET /hits/{hit_id}``: the flight and itinerary, the traveller as the carrier sent them, every reason with its
  score, band and explanation, earlier versions, its dispositions, and the forms "I'm on it" and the disposition.
  Every view is written to the hub's audit trail first (gateway.record_view: which officer, when, which hit); a
  page the audit trail did not take is not shown.
- ``POST /hits/{hit_id}/dispose``: records the outcome through the router's HitDelivery.Dispose, exactly as
  `apihub hits dispose` does, in the officer's name. ``POST /hits/{hit_id}/take``: "I'm on it", written to the
  hub's audit trail first (gateway.take: event "taken", the officer), then to the console's queue.
- Interactive hits (raised by a carrier's check at check-in, Hit.interactive): the page shows the member's board
  directive (its copy carries its own alone) and its override of the hit, if any (gateway.overrides).
  ``POST /hits/{hit_id}/override`` (duty officers and member admins: "Let board", with a reason) and
  ``POST /hits/{hit_id}/override/withdraw`` call the router's BoardAdmin.Override in the officer's name, exactly as
  `apihub hits override` does; the router writes it to the audit trail ("overridden").
- ``GET /hits/export.csv`` (duty officers and member admins): the member's hits and their latest dispositions, no
  traveller's data; every cell that a spreadsheet would read as a formula is neutralised.

Hit ids are looked up within the officer's member only: another member's id answers 404, like an unknown one.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from services.codec import format_partial_date
from services.console.deps import Analyst, DutyOfficer, Officer, PostingAnalyst, PostingDutyOfficer, console_of, render
from services.console.live import CLOSED, HEARTBEAT_S, TooManyStreams
from services.console.workspace import BANDS, SOURCES, STATES, Filters, HitRecord, HitRow
from services.dispositions import OUTCOME_NAMES
from services.errors import HubError
from services.wire import check_pb2, hit_pb2, manifest_pb2

router = APIRouter()

PAGE_SIZE = 50
NOTE_MAX = 2000
# An override's reason: one line, as the router accepts (services.router.board.REASON_MAX).
REASON_MAX = 300
_HIT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Live: changes rendered per event, and per catch-up before the stream waits again.
LIVE_BATCH = 200
LIVE_CATCH_UP = 1000

# Messages the templates translate (their msgids); values that come from carriers or members are never translated.
OUTCOME_LABELS = {
    "true_match": "True match",
    "false_positive": "False positive",
    "denied_boarding": "Denied boarding",
    "refused_entry": "Refused entry",
    "secondary_positive": "Secondary inspection: positive",
    "secondary_negative": "Secondary inspection: negative",
}
OUTCOME_VALUES = {name: value for value, name in OUTCOME_NAMES.items()}
STATE_LABELS = {"new": "New", "in-progress": "In progress", "closed": "Closed", "withdrawn": "Withdrawn"}
SOURCE_LABELS = {"watchlist": "Watchlist", "rule": "Rule", "model": "Model"}
BAND_LABELS = {"alert": "Alert", "review": "Review", "": "—"}
_REASON_SOURCES = {
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}
_REASON_BANDS = {hit_pb2.SCREENING_BAND_ALERT: "alert", hit_pb2.SCREENING_BAND_REVIEW: "review"}
ROLE_LABELS = {
    manifest_pb2.TRAVELLER_ROLE_PASSENGER: "Passenger",
    manifest_pb2.TRAVELLER_ROLE_CREW: "Crew",
    manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER: "Transit passenger",
    manifest_pb2.TRAVELLER_ROLE_TRANSIT_CREW: "Transit crew",
}
SEX_LABELS = {manifest_pb2.SEX_MALE: "Male", manifest_pb2.SEX_FEMALE: "Female", manifest_pb2.SEX_X: "X (unspecified)"}
DOCUMENT_LABELS = {
    manifest_pb2.DOCUMENT_TYPE_PASSPORT: "Passport",
    manifest_pb2.DOCUMENT_TYPE_IDENTITY_CARD: "Identity card",
    manifest_pb2.DOCUMENT_TYPE_VISA: "Visa",
    manifest_pb2.DOCUMENT_TYPE_RESIDENCE_PERMIT: "Residence permit",
    manifest_pb2.DOCUMENT_TYPE_SEAFARER_ID: "Seafarer's identity document",
    manifest_pb2.DOCUMENT_TYPE_CREW_LICENCE: "Crew licence",
    manifest_pb2.DOCUMENT_TYPE_OTHER: "Other document",
}
BOARDING_LABELS = {
    manifest_pb2.BOARDING_STATUS_BOARDED: "Boarded",
    manifest_pb2.BOARDING_STATUS_NOT_BOARDED: "Not boarded",
}
# The member's board directive of an interactive hit, as the carrier was told it.
DIRECTIVE_LABELS = {
    check_pb2.DIRECTIVE_OK_TO_BOARD: "OK TO BOARD",
    check_pb2.DIRECTIVE_DO_NOT_BOARD: "DO NOT BOARD",
    check_pb2.DIRECTIVE_CONTACT_AUTHORITY: "CONTACT AUTHORITY",
    check_pb2.DIRECTIVE_INSUFFICIENT_DATA: "INSUFFICIENT DATA",
}
# The directives an officer's override lifts (the carrier's next check answers OK to board for this member).
OVERRIDABLE = frozenset({check_pb2.DIRECTIVE_DO_NOT_BOARD, check_pb2.DIRECTIVE_CONTACT_AUTHORITY})
LABELS = {
    "outcome": OUTCOME_LABELS,
    "state": STATE_LABELS,
    "source": SOURCE_LABELS,
    "band": BAND_LABELS,
}


def _int(value: str | None, default: int = 0) -> int:
    try:
        return max(int(value or ""), 0)
    except ValueError:
        return default


def _check_id(hit_id: str) -> str:
    if not _HIT_ID.fullmatch(hit_id):
        raise HTTPException(404)
    return hit_id


# -- the queue -------------------------------------------------------------------------------------------------------


@router.get("/hits")
def queue(request: Request, who: Analyst, page: int = 1) -> Response:
    console = console_of(request)
    filters, wrong = Filters.parse(dict(request.query_params))
    page = max(page, 1)
    found = console.workspace.page(
        who.code, filters, who.member.time_zone, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    seqs = [r.seq for r in found.rows]
    # The live stream resumes after the page's tick; it swaps the rows in [floor, ceil] (the page's), and on the
    # first page ("top") inserts new ones above them.
    live = {
        **filters.as_query(),
        "since": found.tick,
        "floor": min(seqs, default=0),
        "ceil": max(seqs, default=0),
        "top": int(page == 1),
    }

    def link(n: int) -> str:
        return "/hits?" + urlencode({**filters.as_query(), "page": n})

    return render(
        request,
        "hits.html",
        who,
        section="hits",
        found=found,
        filters=filters,
        wrong=wrong,
        page_no=page,
        pages=pages,
        previous=link(page - 1) if page > 1 else "",
        next=link(page + 1) if page < pages else "",
        live_url="/hits/live?" + urlencode(live),
        export_url="/hits/export.csv" + ("?" + urlencode(filters.as_query()) if filters.as_query() else ""),
        sources=SOURCES,
        bands=BANDS,
        states=STATES,
        labels=LABELS,
    )


# -- live ------------------------------------------------------------------------------------------------------------


def _signed_in(request: Request, who: Officer) -> bool:
    """Whether the officer's session still stands (not ended, not expired, the officer still enabled), without
    counting as a request: an open stream alone does not keep a session alive."""
    console = console_of(request)
    session = console.sessions.peek(who.session.id)
    user = console.users.get(who.code, who.username)
    return session is not None and user is not None and not user.disabled and user.stamp == session.stamp


def _event(tick: int, data: str) -> str:
    lines = data.splitlines() or [""]
    return f"id: {tick}\nevent: hit\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _live_events(
    request: Request, who: Officer, filters: Filters, last: int, floor: int, ceil: int, top: bool
) -> tuple[list[str], int, bool]:
    """The events that bring a page up to date after tick ``last``: rows to insert (page 1 only), to swap in
    place, to remove (no longer matching the filters); the new last tick; whether more changes wait."""
    console = console_of(request)
    events: list[str] = []
    read = 0
    while read < LIVE_CATCH_UP:
        changes = console.workspace.changes(who.code, last, filters, who.member.time_zone, limit=LIVE_BATCH)
        if not changes:
            return events, last, False
        read += len(changes)
        inserted: list[HitRow] = []
        replaced: list[HitRow] = []
        removed: list[HitRow] = []
        for change in changes:
            row = change.row
            shown = row.seq <= last  # on the page already (rendered with it, or sent live before)
            on_page = floor <= row.seq and (top or row.seq <= ceil)
            if change.matches and not shown and top:
                inserted.append(row)
            elif change.matches and shown and on_page:
                replaced.append(row)
            elif not change.matches and shown and on_page:
                removed.append(row)
        last = changes[-1].row.changed
        if inserted or replaced or removed:
            html = render(
                request,
                "hits_live.html",
                who,
                inserted=sorted(inserted, key=lambda r: r.seq, reverse=True),
                replaced=replaced,
                removed=removed,
                withdrawn=sum(1 for r in replaced if r.withdrawn),
                labels=LABELS,
            ).body.decode()
            events.append(_event(last, html))
        if len(changes) < LIVE_BATCH:
            return events, last, False
    return events, last, True


@router.get("/hits/live")
async def live(request: Request, who: Analyst) -> Response:
    """Server-sent events for the queue page that opened it (its filters, its first tick, its rows' range)."""
    console = console_of(request)
    params = request.query_params
    filters, _ = Filters.parse(dict(params))
    floor, ceil, top = _int(params.get("floor")), _int(params.get("ceil")), params.get("top") == "1"
    resume = request.headers.get("last-event-id")
    last = _int(resume) if resume else _int(params.get("since"))
    try:
        stream = console.live.open(who.code, who.user.key)
    except TooManyStreams:
        return PlainTextResponse("too many live streams open", status_code=429)

    async def events():
        nonlocal last
        try:
            yield "retry: 5000\n\n"  # the browser reconnects after 5 s, sending the last event id it got
            pending = True
            while True:
                if pending:
                    chunks, last, pending = await run_in_threadpool(_live_events, request, who, filters, last,
                                                                    floor, ceil, top)  # fmt: skip
                    for chunk in chunks:
                        yield chunk
                    if pending:
                        continue
                tick = await stream.next(HEARTBEAT_S)
                if tick == CLOSED or not _signed_in(request, who):
                    return
                if tick is None:
                    yield ": keep-alive\n\n"
                else:
                    pending = tick > last
        finally:
            console.live.release(stream)

    return _LiveResponse(
        events(),
        release=lambda: console.live.release(stream),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class _LiveResponse(StreamingResponse):
    """A stream that releases its place in the live fan-out however the response ends, even when the client was
    gone before its first byte (the event generator then never starts, and its own ``finally`` never runs)."""

    def __init__(self, content, release, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


# -- export ----------------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "hit_id", "version", "state", "received_utc", "carrier", "flight_number", "departure_utc", "route", "sources",
    "categories", "score", "band", "for_review", "taken_by", "taken_at_utc", "outcome", "disposed_at_utc",
    "disposed_by", "note",
)  # fmt: skip
# A cell a spreadsheet would read as a formula (or that hides one behind a tab or carriage return); the full-width
# forms too, which some spreadsheets fold to the ASCII ones.
_FORMULA_START = tuple("=+-@\t\r") + tuple("\uff1d\uff0b\uff0d\uff20")


def neutralise(cell: str) -> str:
    """A CSV cell made inert: one a spreadsheet would take for a formula gets a leading single quote."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else ""


def _csv_line(cells) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([neutralise(str(c)) for c in cells])
    return out.getvalue()


def _export_cells(r: HitRow) -> tuple:
    return (
        r.hit_id, r.version, r.state, _iso(r.first_received), r.carrier, r.number, _iso(r.departure),
        " ".join(r.route), " ".join(r.sources), "; ".join(r.categories), f"{r.score:.4f}", r.band,
        "yes" if r.for_review else "no", r.taken_by, _iso(r.taken_at), r.outcome, _iso(r.disposed_at),
        r.disposed_by, r.note,
    )  # fmt: skip


@router.get("/hits/export.csv")
def export(request: Request, who: DutyOfficer) -> Response:
    console = console_of(request)
    filters, _ = Filters.parse(dict(request.query_params))
    rows = console.workspace.export(who.code, filters, who.member.time_zone)

    def lines():
        yield "\ufeff" + _csv_line(EXPORT_COLUMNS)  # the byte order mark: spreadsheets then read UTF-8
        for row in rows:
            yield _csv_line(_export_cells(row))

    name = f"hits-{who.code}-{datetime.now(UTC):%Y%m%d}.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


# -- the hit page ----------------------------------------------------------------------------------------------------


def _traveller_facts(t: manifest_pb2.Traveller) -> list[tuple[str, str, bool]]:
    """(label msgid, value, whether the value is a msgid too) for each field the carrier sent."""
    facts = [
        ("Role", ROLE_LABELS.get(t.role, ""), True),
        ("Surname", t.surname, False),
        ("Given names", t.given_names, False),
        ("Sex", SEX_LABELS.get(t.sex, ""), True),
        ("Date of birth", format_partial_date(t.date_of_birth), False),
        ("Nationality", t.nationality, False),
        ("Country of residence", t.residence, False),
        ("Reservation locator", t.reservation_locator, False),
        ("Passenger reference", t.passenger_ref, False),
        ("Seat", t.seat, False),
        ("Boards at", t.embarkation, False),
        ("Leaves at", t.debarkation, False),
        ("Boarding", BOARDING_LABELS.get(t.boarding, ""), True),
    ]
    if t.HasField("booking"):
        b = t.booking
        facts.append(("Booking date", format_partial_date(b.booking_date), False))
        facts.append(("Form of payment", b.payment_form, False))
        if b.HasField("one_way"):
            facts.append(("One-way ticket", "Yes" if b.one_way else "No", True))
    return [f for f in facts if f[1]]


def _documents(t: manifest_pb2.Traveller) -> list[dict]:
    return [
        {
            "type": DOCUMENT_LABELS.get(d.type, ""),
            "number": d.number,
            "issuer": d.issuing_state,
            "expiry": format_partial_date(d.expiry),
            "mrz": d.mrz,
        }
        for d in t.documents
    ]


def _reasons(hit: hit_pb2.Hit) -> list[dict]:
    return [
        {
            "source": _REASON_SOURCES.get(r.source, ""),
            "id": r.id,
            "owner": r.owner,
            "category": r.category,
            "score": r.score,
            "band": _REASON_BANDS.get(r.band, ""),
            "explanation": r.explanation,
        }
        for r in hit.reasons
    ]


def _moment(ts) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if (ts.seconds or ts.nanos) else None


def _legs(flight: hit_pb2.FlightRef) -> list[str]:
    return list(flight.route) or [p for p in (flight.origin, flight.destination) if p]


def _board(request: Request, who: Officer, record: HitRecord) -> dict | None:
    """What the page shows of an interactive hit: the member's directive, its latest override of the hit (standing or
    withdrawn) and whether this officer may let the traveller board or withdraw that; None for a batch hit."""
    hit = record.shown.hit
    if not hit.interactive:
        return None
    directive = hit.directives.get(who.code, check_pb2.DIRECTIVE_UNSPECIFIED)
    latest, error = None, ""
    try:
        found = [o for o in console_of(request).gateway.overrides(who.code, record.row.hit_id) if o.member == who.code]
        latest = found[0] if found else None
    except HubError as exc:
        error = str(exc)
    standing = latest is not None and not latest.revoked
    officer_may = who.may("duty-officer") and not record.row.withdrawn and not error
    return {
        "directive": DIRECTIVE_LABELS.get(directive, ""),
        "override": latest,
        "override_at": _moment(latest.at) if latest is not None else None,
        "standing": standing,
        "error": error,
        "may_override": officer_may and not standing and directive in OVERRIDABLE,
        "may_withdraw": officer_may and standing,
    }


def _hit_page(request: Request, who: Officer, record: HitRecord, status_code: int = 200, **context) -> Response:
    """The hit page, once the audit trail took the view (an error there shows no traveller's data)."""
    console = console_of(request)
    # The version's cursor lets the router check a hit whose flight its delivery ledger no longer holds.
    console.gateway.record_view(who.code, who.username, record.row.hit_id, cursor=record.current.cursor)
    shown = record.shown.hit
    context.setdefault("board", _board(request, who, record))
    flight = record.current.hit.flight if record.current.hit.flight.carrier else shown.flight
    return render(
        request,
        "hit.html",
        who,
        status_code=status_code,
        section="hits",
        record=record,
        row=record.row,
        hit=shown,
        flight=flight,
        departure=_moment(flight.departure),
        legs=_legs(flight),
        raised=_moment(shown.raised_at),
        facts=_traveller_facts(shown.traveller),
        documents=_documents(shown.traveller),
        reasons=_reasons(shown),
        earlier=[
            {"v": v, "reasons": _reasons(v.hit), "score": v.hit.score, "raised": _moment(v.hit.raised_at)}
            for v in record.earlier
        ],
        outcomes=OUTCOME_LABELS,
        labels=LABELS,
        note_max=NOTE_MAX,
        reason_max=REASON_MAX,
        **context,
    )


def _record(request: Request, who: Officer, hit_id: str) -> HitRecord:
    record = console_of(request).workspace.hit(who.code, _check_id(hit_id))
    if record is None:
        raise HTTPException(404)
    return record


@router.get("/hits/{hit_id}")
def hit_page(request: Request, who: Analyst, hit_id: str, done: str = "") -> Response:
    record = _record(request, who, hit_id)
    notices = {
        "disposed": "Disposition recorded.",
        "taken": "You are on this hit.",
        "overridden": "The traveller may board as far as your member is concerned.",
        "withdrawn": "Override withdrawn: your board policy answers again.",
    }
    return _hit_page(request, who, record, notice=notices.get(done, ""))


@router.post("/hits/{hit_id}/dispose")
def dispose(
    request: Request,
    who: PostingAnalyst,
    hit_id: str,
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=NOTE_MAX)] = "",
) -> Response:
    console = console_of(request)
    record = _record(request, who, hit_id)
    if outcome not in OUTCOME_VALUES:
        return _hit_page(request, who, record, 422, error="Choose an outcome.", note=note)
    try:
        answer = console.gateway.dispose(who.code, who.username, record.row.hit_id, OUTCOME_VALUES[outcome], note)
    except HubError as exc:
        status = getattr(exc, "http_status", 503)
        return _hit_page(request, who, record, status, error_text=str(exc), note=note, outcome=outcome)
    disposition = getattr(answer, "disposition", answer)  # the Disposition, or a DisposeResponse holding it
    console.workspace.record_dispositions(who.code, [disposition])
    return RedirectResponse(f"/hits/{record.row.hit_id}?done=disposed", status_code=303)


@router.post("/hits/{hit_id}/take")
def take(request: Request, who: PostingAnalyst, hit_id: str) -> Response:
    console = console_of(request)
    record = _record(request, who, hit_id)
    try:
        # The audit trail first ("taken", in the officer's name), then the console's own queue.
        console.gateway.take(who.code, who.username, record.row.hit_id, cursor=record.current.cursor)
    except HubError as exc:
        return _hit_page(request, who, record, getattr(exc, "http_status", 503), error_text=str(exc))
    if not console.workspace.take(who.code, record.row.hit_id, who.username):
        raise HTTPException(404)
    return RedirectResponse(f"/hits/{record.row.hit_id}?done=taken", status_code=303)


@router.post("/hits/{hit_id}/override")
def override(
    request: Request,
    who: PostingDutyOfficer,
    hit_id: str,
    reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
) -> Response:
    """Let board: lifts the member's do-not-board (or contact-authority) answer for this traveller."""
    record = _record(request, who, hit_id)
    if not record.shown.hit.interactive:
        return _hit_page(request, who, record, 422, error="This hit was not raised by an interactive check.")
    reason = reason.strip()
    if not reason or not reason.isprintable():
        return _hit_page(request, who, record, 422, error="Give the reason, on one line.", reason=reason)
    return _overriding(request, who, record, reason, revoke=False, reason_kept=reason)


@router.post("/hits/{hit_id}/override/withdraw")
def withdraw_override(request: Request, who: PostingDutyOfficer, hit_id: str) -> Response:
    """The member's board policy answers for this traveller again."""
    record = _record(request, who, hit_id)
    return _overriding(request, who, record, "", revoke=True)


def _overriding(
    request: Request, who: Officer, record: HitRecord, reason: str, *, revoke: bool, reason_kept: str = ""
) -> Response:
    try:
        console_of(request).gateway.override(who.code, who.username, record.row.hit_id, reason, revoke=revoke)
    except HubError as exc:
        status = getattr(exc, "http_status", 503)
        return _hit_page(request, who, record, status, error_text=str(exc), reason=reason_kept)
    done = "withdrawn" if revoke else "overridden"
    return RedirectResponse(f"/hits/{record.row.hit_id}?done={done}", status_code=303)
