"""The member console in a real browser: one hub, one console and one headless Chromium for all the browser tests
(package scope: stopped as soon as they are done, not at the end of the whole suite).

The hub is the integration tests' (tests/integration/hubkit.py: intake, profiler and router in this process on the
session's Kafka broker); the console is `apihub serve console` in its own process, on a free loopback port, with the
hub's settings, as `apihub up` runs it. Its officers are written to the users topic before it starts.

Chromium is Debian's package (`make test` installs it: tools/browser_setup.sh), driven by Playwright through its
executable path; APIHUB_CHROMIUM names another binary. Without one the browser tests are skipped with the command that
installs it, except in CI (CI=true), where they fail.

Every page a test opens is watched: a Content Security Policy violation or a script error reported by the browser
fails the test that caused it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from services.config import HubSettings
from services.console.users import UserWriter, new_user
from services.devkafka import free_port
from tests.browser.consolekit import (
    INSTALL,
    OFFICERS,
    PASSWORD,
    START_DEADLINE_S,
    WAIT_MS,
    ConsoleHub,
    Watched,
    chromium_path,
    signed_in_context,
    wait_for_hits,
)
from tests.integration.hubkit import RunningHub, flight, plant


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the console exited ({process.returncode}):\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the console did not start:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="package")
def console_hub(kafka, tmp_path_factory) -> ConsoleHub:
    workdir = tmp_path_factory.mktemp("console-hub")
    # As tests/conftest.py's `settings`, for these tests: their own topics, ephemeral ports, no metrics ports.
    settings = HubSettings(
        kafka_bootstrap=kafka,
        topic_prefix=f"b{uuid.uuid4().hex[:10]}",
        ingest_listen="127.0.0.1:0",
        delivery_listen="127.0.0.1:0",
        ingest_metrics_port=-1,
        profiler_metrics_port=-1,
        router_metrics_port=-1,
        console_metrics_port=-1,
        heartbeat_seconds=0.2,
        profiler_poll_ms=50,
        state_dir=workdir / "hub-state",
    )
    hub = RunningHub(settings)
    process = None
    try:
        writer = UserWriter(settings)
        try:
            for (member, username), role in OFFICERS.items():
                writer.put(new_user(member, username, role, PASSWORD))
        finally:
            writer.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
            "APIHUB_DELIVERY_LISTEN": hub.delivery_addr,
            "APIHUB_CONSOLE_LISTEN": f"127.0.0.1:{port}",
            "APIHUB_CONSOLE_METRICS_PORT": "-1",
            "APIHUB_STATE_DIR": str(workdir / "console-state"),
        }
        log = workdir / "console.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "console"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_until_serving(url, process, log)
        yield ConsoleHub(hub=hub, url=url, process=process, log=log)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        hub.stop()


@pytest.fixture(scope="package")
def fiji_entries(console_hub) -> list:
    """Fiji's watchlist: four synthetic entries of the demo's, loaded through the router as Fiji's own tools do."""
    from synthetic.traffic import demo_watchlists

    entries = demo_watchlists()["FJI"][:4]
    assert console_hub.hub.load("FJI", entries).entries == len(entries)
    return entries


@pytest.fixture(scope="package")
def fiji_hits(browser, console_hub, fiji_entries) -> list[str]:
    """Ids of two hits in Fiji's queue, for the tests that read them: two travellers of FJ 920 Sydney-Nadi on Fiji's
    watchlist (a flight of Australia's and Fiji's jurisdiction only: Tonga has no part in it)."""
    manifest = flight(["SYD", "NAN"], number="920", seed=31)
    plant(manifest, fiji_entries[0], "FJ920-P91")
    plant(manifest, fiji_entries[2], "FJ920-P92")
    [receipt] = console_hub.hub.submit(manifest)
    assert receipt.status == 1, receipt
    context = signed_in_context(browser, console_hub.url, "FJI", "litia")
    try:
        return wait_for_hits(context, "FJ920", 2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the console's log ends:\n{console_hub.log_tail()}") from None
    finally:
        context.close()


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests (Debian's, through Playwright). Requested before the hub by every
    test, so that without a browser nothing is started only to be skipped."""
    path = chromium_path()
    if path is None:
        message = f"no Chromium for the console's browser tests (APIHUB_CHROMIUM or /usr/bin/chromium): {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def open_page(browser, console_hub, watched):
    """``open_page()``: a page in a fresh browser context (its own cookies: one officer's browser) on the console,
    watched for CSP violations and script errors until the test ends."""
    contexts = []

    def make():
        context = browser.new_context(base_url=console_hub.url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", watched.on_console)
        page.on("pageerror", watched.on_error)
        return page

    yield make
    for context in contexts:
        context.close()
    assert watched.violations == [], f"Content Security Policy violations: {watched.violations}"
    assert watched.errors == [], f"script errors: {watched.errors}"
