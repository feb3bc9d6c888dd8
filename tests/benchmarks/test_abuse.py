"""The abuse suite: its quick version against a whole hub (part of `make test`), and how it counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from benchmarks.abuse import _report
from benchmarks.abuse.attacks import ATTACKS
from benchmarks.abuse.harness import Arena, Outcome, Result, outcome_of_error

REPO = Path(__file__).resolve().parents[2]


class _Error(grpc.RpcError):
    def __init__(self, code, details=""):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.timeout(900)
def test_quick_abuse_suite_holds(tmp_path):
    """Every attack answered as expected, no service died, no traceback or personal data in a log."""
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "--abuse", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (result_file,) = tmp_path.glob("abuse-*.json")
    record = json.loads(result_file.read_text())
    assert len(record["attacks"]) == len(ATTACKS)
    assert all(a["ok"] for a in record["attacks"]), [a for a in record["attacks"] if not a["ok"]]
    for failure in ("crashed", "hung", "cross-principal effect"):
        assert record["counts"][failure] == 0
    assert record["dead_services"] == [] and record["tracebacks"] == []


def test_errors_count_as_refusal_hang_or_crash():
    assert outcome_of_error(_Error(grpc.StatusCode.INVALID_ARGUMENT, "bad"))[0] is Outcome.REFUSED
    assert outcome_of_error(_Error(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy"))[0] is Outcome.REFUSED
    assert outcome_of_error(_Error(grpc.StatusCode.DEADLINE_EXCEEDED))[0] is Outcome.HUNG
    assert outcome_of_error(_Error(grpc.StatusCode.UNKNOWN, "Exception calling application"))[0] is Outcome.CRASHED
    assert outcome_of_error(_Error(grpc.StatusCode.INTERNAL))[0] is Outcome.CRASHED
    traceback = _Error(grpc.StatusCode.INVALID_ARGUMENT, "Traceback (most recent call last): ...")
    assert outcome_of_error(traceback)[0] is Outcome.CRASHED


def test_report_fails_on_a_crash_an_unexpected_outcome_a_dead_service_or_a_traceback():
    held = Result("a", Outcome.REFUSED, frozenset({Outcome.REFUSED}), "")
    quiet = lambda _line: None  # noqa: E731
    assert _report([held], [], [], True, None, 1.0, quiet) == 0
    crashed = Result("b", Outcome.CRASHED, frozenset({Outcome.REFUSED}), "")
    assert _report([held, crashed], [], [], True, None, 1.0, quiet) == 1
    surprise = Result("c", Outcome.ACCEPTED, frozenset({Outcome.REFUSED}), "")
    assert _report([surprise], [], [], True, None, 1.0, quiet) == 1
    assert _report([held], ["router (exit 1)"], [], True, None, 1.0, quiet) == 1
    assert _report([held], [], ["ingest"], True, None, 1.0, quiet) == 1


def test_personal_data_in_a_log_is_found(tmp_path):
    arena = Arena(tmp_path)
    arena.procs = {"ingest": None, "router": None}
    (tmp_path / "ingest.log").write_text("accepted grpc manifest m1 from FJ: 3 passengers\n")
    (tmp_path / "router.log").write_text("delivered hit for TAUFA P1234567\n")
    arena.sensitive = {"TAUFA"}
    assert arena.personal_data_in_logs() == ["router"]
    arena.sensitive = {"NOBODY"}
    assert arena.personal_data_in_logs() == []
