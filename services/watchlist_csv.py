"""The watchlist CSV: its columns and the rules of a row, the one reader wherever a member's list is read from a file
(`apihub watchlist load`, `apihub screen --watchlist`, the member console's upload preview).

A file has a header naming at least WATCHLIST_COLUMNS (at most MAX_WATCHLIST_COLUMNS columns: a member's own extra
columns are ignored) and one entry per row. Values are stripped; the date of birth is a partial date (YYYY-MM-DD,
YYYY-MM or YYYY), the sex M, F, X or empty, nationality and issuer are upper-cased; control characters are refused,
never stored or screened. Reading for a member (``owner``), a row may leave its owner empty or name that member;
without one (offline screening of several members' lists), every row names its owner.

read_watchlist_rows reads every row and answers the refused ones with their line and field (the console's preview);
read_watchlist_csv and read_watchlist_file refuse a file at its first refused row (the commands). A refusal never
repeats a value: it may be a name or a document number. Checks across rows (an entry id on every row and never
twice, a surname) are the router's, when the list is loaded.

Platform code: no service imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.codec import parse_partial_date
from services.userfiles import ENCODING_HINT, InputFileError, read_text
from services.wire import delivery_pb2, manifest_pb2

WATCHLIST_COLUMNS = [
    "entry_id",
    "surname",
    "given_names",
    "date_of_birth",
    "sex",
    "nationality",
    "document_number",
    "document_issuer",
    "category",
    "owner",
]
# Most columns a watchlist CSV's header may have: WATCHLIST_COLUMNS and a few of the member's own, ignored.
MAX_WATCHLIST_COLUMNS = 64
_SEX = {
    "": manifest_pb2.SEX_UNSPECIFIED,
    "M": manifest_pb2.SEX_MALE,
    "F": manifest_pb2.SEX_FEMALE,
    "X": manifest_pb2.SEX_X,
}
# Control characters (C0, DEL, C1) have no place in a watchlist: refused, never stored or screened.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class WatchlistFileError(ValueError):
    """A watchlist CSV problem, naming the line and column."""


@dataclass(frozen=True)
class Wording:
    """The advice in a refusal, in the terms of the tool reading the file: what to do about a cp1252 file read as
    latin-1, and how a row naming another owner is refused (``{given}``: the row's owner, ``{owner}``: the member
    the list is read for)."""

    cp1252: str
    other_owner: str


# The commands' words (`apihub watchlist load --member M --encoding E`).
COMMAND_WORDING = Wording(cp1252="try --encoding cp1252", other_owner="'{given}' differs from --member {owner}")

# A refused row: its line, the column at fault ("" for the row or the file), and why.
Refusal = tuple[int, str, str]


class _Refused(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def refusal_text(refusal: Refusal) -> str:
    """'line N, field: reason' (or 'line N: reason' for the row or the file), as the commands print it."""
    line, field, reason = refusal
    return f"line {line}, {field}: {reason}" if field else f"line {line}: {reason}"


def read_watchlist_file(
    path: str | Path, owner: str | None, max_bytes: int, encoding: str | None = None
) -> list[delivery_pb2.WatchlistEntry]:
    """read_watchlist_csv of a file: at most ``max_bytes`` (APIHUB_WATCHLIST_FILE_MAX_BYTES) read, decoded as
    userfiles.decode_text does (UTF-8, UTF-16 with a byte order mark, or ``encoding``). Every problem, the file's
    own included (missing, a directory, too large, undecodable), is a WatchlistFileError naming the line."""
    try:
        text = read_text(path, "watchlist", max_bytes, encoding, "APIHUB_WATCHLIST_FILE_MAX_BYTES", hint=ENCODING_HINT)
    except InputFileError as exc:
        raise WatchlistFileError(exc.reason) from None
    return read_watchlist_csv(text, owner)


def read_watchlist_csv(text: str, owner: str | None) -> list[delivery_pb2.WatchlistEntry]:
    """Entries of a watchlist CSV, or a WatchlistFileError at the first refused row (refusal_text). With ``owner``
    every row must be that member's (or leave owner empty); without, each row names its owner (offline screening
    of several members' lists)."""
    entries = []
    for _line, entry, refusal in _rows(text, owner, COMMAND_WORDING):
        if refusal is not None:
            raise WatchlistFileError(refusal_text(refusal))
        entries.append(entry)
    return entries


def read_watchlist_rows(
    text: str, owner: str | None, *, wording: Wording = COMMAND_WORDING
) -> tuple[list[tuple[int, delivery_pb2.WatchlistEntry]], list[Refusal]]:
    """Every row of a watchlist CSV: (line, entry) of each row read, and (line, field, reason) of each row refused,
    all of them rather than the first, in the order of the file. A header that lacks a column (or has too many)
    refuses the file at line 1; a row that is not readable CSV (a field over csv.field_size_limit) ends the
    reading there. ``owner`` as for read_watchlist_csv."""
    entries: list[tuple[int, delivery_pb2.WatchlistEntry]] = []
    refused: list[Refusal] = []
    for line, entry, refusal in _rows(text, owner, wording):
        if refusal is not None:
            refused.append(refusal)
        else:
            entries.append((line, entry))
    return entries, refused


def _rows(
    text: str, owner: str | None, wording: Wording
) -> Iterator[tuple[int, delivery_pb2.WatchlistEntry | None, Refusal | None]]:
    """(line, entry, None) for a row read, (line, None, refusal) for one refused, in the order of the file."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    done = 0  # the last line of the rows read so far: a row that fails to parse starts on the next one
    try:
        header = reader.fieldnames or []
        if len(header) > MAX_WATCHLIST_COLUMNS:
            yield 1, None, (1, "", f"header has {len(header)} columns, at most {MAX_WATCHLIST_COLUMNS}")
            return
        missing = [c for c in WATCHLIST_COLUMNS if c not in header]
        if missing:
            expected = ",".join(WATCHLIST_COLUMNS)
            yield 1, None, (1, "", f"header lacks columns {', '.join(missing)}; expected {expected}")
            return
        done = reader.line_num
        for row in reader:
            line = done = reader.line_num
            try:
                entry = _entry(row, len(header), owner, wording)
            except _Refused as exc:
                yield line, None, (line, exc.field, exc.reason)
            else:
                yield line, entry, None
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit (128 KiB): the rest cannot be read
        reason = f"not a readable CSV row: {exc}; the rest of the file was not read"
        yield done + 1, None, (done + 1, "", reason)


def _entry(row: dict, columns: int, owner: str | None, wording: Wording) -> delivery_pb2.WatchlistEntry:
    extra = row.get(None)  # DictReader's restkey: the fields beyond the header's
    if extra:
        raise _Refused("", f"{columns + len(extra)} fields, the header has {columns}")
    row = {k: (v or "").strip() for k, v in row.items() if k}
    for column in WATCHLIST_COLUMNS:
        bad = _CONTROL.search(row[column])
        if bad:  # never echo the value: it may be a name or a document number
            code = ord(bad.group())
            why = f" (a cp1252 file read as latin-1? {wording.cp1252})" if 0x80 <= code <= 0x9F else ""
            raise _Refused(column, f"control character U+{code:04X}{why}")
    try:
        dob = parse_partial_date(row["date_of_birth"])
    except ValueError as exc:
        raise _Refused("date_of_birth", str(exc)) from None
    sex = row["sex"].upper()
    if sex not in _SEX:
        raise _Refused("sex", "must be M, F, X or empty")
    entry_owner = row["owner"].upper() or owner
    if owner is None and not entry_owner:
        raise _Refused("owner", "required (the member whose entry this is)")
    if owner is not None and entry_owner != owner:
        raise _Refused("owner", wording.other_owner.format(given=row["owner"], owner=owner))
    return delivery_pb2.WatchlistEntry(
        entry_id=row["entry_id"],
        surname=row["surname"],
        given_names=row["given_names"],
        date_of_birth=dob,
        sex=_SEX[sex],
        nationality=row["nationality"].upper(),
        document_number=row["document_number"],
        document_issuer=row["document_issuer"].upper(),
        category=row["category"],
        owner=entry_owner,
    )
