"""What the browser tests share: the officers, the browser's waits, Chromium's path, signing in, keyboard use."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.hubkit import RunningHub

INSTALL = "make browser (sh tools/browser_setup.sh: apt-get install -y --no-install-recommends chromium)"
PASSWORD = "synthetic officer passphrase"
# (member, user name) -> role. FJI and TON have officers, so the console reads both members' hits.
OFFICERS = {
    ("FJI", "litia"): "member-admin",
    ("FJI", "josefa"): "analyst",
    ("TON", "sione"): "member-admin",
}
START_DEADLINE_S = 120.0
# Playwright's waits (expect, navigation): generous for a loaded two-core machine; nothing asserts a duration.
WAIT_MS = 30_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def chromium_path() -> str | None:
    """The Chromium the tests drive: APIHUB_CHROMIUM, else Debian's /usr/bin/chromium, else one on PATH."""
    configured = os.environ.get("APIHUB_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class ConsoleHub:
    """A running hub and its console: ``url`` of the console, ``hub`` (hubkit.RunningHub) to load and submit."""

    hub: RunningHub
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


@dataclass
class Watched:
    """What the browser reported while a test ran: CSP violations and script errors (each fails the test)."""

    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.violations.append(text)

    def on_error(self, error) -> None:
        self.errors.append(str(error))


def sign_in(page, member: str, username: str, password: str = PASSWORD, next_path: str | None = None) -> None:
    """Signs in through the sign-in form, as an officer would, and waits for the page it leads to."""
    page.goto(f"/sign-in?next={next_path}" if next_path else "/sign-in")
    page.get_by_label("Member").select_option(member)
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def tab_to(page, target, presses: int = 60) -> int:
    """Presses Tab from the page's current focus until ``target`` (a locator) has it; how many presses it took.
    Fails if Tab never reaches it: the control cannot be used with the keyboard."""
    handle = target.element_handle()
    for press in range(1, presses + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(element) => document.activeElement === element", handle):
            return press
    raise AssertionError(f"Tab did not reach {target} in {presses} presses")


def signed_in_context(browser, url: str, member: str, username: str, password: str = PASSWORD):
    """A browser context (no page) holding an officer's session: for fixtures that read the console's pages."""
    context = browser.new_context(base_url=url)
    answer = context.request.post(
        "/sign-in", form={"member": member, "username": username, "password": password}, max_redirects=0
    )
    assert answer.status == 303, f"sign-in of {member}/{username}: {answer.status}"
    return context


def wait_for_hits(context, flight: str, count: int, deadline_s: float = 120.0) -> list[str]:
    """The ids of the hits of ``flight`` (e.g. "FJ920") in the queue of the context's officer, once there are
    ``count``: the console has read them from the router."""
    ids: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        page = context.request.get(f"/hits?flight={flight}")
        assert page.status == 200, page.status
        ids = re.findall(r'<tr id="hit-([^"]+)"', page.text())
        if len(ids) >= count:
            return ids
        time.sleep(0.3)
    raise AssertionError(f"the console's queue has {len(ids)} hits of {flight}, not {count}")
