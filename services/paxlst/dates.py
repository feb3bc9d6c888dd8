"""PAXLST dates: DTM formats (2379) and the century of two-digit years, for the reader and the writer.

Two-digit years get a century: birth dates are not in the future, expiry dates lie between 10 years before and
89 years after the message date, leg times within 50 years of it (the message date is the UNB date, else
today). Partial dates are only accepted with an explicit format (602 CCYY, 610 CCYYMM).
"""

from __future__ import annotations

from datetime import date

# DTM 2379 format -> number of digits. Without a format the length decides.
_FORMAT_DIGITS = {"101": 6, "102": 8, "201": 10, "203": 12, "602": 4, "610": 6}
_DIGITS_FORMAT = {6: "101", 8: "102", 10: "201", 12: "203"}


def birth_year(yy: int, month: int, day: int, ref: date) -> int:
    """Century for a two-digit birth year: the latest year that does not put the date after `ref`."""
    year = ref.year // 100 * 100 + yy
    return year - 100 if (year, month, day) > (ref.year, ref.month, ref.day) else year


def expiry_year(yy: int, ref: date) -> int:
    """Century for a two-digit expiry year: from 10 years before the message to 89 years after."""
    low = ref.year - 10
    return low + (yy - low) % 100


def near_year(yy: int, ref: date) -> int:
    """Century for a two-digit year of a flight time: within 50 years of the message."""
    low = ref.year - 50
    return low + (yy - low) % 100


class BadDate(ValueError):
    """A DTM value that is not a possible date in its format; the message says why, never the value."""


def _split_dtm(value: str, fmt: str) -> tuple[str, int, int, int, int, int]:
    """(format, year, month, day, hour, minute) as the digits say, unchecked; 0 for parts the format does not
    carry. Raises BadDate for an unknown format or a value that does not fit it."""
    if not fmt:
        fmt = _DIGITS_FORMAT.get(len(value), "")
    digits = _FORMAT_DIGITS.get(fmt)
    if digits is None:
        raise BadDate(f"unsupported date format {fmt[:6]!r} or incomplete date")
    if len(value) != digits or not value.isdigit():
        raise BadDate(f"date does not match format {fmt}")
    cut = 2 if fmt in ("101", "201") else 4
    year, rest = int(value[:cut]), value[cut:]
    parts = [int(rest[k : k + 2]) if len(rest) >= k + 2 else 0 for k in (0, 2, 4, 6)]
    return fmt, year, parts[0], parts[1], parts[2], parts[3]


def dtm_fields(value: str, fmt: str) -> tuple[str, int, int, int, int, int]:
    """(format, year, month, day, hour, minute); 0 for parts the format does not carry. Years of formats 101
    and 201 have two digits."""
    fmt, year, month, day, hour, minute = _split_dtm(value, fmt)
    if fmt != "602" and not 1 <= month <= 12:
        raise BadDate("impossible date")
    if hour > 23 or minute > 59:
        raise BadDate("impossible time")
    return fmt, year, month, day, hour, minute


def flight_time_fields(value: str, fmt: str, ref: date) -> tuple[str, int, int, int, int, int]:
    """(format, year, month, day, hour, minute) of a flight's DTM 189/232 (a PAXLST leg, a CUSRES answer): a full
    date at least, two-digit years within 50 years of ``ref``. Raises BadDate."""
    fmt, year, month, day, hour, minute = dtm_fields(value, fmt)
    if fmt in ("602", "610"):
        raise BadDate("a flight time needs at least a full date")
    if fmt in ("101", "201"):
        year = near_year(year, ref)
    check_day(year, month, day)
    return fmt, year, month, day, hour, minute


def possible_birth_parts(value: str, fmt: str, ref: date) -> tuple[int, int, int] | None:
    """The year, and the month when it is possible, of a birth date that is not a possible date as a whole
    (19740132, 19741305); None when not even the year can be read."""
    try:
        fmt, year, month, _, _, _ = _split_dtm(value, fmt)
    except BadDate:
        return None
    if fmt not in ("101", "102"):
        return None
    month = month if 1 <= month <= 12 else 0
    year = birth_year(year, month, 0, ref) if fmt == "101" else year
    return (year, month, 0) if year else None


def check_day(year: int, month: int, day: int) -> None:
    """Raise BadDate when the day does not exist in that month (0: no day given)."""
    if day:
        try:
            date(year, month, day)
        except ValueError:
            raise BadDate("impossible date") from None
