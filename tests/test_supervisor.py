"""The supervisor of `apihub up` (services.supervisor) on small Python child processes, without Kafka: restarts with
backoff, the restart budget, shutdown without restarts, no zombies, the status file and `apihub status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from services.cli import app
from services.config import HubSettings
from services.devkafka import free_port, terminate
from services.errors import HubError
from services.launcher import Hub
from services.supervisor import (
    STATUS_FILE,
    ChildSpec,
    RestartPolicy,
    SupervisionError,
    Supervisor,
    read_status,
    status_lines,
)

SLEEPER = "import time; time.sleep(600)"


class Clock:
    """A monotonic clock the test moves: backoff is checked without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def child(code: str = SLEEPER, name: str | None = None, starts: list | None = None) -> ChildSpec:
    """A named Python child process; ``starts`` collects every process started for it."""
    name = name or f"svc{uuid.uuid4().hex[:6]}"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code])
        if starts is not None:
            starts.append(proc)
        return proc

    return ChildSpec(name, start, lambda proc: terminate(proc, 10))


def until(condition, what: str, deadline: float = 30.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` when the deadline passes (no timing is asserted)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline:.0f} s: {what}")
        time.sleep(0.02)


def exited(proc: subprocess.Popen) -> bool:
    """Whether a process has ended, without reaping it: a zombie counts as ended."""
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def reaped(pid: int) -> bool:
    """The pid is no child of ours any more: waited for (a zombie would still be ours to wait for)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def restarts_metric(name: str) -> float:
    return REGISTRY.get_sample_value("apihub_supervisor_restarts_total", {"service": name}) or 0.0


@pytest.fixture
def said() -> list[str]:
    return []


def test_a_child_killed_with_sigkill_comes_back_after_a_doubling_backoff_and_is_reaped(tmp_path, said):
    clock, starts = Clock(), []
    spec = child(starts=starts)
    sup = Supervisor(RestartPolicy(backoff=1, backoff_max=30, budget=5, window=300), said.append, clock=clock)
    sup.launch(spec)
    try:
        first = starts[0]
        os.kill(first.pid, signal.SIGKILL)
        until(lambda: exited(first), "the killed child ends")
        sup.check()
        assert reaped(first.pid), "the killed child is left <defunct>"
        assert sup.snapshot()["services"][spec.name]["state"] == "restarting"
        assert f"{spec.name} (pid {first.pid}) was killed by SIGKILL" in said[-1]
        assert "restarting in 1 s" in said[-1]
        clock.now += 0.9  # before the backoff: nothing starts
        sup.check()
        assert len(starts) == 1
        clock.now += 0.1
        sup.check()
        assert len(starts) == 2 and sup.alive(spec.name)
        assert sup.pids()[spec.name] == starts[1].pid != first.pid
        assert restarts_metric(spec.name) == 1

        os.kill(starts[1].pid, signal.SIGKILL)  # again, within the window: twice the wait
        until(lambda: exited(starts[1]), "the restarted child ends")
        sup.check()
        assert "restarting in 2 s" in said[-1] and "restart 2 of at most 5" in said[-1]
        clock.now += 1.5
        sup.check()
        assert len(starts) == 2
        clock.now += 0.5
        sup.check()
        assert len(starts) == 3 and sup.snapshot()["services"][spec.name]["restarts"] == 2
    finally:
        sup.stop()
    assert all(p.poll() is not None for p in starts)


def test_the_exit_status_is_named_and_restarts_out_of_the_window_do_not_count(said):
    clock, starts = Clock(), []
    spec = child("import sys; sys.exit(7)", starts=starts)
    sup = Supervisor(RestartPolicy(backoff=1, backoff_max=1, budget=1, window=10), said.append, clock=clock)
    sup.launch(spec)
    try:
        until(lambda: exited(starts[-1]), "the child exits")
        sup.check()
        assert "exited with status 7" in said[-1]
        clock.now += 1
        sup.check()  # restart 1 of the budget of 1
        until(lambda: exited(starts[-1]), "the restarted child exits")
        clock.now += 11  # the first restart is out of the window: the budget is whole again
        sup.check()
        assert sup.snapshot()["services"][spec.name]["state"] == "restarting"
        clock.now += 1
        sup.check()
        assert len(starts) == 3
    finally:
        sup.stop()


def test_a_child_that_keeps_dying_spends_its_budget_and_the_others_are_stopped(tmp_path, said):
    clock, crashing, steady = Clock(), [], []
    status = tmp_path / STATUS_FILE
    sup = Supervisor(RestartPolicy(backoff=1, budget=2, window=300), said.append, status, clock=clock)
    sup.launch(child(name=f"steady{uuid.uuid4().hex[:4]}", starts=steady))
    crash = child("import sys; sys.exit(3)", starts=crashing)
    sup.launch(crash)
    with pytest.raises(SupervisionError) as failure:
        for _ in range(10):
            until(lambda: exited(crashing[-1]), "the crashing child exits")
            sup.check()
            clock.now += 60
            sup.check()
    assert len(crashing) == 3, "two restarts, then no more"
    message = str(failure.value)
    assert crash.name in message and "exited with status 3" in message and "restart budget 2" in message
    assert steady[0].poll() is not None, "the other children are stopped"
    assert all(reaped(p.pid) for p in crashing + steady)
    written = json.loads(status.read_text())
    assert written["supervisor"]["state"] == "failed" and written["supervisor"]["message"] == message
    assert written["services"][crash.name]["state"] == "failed"
    assert written["services"][crash.name]["restarts"] == 2


def test_shutdown_restarts_nothing_and_reaps_every_child(tmp_path, said):
    clock, starts, ready = Clock(), [], tmp_path / "ready"
    # A child that, told to stop, exits with a failure status: still no restart during shutdown.
    code = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(600)"
    )
    spec = child(code, starts=starts)
    sup = Supervisor(RestartPolicy(backoff=1, budget=5), said.append, clock=clock)
    sup.launch(spec)
    until(ready.exists, "the child handles SIGTERM")
    sup.stop()
    clock.now += 100
    sup.check()
    assert len(starts) == 1 and starts[0].returncode == 1
    assert reaped(starts[0].pid)
    assert sup.snapshot()["services"][spec.name]["state"] == "stopped" and not said
    sup.stop()  # idempotent


def test_a_start_that_fails_counts_against_the_budget(said):
    clock, starts, fail = Clock(), [], []
    inner = child(starts=starts)

    def start():
        if fail:
            raise OSError("no such program")
        return inner.start()

    spec = ChildSpec(inner.name, start, inner.stop)
    sup = Supervisor(RestartPolicy(backoff=1, budget=5), said.append, clock=clock)
    sup.launch(spec)
    try:
        fail.append(True)
        starts[0].kill()
        until(lambda: exited(starts[0]), "the child ends")
        sup.check()
        clock.now += 1
        sup.check()
        assert "could not be started (no such program); restarting in 2 s" in said[-1]
        fail.clear()
        clock.now += 2
        sup.check()
        assert sup.alive(spec.name) and len(starts) == 2
    finally:
        sup.stop()


def test_run_restarts_in_real_time_until_stopped(tmp_path, said):
    starts, stop = [], threading.Event()
    spec = child(starts=starts)
    sup = Supervisor(RestartPolicy(backoff=0.05, budget=5), said.append, tmp_path / STATUS_FILE)
    sup.launch(spec)
    runner = threading.Thread(target=sup.run, args=(stop,))
    runner.start()
    try:
        until(lambda: read_status(tmp_path / STATUS_FILE).all_up, "the status file says running")
        starts[0].send_signal(signal.SIGKILL)
        until(lambda: len(starts) == 2 and sup.alive(spec.name), "the child is restarted")
        status = read_status(tmp_path / STATUS_FILE)
        assert status.services[spec.name]["restarts"] == 1 and status.services[spec.name]["pid"] == starts[1].pid
    finally:
        stop.set()
        runner.join(10)
        sup.stop()
    assert read_status(tmp_path / STATUS_FILE).supervisor["state"] == "stopped"


# -- `apihub status` ------------------------------------------------------------------------------------------------
def written_status(tmp_path, **supervisor) -> None:
    data = {
        "supervisor": {"pid": os.getpid(), "state": "running", "since": "2026-03-01T10:00:00+00:00", **supervisor},
        "ingest": "127.0.0.1:50051",
        "services": {
            "kafka": {"state": "up", "pid": os.getpid(), "since": "2026-03-01T10:00:00+00:00", "restarts": 0},
            "profiler": {
                "state": "restarting",
                "pid": None,
                "since": "2026-03-01T10:04:00+00:00",
                "restarts": 2,
                "last_exit": "was killed by SIGKILL",
                "last_exit_at": "2026-03-01T10:04:00+00:00",
                "next_attempt": "2026-03-01T10:04:02+00:00",
            },
        },
    }
    (tmp_path / STATUS_FILE).write_text(json.dumps(data))


def status_cli(tmp_path, *args: str):
    return CliRunner().invoke(app, ["status", *args], env={"APIHUB_STATE_DIR": str(tmp_path)})


def test_status_shows_each_service_its_pid_restarts_and_last_exit(tmp_path):
    written_status(tmp_path)
    result = status_cli(tmp_path)
    assert result.exit_code == 1, result.output  # running, but the profiler is down
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Hub running: supervisor pid {os.getpid()}, since 2026-03-01 10:00:00 UTC")
    [kafka] = [line for line in lines if line.startswith("kafka")]
    assert kafka.split()[:4] == ["kafka", "up", str(os.getpid()), "0"]
    [profiler] = [line for line in lines if line.startswith("profiler")]
    assert profiler.split()[:4] == ["profiler", "restarting", "-", "2"]
    assert "last: was killed by SIGKILL at 2026-03-01 10:04:00 UTC" in result.output
    assert "next attempt at 2026-03-01 10:04:02 UTC" in result.output


def test_status_exits_0_when_everything_is_up_and_prints_json(tmp_path):
    written_status(tmp_path)
    data = json.loads((tmp_path / STATUS_FILE).read_text())
    del data["services"]["profiler"]
    (tmp_path / STATUS_FILE).write_text(json.dumps(data))
    result = status_cli(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["running"] is True and shown["stale"] is False
    assert shown["services"]["kafka"]["pid"] == os.getpid() and shown["ingest"] == "127.0.0.1:50051"


def test_status_says_no_hub_runs_without_a_file(tmp_path):
    result = status_cli(tmp_path)
    assert result.exit_code == 3
    assert f"No hub is running here: no status file at {tmp_path / STATUS_FILE}" in result.output
    assert json.loads(status_cli(tmp_path, "--json").output)["running"] is False


def test_status_says_the_file_is_stale_when_its_supervisor_is_gone(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    written_status(tmp_path, pid=gone.pid, updated="2026-03-01T10:05:00+00:00")
    result = status_cli(tmp_path)
    assert result.exit_code == 3
    assert f"the supervisor (pid {gone.pid})" in result.output and "stale" in result.output
    # The kafka entry's pid (this test's own process) still runs: it is named, to be stopped by hand.
    assert f"kafka pid {os.getpid()}" in result.output
    shown = json.loads(status_cli(tmp_path, "--json").output)
    assert shown["stale"] is True and shown["running"] is False


def test_status_of_a_hub_that_stopped_says_so_with_its_failure(tmp_path):
    message = "profiler (pid 9) exited with status 1 after 0s, after 5 restarts within 300 s"
    written_status(tmp_path, state="failed", message=message, updated="2026-03-01T10:05:00+00:00")
    lines = status_lines(read_status(tmp_path / STATUS_FILE), now=datetime(2026, 3, 1, 10, 6, tzinfo=UTC))
    assert lines == [
        "No hub is running: the last one stopped after a failure 2026-03-01 10:05:00 UTC (1m 0s ago).",
        f"  {message}",
    ]
    assert status_cli(tmp_path).exit_code == 3


def test_the_status_file_is_replaced_whole(tmp_path, said):
    """Written to a temporary file beside it and renamed: no temporary file stays, the file is always whole JSON."""
    sup = Supervisor(RestartPolicy(), said.append, tmp_path / STATUS_FILE, {"logs": "somewhere"})
    spec = child()
    sup.launch(spec)
    sup.running()
    sup.stop()
    assert [p.name for p in tmp_path.iterdir()] == [STATUS_FILE]
    written = json.loads((tmp_path / STATUS_FILE).read_text())
    assert written["logs"] == "somewhere" and written["supervisor"]["pid"] == os.getpid()
    assert written["services"][spec.name]["state"] == "stopped"


# -- the launcher's side: one hub per state directory, an external broker waited for -------------------------------
def test_up_refuses_a_second_hub_on_the_same_state_directory(tmp_path):
    written_status(tmp_path)  # a running supervisor: this process
    hub = Hub(HubSettings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1"), say=lambda _line: None)
    with pytest.raises(HubError, match=f"a hub is already running from {tmp_path} \\(supervisor pid {os.getpid()}\\)"):
        hub.start()
    assert hub.supervisor is None


def test_up_waits_for_an_external_broker_until_stopped(tmp_path):
    said, stop = [], threading.Event()
    settings = HubSettings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}", supervisor_metrics_port=-1)

    def say(line: str) -> None:
        said.append(line)
        if line.startswith("Waiting for the Kafka cluster"):
            stop.set()

    hub = Hub(settings, say)
    starting = threading.Thread(target=hub.start, args=(stop,))
    starting.start()
    starting.join(120)
    assert not starting.is_alive()
    try:
        assert any(line.startswith(f"Waiting for the Kafka cluster at {settings.kafka_bootstrap}") for line in said)
        assert hub.supervisor.pids() == {}, "no service starts before the topics exist"
    finally:
        hub.stop()
