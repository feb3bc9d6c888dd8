"""Interactive API in the member console, in headless Chromium against a real hub: a carrier's check-in answered
DO NOT BOARD under Tonga's board policy, the interactive hit opened by Tonga's officer, "Let board" with a reason,
and the carrier's re-check answered OK TO BOARD."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services import client
from services.wire import check_pb2
from synthetic.traffic import demo_watchlists
from tests.browser.consolekit import sign_in
from tests.integration.hubkit import flight, plant

pytestmark = pytest.mark.integration

POLICY = """version: 1
member: TON
fallback: CONTACT_AUTHORITY
require: []
do_not_board:
  - watchlist: {min_score: 0.9}
"""


def test_a_do_not_board_is_overridden_on_the_hit_page_and_the_recheck_boards(open_page, console_hub):
    hub = console_hub.hub
    entry = demo_watchlists()["TON"][3]
    assert hub.load("TON", [entry]).entries == 1
    member_chan = client.channel_for(hub.settings, hub.delivery_addr)
    assert not client.load_board_policy(member_chan, hub.token("member", "TON"), "TON", POLICY).errors
    m = flight(["NAN", "TBU"], number="930", passengers=1, seed=31)
    plant(m, entry, "FJ930-P1")
    directives = [a.directive for a in hub.check(m).answers]
    assert directives == [check_pb2.DIRECTIVE_OK_TO_BOARD, check_pb2.DIRECTIVE_DO_NOT_BOARD]

    page = open_page()
    sign_in(page, "TON", "sione")  # Tonga's member admin (a duty officer may override too)
    row = page.get_by_role("row", name=re.compile(r"FJ 930"))
    expect(row).to_be_visible()
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hit on FJ 930")
    board = page.locator("dl", has=page.get_by_text("Board directive"))
    expect(board).to_contain_text("DO NOT BOARD")

    page.get_by_label(re.compile(r"^Reason")).fill("Synthetic test: identity confirmed with the embassy.")
    page.get_by_role("button", name="Let board").click()
    board = page.locator("dl", has=page.get_by_text("Board directive"))
    expect(board).to_contain_text("Let board by sione")
    expect(page.get_by_role("button", name="Withdraw override")).to_be_visible()

    again = hub.check(m)
    assert [a.directive for a in again.answers] == [check_pb2.DIRECTIVE_OK_TO_BOARD] * 2
