"""ICAO Doc 9303 machine-readable zones: layout of TD1, TD2, TD3, MRV-A and MRV-B, and their check digits.

Doc 9303 (8th ed., 2021) Part 3 Appendix A defines the check digit: weights 7, 3, 1 repeating over the
characters' values (0-9 as themselves, A-Z as 10-35, the filler '<' as 0), sum modulo 10. Parts 4 to 7
give the layouts:

    TD3 (passport) 2 x 44, TD2 2 x 36, TD1 (card) 3 x 30, MRV-A 2 x 44 and MRV-B 2 x 36 (visas)

`verify_mrz` parses a zone and reports which check digits fail; it never raises on bad check digits
(that is data to report), only on text that is not a zone at all (`MrzFormatError`). Its messages name
positions and lengths, never the characters read: an MRZ is personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CHECKS",
    "MrzFormatError",
    "MrzResult",
    "check_digit",
    "verify_mrz",
]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_VALUES = {c: (i if c != "<" else 0) for i, c in enumerate(_ALPHABET)}
# Each character to a byte holding its value, so the weighted sum is three C-level sums over slices.
_TO_VALUES = bytes.maketrans(_ALPHABET.encode(), bytes(_VALUES[c] for c in _ALPHABET))
_ZONE_CHARS = re.compile(r"[0-9A-Z<]*")

# Names of the check digits, as reported in MrzResult.failed_checks.
DOCUMENT_NUMBER = "document_number"
BIRTH_DATE = "birth_date"
EXPIRY = "expiry"
OPTIONAL_DATA = "optional_data"
COMPOSITE = "composite"
CHECKS = (DOCUMENT_NUMBER, BIRTH_DATE, EXPIRY, OPTIONAL_DATA, COMPOSITE)

# Format name -> (lines, characters per line).
_SHAPES = {"TD1": (3, 30), "TD2": (2, 36), "TD3": (2, 44), "MRV-A": (2, 44), "MRV-B": (2, 36)}


class MrzFormatError(ValueError):
    """The text is not a machine-readable zone of any ICAO 9303 format (wrong length or characters)."""


def check_digit(s: str) -> str:
    """The ICAO 9303 check digit ('0'-'9') of `s`; raises ValueError for a character outside A-Z 0-9 <."""
    if not _ZONE_CHARS.fullmatch(s):
        i = next(i for i, c in enumerate(s) if c not in _VALUES)
        raise ValueError(f"character at position {i + 1} is not one of A-Z, 0-9 or '<'")
    return _digit(s)


def _digit(s: str) -> str:
    """check_digit for text already known to be in the MRZ alphabet: weights 7, 3, 1 repeating."""
    v = s.encode("ascii").translate(_TO_VALUES)
    return str((7 * sum(v[0::3]) + 3 * sum(v[1::3]) + sum(v[2::3])) % 10)


@dataclass(frozen=True, slots=True)
class MrzResult:
    """What a zone says. Fields are as printed, with trailing fillers removed (dates keep '<' for unknown
    parts). `failed_checks` names each check digit that does not match, in the order of CHECKS."""

    format: str  # "TD1", "TD2", "TD3", "MRV-A" or "MRV-B"
    document_code: str  # e.g. "P", "PN", "I", "AC", "V"
    issuing_state: str  # ICAO code as printed ("D" for Germany, fillers stripped)
    document_number: str
    nationality: str
    birth_date: str  # YYMMDD; unknown parts are '<'
    sex: str  # "M", "F", or "<" (unspecified / X)
    expiry: str  # YYMMDD
    optional_data: str
    optional_data_2: str  # TD1 line 2 only
    surname: str
    given_names: str
    failed_checks: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed_checks


def _lines(text: str) -> tuple[str, list[str]]:
    """Split a zone into its lines, given as separate lines or concatenated; surrounding whitespace is
    ignored. Returns (format, lines)."""
    parts = text.split()
    joined = "".join(parts)
    n = len(joined)
    if n == 90:
        fmt = "TD1"
    elif n in (72, 88):
        visa = joined[0] == "V"
        fmt = ("MRV-B" if visa else "TD2") if n == 72 else ("MRV-A" if visa else "TD3")
    else:
        raise MrzFormatError(
            f"an MRZ has 90 (TD1 3x30), 72 (TD2/MRV-B 2x36) or 88 (TD3/MRV-A 2x44) characters, not {n}"
        )
    count, width = _SHAPES[fmt]
    if len(parts) > 1 and (len(parts) != count or any(len(p) != width for p in parts)):
        raise MrzFormatError(
            f"a {fmt} zone has {count} lines of {width} characters; got lines of "
            + ", ".join(str(len(p)) for p in parts)
        )
    if not _ZONE_CHARS.fullmatch(joined):
        i = next(i for i, c in enumerate(joined) if c not in _VALUES)
        raise MrzFormatError(f"character {i % width + 1} of line {i // width + 1} is not one of A-Z, 0-9 or '<'")
    return fmt, [joined[i : i + width] for i in range(0, n, width)]


def _strip(field: str) -> str:
    return field.rstrip("<")


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.partition("<<")
    return primary.replace("<", " ").strip(), secondary.replace("<", " ").strip()


def _long_number(principal: str, check: str, optional: str) -> tuple[str, str, str] | None:
    """Doc 9303 Parts 5/6: a document number longer than 9 characters puts '<' in the check-digit
    position and continues in the optional data, followed by its check digit and a filler.
    Returns (number, check digit, rest of the optional data) or None when that is not the case."""
    if check != "<" or "<" in principal:
        return None
    end = optional.find("<")
    if end < 2:  # needs at least one more character and the check digit
        return None
    return principal + optional[: end - 1], optional[end - 1], optional[end:]


def verify_mrz(text: str) -> MrzResult:
    """Parse a machine-readable zone and verify its check digits (see the module doc).

    Raises MrzFormatError when `text` has no MRZ shape: length, line lengths or characters."""
    fmt, lines = _lines(text)
    failed: list[str] = []
    optional_2 = ""
    if fmt == "TD1":
        l1, l2, l3 = lines
        code, state = l1[0:2], l1[2:5]
        number, number_check, optional = l1[5:14], l1[14], l1[15:30]
        long = _long_number(number, number_check, optional)
        if long:
            number, number_check, optional = long
        birth, birth_check, sex = l2[0:6], l2[6], l2[7]
        expiry, expiry_check, nationality = l2[8:14], l2[14], l2[15:18]
        optional_2 = _strip(l2[18:29])
        composite_data, composite_check = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29]
        optional_check = None  # TD1 optional data has no check digit of its own
        surname, given = _names(l3)
    else:
        l1, l2 = lines
        code, state = l1[0:2], l1[2:5]
        surname, given = _names(l1[5:])
        number, number_check, nationality = l2[0:9], l2[9], l2[10:13]
        birth, birth_check, sex = l2[13:19], l2[19], l2[20]
        expiry, expiry_check = l2[21:27], l2[27]
        optional_check = None
        composite_data = composite_check = None
        if fmt == "TD3":
            optional, optional_check = l2[28:42], l2[42]
            composite_data, composite_check = l2[0:10] + l2[13:20] + l2[21:43], l2[43]
        elif fmt == "TD2":
            optional = l2[28:35]
            composite_data, composite_check = l2[0:10] + l2[13:20] + l2[21:35], l2[35]
            long = _long_number(number, number_check, optional)
            if long:
                number, number_check, optional = long
        else:  # MRV-A / MRV-B: no composite, no optional-data check digit
            optional = l2[28:]

    if _digit(number) != number_check:
        failed.append(DOCUMENT_NUMBER)
    if _digit(birth) != birth_check:
        failed.append(BIRTH_DATE)
    if _digit(expiry) != expiry_check:
        failed.append(EXPIRY)
    if optional_check is not None:
        # Part 4: when the personal number is all fillers its check digit may be '<' or '0'.
        empty = not optional.strip("<")
        if not (empty and optional_check in "<0") and _digit(optional) != optional_check:
            failed.append(OPTIONAL_DATA)
    if composite_data is not None and _digit(composite_data) != composite_check:
        failed.append(COMPOSITE)

    return MrzResult(
        format=fmt,
        document_code=_strip(code),
        issuing_state=_strip(state),
        document_number=_strip(number),
        nationality=_strip(nationality),
        birth_date=birth,
        sex=sex,
        expiry=expiry,
        optional_data=_strip(optional),
        optional_data_2=optional_2,
        surname=surname,
        given_names=given,
        failed_checks=tuple(failed),
    )
