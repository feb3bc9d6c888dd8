"""The checked-in generated code must be what `apihub dev protos` makes from proto/ today."""

from __future__ import annotations

import filecmp

from services.protogen import WIRE_DIR, generate


def test_generated_code_matches_protos(tmp_path):
    written = generate(tmp_path)
    assert written, "no .proto files were compiled"
    stale = []
    for fresh in written:
        checked_in = WIRE_DIR / fresh.relative_to(tmp_path)
        if not checked_in.exists() or not filecmp.cmp(fresh, checked_in, shallow=False):
            stale.append(str(checked_in))
    assert not stale, f"generated code is out of date, run `apihub dev protos`: {stale}"


def test_every_checked_in_module_is_still_generated(tmp_path):
    fresh = {p.relative_to(tmp_path) for p in generate(tmp_path)}
    checked_in = {p.relative_to(WIRE_DIR) for p in (WIRE_DIR / "apihub").rglob("*.py*")}
    assert checked_in <= fresh, f"left over from a removed .proto: {sorted(checked_in - fresh)}"
