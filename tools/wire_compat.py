"""Wire-contract compatibility: proto/ today against the contract of the last release.

The released contract is a committed snapshot, ``proto/released/apihub-<version>.txtpb``: a FileDescriptorSet of every
.proto under proto/ (imports included, no source info) in protobuf text format, taken when <version> was cut. The
comparison is by fully qualified name across the whole contract (moving a message to another file of the same package
is not a break), and flags what a reader or writer built from the release would trip over:

- a removed message, enum, service or RPC method;
- a field removed, renumbered or renamed (names matter: manifests travel as JSON and members compile the protos),
  or whose type, message/enum type, cardinality (repeated or not), presence (proto3 ``optional``), oneof or JSON name
  changed;
- an enum value removed, renumbered or renamed;
- an RPC whose request or response type, or client or server streaming, changed;
- a reserved field number or name (or enum value) no longer reserved.

Additions (messages, fields, enum values, services, methods, reservations) are fine. Retiring a field needs a version
bump even when its number is reserved: members' code may still read it.

    python -m tools.wire_compat check      # list breaking changes; exit 1 if any and the package version did not move
    python -m tools.wire_compat snapshot   # when a release is cut: record proto/ as that version's contract

``tests/test_wire_compat.py`` runs the check in ``make test``. The snapshot is also a buf image:
``buf breaking proto --against proto/released/apihub-<version>.txtpb`` reads it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, text_format

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
RELEASED_DIR = PROTO_DIR / "released"
PYPROJECT = ROOT / "pyproject.toml"
SNAPSHOT_PREFIX = "apihub-"
SNAPSHOT_SUFFIX = ".txtpb"
# Imported well-known types (google/protobuf/timestamp.proto ...) travel in the set but are not our contract.
_DEPENDENCY_PREFIXES = ("google/protobuf/",)

FileSet = descriptor_pb2.FileDescriptorSet
Field = descriptor_pb2.FieldDescriptorProto


@dataclass(frozen=True, order=True)
class Break:
    """One change that breaks the released contract: where (a fully qualified name) and what happened."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


# --- building descriptor sets ---------------------------------------------------------------------------------------


def compile_protos(proto_dir: Path = PROTO_DIR) -> FileSet:
    """Every .proto under ``proto_dir`` compiled by grpc_tools' protoc into one FileDescriptorSet (imports included)."""
    from grpc_tools import protoc  # dev dependency

    protos = sorted(p.relative_to(proto_dir).as_posix() for p in proto_dir.rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_dir}")
    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "contract.binpb"
        args = [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{include}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed; see the messages above")
        return FileSet.FromString(out.read_bytes())


# --- comparing ------------------------------------------------------------------------------------------------------


def breaking_changes(released: FileSet, current: FileSet) -> list[Break]:
    """What in ``released`` the ``current`` contract removes or changes incompatibly (sorted; additions are ignored)."""
    old, new = _Index(released), _Index(current)
    breaks: list[Break] = []
    gone = _removed(old.messages, new.messages, "message", breaks)
    gone += _removed(old.enums, new.enums, "enum", breaks, skip_under=gone)
    _removed(old.services, new.services, "service", breaks)
    for name, message in old.messages.items():
        if name in new.messages:
            breaks += _message_breaks(name, message, new.messages[name])
    for name, enum in old.enums.items():
        if name in new.enums:
            breaks += _enum_breaks(name, enum, new.enums[name])
    for name, service in old.services.items():
        if name in new.services:
            breaks += _service_breaks(name, service, new.services[name])
    return sorted(breaks)


class _Index:
    """Messages (nested ones included), enums and services of a contract by fully qualified name."""

    def __init__(self, fileset: FileSet):
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.services: dict[str, descriptor_pb2.ServiceDescriptorProto] = {}
        for file in fileset.file:
            if file.name.startswith(_DEPENDENCY_PREFIXES):
                continue
            scope = file.package
            self._add(scope, file.message_type, file.enum_type)
            for service in file.service:
                self.services[_join(scope, service.name)] = service

    def _add(self, scope: str, messages: Iterable, enums: Iterable) -> None:
        for enum in enums:
            self.enums[_join(scope, enum.name)] = enum
        for message in messages:
            name = _join(scope, message.name)
            self.messages[name] = message
            self._add(name, message.nested_type, message.enum_type)


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _removed(old: dict, new: dict, kind: str, breaks: list[Break], skip_under: Iterable[str] = ()) -> list[str]:
    """Report the names of ``old`` missing from ``new`` (not those inside an already removed message)."""
    removed: list[str] = []
    for name in sorted(old):
        if name in new or any(name.startswith(f"{outer}.") for outer in [*skip_under, *removed]):
            continue
        removed.append(name)
        breaks.append(Break(name, f"{kind} removed"))
    return removed


def _message_breaks(name: str, old: descriptor_pb2.DescriptorProto, new: descriptor_pb2.DescriptorProto) -> list[Break]:
    breaks: list[Break] = []
    new_by_number = {f.number: f for f in new.field}
    new_by_name = {f.name: f for f in new.field}
    for field in old.field:
        where = f"{name}.{field.name}"
        same = new_by_number.get(field.number)
        if same is None:
            moved = new_by_name.get(field.name)
            what = f"renumbered {field.number} -> {moved.number}" if moved else f"field {field.number} removed"
            breaks.append(Break(where, what))
            continue
        breaks += [Break(where, what) for what in _field_changes(old, field, new, same)]
    reserved = [(r.start, r.end - 1) for r in new.reserved_range]  # message ranges end exclusive
    for r in old.reserved_range:
        if not _covered(r.start, r.end - 1, reserved):
            breaks.append(Break(name, f"reserved numbers {_span(r.start, r.end - 1)} no longer reserved"))
    for reserved_name in sorted(set(old.reserved_name) - set(new.reserved_name)):
        breaks.append(Break(name, f"reserved name {reserved_name!r} no longer reserved"))
    return breaks


def _field_changes(
    old_message: descriptor_pb2.DescriptorProto, old: Field, new_message: descriptor_pb2.DescriptorProto, new: Field
) -> Iterator[str]:
    """How field ``old`` changed into ``new`` (the field of the same number)."""
    if new.name != old.name:
        yield f"field {old.number} renamed to {new.name!r}"
    elif new.json_name != old.json_name:
        yield f"JSON name changed from {old.json_name!r} to {new.json_name!r}"
    if (new.type, new.type_name) != (old.type, old.type_name):
        yield f"type changed from {_type(old)} to {_type(new)}"
    if (new.label == Field.LABEL_REPEATED) != (old.label == Field.LABEL_REPEATED):
        yield f"changed from {_cardinality(old)} to {_cardinality(new)}"
    elif new.label != old.label:
        yield f"label changed from {Field.Label.Name(old.label)} to {Field.Label.Name(new.label)}"
    if new.proto3_optional != old.proto3_optional:
        yield "became `optional` (explicit presence)" if new.proto3_optional else "lost `optional` (explicit presence)"
    old_oneof, new_oneof = _oneof(old_message, old), _oneof(new_message, new)
    if old_oneof != new_oneof:
        before = f"oneof {old_oneof!r}" if old_oneof else "no oneof"
        after = f"oneof {new_oneof!r}" if new_oneof else "no oneof"
        yield f"moved from {before} to {after}"


def _type(field: Field) -> str:
    if field.type_name:
        return field.type_name.lstrip(".")
    return Field.Type.Name(field.type).removeprefix("TYPE_").lower()


def _cardinality(field: Field) -> str:
    return "repeated" if field.label == Field.LABEL_REPEATED else "singular"


def _oneof(message: descriptor_pb2.DescriptorProto, field: Field) -> str | None:
    """The real oneof holding ``field`` (None outside one, and for proto3 ``optional``'s synthetic oneof)."""
    if not field.HasField("oneof_index") or field.proto3_optional:
        return None
    return message.oneof_decl[field.oneof_index].name


def _enum_breaks(name: str, old: descriptor_pb2.EnumDescriptorProto, new: descriptor_pb2.EnumDescriptorProto) -> list:
    breaks: list[Break] = []
    new_pairs = {(v.name, v.number) for v in new.value}
    new_by_name = {v.name: v.number for v in new.value}
    new_by_number: dict[int, list[str]] = {}
    for v in new.value:
        new_by_number.setdefault(v.number, []).append(v.name)
    for value in old.value:
        where = f"{name}.{value.name}"
        if (value.name, value.number) in new_pairs:
            continue
        if value.name in new_by_name:
            breaks.append(Break(where, f"renumbered {value.number} -> {new_by_name[value.name]}"))
        elif value.number in new_by_number:
            renamed = ", ".join(repr(n) for n in new_by_number[value.number])
            breaks.append(Break(where, f"value {value.number} renamed to {renamed}"))
        else:
            breaks.append(Break(where, f"value {value.number} removed"))
    reserved = [(r.start, r.end) for r in new.reserved_range]  # enum ranges end inclusive
    for r in old.reserved_range:
        if not _covered(r.start, r.end, reserved):
            breaks.append(Break(name, f"reserved values {_span(r.start, r.end)} no longer reserved"))
    for reserved_name in sorted(set(old.reserved_name) - set(new.reserved_name)):
        breaks.append(Break(name, f"reserved name {reserved_name!r} no longer reserved"))
    return breaks


def _service_breaks(
    name: str, old: descriptor_pb2.ServiceDescriptorProto, new: descriptor_pb2.ServiceDescriptorProto
) -> list[Break]:
    breaks: list[Break] = []
    new_methods = {m.name: m for m in new.method}
    for method in old.method:
        where = f"{name}.{method.name}"
        same = new_methods.get(method.name)
        if same is None:
            breaks.append(Break(where, "method removed"))
            continue
        for part in ("input_type", "output_type"):
            before, after = getattr(method, part).lstrip("."), getattr(same, part).lstrip(".")
            if before != after:
                kind = "request" if part == "input_type" else "response"
                breaks.append(Break(where, f"{kind} type changed from {before} to {after}"))
        for part in ("client_streaming", "server_streaming"):
            if getattr(method, part) != getattr(same, part):
                state = "now streams" if getattr(same, part) else "no longer streams"
                breaks.append(Break(where, f"{state} ({part.replace('_', ' ')})"))
    return breaks


def _covered(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether every number of [start, end] lies in the union of the inclusive ``ranges``."""
    for lo, hi in sorted(ranges):
        if lo > start:
            return False
        if hi >= start:
            start = hi + 1
            if start > end:
                return True
    return start > end


def _span(start: int, end: int) -> str:
    return str(start) if start == end else f"{start} to {end}"


# --- snapshots and the version policy -------------------------------------------------------------------------------


def package_version(pyproject: Path = PYPROJECT) -> str:
    """The package version that pyproject.toml declares."""
    with pyproject.open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def snapshot_path(version: str, released_dir: Path = RELEASED_DIR) -> Path:
    return released_dir / f"{SNAPSHOT_PREFIX}{version}{SNAPSHOT_SUFFIX}"


def snapshots(released_dir: Path = RELEASED_DIR) -> list[Path]:
    return sorted(released_dir.glob(f"{SNAPSHOT_PREFIX}*{SNAPSHOT_SUFFIX}"))


def snapshot_version(path: Path) -> str:
    return path.name.removeprefix(SNAPSHOT_PREFIX).removesuffix(SNAPSHOT_SUFFIX)


def released_snapshot(released_dir: Path = RELEASED_DIR) -> tuple[str, FileSet]:
    """The version and contract of the last release: the one snapshot in ``released_dir``."""
    found = snapshots(released_dir)
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise RuntimeError(f"expected one released-contract snapshot in {released_dir}, found {names}")
    return snapshot_version(found[0]), text_format.Parse(found[0].read_text(), FileSet())


def render_snapshot(contract: FileSet, version: str) -> str:
    """The snapshot file's text: a header saying what it is, then the set in protobuf text format."""
    header = (
        f"# The wire contract of pacific-apihub {version} as released: every .proto under proto/ compiled into a\n"
        "# FileDescriptorSet (imports included, no source info), in protobuf text format. Do not edit: written by\n"
        "# `python -m tools.wire_compat snapshot` when a release is cut; tests/test_wire_compat.py checks proto/\n"
        "# against it. Also a buf image: `buf breaking proto --against <this file>`.\n"
    )
    bare = FileSet()
    bare.CopyFrom(contract)
    for file in bare.file:
        file.ClearField("source_code_info")
    return header + text_format.MessageToString(bare)


def write_snapshot(
    contract: FileSet, version: str, released_dir: Path = RELEASED_DIR, force: bool = False
) -> tuple[Path, list[Break]]:
    """Record ``contract`` as ``version``'s, replacing the previous snapshot.

    Refuses (ValueError) to overwrite the snapshot of the same version with a contract that breaks it, unless
    ``force``: a release's contract does not change after the fact. Returns the file and the breaks it accepted.
    """
    accepted: list[Break] = []
    previous = snapshots(released_dir)
    if previous:
        released_version, released = released_snapshot(released_dir)
        accepted = breaking_changes(released, contract)
        if accepted and released_version == version and not force:
            listing = "\n".join(f"  {b}" for b in accepted)
            raise ValueError(
                f"proto/ breaks the contract of {version} that is already recorded; move the version in pyproject.toml "
                f"(or pass --force to rewrite {version}'s contract):\n{listing}"
            )
    released_dir.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(version, released_dir)
    for old in previous:
        old.unlink()
    path.write_text(render_snapshot(contract, version))
    return path, accepted


@dataclass(frozen=True)
class Verdict:
    """The check's outcome: ``ok`` unless the contract breaks while the package version stays the released one."""

    ok: bool
    released_version: str
    version: str
    breaks: list[Break]

    def report(self) -> str:
        listing = "".join(f"\n  {b}" for b in self.breaks)
        refresh = "run `python -m tools.wire_compat snapshot` when it is released"
        if not self.breaks:
            moved = "" if self.version == self.released_version else f"; version is now {self.version}: {refresh}"
            return f"proto/ keeps the wire contract of {self.released_version}{moved}"
        if self.ok:
            return (
                f"proto/ breaks the wire contract of {self.released_version}, allowed since the package version moved "
                f"to {self.version}; {refresh}:{listing}"
            )
        return (
            f"proto/ breaks the wire contract of release {self.released_version} and pyproject.toml still says "
            f"{self.version}. Keep the old fields, values and methods (deprecate them, add new ones), or move the "
            f"package version for a breaking release:{listing}"
        )


def check(proto_dir: Path = PROTO_DIR, released_dir: Path = RELEASED_DIR, pyproject: Path = PYPROJECT) -> Verdict:
    """proto/ today against the last release's snapshot, under the version policy."""
    released_version, released = released_snapshot(released_dir)
    version = package_version(pyproject)
    breaks = breaking_changes(released, compile_protos(proto_dir))
    return Verdict(
        ok=not breaks or version != released_version, released_version=released_version, version=version, breaks=breaks
    )


# --- command line ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.wire_compat", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="compare proto/ with the last release's contract")
    snap = commands.add_parser("snapshot", help="record proto/ as the contract of the version in pyproject.toml")
    snap.add_argument("--force", action="store_true", help="rewrite this version's contract even if proto/ breaks it")
    args = parser.parse_args(argv)
    if args.command == "check":
        verdict = check()
        print(verdict.report())
        return 0 if verdict.ok else 1
    version = package_version()
    try:
        path, accepted = write_snapshot(compile_protos(), version, force=args.force)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"wrote {path.relative_to(ROOT)}" + (f" ({len(accepted)} breaking changes accepted)" if accepted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
