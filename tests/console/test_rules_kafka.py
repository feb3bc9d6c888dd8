"""The rules page on the session's real broker and a real router: manifests produced to the manifests topic of a
test prefix are backtested (only flights of the officer's member's jurisdiction, only the recent ones), the member's
rule file is read through the router (MemberRecords.GetRules), and a duty officer's load goes through the router
(RulesAdmin) as that officer. Every wait has a deadline; no test asserts how long anything took."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from services import codec
from services.bus import Topics
from services.console import backtest
from tests import routerkit
from tests.console.conftest import client_of, make_console, sign_in
from tests.console.test_rules import GOOD, manifest, textarea

pytestmark = pytest.mark.integration


router = routerkit.router
gateway = routerkit.gateway


@pytest.fixture
def hub(router, gateway):
    """The test's topics, a member-facing router, the console's gateway to it, and a producer."""
    return router.settings, gateway, router.producer


def produce_manifests(settings, producer, manifests, when=None):
    topic = Topics(settings.topic_prefix).manifests
    stamp = int((when or datetime.now(UTC)).timestamp() * 1000)
    for m in manifests:
        producer.send(topic, key=codec.flight_key(m).encode(), value=m.SerializeToString(), timestamp_ms=stamp)
    producer.flush(timeout=30)


def test_a_backtest_reads_recent_manifests_of_the_members_jurisdiction_only(hub):
    settings, gateway, producer = hub
    old = manifest(["NAN", "SYD"], "100")  # a Fiji flight the hub received ten days ago: outside the window
    produce_manifests(settings, producer, [old], when=datetime.now(UTC) - timedelta(days=10))
    fiji, tonga, through = (
        manifest(["NAN", "SYD"], "911"),
        manifest(["TBU", "APW"], "222", carrier="FV"),
        manifest(["TBU", "SUV", "APW"], "333", carrier="FV"),
    )
    produce_manifests(settings, producer, [fiji, tonga, through])
    console = make_console(settings=settings, gateway=gateway)
    alice = client_of(console)
    csrf = sign_in(alice, "FJI", "alice")
    page = alice.post("/rules/backtest", data={"csrf": csrf, "text": GOOD})
    assert page.status_code == 200, page.text
    assert re.search(r'id="backtest-flights">2<', page.text) and re.search(r'id="backtest-travellers">6<', page.text)
    assert re.search(r'<tr id="rule-FJI-PAX">.*?<td class="flagged">4</td>', page.text, re.S)
    assert "FJ911" in page.text and "FV333" in page.text
    assert "FV222" not in page.text and "222-P" not in page.text  # Tonga to Samoa: not Fiji's
    assert "FJ100" not in page.text and "100-P" not in page.text  # not recent
    # Tonga's officer backtesting its own rules sees its flights, and none of Fiji's only.
    sione = client_of(console)
    sione_csrf = sign_in(sione, "TON", "sione")
    tongan = sione.post("/rules/backtest", data={"csrf": sione_csrf, "text": GOOD.replace("FJI", "TON")})
    assert "FV222" in tongan.text and "FV333" in tongan.text and "FJ911" not in tongan.text


def test_a_bounded_read_keeps_the_newest_manifests(hub):
    settings, _, producer = hub
    flights = [manifest(["NAN", "SYD"], str(n)) for n in range(400, 410)]
    produce_manifests(settings, producer, flights)
    since = datetime.now(UTC) - timedelta(hours=1)
    everything = backtest.read_recent_manifests(settings, since, 100, time.monotonic() + 30)
    assert sorted(m.flight_number for m in everything.manifests) == [str(n) for n in range(400, 410)]
    assert not everything.capped and everything.records == 10
    some = backtest.read_recent_manifests(settings, since, 3, time.monotonic() + 30)
    assert len(some.manifests) == 3 and some.capped


def test_the_members_file_is_read_from_the_hub_and_loaded_through_the_router(hub):
    settings, gateway, _ = hub
    console = make_console(settings=settings, gateway=gateway)
    bob = client_of(console)
    csrf = sign_in(bob, "FJI", "bob")
    assert "no rule file loaded" in bob.get("/rules").text
    loaded = bob.post("/rules/load", data={"csrf": csrf, "text": GOOD})
    assert loaded.status_code == 303, loaded.text
    assert loaded.headers["location"].startswith("/rules?loaded=")
    assert gateway.rules("FJI") == GOOD  # the router answers as of the call: the acknowledged load is there
    page = bob.get(loaded.headers["location"])
    assert textarea(page) == GOOD and "no rule file loaded" not in page.text
    # Another member's officer sees its own (none), never Fiji's.
    tevita = client_of(console)
    sign_in(tevita, "TON", "tevita")
    assert "FJI-CREW" not in tevita.get("/rules").text
