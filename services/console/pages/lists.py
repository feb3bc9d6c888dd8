"""The member's watchlist: browse and search its entries; upload a new list (the CSV `apihub watchlist load` reads),
see what it changes, and only then apply it.

Uploading makes a preview, held on the server under a random id for the officer who made it (PREVIEW_TTL_S, at most
PREVIEWS_PER_OFFICER per officer and PREVIEWS_TOTAL in the console): the entries the file adds, removes and changes
(which fields) against the member's current list, and the rows it refuses with their line, field and reason (the
same checks as `apihub watchlist load` and the router's). Applying is a second POST naming that preview, never the
file again: it loads the previewed entries through the router (WatchlistAdmin, as the officer) if the file refused
no row and the member's list is still the one the preview was made against.

Analysts browse and search; uploading and applying need a duty officer. A search is sent by POST and never logged,
so the names and document numbers looked for appear in no URL and no log line.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from services import codec
from services.console import i18n
from services.console.deps import Analyst, DutyOfficer, Officer, PostingAnalyst, PostingDutyOfficer, console_of, render
from services.userfiles import InputFileError, decode_text, size_text
from services.watchlist_csv import WATCHLIST_COLUMNS, Wording, read_watchlist_rows
from services.wire import delivery_pb2, manifest_pb2

router = APIRouter()

# Entries per page when browsing, and the longest search (the router's ListWatchlist bounds).
PAGE = 50
QUERY_MAX = 100
# Entries asked for per call when the whole current list is read for a preview (the router's most).
READ_PAGE = 500
# Previews: how long one is kept, how many one officer may hold (a new one drops the oldest), how many in all.
PREVIEW_TTL_S = 15 * 60
PREVIEWS_PER_OFFICER = 2
PREVIEWS_TOTAL = 8
# Rows of each part of a preview shown on its page (the counts are always whole).
SHOWN = 200
# Encodings an officer may name for a file that is neither UTF-8 nor UTF-16 with a byte order mark.
ENCODINGS = ("cp1252", "latin-1")
SCOPES = {"regional": delivery_pb2.WATCHLIST_SCOPE_REGIONAL, "private": delivery_pb2.WATCHLIST_SCOPE_PRIVATE}
# The advice of a refused row, in the page's terms (the encoding is chosen beside the file; the owner column is
# the officer's member or empty).
WORDING = Wording(cp1252="choose cp1252", other_owner="'{given}' is not your member ({owner}): leave it empty")
# The fields compared between a current entry and an uploaded one (the CSV's columns, owner aside).
FIELDS = tuple(column for column in WATCHLIST_COLUMNS if column not in ("entry_id", "owner"))

# -- reading an upload ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A row of the file that cannot be loaded: its line, the column at fault ("" for the row), and why."""

    line: int
    field: str
    reason: str


def read_upload(text: str, member: str) -> tuple[list[tuple[int, delivery_pb2.WatchlistEntry]], list[Refused]]:
    """(line, entry) of every row that reads as `apihub watchlist load` reads it, and every row refused with its
    line, field and reason, all of them rather than the first, in line order: the CSV's rules
    (services.watchlist_csv.read_watchlist_rows, for the officer's member) and the router's (an entry id and a
    surname on every row, no entry id twice). A header that lacks a column refuses the file."""
    rows, refusals = read_watchlist_rows(text, member, wording=WORDING)
    refused = [Refused(line, field, reason) for line, field, reason in refusals]
    accepted: list[tuple[int, delivery_pb2.WatchlistEntry]] = []
    first_line: dict[str, int] = {}
    for line, entry in rows:
        entry_id = entry.entry_id.strip()
        if not entry_id:
            refused.append(Refused(line, "entry_id", "every entry needs an entry_id"))
        elif entry_id in first_line:
            refused.append(Refused(line, "entry_id", f"entry_id '{entry_id}' is also on line {first_line[entry_id]}"))
        elif not entry.surname.strip():
            refused.append(Refused(line, "surname", "every entry needs a surname"))
        else:
            first_line[entry_id] = line
            entry.entry_id = entry_id
            accepted.append((line, entry))
    refused.sort(key=lambda r: r.line)  # one refusal a row at most; a file not read to its end, after its last row
    return accepted, refused


# -- previews ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    entry_id: str
    fields: tuple[str, ...]
    before: delivery_pb2.WatchlistEntry
    after: delivery_pb2.WatchlistEntry


@dataclass
class Preview:
    """What applying an upload would change. The entries to load are kept serialised (``payload``, a Watchlist);
    the parts are kept for display, SHOWN rows each, with whole counts."""

    id: str
    member: str
    username: str
    created: float
    scope: int
    payload: bytes
    entries: int
    current: int  # entries of the list the preview was made against
    current_scope: int  # and its scope (unspecified: no list loaded)
    baseline: str  # digest of that list
    added: list[delivery_pb2.WatchlistEntry] = field(default_factory=list)
    removed: list[delivery_pb2.WatchlistEntry] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # added, removed, changed, unchanged, refused

    @property
    def scope_name(self) -> str:
        return codec.watchlist_scope_name(self.scope)

    @property
    def scope_changes(self) -> bool:
        return self.current_scope not in (delivery_pb2.WATCHLIST_SCOPE_UNSPECIFIED, self.scope)

    @property
    def applicable(self) -> bool:
        return not self.counts.get("refused")


class Previews:
    """Previews held for their officers: a preview is found only by its id together with its member and officer,
    expires after ``ttl_s``, one officer holds at most ``per_officer`` (a new one drops their oldest) and the
    console at most ``total`` (a new one drops the oldest of all)."""

    def __init__(
        self,
        ttl_s: float = PREVIEW_TTL_S,
        per_officer: int = PREVIEWS_PER_OFFICER,
        total: int = PREVIEWS_TOTAL,
        clock=time.monotonic,
    ) -> None:
        self._ttl_s, self._per_officer, self._total, self._clock = ttl_s, per_officer, total, clock
        self._held: OrderedDict[str, Preview] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, p in self._held.items() if now - p.created > self._ttl_s]:
            del self._held[key]

    def put(self, preview: Preview) -> None:
        with self._lock:
            self._expire()
            mine = [k for k, p in self._held.items() if (p.member, p.username) == (preview.member, preview.username)]
            for key in mine[: max(0, len(mine) - self._per_officer + 1)]:
                del self._held[key]
            while len(self._held) >= self._total:
                self._held.popitem(last=False)
            self._held[preview.id] = preview

    def get(self, member: str, username: str, preview_id: str) -> Preview | None:
        with self._lock:
            self._expire()
            preview = self._held.get(preview_id)
            if preview is None or (preview.member, preview.username) != (member, username):
                return None  # another officer's or member's preview is answered as an unknown one
            return preview

    def drop(self, member: str, username: str, preview_id: str) -> None:
        with self._lock:
            preview = self._held.get(preview_id)
            if preview is not None and (preview.member, preview.username) == (member, username):
                del self._held[preview_id]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._held)


_PARTS_LOCK = threading.Lock()


def previews_of(console) -> Previews:
    """The console's previews (kept in Console.extra, made on first use)."""
    with _PARTS_LOCK:
        held = console.extra.get("lists.previews")
        if held is None:
            held = console.extra["lists.previews"] = Previews()
        return held


@dataclass(frozen=True)
class CurrentList:
    """The member's whole current watchlist as the router holds it (scope unspecified: no list loaded)."""

    entries: list[delivery_pb2.WatchlistEntry]
    scope: int
    digest: str


def current_list(gateway, member: str, user: str) -> CurrentList:
    """The member's whole current list, read from the router a page at a time (HubGateway.watchlist)."""
    entries: list[delivery_pb2.WatchlistEntry] = []
    while True:
        reply = gateway.watchlist(member, "", len(entries), READ_PAGE, user=user)
        entries.extend(reply.entries)
        if not reply.entries or len(entries) >= reply.total:
            return CurrentList(entries, reply.scope, list_digest(entries, reply.scope))


def list_digest(entries, scope: int = 0) -> str:
    """What tells a list from any other: its scope and entries, in order."""
    digest = hashlib.sha256(scope.to_bytes(4, "big"))
    for entry in entries:
        data = entry.SerializeToString(deterministic=True)
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


def _value(entry: delivery_pb2.WatchlistEntry, name: str):
    value = getattr(entry, name)
    if name == "date_of_birth":
        return (value.year, value.month, value.day)
    return value


def make_preview(
    member: str,
    username: str,
    scope: int,
    current: CurrentList,
    accepted: list[tuple[int, delivery_pb2.WatchlistEntry]],
    refused: list[Refused],
    now: float,
) -> Preview:
    before = {e.entry_id.strip(): e for e in current.entries}
    after = {e.entry_id: e for _, e in accepted}
    added = [e for _, e in accepted if e.entry_id not in before]
    removed = [e for key, e in before.items() if key not in after]
    changed, unchanged = [], 0
    for _, entry in accepted:
        old = before.get(entry.entry_id)
        if old is None:
            continue
        fields = tuple(name for name in FIELDS if _value(old, name) != _value(entry, name))
        if fields:
            changed.append(Change(entry.entry_id, fields, old, entry))
        else:
            unchanged += 1
    watchlist = delivery_pb2.Watchlist(owner=member, scope=scope, entries=[e for _, e in accepted])
    return Preview(
        id=secrets.token_urlsafe(18),
        member=member,
        username=username,
        created=now,
        scope=scope,
        payload=watchlist.SerializeToString(),
        entries=len(accepted),
        current=len(current.entries),
        current_scope=current.scope,
        baseline=current.digest,
        added=added[:SHOWN],
        removed=removed[:SHOWN],
        changed=changed[:SHOWN],
        refused=refused[:SHOWN],
        counts={
            "added": len(added),
            "removed": len(removed),
            "changed": len(changed),
            "unchanged": unchanged,
            "refused": len(refused),
        },
    )


# -- pages ------------------------------------------------------------------------------------------------------


def _entry_view(entry: delivery_pb2.WatchlistEntry) -> dict[str, str]:
    sex = manifest_pb2.Sex.Name(entry.sex).removeprefix("SEX_")
    return {
        "entry_id": entry.entry_id,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": codec.format_partial_date(entry.date_of_birth),
        "sex": "" if sex == "UNSPECIFIED" else {"MALE": "M", "FEMALE": "F"}.get(sex, sex),
        "nationality": entry.nationality,
        "document_number": entry.document_number,
        "document_issuer": entry.document_issuer,
        "category": entry.category,
    }


def _listing(request: Request, who: Officer, query: str, page: int, status_code: int = 200, **context) -> Response:
    console = console_of(request)
    page = max(page, 1)
    reply = console.gateway.watchlist(who.code, query, (page - 1) * PAGE, PAGE, user=who.username)
    entries, total = list(reply.entries), reply.total
    pages = max(1, -(-total // PAGE))
    loaded_at = reply.loaded_at.ToDatetime(tzinfo=UTC) if reply.HasField("loaded_at") else None
    return render(
        request,
        "lists.html",
        who,
        status_code=status_code,
        section="lists",
        entries=[_entry_view(e) for e in entries],
        total=total,
        page=page,
        pages=pages,
        query=query,
        first=(page - 1) * PAGE + 1 if entries else 0,
        last=(page - 1) * PAGE + len(entries),
        encodings=ENCODINGS,
        scopes=list(SCOPES),
        max_size=size_text(_max_bytes(console)),
        columns=", ".join(WATCHLIST_COLUMNS),
        list_size=reply.list_size,
        list_scope=codec.watchlist_scope_name(reply.scope) if loaded_at else "",
        loaded_at=loaded_at,
        **context,
    )


def _max_bytes(console) -> int:
    from services.console.app import MAX_BODY_BYTES

    return min(console.settings.watchlist_file_max_bytes, MAX_BODY_BYTES - 64 * 1024)


@router.get("/lists")
def lists(request: Request, who: Analyst, page: int = 1, loaded: int | None = None) -> Response:
    notice = i18n.gettext("Watchlist loaded: %(n)s entries.", n=loaded) if loaded is not None else ""
    return _listing(request, who, "", page, notice=notice)


@router.post("/lists/search")
def search(
    request: Request,
    who: PostingAnalyst,
    query: Annotated[str, Form(max_length=QUERY_MAX)] = "",
    page: Annotated[int, Form(ge=1, le=1_000_000)] = 1,
) -> Response:
    return _listing(request, who, query.strip(), page)


@router.post("/lists/preview")
def upload(
    request: Request,
    who: PostingDutyOfficer,
    file: Annotated[UploadFile, File()],
    scope: Annotated[str, Form(max_length=16)] = "regional",
    encoding: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    console = console_of(request)
    if scope not in SCOPES or (encoding and encoding not in ENCODINGS):
        raise HTTPException(422)
    most = _max_bytes(console)
    data = file.file.read(most + 1)
    if len(data) > most:
        error = i18n.gettext("The file is larger than %(size)s, the most the console reads.", size=size_text(most))
        return _listing(request, who, "", 1, 413, upload_error=error)
    try:
        text = decode_text(data, "upload", encoding or None, hint="save it as UTF-8, or choose its encoding below")
    except InputFileError as exc:
        return _listing(request, who, "", 1, 422, upload_error=exc.reason)
    accepted, refused = read_upload(text, who.code)
    current = current_list(console.gateway, who.code, who.username)
    preview = make_preview(who.code, who.username, SCOPES[scope], current, accepted, refused, time.monotonic())
    previews_of(console).put(preview)
    return RedirectResponse(f"/lists/preview/{preview.id}", status_code=303)


def _preview_of(request: Request, who: Officer, preview_id: str) -> Preview:
    preview = previews_of(console_of(request)).get(who.code, who.username, preview_id)
    if preview is None:
        raise HTTPException(404)
    return preview


def _preview_page(request: Request, who: Officer, preview: Preview, status_code: int = 200, **context) -> Response:
    return render(
        request,
        "lists_preview.html",
        who,
        status_code=status_code,
        section="lists",
        preview=preview,
        added=[_entry_view(e) for e in preview.added],
        removed=[_entry_view(e) for e in preview.removed],
        changed=[
            (c.entry_id, [(n, _entry_view(c.before)[n], _entry_view(c.after)[n]) for n in c.fields])
            for c in preview.changed
        ],
        shown=SHOWN,
        minutes=int(PREVIEW_TTL_S // 60),
        **context,
    )


@router.get("/lists/preview/{preview_id}")
def preview_page(request: Request, who: DutyOfficer, preview_id: str) -> Response:
    return _preview_page(request, who, _preview_of(request, who, preview_id))


@router.post("/lists/preview/{preview_id}/apply")
def apply(request: Request, who: PostingDutyOfficer, preview_id: str) -> Response:
    console = console_of(request)
    preview = _preview_of(request, who, preview_id)
    if not preview.applicable:
        error = i18n.gettext("The file has refused rows: correct them and upload it again.")
        return _preview_page(request, who, preview, 409, error=error)
    if current_list(console.gateway, who.code, who.username).digest != preview.baseline:
        previews_of(console).drop(who.code, who.username, preview_id)
        error = i18n.gettext("The watchlist changed since this preview was made: upload the file again.")
        return _listing(request, who, "", 1, 409, upload_error=error)
    entries = list(delivery_pb2.Watchlist.FromString(preview.payload).entries)
    reply = console.gateway.load_watchlist(who.code, who.username, entries, preview.scope)
    if reply.errors:
        problems = [f"{v.field}: {v.description}" for v in reply.errors]
        error = i18n.gettext("The hub refused the watchlist.")
        return _preview_page(request, who, preview, 422, error=error, problems=problems)
    previews_of(console).drop(who.code, who.username, preview_id)
    return RedirectResponse(f"/lists?loaded={reply.entries}", status_code=303)


@router.post("/lists/preview/{preview_id}/discard")
def discard(request: Request, who: PostingDutyOfficer, preview_id: str) -> Response:
    _preview_of(request, who, preview_id)
    previews_of(console_of(request)).drop(who.code, who.username, preview_id)
    return RedirectResponse("/lists", status_code=303)
