"""Files a user names to a command (watchlist CSVs, rule files, manifests): read with a size cap, decoded, and every
failure an InputFileError whose message names the file and, where it applies, the line and byte: never a traceback.

Text is UTF-8 (with or without a byte order mark) or UTF-16 / UTF-32 with a byte order mark. Anything else is refused
at its first byte that does not decode, unless the caller names the encoding (a file from an older system:
latin-1, cp1252). A NUL character is refused too: no text file holds one (a UTF-16 file without its byte order mark
reads as UTF-8 with a NUL after every letter).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from services.errors import ConfigError

# What a command with an --encoding option adds to a decoding failure.
ENCODING_HINT = "save it as UTF-8, or pass --encoding (e.g. latin-1, cp1252) for a file from an older system"

# Byte order marks, longest first: the UTF-32 little-endian one begins with the UTF-16 little-endian one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_OS_REASONS = {
    FileNotFoundError: "no such file",
    IsADirectoryError: "is a directory, not a file",
    NotADirectoryError: "a part of the path is not a directory",
    PermissionError: "permission denied",
}


class InputFileError(ConfigError):
    """A file named by the user that cannot be used as it is: .path, .problem, and the 1-based .line at fault
    (None: the whole file). .reason is "line N: problem" (or the problem alone); str() is "path: reason"."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.reason = problem if line is None else f"line {line}: {problem}"
        super().__init__(f"{path}: {self.reason}")


def size_text(n: int) -> str:
    """A byte count as people read it: 262144 -> '256 KiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def read_bytes(path: str | Path, what: str, max_bytes: int | None = None, setting: str = "") -> bytes:
    """The file's bytes; at most max_bytes of them are ever read (a larger file is refused, naming ``setting``)."""
    try:
        with open(path, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as exc:
        reason = next((r for kind, r in _OS_REASONS.items() if isinstance(exc, kind)), exc.strerror or str(exc))
        raise InputFileError(path, f"cannot read the {what}: {reason}") from None
    if max_bytes is not None and len(data) > max_bytes:
        limit = f"{size_text(max_bytes)}" + (f" ({setting})" if setting else "")
        raise InputFileError(path, f"the {what} is larger than {limit}, the most that is read")
    return data


def decode_text(data: bytes, path: str | Path, encoding: str | None = None, hint: str = "") -> str:
    """The text of a file's bytes: in ``encoding`` if given, else as its byte order mark says, else UTF-8.

    Raises InputFileError naming the first byte that does not decode (offset and line) or the first NUL, with
    ``hint`` (what the user can do) appended.
    """
    suffix = f"; {hint}" if hint else ""
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise InputFileError(path, f"unknown encoding '{encoding}' (e.g. utf-8, utf-16, latin-1, cp1252)") from None
    else:
        codec = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    # Many NUL bytes (UTF-16 of Latin text has one in every two) in a file read as UTF-8 by default: most likely
    # UTF-16 that lacks its byte order mark.
    many_nuls = codec == "utf-8" and not encoding and data.count(0) * 4 >= len(data)
    utf16 = " (a UTF-16 file without its byte order mark?)" if many_nuls else ""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex().upper()
        problem = f"not {codec.upper()} text: byte 0x{byte} at offset {exc.start}{utf16}{suffix}"
        raise InputFileError(path, problem, line) from None
    text = text.removeprefix("\ufeff")  # a byte order mark the codec did not consume (utf-8 named explicitly)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise InputFileError(path, f"NUL character at column {column}{utf16}: not a text file{suffix}", line)
    return text


def read_text(
    path: str | Path,
    what: str,
    max_bytes: int | None = None,
    encoding: str | None = None,
    setting: str = "",
    hint: str = "",
) -> str:
    """read_bytes, then decode_text."""
    return decode_text(read_bytes(path, what, max_bytes, setting), path, encoding, hint)
