"""`apihub submit FILE...` keeps every receipt: each is printed as it arrives, and when a call fails (the broker
unavailable, the connection lost, the deadline passed, a permission refused) the files not acknowledged are named,
with exit status 3 (send them again later) or 2 (fix something first), distinct from 1 (some rejected). Sending
only those again completes the submission; a file already stored is answered DUPLICATE.

The intake is the real ManifestIntakeServicer on the session's broker, behind a servicer that fails one call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest
from google.protobuf import json_format
from integration.hubkit import flight  # tests/integration is not a package of its own on sys.path here
from typer.testing import CliRunner

from services.api_ingest.index import IntakeIndex
from services.api_ingest.servicer import UNAVAILABLE_DETAILS, ManifestIntakeServicer
from services.auth import issue_token
from services.bus import ensure_topics, make_producer
from services.cli import app
from services.paxlst.writer import render_paxlst
from services.wire import intake_pb2_grpc

pytestmark = pytest.mark.integration

UNAVAILABLE, LOST, DEADLINE = "unavailable", "lost", "deadline"


class FailingIntake(intake_pb2_grpc.ManifestIntakeServicer):
    """The real intake, except that call number ``fail_at`` (1-based, every RPC counted) fails as ``how`` says:
    UNAVAILABLE as intake answers when the broker does not acknowledge, the server stopped under the call (the
    connection lost), or no answer until the client's deadline passes. A bulk stream fails after ``after``
    receipts (the manifests it read are stored, their receipts never sent)."""

    def __init__(self, real: ManifestIntakeServicer, fail_at: int | None, how: str, after: int, on_fail=None):
        self.real, self.fail_at, self.how, self.after, self.on_fail = real, fail_at, how, after, on_fail
        self.calls = 0
        self.server: grpc.Server | None = None
        self._lock = threading.Lock()

    def _failing(self) -> bool:
        with self._lock:
            self.calls += 1
            return self.calls == self.fail_at

    def _fail(self, context: grpc.ServicerContext) -> None:
        if self.on_fail is not None:
            self.on_fail()
        if self.how == UNAVAILABLE:
            context.abort(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_DETAILS)
        if self.how == LOST:
            self.server.stop(0)
        deadline = time.monotonic() + 60  # bounded: the client's deadline (or the stop) ends the call long before
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        context.abort(grpc.StatusCode.INTERNAL, "the call should have ended")

    def SubmitManifest(self, request, context):
        if self._failing():
            self._fail(context)
        return self.real.SubmitManifest(request, context)

    def SubmitManifests(self, request_iterator, context):
        failing = self._failing()
        for n, receipt in enumerate(self.real.SubmitManifests(request_iterator, context)):
            if failing and n == self.after:
                self._fail(context)
            yield receipt

    def SubmitPaxlst(self, request, context):
        if self._failing():
            self._fail(context)
        return self.real.SubmitPaxlst(request, context)


@pytest.fixture
def intake(settings):
    """serve(fail_at=N, how=..., after=...) -> address of an intake server on the session's broker."""
    ensure_topics(settings, [])
    producer = make_producer(settings, "test-submit-intake")
    index = IntakeIndex(settings).start()
    servers: list[grpc.Server] = []

    def serve(fail_at: int | None = None, how: str = UNAVAILABLE, after: int = 0, on_fail=None) -> str:
        failing = FailingIntake(ManifestIntakeServicer(settings, producer, index), fail_at, how, after, on_fail)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        intake_pb2_grpc.add_ManifestIntakeServicer_to_server(failing, server)
        port = server.add_insecure_port("127.0.0.1:0")
        failing.server = server
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.stop(0)
    index.stop()
    producer.close(timeout=10)


def _files(tmp_path, kinds: str, carriers: str = "") -> list[str]:
    """One file per letter of ``kinds``: j a JSON manifest, p a PAXLST interchange; each its own flight of the
    carrier at the same place in ``carriers`` (FJ by default)."""
    paths = []
    for n, kind in enumerate(kinds):
        carrier = (carriers[n * 2 : n * 2 + 2] if carriers else "") or "FJ"
        manifest = flight(["NAN", "SYD"], carrier=carrier, number=str(100 + n))
        path = tmp_path / f"f{n + 1}.{'json' if kind == 'j' else 'edi'}"
        if kind == "j":
            path.write_text(json_format.MessageToJson(manifest))
        else:
            path.write_bytes(render_paxlst(manifest))
        paths.append(str(path))
    return paths


def _submit(settings, address: str, files: list[str], *options: str):
    token = issue_token(settings, "carrier", "FJ")
    result = CliRunner().invoke(app, ["submit", "--server", address, "--token", token, *options, *files])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _receipt_lines(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith(" ")]


def _named(result) -> list[str]:
    """The files the failure message names as not acknowledged."""
    [line] = [line for line in result.stderr.splitlines() if "files not acknowledged" in line]
    return line.rsplit(": ", 1)[1].split()


def test_a_failed_third_call_keeps_the_receipts_before_it_and_names_the_rest(settings, intake, tmp_path):
    files = _files(tmp_path, "pjpjj")  # calls: f1 (PAXLST), f2 (one JSON), f3 (PAXLST, fails), f4 + f5 (a stream)
    result = _submit(settings, intake(fail_at=3, how=UNAVAILABLE), files)

    assert result.exit_code == 3, result.output
    lines = _receipt_lines(result)
    assert [line.split()[:2] for line in lines] == [[f"{files[0]}#1:", "ACCEPTED"], [f"{files[1]}:", "ACCEPTED"]]
    assert _named(result) == files[2:]
    assert "3 of 5 files not acknowledged" in result.stderr
    assert f"UNAVAILABLE: {UNAVAILABLE_DETAILS}" in result.stderr
    assert "apihub submit " + " ".join(files[2:]) in result.stderr

    # The documented way on: send only those again; then a resend of everything is answered DUPLICATE.
    healthy = intake()
    again = _submit(settings, healthy, files[2:])
    assert again.exit_code == 0, again.output
    assert [line.split()[1] for line in _receipt_lines(again)] == ["ACCEPTED"] * 3
    everything = _submit(settings, healthy, files)
    assert everything.exit_code == 0, everything.output
    assert [line.split()[1] for line in _receipt_lines(everything)] == ["DUPLICATE"] * 5


def test_a_stream_cut_after_two_receipts_names_the_files_stored_without_a_receipt(settings, intake, tmp_path):
    files = _files(tmp_path, "jjjjj")  # one bulk stream
    result = _submit(settings, intake(fail_at=1, how=UNAVAILABLE, after=2), files, "--json")

    assert result.exit_code == 3, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["file"], o["status"]) for o in out] == [
        (files[0], "accepted"),
        (files[1], "accepted"),
        *((name, "not_acknowledged") for name in files[2:]),
    ]
    assert all(o["error"].startswith("UNAVAILABLE: ") for o in out[2:])
    # Intake stored them before its answer was lost: sending them again is safe, and says so.
    again = _submit(settings, intake(), files[2:], "--json")
    assert again.exit_code == 0, again.output
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == ["duplicate"] * 3


def test_a_connection_lost_in_the_middle_names_the_files_not_acknowledged(settings, intake, tmp_path):
    files = _files(tmp_path, "jpjpj")
    result = _submit(settings, intake(fail_at=3, how=LOST), files)

    assert result.exit_code == 3, result.output
    assert [line.split()[1] for line in _receipt_lines(result)] == ["ACCEPTED", "ACCEPTED"]
    assert _named(result) == files[2:]
    again = _submit(settings, intake(), files[2:])
    assert again.exit_code == 0, again.output


def test_receipts_are_printed_as_they_arrive_and_a_deadline_leaves_the_rest_to_send_again(settings, intake, tmp_path):
    files = _files(tmp_path, "ppjpj")
    out = tmp_path / "stdout.txt"
    printed_before_the_third_call: list[str] = []
    address = intake(fail_at=3, how=DEADLINE, on_fail=lambda: printed_before_the_third_call.append(out.read_text()))
    env = {**os.environ, "APIHUB_SUBMIT_TIMEOUT_SECONDS": "5", "APIHUB_TOPIC_PREFIX": settings.topic_prefix}
    token = issue_token(settings, "carrier", "FJ")
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "submit", "--server", address, "--token", token, *files],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )

    assert done.returncode == 3, done.stderr
    # The two receipts were on the carrier's screen while the third call was still waiting.
    [seen] = printed_before_the_third_call
    assert [line.split()[:2] for line in seen.splitlines()] == [
        [f"{files[0]}#1:", "ACCEPTED"],
        [f"{files[1]}#1:", "ACCEPTED"],
    ]
    assert out.read_text() == seen
    assert "DEADLINE_EXCEEDED" in done.stderr
    assert (
        f"3 of 5 files not acknowledged (the other files were answered by the receipts above): {' '.join(files[2:])}"
        in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_a_refused_call_names_the_files_left_and_exits_2(settings, intake, tmp_path):
    # f3 is another carrier's manifest: intake refuses the stream it is in (PERMISSION_DENIED), f4 with it.
    files = _files(tmp_path, "jpjj", carriers="FJFJNZFJ")
    result = _submit(settings, intake(), files)

    assert result.exit_code == 2, result.output
    assert [line.split()[1] for line in _receipt_lines(result)] == ["ACCEPTED", "ACCEPTED"]
    assert "PERMISSION_DENIED: carrier FJ may not submit manifests for carrier 'NZ'" in result.stderr
    assert _named(result) == files[2:]
    assert "once the cause is fixed" in result.stderr


def test_rejected_messages_exit_1_after_every_file_is_answered(settings, intake, tmp_path):
    files = _files(tmp_path, "jj")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = _submit(settings, intake(), [files[0], str(broken), files[1]])

    assert result.exit_code == 1, result.output
    assert [line.split()[:2] for line in _receipt_lines(result)] == [
        [f"{files[0]}:", "ACCEPTED"],
        [f"{broken}:", "REJECTED"],
        [f"{files[1]}:", "ACCEPTED"],
    ]
    assert "not acknowledged" not in result.output
