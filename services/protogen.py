"""Regenerate the checked-in protobuf and gRPC code under services/wire from proto/.

Run ``apihub dev protos`` (or ``python -m services.protogen``) after editing a .proto file.
``tests/test_wire_drift.py`` fails when the checked-in code is older than the .proto files.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
WIRE_DIR = Path(__file__).resolve().parent / "wire"
# Generated modules import each other as ``apihub.v1.x_pb2``; we ship them inside ``services.wire``.
_IMPORT = re.compile(r"^from apihub\.v1 import", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto under proto/ into ``out_dir``; return the files written."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed; see the messages above")
        written = []
        for src in sorted(Path(tmp).rglob("*.py*")):
            text = _IMPORT.sub("from services.wire.apihub.v1 import", src.read_text())
            dest = out_dir / src.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            written.append(dest)
    for pkg in (out_dir / "apihub", out_dir / "apihub" / "v1"):
        (pkg / "__init__.py").touch()
        written.append(pkg / "__init__.py")
    return written


def main() -> int:
    target = WIRE_DIR / "apihub"
    if target.exists():
        shutil.rmtree(target)
    for path in generate(WIRE_DIR):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
