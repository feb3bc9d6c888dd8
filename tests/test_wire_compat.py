"""The wire contract stays compatible with the last release unless the package version moves (tools/wire_compat.py).

The first tests check proto/ itself against proto/released/; the rest check the comparator on small protos written
here, one change at a time.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tools import wire_compat
from tools.wire_compat import breaking_changes, check, compile_protos, write_snapshot

# --- the real contract ----------------------------------------------------------------------------------------------


def test_proto_keeps_the_released_contract_unless_the_version_moved():
    verdict = check()
    assert verdict.ok, verdict.report()
    if verdict.version != verdict.released_version:
        warnings.warn(verdict.report(), stacklevel=1)


def test_one_snapshot_is_committed_and_it_reads_back():
    [path] = wire_compat.snapshots()
    version, contract = wire_compat.released_snapshot()
    assert path == wire_compat.snapshot_path(version)
    assert version.count(".") >= 2, f"snapshot {path.name} does not name a version"
    names = {f.name for f in contract.file}
    assert {"apihub/v1/hit.proto", "apihub/v1/manifest.proto"} <= names
    assert not any(f.HasField("source_code_info") for f in contract.file)


def test_check_command_runs_from_the_repository():
    done = subprocess.run(
        [sys.executable, "-m", "tools.wire_compat", "check"],
        cwd=wire_compat.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wire contract" in done.stdout


# --- the comparator on synthetic protos -----------------------------------------------------------------------------

BASE = """\
syntax = "proto3";
package demo.v1;

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_BLUE = 2;
}

message Item {
  message Part { string name = 1; }
  string id = 1;
  int32 count = 2;
  repeated string tags = 3;
  Color color = 4;
  Part part = 5;
  optional string note = 6;
  oneof ref {
    string url = 7;
    string path = 8;
  }
  reserved 20 to 29;
  reserved "legacy";
}

message Other { string name = 1; }

service Store {
  rpc Get(Item) returns (Other);
  rpc Watch(Item) returns (stream Item);
}
"""


def _contract(tmp_path: Path, name: str, main: str, extra: dict[str, str] | None = None):
    root = tmp_path / name
    for rel, text in {"demo/v1/demo.proto": main, **(extra or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return compile_protos(root)


def _edit(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def _breaks(tmp_path: Path, *replacements: tuple[str, str], extra: dict[str, str] | None = None) -> list[str]:
    before = _contract(tmp_path, "before", BASE)
    after = _contract(tmp_path, "after", _edit(BASE, *replacements), extra)
    return [str(b) for b in breaking_changes(before, after)]


BREAKING = {
    "removed field": ([("int32 count = 2;", "")], ["demo.v1.Item.count: field 2 removed"]),
    "removed field, number reserved": (
        [("int32 count = 2;", 'reserved 2; reserved "count";')],
        ["demo.v1.Item.count: field 2 removed"],
    ),
    "renumbered field": ([("int32 count = 2;", "int32 count = 9;")], ["demo.v1.Item.count: renumbered 2 -> 9"]),
    "renamed field": ([("int32 count = 2;", "int32 total = 2;")], ["demo.v1.Item.count: field 2 renamed to 'total'"]),
    "scalar type": (
        [("int32 count = 2;", "int64 count = 2;")],
        ["demo.v1.Item.count: type changed from int32 to int64"],
    ),
    "message type": (
        [("Part part = 5;", "Other part = 5;")],
        ["demo.v1.Item.part: type changed from demo.v1.Item.Part to demo.v1.Other"],
    ),
    "enum to scalar": (
        [("Color color = 4;", "int32 color = 4;")],
        ["demo.v1.Item.color: type changed from demo.v1.Color to int32"],
    ),
    "repeated to singular": (
        [("repeated string tags = 3;", "string tags = 3;")],
        ["demo.v1.Item.tags: changed from repeated to singular"],
    ),
    "optional dropped": (
        [("optional string note = 6;", "string note = 6;")],
        ["demo.v1.Item.note: lost `optional` (explicit presence)"],
    ),
    "out of a oneof": (
        [("    string url = 7;\n", ""), ("  reserved 20", "  string url = 7;\n  reserved 20")],
        ["demo.v1.Item.url: moved from oneof 'ref' to no oneof"],
    ),
    "removed enum value": ([("COLOR_BLUE = 2;", "")], ["demo.v1.Color.COLOR_BLUE: value 2 removed"]),
    "renumbered enum value": (
        [("COLOR_BLUE = 2;", "COLOR_BLUE = 3;")],
        ["demo.v1.Color.COLOR_BLUE: renumbered 2 -> 3"],
    ),
    "renamed enum value": (
        [("COLOR_BLUE = 2;", "COLOR_NAVY = 2;")],
        ["demo.v1.Color.COLOR_BLUE: value 2 renamed to 'COLOR_NAVY'"],
    ),
    "removed message": (
        [("message Other { string name = 1; }", ""), ("returns (Other)", "returns (Item)")],
        [
            "demo.v1.Other: message removed",
            "demo.v1.Store.Get: response type changed from demo.v1.Other to demo.v1.Item",
        ],
    ),
    "removed method": ([("  rpc Watch(Item) returns (stream Item);\n", "")], ["demo.v1.Store.Watch: method removed"]),
    "request type": (
        [("rpc Get(Item)", "rpc Get(Other)")],
        ["demo.v1.Store.Get: request type changed from demo.v1.Item to demo.v1.Other"],
    ),
    "streaming": (
        [("returns (stream Item)", "returns (Item)")],
        ["demo.v1.Store.Watch: no longer streams (server streaming)"],
    ),
    "client streaming": (
        [("rpc Get(Item)", "rpc Get(stream Item)")],
        ["demo.v1.Store.Get: now streams (client streaming)"],
    ),
    "removed service": (
        [("service Store {\n  rpc Get(Item) returns (Other);\n  rpc Watch(Item) returns (stream Item);\n}\n", "")],
        ["demo.v1.Store: service removed"],
    ),
    "reservation narrowed": (
        [("reserved 20 to 29;", "reserved 20 to 25;")],
        ["demo.v1.Item: reserved numbers 20 to 29 no longer reserved"],
    ),
    "reserved name released": (
        [('reserved "legacy";', "")],
        ["demo.v1.Item: reserved name 'legacy' no longer reserved"],
    ),
    "renamed package": (
        [("package demo.v1;", "package demo.v2;")],
        ["demo.v1.Color: enum removed", "demo.v1.Item: message removed", "demo.v1.Other: message removed"]
        + ["demo.v1.Store: service removed"],
    ),
}


@pytest.mark.parametrize("case", BREAKING)
def test_breaking_change_is_reported(tmp_path, case):
    replacements, expected = BREAKING[case]
    assert _breaks(tmp_path, *replacements) == expected


COMPATIBLE = {
    "nothing": [],
    "added field": [("message Other { string name = 1; }", "message Other { string name = 1; int64 size = 2; }")],
    "added enum value": [("COLOR_BLUE = 2;", "COLOR_BLUE = 2; COLOR_GREEN = 3;")],
    "added message, enum and service": [
        ("message Other {", "enum Size { SIZE_UNSPECIFIED = 0; }\nmessage New {}\nservice More {}\nmessage Other {")
    ],
    "added method": [
        ("rpc Get(Item) returns (Other);", "rpc Get(Item) returns (Other); rpc Put(Item) returns (Item);")
    ],
    "added oneof member": [("string path = 8;", "string path = 8; string urn = 9;")],
    "reservation split and widened": [("reserved 20 to 29;", "reserved 20 to 24; reserved 25 to 40;")],
    "comments and field order": [
        ("  string id = 1;\n  int32 count = 2;", "  int32 count = 2; // how many\n  string id = 1;")
    ],
}


@pytest.mark.parametrize("case", COMPATIBLE)
def test_compatible_change_passes(tmp_path, case):
    assert _breaks(tmp_path, *COMPATIBLE[case]) == []


def test_message_moved_to_another_file_of_the_package_passes(tmp_path):
    moved = [
        ("message Other { string name = 1; }", ""),
        ("package demo.v1;", 'package demo.v1;\nimport "demo/v1/o.proto";'),
    ]
    other = {"demo/v1/o.proto": 'syntax = "proto3";\npackage demo.v1;\nmessage Other { string name = 1; }\n'}
    assert _breaks(tmp_path, *moved, extra=other) == []


# --- snapshots and the version policy -------------------------------------------------------------------------------


def _project(tmp_path: Path, proto: str, version: str) -> tuple[Path, Path]:
    proto_dir = tmp_path / "proto"
    (proto_dir / "demo" / "v1").mkdir(parents=True, exist_ok=True)
    (proto_dir / "demo" / "v1" / "demo.proto").write_text(proto)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "demo"\nversion = "{version}"\n')
    return proto_dir, pyproject


def test_a_break_fails_until_the_version_moves(tmp_path):
    released = tmp_path / "released"
    proto_dir, pyproject = _project(tmp_path, BASE, "1.0.0")
    write_snapshot(compile_protos(proto_dir), "1.0.0", released)
    assert check(proto_dir, released, pyproject).ok

    _project(tmp_path, _edit(BASE, ("int32 count = 2;", "")), "1.0.0")
    same_version = check(proto_dir, released, pyproject)
    assert not same_version.ok
    assert "demo.v1.Item.count: field 2 removed" in same_version.report()
    assert "pyproject.toml still says 1.0.0" in same_version.report()

    _project(tmp_path, _edit(BASE, ("int32 count = 2;", "")), "2.0.0")
    moved = check(proto_dir, released, pyproject)
    assert moved.ok and moved.breaks
    assert "python -m tools.wire_compat snapshot" in moved.report()


def test_snapshot_keeps_a_release_fixed_and_replaces_the_previous_one(tmp_path):
    released = tmp_path / "released"
    proto_dir, _ = _project(tmp_path, BASE, "1.0.0")
    first, _ = write_snapshot(compile_protos(proto_dir), "1.0.0", released)
    assert first.name == "apihub-1.0.0.txtpb"
    assert wire_compat.released_snapshot(released) == ("1.0.0", compile_protos(proto_dir))

    broken = _contract(tmp_path, "broken", _edit(BASE, ("COLOR_BLUE = 2;", "")))
    with pytest.raises(ValueError, match="COLOR_BLUE"):
        write_snapshot(broken, "1.0.0", released)
    added = _contract(tmp_path, "added", _edit(BASE, ("COLOR_BLUE = 2;", "COLOR_BLUE = 2; COLOR_GREEN = 3;")))
    assert write_snapshot(added, "1.0.0", released) == (first, [])

    second, accepted = write_snapshot(broken, "2.0.0", released)
    assert [str(b) for b in accepted] == [  # against 1.0.0 as rewritten with the addition
        "demo.v1.Color.COLOR_BLUE: value 2 removed",
        "demo.v1.Color.COLOR_GREEN: value 3 removed",
    ]
    assert wire_compat.snapshots(released) == [second]
    version, contract = wire_compat.released_snapshot(released)
    assert version == "2.0.0"
    assert breaking_changes(contract, broken) == []
