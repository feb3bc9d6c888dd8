"""The watchlist page against a real router on the session's broker (services.console.gateway.HubGateway): an upload
is previewed against the member's list as the router holds it, applied through WatchlistAdmin as the officer, and
browsed and searched through MemberRecords. Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import re
import time

import pytest

from tests import routerkit
from tests.console.conftest import client_of, make_console, sign_in
from tests.console.test_lists import HEADER, preview_id, upload

pytestmark = pytest.mark.integration

FIRST = (
    HEADER
    + "FJI-1,Tavola,Josefa,1980-01-02,M,FJI,P100,FJI,interest,\n"
    + "FJI-2,Naidu,Ravi,1975,M,FJI,P200,FJI,interest,\n"
    + "FJI-3,Koroi,Mere,1990-05,F,FJI,,,interest,FJI\n"
)
SECOND = (
    HEADER
    + "FJI-1,Tavola,Josefa,1980-01-02,M,FJI,P100,FJI,interest,\n"
    + "FJI-2,Naidu,Ravi,1975,M,FJI,P201,FJI,smuggling,\n"
    + "FJI-4,Waqa,Sera,1992,F,FJI,,,interest,\n"
)


router = routerkit.router
gateway = routerkit.gateway


@pytest.fixture
def console(router, gateway):
    return make_console(settings=router.settings, gateway=gateway)


def until(check, what, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s:.0f}s")


def counts(page):
    return {k: int(re.search(rf'id="count-{k}">(\d+)<', page.text).group(1)) for k in ("added", "removed", "changed")}


def test_upload_preview_apply_browse_and_search_through_the_router(console):
    bob = client_of(console)
    csrf = sign_in(bob, "FJI", "bob")
    assert "no watchlist loaded" in bob.get("/lists").text
    first = preview_id(upload(bob, csrf, FIRST))
    assert counts(bob.get(f"/lists/preview/{first}")) == {"added": 3, "removed": 0, "changed": 0}
    assert bob.post(f"/lists/preview/{first}/apply", data={"csrf": csrf}).headers["location"] == "/lists?loaded=3"
    listing = until(lambda: (p := bob.get("/lists")) and "Koroi" in p.text and p, "the list on the router")
    assert "Entries 1 to 3 of 3." in listing.text
    # The next upload is previewed against the list as the router holds it.
    second = preview_id(upload(bob, csrf, SECOND))
    page = bob.get(f"/lists/preview/{second}")
    assert counts(page) == {"added": 1, "removed": 1, "changed": 1}
    assert re.search(r"<td>document_number</td><td>P200</td><td>P201</td>", page.text)
    assert re.search(r"<td>category</td><td>interest</td><td>smuggling</td>", page.text)
    assert bob.post(f"/lists/preview/{second}/apply", data={"csrf": csrf}).status_code == 303
    until(lambda: "Waqa" in bob.get("/lists").text, "the second list on the router")
    found = bob.post("/lists/search", data={"csrf": csrf, "query": "p201"})
    assert "Entries 1 to 1 of 1 matching the search." in found.text and "Naidu" in found.text
    # Another member's officer sees none of it.
    tevita = client_of(console)
    sign_in(tevita, "TON", "tevita")
    assert "Naidu" not in tevita.get("/lists").text
    third = preview_id(upload(bob, csrf, FIRST))
    assert tevita.get(f"/lists/preview/{third}").status_code == 404
