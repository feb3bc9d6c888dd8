"""The real `apihub up --no-demo` on the session's broker: a profiler killed with SIGKILL is started again, the status
file, `apihub status` and the supervisor's metrics page say so, and a manifest submitted after it is screened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from hubkit import flight, plant

from services import client
from services.auth import issue_token
from services.config import HubSettings
from services.devkafka import free_port
from services.supervisor import STATUS_FILE, HubStatus, read_status
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def until(condition, what: str, deadline: float, up: subprocess.Popen, output: Path):
    """Poll ``condition`` until it returns something true; fail naming ``what`` (and showing `apihub up`'s output)
    when the deadline passes or `apihub up` ended."""
    end = time.monotonic() + deadline
    while True:
        found = condition()
        if found:
            return found
        if up.poll() is not None or time.monotonic() > end:
            why = f"apihub up exited with {up.returncode}" if up.returncode is not None else f"{deadline:.0f} s passed"
            pytest.fail(f"{what}: {why}\n{output.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def gone(pid: int) -> bool:
    """No such process, not even <defunct>: its parent reaped it."""
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def hub_env(kafka, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "APIHUB_KAFKA_BOOTSTRAP": kafka,
        "APIHUB_TOPIC_PREFIX": f"up{uuid.uuid4().hex[:8]}",
        "APIHUB_STATE_DIR": str(tmp_path / "state"),
        "APIHUB_INGEST_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_DELIVERY_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_INGEST_METRICS_PORT": "-1",
        "APIHUB_PROFILER_METRICS_PORT": str(free_port()),
        "APIHUB_ROUTER_METRICS_PORT": "-1",
        "APIHUB_CONSOLE_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_CONSOLE_METRICS_PORT": "-1",
        "APIHUB_SUPERVISOR_METRICS_PORT": str(free_port()),
    }


def hits_for(settings: HubSettings, member: str, want: int, deadline: float) -> list:
    got: list = []
    end = time.monotonic() + deadline
    chan = client.channel_for(settings, settings.delivery_listen)
    while len(got) < want and time.monotonic() < end:
        client.Follower(chan, issue_token(settings, "member", member), member).follow(
            lambda d: got.append(d.hit), idle_exit=5, should_stop=lambda: len(got) >= want
        )
    return got


def test_up_restarts_a_killed_profiler_and_screens_what_comes_after(hub_env, tmp_path):
    settings = HubSettings(
        kafka_bootstrap=hub_env["APIHUB_KAFKA_BOOTSTRAP"],
        topic_prefix=hub_env["APIHUB_TOPIC_PREFIX"],
        ingest_listen=hub_env["APIHUB_INGEST_LISTEN"],
        delivery_listen=hub_env["APIHUB_DELIVERY_LISTEN"],
        profiler_metrics_port=int(hub_env["APIHUB_PROFILER_METRICS_PORT"]),
    )
    status_file = tmp_path / "state" / STATUS_FILE
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--no-demo"],
            env=hub_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        first: HubStatus = until(
            lambda: (s := read_status(status_file)).all_up and s, "the hub comes up", 180, up, output
        )
        assert set(first.services) == {"ingest", "profiler", "router", "console"}  # the broker is external here
        killed = first.services["profiler"]["pid"]
        os.kill(killed, signal.SIGKILL)

        def restarted():
            profiler = read_status(status_file).services["profiler"]
            return profiler["state"] == "up" and profiler["restarts"] == 1 and profiler["pid"] != killed and profiler

        again = until(restarted, "the profiler is started again", 60, up, output)
        assert again["last_exit"] == "was killed by SIGKILL"
        until(lambda: gone(killed), "the killed profiler is reaped (no <defunct>)", 30, up, output)
        assert f"profiler (pid {killed}) was killed by SIGKILL" in output.read_text()

        shown = subprocess.run(
            [sys.executable, "-m", "services.cli", "status"], env=hub_env, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        [line] = [line for line in shown.stdout.splitlines() if line.startswith("profiler")]
        assert line.split()[:4] == ["profiler", "up", str(again["pid"]), "1"]

        page = f"http://127.0.0.1:{hub_env['APIHUB_SUPERVISOR_METRICS_PORT']}/metrics"
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(page, timeout=10) as answer:
            metrics = answer.read().decode()
        assert 'apihub_supervisor_restarts_total{service="profiler"} 1.0' in metrics
        assert 'apihub_supervisor_up{service="profiler"} 1.0' in metrics

        health = subprocess.run(
            [sys.executable, "-m", "services.cli", "health", "profiler"], env=hub_env, capture_output=True, timeout=60
        )
        assert health.returncode == 0, health.stderr

        # The restarted profiler screens: a watchlisted passenger submitted now reaches the member.
        entry = demo_watchlists()["FJI"][0]
        delivery = client.channel_for(settings, settings.delivery_listen)
        assert client.load_watchlist(delivery, issue_token(settings, "member", "FJI"), "FJI", [entry]).entries == 1
        m = flight(["SYD", "NAN", "TBU"], number="913")
        plant(m, entry, "FJ913-P1")
        ingest = client.channel_for(settings, settings.ingest_listen)
        [receipt] = client.submit(ingest, issue_token(settings, "carrier", "FJ"), [m])
        [hit] = hits_for(settings, "FJI", want=1, deadline=180)
        assert hit.manifest_id == receipt.manifest_id and hit.traveller.passenger_ref == "FJ913-P1"
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    text = output.read_text(errors="replace")
    assert up.returncode == 0, text[-4000:]
    assert "Hub stopped." in text and "Traceback" not in text
    last = read_status(status_file)
    assert last.supervisor["state"] == "stopped" and not last.running
    assert all(s["state"] == "stopped" for s in last.services.values())
    assert gone(again["pid"]) and gone(first.services["ingest"]["pid"]) and gone(first.services["router"]["pid"])


def test_up_stops_the_hub_with_a_clear_message_when_a_service_keeps_dying(hub_env, tmp_path):
    """With no restarts allowed (APIHUB_SUPERVISOR_RESTART_BUDGET=0) the first exit spends the budget: the hub stops,
    says which service and why, and `apihub up` ends with exit status 1."""
    env = {**hub_env, "APIHUB_SUPERVISOR_RESTART_BUDGET": "0"}
    status_file = tmp_path / "state" / STATUS_FILE
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--no-demo"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        first: HubStatus = until(
            lambda: (s := read_status(status_file)).all_up and s, "the hub comes up", 180, up, output
        )
        killed = first.services["router"]["pid"]
        os.kill(killed, signal.SIGKILL)
        up.wait(120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = output.read_text(errors="replace")
    assert up.returncode == 1, text[-4000:]
    assert f"apihub: router (pid {killed}) was killed by SIGKILL" in text and "restart budget 0" in text
    assert "stopping the hub" in text and "Hub stopped." in text and "Traceback" not in text
    last = read_status(status_file)
    assert last.supervisor["state"] == "failed" and "router" in last.supervisor["message"]
    assert last.services["router"]["state"] == "failed"
    assert all(gone(first.services[name]["pid"]) for name in ("ingest", "profiler", "router"))
