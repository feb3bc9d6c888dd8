"""A member's watchlist and rules in headless Chromium, against a real hub: a watchlist upload previewed (a refused
row, then the changes) and applied, then searched; a rule file with a mistake shown at its line, corrected, and
loaded into the hub.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from synthetic.demo import _watchlist_csv as watchlist_csv
from synthetic.traffic import demo_watchlists
from tests.browser.consolekit import sign_in

pytestmark = pytest.mark.integration

RULES = """owner: FJI
rules:
  - id: FJI-CREW-CHECK
    description: Crew members on flights through Fiji (browser test rule)
    category: test
    score: 0.4
    enabled: true
    when:
      {condition}
"""


def _upload(page, name: str, text: str) -> None:
    page.get_by_label("Watchlist file (CSV)").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode()}
    )
    page.get_by_role("button", name="Preview the changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("What the new watchlist changes")


def test_a_watchlist_upload_is_previewed_then_applied_and_searched(open_page):
    entries = demo_watchlists()["TON"][:3]
    page = open_page()
    sign_in(page, "TON", "sione", next_path="/lists")
    expect(page.get_by_role("heading", level=1)).to_have_text("Watchlist of Tonga")

    # A file with a row that cannot be loaded: the preview names the line and the field, and offers no apply.
    good = watchlist_csv(entries)
    bad = good + "TON-WL-9999,Bad,Row,1990-13-45,,TON,X1,TON,test,TON\n"
    _upload(page, "ton-bad.csv", bad)
    expect(page.locator("#count-refused")).to_have_text("1")
    refused = page.get_by_role("table", name="Rows refused")
    cells = refused.get_by_role("row").filter(has_text="date_of_birth").get_by_role("cell")
    expect(cells.first).to_have_text("5")  # line 5 of the file
    expect(page.get_by_role("button", name="Apply the new watchlist")).to_have_count(0)
    page.get_by_role("button", name="Discard").click()

    _upload(page, "ton.csv", good)
    expect(page.locator("#count-added")).to_have_text("3")
    expect(page.locator("#count-refused")).to_have_text("0")
    added = page.get_by_role("table", name="Entries added")
    for entry in entries:
        expect(added).to_contain_text(entry.entry_id)
    page.once("dialog", lambda dialog: dialog.accept())  # "Replace the watchlist with this file?"
    page.get_by_role("button", name="Apply the new watchlist").click()
    expect(page.get_by_role("status").filter(has_text="loaded")).to_have_text("Watchlist loaded: 3 entries.")
    listing = page.get_by_role("table", name="Watchlist entries")
    expect(listing.get_by_role("row")).to_have_count(4)  # a header and the three entries, read back from the hub

    page.get_by_label("Name, entry id, category or document number").fill(entries[1].surname)
    page.get_by_role("button", name="Search").click()
    expect(listing).to_contain_text(entries[1].entry_id)
    expect(listing).not_to_contain_text(entries[0].entry_id)

    # The same file again changes nothing.
    page.get_by_role("link", name="Show all entries").click()
    _upload(page, "ton.csv", good)
    expect(page.locator("#count-unchanged")).to_have_text("3")
    expect(page.locator("#count-added")).to_have_text("0")


def test_a_rule_file_mistake_is_shown_at_its_line_and_the_corrected_file_is_loaded(open_page):
    page = open_page()
    sign_in(page, "FJI", "litia", next_path="/rules")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rules of Fiji")
    editor = page.get_by_label("Rule file (YAML)")
    editor.fill(RULES.format(condition="rank: captain"))
    page.get_by_role("button", name="Check", exact=True).click()

    expect(page.get_by_role("alert")).to_contain_text("Problems found: 1")
    problem = page.locator("ul.problems").get_by_role("listitem")
    expect(problem).to_contain_text("unknown field 'rank'")
    expect(problem.get_by_role("link", name="Line 9")).to_have_attribute("href", "#line-9")
    line = page.locator("#line-9")
    expect(line).to_have_class("line-error")
    expect(line).to_contain_text("rank: captain")
    expect(page.locator(".listing .line-error").first).to_have_id("line-9")  # the only line marked
    expect(editor).to_have_value(re.compile("rank: captain"))  # the officer's text is kept to correct

    editor.fill(RULES.format(condition="role: crew"))
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("The rule file is valid: 1 rules enabled")
    # Backtested on the recent manifests of Fiji's flights, before anything is loaded.
    page.get_by_role("button", name="Backtest").click()
    expect(page.get_by_role("heading", name="Backtest")).to_be_visible()
    expect(page.locator("#rule-FJI-CREW-CHECK")).to_be_visible()
    expect(page.locator("#backtest-flights")).to_have_text(re.compile(r"^\d+$"))
    page.once("dialog", lambda dialog: dialog.accept())  # "Load this rule file? ..."
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Rule file loaded")
    expect(page.get_by_label("Rule file (YAML)")).to_have_value(re.compile("FJI-CREW-CHECK"))  # read back from the hub
