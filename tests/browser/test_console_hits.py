"""The hit queue and the hit page in headless Chromium, against a real hub: a hit arriving live in an open queue,
opened and disposed with the keyboard; another member's officer refused the hit; the README's screenshots.

The hits are real: manifests submitted to the hub's intake, screened by its profiler against a member's watchlist,
routed by its router, read by the console with its own cursor (tests/browser/conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.consolekit import SCREENSHOTS, sign_in, tab_to
from tests.integration.hubkit import flight, plant

pytestmark = pytest.mark.integration


def test_a_hit_arrives_live_and_is_opened_and_disposed_with_the_keyboard(open_page, console_hub, fiji_entries):
    page = open_page()
    sign_in(page, "FJI", "josefa")  # an analyst; sign-in leads to the queue
    expect(page).to_have_url(re.compile(r"/hits$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Hits")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page were loaded again

    entry = fiji_entries[1]
    manifest = flight(["SYD", "NAN"], number="910", seed=23)
    plant(manifest, entry, "FJ910-P90")
    [receipt] = console_hub.hub.submit(manifest)
    assert receipt.status == 1, receipt

    row = page.get_by_role("row", name=re.compile(r"FJ 910"))
    expect(row).to_be_visible()  # pushed by the live stream, no reload
    expect(page.get_by_role("status").filter(has_text="new hit")).to_have_text("1 new hit.")
    assert page.evaluate("() => window.sameDocument") is True
    expect(row).to_contain_text("SYD – NAN")
    expect(row).to_contain_text("Watchlist")
    expect(row).to_contain_text("New")

    # With the keyboard: Tab to the hit's link, Enter opens it.
    link = row.get_by_role("link")
    tab_to(page, link, presses=80)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hit on FJ 910")
    hit_id = page.url.rsplit("/", 1)[1]
    traveller = page.get_by_role("definition").filter(has_text=entry.surname.title())
    expect(traveller).to_be_visible()  # the traveller as the carrier sent them
    reasons = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Explanation"))
    expect(reasons).to_contain_text(entry.entry_id)  # the reason, with the watchlist entry that raised it

    tab_to(page, page.get_by_label("Outcome"))
    page.get_by_label("Outcome").select_option("false_positive")
    page.keyboard.press("Tab")
    expect(page.get_by_label(re.compile(r"^Note"))).to_be_focused()
    page.keyboard.type("Synthetic test: a namesake, different date of birth.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Record the disposition")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_have_text("Disposition recorded.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Closed")
    dispositions = page.get_by_role("table", name=re.compile("Dispositions of this hit"))
    expect(dispositions).to_contain_text("False positive")
    expect(dispositions).to_contain_text("josefa")  # in the officer's name

    # Back in the queue, the hit's row shows the disposition.
    page.get_by_role("link", name="Back to the hits").click()
    expect(page.locator(f"#hit-{hit_id}")).to_contain_text("Closed · False positive")


def test_another_members_officer_gets_404_for_the_hit_and_sees_nothing_of_it(open_page, fiji_hits, fiji_entries):
    hit_id = fiji_hits[0]
    page = open_page()
    sign_in(page, "TON", "sione")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hits")
    expect(page.locator("#hit-rows")).not_to_contain_text("FJ 920")  # Tonga's queue does not list it
    csrf = page.locator("body").get_attribute("data-csrf")  # Tonga's session's valid form token

    answer = page.goto(f"/hits/{hit_id}")
    assert answer.status == 404
    main = page.get_by_role("main")
    expect(main.get_by_role("alert")).to_have_text("Not found.")
    for secret in ("FJ 920", "FJ920", fiji_entries[0].surname, fiji_entries[0].entry_id, hit_id):
        expect(main).not_to_contain_text(secret, ignore_case=True)

    # Disposing or taking it by hand, with Tonga's session and its form token: the same 404, and nothing recorded.
    for action in ("dispose", "take"):
        answer = page.request.post(
            f"/hits/{hit_id}/{action}", form={"csrf": csrf, "outcome": "true_match"}, max_redirects=0
        )
        assert answer.status == 404, action
    fiji = open_page()
    sign_in(fiji, "FJI", "litia", next_path=f"/hits/{hit_id}")
    expect(fiji.get_by_role("heading", level=1)).to_contain_text("New")


def test_screenshots_of_the_queue_and_the_hit_page(open_page, fiji_hits):
    """docs/images/console-queue.png and console-hit.png, for the README (synthetic data only)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page()
    sign_in(page, "FJI", "litia")
    expect(page.locator(f"#hit-{fiji_hits[0]}")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "console-queue.png")
    page.locator(f"#hit-{fiji_hits[0]}").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hit on FJ 920")
    page.screenshot(path=SCREENSHOTS / "console-hit.png", full_page=True)


def test_a_view_of_a_hit_is_in_the_audit_trail_and_the_queue_exports_as_csv(open_page, fiji_hits, fiji_entries):
    page = open_page()
    sign_in(page, "FJI", "litia", next_path=f"/hits/{fiji_hits[1]}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hit on FJ 920")

    page.get_by_role("link", name="Oversight").click()
    readers = page.get_by_role("table", name="Hits not yet acknowledged, per reader")
    expect(readers.get_by_role("rowheader", name="This console")).to_be_visible()  # the console's own cursor
    page.get_by_role("link", name="Audit trail").click()
    viewed = page.get_by_role("row").filter(has_text="Traveller viewed").filter(has_text=fiji_hits[1])
    reload_until_visible(page, viewed.first)
    expect(viewed.first).to_contain_text("litia")  # which officer, and when (the row's first cell)

    page.goto("/hits?flight=FJ920")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Export these hits")).click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("hit_id,version,state,")
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(fiji_hits)
    assert fiji_entries[0].surname not in text and fiji_entries[0].document_number not in text  # no traveller data


def reload_until_visible(page, locator, attempts: int = 20) -> None:
    """Reloads the page until ``locator`` shows (what the page lists comes from the hub, a moment behind)."""
    for _ in range(attempts):
        if locator.is_visible():
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator).to_be_visible()
