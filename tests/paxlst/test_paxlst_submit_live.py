"""`apihub submit` of PAXLST files as carriers send them, through a real hub on the session's broker: a junk line,
Ctrl-Z or NUL padding after UNZ gives one accepted receipt with a warning naming it, and exit status 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from samples import GUIDE, sample

from services.paxlst.reader import split_interchanges

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(settings):
    from integration.hubkit import RunningHub  # tests/integration is not a package of its own on sys.path here

    running = RunningHub(settings)
    yield running
    running.stop()


def _submit(hub, path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "APIHUB_TOPIC_PREFIX": hub.settings.topic_prefix}
    run = [sys.executable, "-m", "services.cli", "submit", "--server", hub.ingest_addr, *options]
    token = ["--token", hub.token("carrier", "ZZ")]
    return subprocess.run([*run, *token, str(path)], capture_output=True, text=True, env=env, timeout=120)


def test_junk_after_unz_is_one_accepted_receipt_with_a_warning_and_exit_status_0(hub, tmp_path):
    first, second, _ = split_interchanges(sample(GUIDE))
    carrier_file = tmp_path / "zz.edi"
    # As seen in carrier files: a junk line, a second partial line, Ctrl-Z and NUL padding after the last UNZ.
    carrier_file.write_bytes(first + b"\r\n" + second + b"\r\n13Nov09\r\nNAD+FL+++WILL\x1a" + b"\x00" * 64)

    ok = _submit(hub, carrier_file, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    receipts = [json.loads(line) for line in ok.stdout.splitlines()]
    assert [(r["status"], r["passengers"], r["crew"]) for r in receipts] == [("accepted", 1, 0), ("accepted", 0, 1)]
    [trailing] = [w for r in receipts for w in r["warnings"] if w["code"] == "trailing_data"]
    assert "of text that is not EDIFACT after UNZ ignored (line " in trailing["description"]
    assert "WILL" not in ok.stdout  # the junk's content is described, never echoed

    # The same file in words: the warning is printed under the second interchange's receipt.
    again = _submit(hub, carrier_file)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    assert sum(": DUPLICATE " in line for line in lines) == 2
    assert any("[trailing_data]" in line for line in lines)
