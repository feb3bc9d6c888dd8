"""The rules page: the member's file, checked with the rule language (problems at their line, lines numbered and
the erring ones marked), backtested on flights of the member's jurisdiction only, loaded by a duty officer; the
backtest's bounds (one per officer, a cap, a deadline) and which versions of a flight stand."""

from __future__ import annotations

import html
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from services import codec
from services.console import backtest
from services.console.pages.rules import numbered
from services.directory import load_directory
from services.rules.language import RulesetError, parse_ruleset
from services.wire import delivery_pb2, intake_pb2, manifest_pb2
from tests.console.conftest import client_of, make_console, sign_in

DIRECTORY = load_directory()

GOOD = """owner: FJI
rules:
  - id: FJI-CREW
    description: Every crew member (for the test).
    category: test
    score: 0.2
    when:
      role: crew
  - id: FJI-PAX
    description: Every passenger (for the test).
    category: test
    score: 0.1
    when:
      role: passenger
"""
# Line 6: a score out of range; line 14: a field the language does not know.
BAD = """owner: FJI
rules:
  - id: FJI-ONE
    description: A score out of range.
    category: test
    score: 2
    when:
      role: crew
  - id: FJI-TWO
    description: An unknown field.
    category: test
    score: 0.1
    when:
      shoe_size: 44
"""


class FakeGateway:
    """The calls of services.console.gateway.HubGateway that the rules page makes."""

    def __init__(self, files=None, refuse=None):
        self.files = dict(files or {})
        self.loads = []
        self.refuse = refuse  # a FieldViolation the hub answers with, instead of storing

    def rules(self, member):
        return self.files.get(member)

    def load_rules(self, member, user, yaml_text):
        if self.refuse is not None:
            return delivery_pb2.LoadRulesResponse(errors=[self.refuse])
        self.loads.append((member, user, yaml_text))
        self.files[member] = yaml_text
        ruleset = parse_ruleset(yaml_text, "rules", member)
        return delivery_pb2.LoadRulesResponse(rules=len(ruleset.rules), digest=ruleset.digest)


@pytest.fixture
def gateway():
    return FakeGateway({"FJI": GOOD})


@pytest.fixture
def console(gateway):
    return make_console(gateway=gateway)


def signed_in(console, member, username):
    client = client_of(console)
    return client, sign_in(client, member, username)


def textarea(page) -> str:
    found = re.search(r'<textarea id="rule-text"[^>]*>\n(.*?)</textarea>', page.text, re.S)
    assert found, "no editor on the page"
    return html.unescape(found.group(1))


def test_the_page_shows_the_members_rule_file_or_the_starter_templates(console, gateway):
    alice, _ = signed_in(console, "FJI", "alice")
    page = alice.get("/rules")
    assert page.status_code == 200
    assert textarea(page) == GOOD
    sione, _ = signed_in(console, "TON", "sione")  # Tonga has no file: the templates, with its code as owner
    starter = sione.get("/rules")
    assert "no rule file loaded" in starter.text
    assert textarea(starter).count("owner: TON") == 1 and "FJI-CREW" not in starter.text


def test_a_check_shows_every_problem_at_its_line(console):
    alice, csrf = signed_in(console, "FJI", "alice")
    page = alice.post("/rules/check", data={"csrf": csrf, "text": BAD.replace("\n", "\r\n")})
    assert page.status_code == 422
    expected = [p.line for p in _problems(BAD)]
    assert expected == [6, 14]
    marked = [int(n) for n in re.findall(r'<span id="line-(\d+)" class="line-error">', page.text)]
    assert marked == expected
    # Every line is numbered beside its text; the problems list links to the lines.
    assert len(re.findall(r'<span id="line-\d+"', page.text)) == len(BAD.splitlines())
    assert re.search(r'<span id="line-14" class="line-error">\s+14 ✗\s+shoe_size: 44</span>', page.text)
    for line in expected:
        assert f'<a href="#line-{line}">Line {line}</a>' in page.text
    assert "unknown field" in page.text.lower() or "shoe_size" in page.text
    # The edited text comes back in the editor (with LF line ends, as a file).
    assert textarea(page) == BAD


def test_a_valid_file_checks_clean(console):
    alice, csrf = signed_in(console, "FJI", "alice")
    page = alice.post("/rules/check", data={"csrf": csrf, "text": GOOD})
    assert page.status_code == 200
    digest = parse_ruleset(GOOD, "rules", "FJI").digest
    assert f"The rule file is valid: 2 rules enabled, 0 disabled (digest {digest})." in page.text
    assert 'class="line-error"' not in page.text


def test_another_members_file_is_refused_by_the_check(console):
    sione, csrf = signed_in(console, "TON", "sione")
    page = sione.post("/rules/check", data={"csrf": csrf, "text": GOOD})  # owner: FJI
    assert page.status_code == 422 and 'id="line-1" class="line-error"' in page.text


def test_numbered_lines_put_problems_on_their_line():
    lines = numbered("a\nb\n", _problems(BAD)[:1])
    assert [(line.number, line.text) for line in lines] == [(1, "a"), (2, "b")]
    assert lines[1].problems  # a problem past the end is shown on the last line


def test_a_duty_officer_loads_the_file_an_analyst_does_not(console, gateway):
    alice, alice_csrf = signed_in(console, "FJI", "alice")
    assert alice.post("/rules/load", data={"csrf": alice_csrf, "text": GOOD}).status_code == 403
    assert 'formaction="/rules/load"' not in alice.get("/rules").text
    bob, csrf = signed_in(console, "FJI", "bob")
    assert 'formaction="/rules/load"' in bob.get("/rules").text
    assert bob.post("/rules/load", data={"csrf": "forged", "text": GOOD}).status_code == 403
    edited = GOOD.replace("score: 0.1", "score: 0.15")
    answer = bob.post("/rules/load", data={"csrf": csrf, "text": edited.replace("\n", "\r\n")})
    assert answer.status_code == 303
    digest = parse_ruleset(edited, "rules", "FJI").digest
    assert answer.headers["location"] == f"/rules?loaded={digest}"
    assert gateway.loads == [("FJI", "bob", edited)]
    assert f"Rule file loaded: {digest}." in bob.get(answer.headers["location"]).text


def test_a_file_with_problems_is_not_sent_to_the_hub(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    page = bob.post("/rules/load", data={"csrf": csrf, "text": BAD})
    assert page.status_code == 422 and "nothing was loaded" in page.text
    assert gateway.loads == []


def test_the_hubs_refusal_is_shown_at_its_line(gateway):
    gateway.refuse = intake_pb2.FieldViolation(field="line 9", code="invalid_rule", description="refused here")
    console = make_console(gateway=gateway)
    bob, csrf = signed_in(console, "FJI", "bob")
    page = bob.post("/rules/load", data={"csrf": csrf, "text": GOOD})
    assert page.status_code == 422 and 'id="line-9" class="line-error"' in page.text and "refused here" in page.text


def test_each_member_sees_its_own_file(console, gateway):
    gateway.files["TON"] = GOOD.replace("FJI", "TON")
    tevita, _ = signed_in(console, "TON", "tevita")
    assert "TON-CREW" in tevita.get("/rules").text and "FJI-CREW" not in tevita.get("/rules").text


def test_a_rule_file_the_router_cannot_give_now_is_said_and_no_starter_is_offered(gateway):
    from services.console.gateway import RouterUnavailableError

    def unavailable(member):
        raise RouterUnavailableError("the hub's broker is unavailable (NoBrokersAvailable); retry")

    gateway.rules = unavailable
    alice, _ = signed_in(make_console(gateway=gateway), "FJI", "alice")
    page = alice.get("/rules")
    assert page.status_code == 503 and "broker is unavailable" in page.text
    assert 'id="rule-text"' not in page.text  # never the starter templates in place of a file the hub may hold


# -- the backtest -----------------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def manifest(route, number, crew=1, passengers=2, carrier="FJ", function=None, refs=None, day=1):
    m = manifest_pb2.Manifest(carrier=carrier, flight_number=number, manifest_id=f"m-{number}-{len(route)}")
    departure = datetime(2026, 3, day, 20, tzinfo=UTC)
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(departure)
    roles = [manifest_pb2.TRAVELLER_ROLE_CREW] * crew + [manifest_pb2.TRAVELLER_ROLE_PASSENGER] * passengers
    for i, role in enumerate(roles):
        ref = (refs or {}).get(i, f"{number}-P{i + 1}")
        m.travellers.add(role=role, surname=f"Person{i}", given_names="Test", passenger_ref=ref)
    if function is not None:
        m.function = function
    return m


FIJI = manifest(["NAN", "SYD"], "911")  # departs Fiji
TONGA = manifest(["TBU", "APW"], "222", carrier="FV")  # Tonga to Samoa: no port of Fiji
THROUGH = manifest(["TBU", "SUV", "APW"], "333", carrier="FV")  # a transit in Fiji


def reading(*manifests):
    return lambda settings, since, limit, deadline: backtest.Reading(list(manifests), records=len(manifests))


def run(manifests, member="FJI", text=GOOD):
    ruleset = parse_ruleset(text, "rules", member)
    deadline = float("inf")
    return backtest.backtest(None, DIRECTORY, member, ruleset, deadline, now=NOW, read=reading(*manifests))


def test_a_backtest_sees_only_flights_of_the_members_jurisdiction():
    result = run([FIJI, TONGA, THROUGH])
    assert result.flights == 2 and result.travellers == 6 and result.records == 3
    crew, pax = result.rules
    assert (crew.rule.id, crew.flagged, crew.flights) == ("FJI-CREW", 2, 2)
    assert (pax.rule.id, pax.flagged, pax.flights) == ("FJI-PAX", 4, 2)
    shown = {(s.flight, s.traveller) for o in result.rules for s in o.samples}
    assert shown == {(f"{c}{n}", f"{n}-P{i}") for c, n in (("FJ", "911"), ("FV", "333")) for i in (1, 2, 3)}
    assert not any(s.flight == "FV222" for o in result.rules for s in o.samples)
    assert crew.samples[0] == backtest.Sample("FJ911", "2026-03-01", "NAN-SYD", "911-P1")


def test_a_backtest_counts_the_versions_that_stand():
    cancelled = manifest(["NAN", "SYD"], "911", crew=0, passengers=0, function=manifest_pb2.MESSAGE_FUNCTION_CANCEL)
    assert run([FIJI, cancelled]).flights == 0  # a cancelled flight
    changed = manifest(["SUV", "NAN"], "44", passengers=3)
    removal = manifest(["SUV", "NAN"], "44", crew=0, passengers=1, function=manifest_pb2.MESSAGE_FUNCTION_CHANGE)
    removal.amendment = manifest_pb2.AMENDMENT_CANCELLED_RESERVATION
    del removal.travellers[:]
    removal.travellers.add(role=manifest_pb2.TRAVELLER_ROLE_PASSENGER, passenger_ref="44-P2")
    result = run([changed, changed, removal])  # one flight, sent twice, then a passenger taken off
    assert result.flights == 1 and result.travellers == 3
    pax = result.rules[1]
    assert pax.flagged == 2 and {s.traveller for s in pax.samples} == {"44-P3", "44-P4"}


def test_the_breaker_is_reported_beside_the_counts():
    crowded = manifest(["NAN", "SYD"], "800", crew=2, passengers=30)
    result = run([crowded])
    crew, pax = result.rules
    assert pax.flagged == 30 and pax.suspended_on == 1  # 30 of 32: the live breaker would suspend it there
    assert crew.suspended_on == 0


def test_a_backtest_of_no_flights_and_disabled_rules():
    text = GOOD.replace("    score: 0.1\n", "    score: 0.1\n    enabled: false\n")
    result = run([TONGA], text=text)
    assert result.flights == 0 and [o.flagged for o in result.rules] == [0] and result.disabled == ("FJI-PAX",)


def test_the_page_shows_the_backtest_of_the_edited_file(console):
    console.extra["rules.backtests"] = backtest.Backtests(
        console.settings,
        console.directory,
        run=lambda s, d, member, ruleset, deadline: backtest.backtest(
            s, d, member, ruleset, deadline, now=NOW, read=reading(FIJI, TONGA)
        ),
    )
    alice, csrf = signed_in(console, "FJI", "alice")
    page = alice.post("/rules/backtest", data={"csrf": csrf, "text": GOOD})
    assert page.status_code == 200
    assert re.search(r'id="backtest-flights">1<', page.text) and re.search(r'id="backtest-travellers">3<', page.text)
    assert re.search(r'<tr id="rule-FJI-PAX">.*?<td class="flagged">2</td>', page.text, re.S)
    assert "911-P2" in page.text and "FV222" not in page.text and "222-P" not in page.text
    # A file with problems is checked, not backtested.
    assert alice.post("/rules/backtest", data={"csrf": csrf, "text": BAD}).status_code == 422
    assert alice.post("/rules/backtest", data={"csrf": "forged", "text": GOOD}).status_code == 403


def test_one_backtest_per_officer_a_cap_in_all_and_a_deadline():
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocking(settings, directory, member, ruleset, deadline):
        started.release()
        release.wait()
        return "done"

    ruleset = parse_ruleset(GOOD, "rules", "FJI")
    runs = backtest.Backtests(None, DIRECTORY, at_once=2, deadline_s=3600, run=blocking)
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("bob", runs.run("FJI/bob", "FJI", ruleset)))
    first.start()
    started.acquire()
    with pytest.raises(backtest.BacktestBusy):
        runs.run("FJI/bob", "FJI", ruleset)  # bob's first is still running
    second = threading.Thread(target=lambda: answers.setdefault("alice", runs.run("FJI/alice", "FJI", ruleset)))
    second.start()
    started.acquire()
    with pytest.raises(backtest.BacktestBusy):
        runs.run("TON/sione", "TON", ruleset)  # the console's cap
    release.set()
    first.join()
    second.join()
    assert answers == {"bob": "done", "alice": "done"} and runs.running == 0
    # A backtest past its deadline is answered as such, and holds its slot until its thread ends.
    release.clear()
    late = backtest.Backtests(None, DIRECTORY, at_once=1, deadline_s=0.01, run=blocking)
    with pytest.raises(backtest.BacktestTimedOut):
        late.run("FJI/bob", "FJI", ruleset)
    started.acquire()
    assert late.running == 1
    release.set()


def test_the_busy_backtest_is_shown_on_the_page(console):
    class Busy:
        def run(self, officer, member, ruleset):
            raise backtest.BacktestBusy("Your previous backtest is still running. Wait for it, then try again.")

    console.extra["rules.backtests"] = Busy()
    alice, csrf = signed_in(console, "FJI", "alice")
    page = alice.post("/rules/backtest", data={"csrf": csrf, "text": GOOD})
    assert page.status_code == 429 and "previous backtest is still running" in page.text


def test_french_rules_page(console):
    alice, csrf = signed_in(console, "FJI", "alice")
    alice.post("/language", data={"csrf": csrf, "language": "fr", "next": "/rules"})
    page = alice.post("/rules/check", data={"csrf": csrf, "text": BAD})
    assert "Ligne 6" in page.text and "Vérifier" in page.text


def _problems(text):
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(text, "rules", "FJI")
    return caught.value.problems


def test_recent_means_the_window_before_now():
    assert codec.route_of(THROUGH) == ["TBU", "SUV", "APW"]
    seen = {}

    def read(settings, since, limit, deadline):
        seen.update(since=since, limit=limit)
        return backtest.Reading()

    backtest.backtest(None, DIRECTORY, "FJI", parse_ruleset(GOOD, "rules", "FJI"), float("inf"), now=NOW, read=read)
    assert seen == {"since": NOW - timedelta(hours=backtest.RECENT_HOURS), "limit": backtest.MAX_MANIFESTS}
