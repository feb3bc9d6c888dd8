"""Intake cleaning: the manifest the hub stores and screens is the one it can screen, and bounded.

Once per manifest, in intake (services.api_ingest.servicer `_send`, for gRPC and PAXLST manifests alike), on a
copy: the raw topic keeps the bytes as received, the manifests topic gets the cleaned copy. Interactive checks
(services.profiler.check) clean the travellers they screen the same way.

1. Limits (settings, APIHUB_*): more travellers than max_manifest_travellers or more legs than max_manifest_legs
   rejects the manifest (error `too_many` naming the field and the limit): it cannot be screened as a whole, and a
   part of it would silently leave travellers unscreened or members of later ports unreached; the carrier sends
   it in parts. More documents on one traveller than max_traveller_documents: the first ones are kept, the receipt
   warns (`too_many` on travellers[i].documents).
2. Text: in every string field, control characters (Unicode category Cc: NUL, ESC, ...), format characters (Cf:
   bidirectional overrides and isolates, zero-width space and joiners, soft hyphen, ...), surrogates (Cs) and
   private-use characters (Co) are removed; line breaks and tabs (Cc whitespace, line and paragraph separators
   Zl/Zp) become a space, except in an MRZ, whose lines they separate. Letters and marks of every script, digits,
   punctuation and spaces are kept. Warning `control_characters` on the field. Then a field longer than its size
   below is cut to it (warning `truncated`). Sizes are in characters, at or above the PAXLST data element (D02B/
   D05B) or ICAO Doc 9303 field that carries the value, so that no legitimate value is ever cut:

     carrier, flight_number                 17   TDT C040 3127 / 8028 an..17
     message_ref, passenger_ref,
       reservation_locator                  70   RFF C506 1154 an..70
     legs: origin, destination;
       embarkation, debarkation             35   LOC C517 3225 an..35 (ports are 3 or 5; unknown ones are dropped)
     surname                                70   NAD C080 3036 an..35, twice: a gRPC carrier may join what PAXLST
                                                 splits into components
     given_names                           140   NAD C080: up to four 3036 an..35 given-name components
     nationality, residence, issuing_state  35   NAT 3293 / LOC 3225 (codes are 3; a longer one is dropped as an
                                                 unknown country, never cut into a different valid code)
     document number                        35   DOC C503 1004 an..35 (ICAO 9303 TD3 MRZ: 9, longer numbers
                                                 continue in the optional data)
     mrz                                   100   ICAO 9303: TD1 3 x 30, TD2 2 x 36, TD3 2 x 44, plus line breaks
     seat, payment_form                     35
     any other string                       70

3. Validation (services.edge.validation) of the cleaned text: errors reject (only what makes screening
   impossible); a warning whose code is in DROPPED_CODES clears its field; a missing or unknown message function
   becomes ORIGINAL, a missing or unknown transport mode the one the port codes show.
4. Travellers without a usable name (warning `no_usable_name` on travellers[i]) are left out.

Warning fields are paths in the manifest as the carrier sent it (travellers[i] is the carrier's i-th traveller,
also when an earlier one was left out). Descriptions never hold a value of a personal field.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.config import HubSettings
from services.edge.validation import (
    DROPPED_CODES,
    SKIPPED_TRAVELLER,
    Violation,
    function_of,
    transport_mode_of,
    validate_manifest,
)
from services.wire import manifest_pb2

# Field sizes (see the module doc): (message, field) -> most characters kept.
FIELD_SIZES = {
    ("Manifest", "carrier"): 17,
    ("Manifest", "flight_number"): 17,
    ("Manifest", "message_ref"): 70,
    ("Leg", "origin"): 35,
    ("Leg", "destination"): 35,
    ("Traveller", "surname"): 70,
    ("Traveller", "given_names"): 140,
    ("Traveller", "nationality"): 35,
    ("Traveller", "residence"): 35,
    ("Traveller", "reservation_locator"): 70,
    ("Traveller", "passenger_ref"): 70,
    ("Traveller", "seat"): 35,
    ("Traveller", "embarkation"): 35,
    ("Traveller", "debarkation"): 35,
    ("Document", "number"): 35,
    ("Document", "issuing_state"): 35,
    ("Document", "mrz"): 100,
    ("Booking", "payment_form"): 35,
}
DEFAULT_SIZE = 70
# Fields whose line breaks are content (an MRZ's lines), not a slip.
_MULTILINE = frozenset({("Document", "mrz")})
# Removed outright: control, format (bidi, zero-width), surrogate and private-use characters.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
# Become a space (or stay, in an MRZ): line breaks and tabs, and the line and paragraph separators.
_BREAK_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# How far past its size a value is read while cleaning: invisible characters between legitimate ones are
# removed, but a megabyte of them is not walked one by one (what lies beyond is cut, with a warning).
_READ_FACTOR = 4
# Hub-set fields: whatever a carrier puts there is discarded before cleaning.
_HUB_FIELDS = ("manifest_id", "received_at", "source_format", "intake_warnings")
# Receipt warnings listed one by one per code; the rest of a code become one line saying how many more.
LISTED_PER_CODE = 50
_INDEX = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


@dataclass(frozen=True)
class IntakeLimits:
    """Most travellers and legs in one manifest (beyond: rejected) and documents on one traveller (beyond: the
    first ones are kept)."""

    travellers: int
    legs: int
    documents: int

    @classmethod
    def from_settings(cls, settings: HubSettings) -> IntakeLimits:
        return cls(settings.max_manifest_travellers, settings.max_manifest_legs, settings.max_traveller_documents)


@dataclass
class Cleaning:
    """What intake stores (`manifest`, the cleaned copy), or why it cannot (`errors`), and the warnings."""

    manifest: manifest_pb2.Manifest
    errors: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)


def clean_manifest(request: manifest_pb2.Manifest, limits: IntakeLimits) -> Cleaning:
    """The cleaned copy of a manifest as received (see the module doc); `request` is left as it is."""
    errors = _over_limits(request, limits)
    if errors:
        header = manifest_pb2.Manifest(
            carrier=request.carrier, flight_number=request.flight_number, message_ref=request.message_ref
        )
        clean_strings(header, [])
        return Cleaning(header, errors)
    m = manifest_pb2.Manifest()
    m.CopyFrom(request)
    for name in _HUB_FIELDS:
        m.ClearField(name)
    warnings: list[Violation] = []
    _keep_first_documents(m, limits.documents, warnings)
    clean_strings(m, warnings)
    errors, found = validate_manifest(m)
    warnings.extend(found)
    if errors:
        return Cleaning(m, errors, warnings)
    skipped = _repair(m, found)
    if skipped:
        _leave_out(m, skipped)
    return Cleaning(m, [], warnings)


def _over_limits(m: manifest_pb2.Manifest, limits: IntakeLimits) -> list[Violation]:
    errors = []
    for name, most, setting in (
        ("travellers", limits.travellers, "APIHUB_MAX_MANIFEST_TRAVELLERS"),
        ("legs", limits.legs, "APIHUB_MAX_MANIFEST_LEGS"),
    ):
        count = len(getattr(m, name))
        if count > most:
            errors.append(
                Violation(
                    field=name,
                    code="too_many",
                    description=f"a manifest may list at most {most:,} {name} ({setting}); this one lists "
                    f"{count:,}: send the flight in parts (Manifest.part, PAXLST UNH sequence)",
                )
            )
    return errors


def _keep_first_documents(m: manifest_pb2.Manifest, most: int, warnings: list[Violation]) -> None:
    for i, t in enumerate(m.travellers):
        count = len(t.documents)
        if count > most:
            del t.documents[most:]
            warnings.append(
                Violation(
                    field=f"travellers[{i}].documents",
                    code="too_many",
                    description=f"a traveller may carry at most {most} documents (APIHUB_MAX_TRAVELLER_DOCUMENTS); "
                    f"this one had {count:,}: the first {most} are kept",
                )
            )


# -- text ----------------------------------------------------------------------------------------------
def clean_text(value: str, size: int, multiline: bool = False) -> tuple[str, bool, bool]:
    """(cleaned value, whether characters were removed or replaced, whether it was cut to `size`)."""
    if value.isprintable():  # the common case: no control, format, separator or unassigned character
        return (value[:size], False, True) if len(value) > size else (value, False, False)
    read = value[: size * _READ_FACTOR]
    out = []
    for ch in read:
        category = unicodedata.category(ch)
        if category in _BREAK_CATEGORIES and ch.isspace():
            out.append(ch if multiline and ch in "\r\n" else " ")
        elif category not in _REMOVED_CATEGORIES:
            out.append(ch)
    cleaned = "".join(out)
    changed = cleaned != read
    cut = len(cleaned) > size or len(value) > len(read)
    return cleaned[:size], changed, cut


@functools.cache
def _layout(descriptor: Descriptor) -> tuple[tuple, tuple]:
    """A message type's string fields (name, size, multiline, repeated) and the message fields that may hold
    strings (name, repeated)."""
    strings, messages = [], []
    for f in descriptor.fields:
        repeated = f.is_repeated
        if f.type == FieldDescriptor.TYPE_STRING:
            key = (descriptor.name, f.name)
            strings.append((f.name, FIELD_SIZES.get(key, DEFAULT_SIZE), key in _MULTILINE, repeated))
        elif f.type == FieldDescriptor.TYPE_MESSAGE and _holds_strings(f.message_type):
            messages.append((f.name, repeated))
    return tuple(strings), tuple(messages)


@functools.cache
def _holds_strings(descriptor: Descriptor) -> bool:
    return any(
        f.type == FieldDescriptor.TYPE_STRING
        or (
            f.type == FieldDescriptor.TYPE_MESSAGE
            and f.message_type is not descriptor
            and _holds_strings(f.message_type)
        )
        for f in descriptor.fields
    )


def clean_strings(message, warnings: list[Violation], path: str = "") -> None:
    """Clean and bound every string field of `message` and of the messages it holds, in place."""
    strings, messages = _layout(message.DESCRIPTOR)
    for name, size, multiline, repeated in strings:
        # The test before each call to _cleaned is the common case, kept inline: most values are short and printable.
        if repeated:
            values = getattr(message, name)
            for k, value in enumerate(values):
                if len(value) > size or not value.isprintable():
                    values[k] = _cleaned(value, size, multiline, f"{path}{name}[{k}]", warnings)
            continue
        value = getattr(message, name)
        if len(value) > size or not value.isprintable():
            cleaned = _cleaned(value, size, multiline, f"{path}{name}", warnings)
            if cleaned is not value:
                setattr(message, name, cleaned)
    for name, repeated in messages:
        if repeated:
            for k, item in enumerate(getattr(message, name)):
                clean_strings(item, warnings, f"{path}{name}[{k}].")
        elif message.HasField(name):
            clean_strings(getattr(message, name), warnings, f"{path}{name}.")


def _cleaned(value: str, size: int, multiline: bool, path: str, warnings: list[Violation]) -> str:
    cleaned, changed, cut = clean_text(value, size, multiline)
    if changed:
        warnings.append(
            Violation(
                field=path,
                code="control_characters",
                description="control, format (bidirectional, zero-width) or private-use characters removed",
            )
        )
    if cut:
        warnings.append(
            Violation(field=path, code="truncated", description=f"longer than {size} characters: cut to {size}")
        )
    return cleaned if (changed or cut) else value


# -- repairs -------------------------------------------------------------------------------------------
def _repair(m: manifest_pb2.Manifest, warnings: list[Violation]) -> set[int]:
    """Clear what the warnings say is dropped; the indexes of the travellers to leave out."""
    skipped = set()
    for v in warnings:
        if v.code in DROPPED_CODES:
            clear_field(m, v.field)
        elif v.code == SKIPPED_TRAVELLER and v.field.startswith("travellers["):
            skipped.add(int(v.field[len("travellers[") : -1]))
    m.function = function_of(m)
    m.transport_mode = transport_mode_of(m)
    return skipped


def clear_field(m, path: str) -> None:
    """Clear the field a violation path names ("travellers[3].documents[0].expiry")."""
    node = m
    parts = path.split(".")
    for part in parts[:-1]:
        match = _INDEX.fullmatch(part)
        if match is None:
            return
        node = getattr(node, match.group(1))
        if match.group(2) is not None:
            node = node[int(match.group(2))]
    last = _INDEX.fullmatch(parts[-1])
    if last is not None and last.group(2) is None:
        node.ClearField(last.group(1))


def _leave_out(m: manifest_pb2.Manifest, skipped: set[int]) -> None:
    kept = manifest_pb2.Manifest()
    kept.travellers.extend(t for i, t in enumerate(m.travellers) if i not in skipped)
    m.ClearField("travellers")
    m.travellers.MergeFrom(kept.travellers)


# -- what the receipt lists and the manifest keeps -----------------------------------------------------
def listed_warnings(
    warnings: list[Violation], per_code: int = LISTED_PER_CODE
) -> tuple[list[Violation], list[manifest_pb2.IntakeWarning]]:
    """The warnings a receipt lists (the first `per_code` of each code, then one line per code saying how many
    more), and the same as the manifest's intake_warnings (code and field only, never a description)."""
    seen: Counter[str] = Counter(v.code for v in warnings)
    listed: list[Violation] = []
    kept: list[manifest_pb2.IntakeWarning] = []
    shown: Counter[str] = Counter()
    for v in warnings:
        shown[v.code] += 1
        if shown[v.code] <= per_code:
            listed.append(v)
            kept.append(manifest_pb2.IntakeWarning(code=v.code, field=v.field))
    for code, count in seen.items():
        more = count - per_code
        if more > 0:
            listed.append(
                Violation(code=code, description=f"{more:,} more '{code}' warnings like the ones above, not listed")
            )
            kept.append(manifest_pb2.IntakeWarning(code=code, more=more))
    return listed, kept
