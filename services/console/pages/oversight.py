"""Oversight of the member's own work with the hub, for its duty officers and member admins.

- ``GET /oversight``: the member's outbox and how far each of its readers has acknowledged it (its contact point,
  `apihub hits follow`, this console, its webhook), and the precision of each of its own rules and watchlist entries
  from its own dispositions (as `apihub dispositions` computes it).
- ``GET /oversight/audit``: the member's audit trail, newest first, a page at a time (``before``: the offset the
  previous page ended at): hits enqueued, acknowledged, viewed, taken in hand ("I'm on it") and disposed, lists and
  rules loaded, and by which officer.

Everything comes from the router's MemberRecords calls for the officer's own member (services.console.gateway); the
router answers that member's records only. A section the router cannot answer now says so in place; the others
still show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Annotated, Any

from babel.numbers import format_percent
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console import i18n
from services.console.deps import DutyOfficer, console_of, render
from services.errors import HubError

router = APIRouter()

AUDIT_PAGE = 50
# Labels the templates translate (msgids); what the router sends besides (ids, codes, digests) is shown as sent.
READER_LABELS = {
    "": "Contact point",
    "cli": "Command line (apihub hits follow)",
    "console": "This console",
    "webhook": "Webhook (push delivery)",
}
EVENT_LABELS = {
    "enqueued": "Hit delivered",
    "acknowledged": "Hits acknowledged",
    "viewed": "Traveller viewed",
    "taken": "Hit taken in hand",
    "disposed": "Hit disposed",
    "watchlist-loaded": "Watchlist loaded",
    "rules-loaded": "Rules loaded",
    "policy-loaded": "Board policy loaded",
    "checked": "Checked at check-in (interactive API)",
    "overridden": "Board directive overridden",
}
SOURCE_LABELS = {"watchlist": "Watchlist entry", "rule": "Targeting rule", "model": "Risk model"}


@dataclass(frozen=True)
class Section:
    """What one part of a page shows: the router's answer, or why there is none now."""

    value: Any = None
    error: str = ""


def _section(call, *args, **kwargs) -> Section:
    try:
        return Section(call(*args, **kwargs))
    except HubError as exc:  # the router's message names the cause, never a traveller
        return Section(error=str(exc))


@dataclass(frozen=True)
class PrecisionRow:
    source: str
    reason_id: str
    confirmed: int
    refuted: int
    precision: float | None


def _precision_rows(rows) -> list[PrecisionRow]:
    found = []
    for row in rows:
        source, _, rest = row.reason.partition(":")
        _, _, reason_id = rest.partition(":")
        found.append(PrecisionRow(source, reason_id or row.reason, row.confirmed, row.refuted, row.precision))
    return found


def _percent(value: float) -> str:
    """A precision as the officer's language writes a percentage ("83 %" in French)."""
    return format_percent(value, locale=i18n.current())


@router.get("/oversight")
def oversight(request: Request, who: DutyOfficer) -> Response:
    gateway = console_of(request).gateway
    outbox = _section(gateway.outbox, who.code)
    precision = _section(gateway.precision, who.code)
    if precision.value is not None:
        precision = Section(_precision_rows(precision.value))
    return render(
        request,
        "oversight.html",
        who,
        section="oversight",
        outbox=outbox,
        precision=precision,
        readers=READER_LABELS,
        sources=SOURCE_LABELS,
        percent=_percent,
    )


@router.get("/oversight/audit")
def audit_trail(
    request: Request, who: DutyOfficer, before: Annotated[int | None, Query(ge=0, le=2**62)] = None
) -> Response:
    gateway = console_of(request).gateway
    trail = _section(gateway.audit_trail, who.code, before, AUDIT_PAGE)
    return render(
        request,
        "oversight_audit.html",
        who,
        section="oversight",
        trail=trail,
        before=before,
        events=EVENT_LABELS,
        moment=lambda record: record.event.at.ToDatetime(tzinfo=UTC) if record.event.HasField("at") else None,
    )
