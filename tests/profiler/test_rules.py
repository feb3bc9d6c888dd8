"""Compiled rules in the profiler: jurisdiction, validity dates, the breaker, scoring, and the `rules` CLI."""

import json
import logging
from datetime import UTC, date, datetime

import polars as pl
import pytest
from google.protobuf import json_format
from prometheus_client import REGISTRY
from samples import GUIDE, SAMPLES
from typer.testing import CliRunner

from services.directory import load_directory
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.rules import (
    Breaker,
    BreakerTrip,
    evaluate_rules,
    match_rules,
    prepare_frame,
    with_jurisdiction,
)
from services.profiler.rules_cli import rules_app
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore
from services.rules.language import parse_ruleset
from services.rules.rule import DOCUMENT_EXPIRED, HUB_RULES, Rule
from services.wire import manifest_pb2

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DEPARTURE = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)  # 1 March, local in Nadi
DIRECTORY = load_directory()


def _traveller(ref, crew=False, expiry=(2031, 1, 1), surname="Vaipulu"):
    t = manifest_pb2.Traveller(
        role=manifest_pb2.TRAVELLER_ROLE_CREW if crew else manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=surname,
        given_names="Sione",
        date_of_birth=manifest_pb2.PartialDate(year=1975, month=1, day=1),
        nationality="TON",
        passenger_ref=ref,
    )
    t.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number="TP0099887",
        issuing_state="TON",
        expiry=manifest_pb2.PartialDate(year=expiry[0], month=expiry[1], day=expiry[2]),
    )
    return t


def _manifest(*travellers, origin="NAN", destination="TBU", manifest_id="m-test", departure=DEPARTURE):
    manifest = manifest_pb2.Manifest(
        carrier="FJ", flight_number="911", manifest_id=manifest_id, function=1, travellers=travellers
    )
    manifest.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(departure)
    return manifest


def _crew_rule(owner="FJI", rule_id="CREW", extra=""):
    text = f"""owner: {owner}
rules:
  - id: {rule_id}
    description: crew on board
    category: test
    score: 0.4
{extra}    when: {{role: crew}}
"""
    return parse_ruleset(text).rules


def _flagged_refs(manifests, rules, breaker=None):
    frame = manifests_to_frame(manifests)
    jurisdiction = {
        m: DIRECTORY.jurisdiction([x.legs[0].origin, x.legs[0].destination]) for m, x in enumerate(manifests)
    }
    matched, trips = match_rules(prepare_frame(frame, manifests, rules, jurisdiction), rules, breaker)
    refs = sorted(
        (manifests[m].travellers[t].passenger_ref, rule.id)
        for m, t, *flags in matched.iter_rows()
        for rule, flag in zip(rules, flags, strict=True)
        if flag
    )
    return refs, trips


# -- jurisdiction --------------------------------------------------------------------------------------------


def test_member_rules_apply_only_to_flights_in_the_owners_jurisdiction():
    fiji_tonga = _manifest(_traveller("P1"), _traveller("C1", crew=True), manifest_id="m-1")
    samoa = _manifest(_traveller("C2", crew=True), origin="APW", destination="AKL", manifest_id="m-2")
    rules = (*_crew_rule("FJI", "FJI-CREW"), *_crew_rule("WSM", "WSM-CREW"), *_crew_rule("TON", "TON-CREW"))
    refs, _ = _flagged_refs([fiji_tonga, samoa], rules)
    assert refs == [("C1", "FJI-CREW"), ("C1", "TON-CREW"), ("C2", "WSM-CREW")]


def test_two_owners_may_use_the_same_rule_id():
    rules = (*_crew_rule("FJI", "CREW"), *_crew_rule("TON", "CREW"))
    refs, _ = _flagged_refs([_manifest(_traveller("C1", crew=True))], rules)
    assert refs == [("C1", "CREW"), ("C1", "CREW")]


def test_a_member_rule_is_never_evaluated_without_jurisdiction():
    batch = [_manifest(_traveller("C1", crew=True))]
    frame = add_features(manifests_to_frame(batch), batch)
    with pytest.raises(ValueError, match="jurisdiction"):
        evaluate_rules(frame, _crew_rule())
    # A flight missing from the jurisdiction map gets no member rule at all.
    evaluated = evaluate_rules(with_jurisdiction(frame, {}), _crew_rule())
    assert evaluated[_crew_rule()[0].column].to_list() == [False]


# -- validity dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validity", "flags"),
    [
        ("", True),
        ("    valid_from: 2026-03-01\n", True),  # the departure day itself is included
        ("    valid_from: 2026-03-02\n", False),
        ("    valid_to: 2026-03-01\n", True),
        ("    valid_to: 2026-02-28\n", False),
        ("    valid_from: 2026-01-01\n    valid_to: 2026-12-31\n", True),
    ],
)
def test_validity_dates_are_judged_on_the_local_departure_date(validity, flags):
    # 07:00 UTC on 1 March is 19:00 on 1 March in Nadi, the origin.
    refs, _ = _flagged_refs([_manifest(_traveller("C1", crew=True))], _crew_rule(extra=validity))
    assert refs == ([("C1", "CREW")] if flags else [])


def test_rule_refuses_an_inverted_validity_window():
    with pytest.raises(ValueError):
        Rule("X", "", "t", 0.1, "", "", pl.lit(True), valid_from=date(2026, 2, 1), valid_to=date(2026, 1, 1))


# -- breaker ---------------------------------------------------------------------------------------------------


def _flight(size, crew, manifest_id):
    travellers = [_traveller(f"{manifest_id}-{i}", crew=i < crew) for i in range(size)]
    return _manifest(*travellers, manifest_id=manifest_id)


def _trips(rule_id):
    return (
        REGISTRY.get_sample_value("apihub_profiler_rule_breaker_trips_total", {"owner": "FJI", "rule_id": rule_id})
        or 0.0
    )


def test_breaker_suspends_a_rule_flooding_one_flight_for_the_whole_batch():
    rules = _crew_rule(rule_id="FLOOD")
    batch = [_flight(25, 8, "big"), _flight(25, 1, "other")]  # 8 of 25 = 32% > 30%
    refs, trips = _flagged_refs(batch, rules, Breaker(max_share=0.30, min_travellers=20))
    assert refs == []
    assert trips == [BreakerTrip("FJI", "FLOOD", 0, 8, 25)]


@pytest.mark.parametrize(
    ("size", "crew", "tripped"),
    [
        (20, 6, False),  # exactly 30%: not more than the share
        (20, 7, True),
        (19, 19, False),  # flights below min_travellers are never cut off
    ],
)
def test_breaker_thresholds(size, crew, tripped):
    refs, trips = _flagged_refs([_flight(size, crew, "f")], _crew_rule(), Breaker(0.30, 20))
    assert bool(trips) == tripped
    assert len(refs) == (0 if tripped else crew)


def test_breaker_in_scoring_logs_counts_and_increments_the_counter(caplog):
    before = _trips("FLOOD-SCORED")
    batch = [_flight(25, 10, "m-big"), _flight(25, 1, "m-small")]
    for manifest in batch:
        for traveller in manifest.travellers:
            traveller.surname = "Secretname"
    rules = (*HUB_RULES, *_crew_rule(rule_id="FLOOD-SCORED"))
    with caplog.at_level(logging.WARNING, logger="services.profiler.rules"):
        hits = score_batch(batch, WatchlistStore(), DIRECTORY, NOW, rules)
    assert hits == []  # suspended on both flights, although the second had a single crew member
    assert _trips("FLOOD-SCORED") == before + 1
    [message] = [r.getMessage() for r in caplog.records if "FLOOD-SCORED" in r.getMessage()]
    assert "10 of 25" in message and "m-big" in message
    assert "Secretname" not in message and "TP0099887" not in message
    # Without the breaker the same batch raises hits.
    assert len(score_batch(batch, WatchlistStore(), DIRECTORY, NOW, rules, breaker=None)) == 11


def test_breaker_leaves_other_rules_alone():
    batch = [_flight(25, 10, "m-big")]
    batch[0].travellers[20].documents[0].expiry.year = 2020
    hits = score_batch(batch, WatchlistStore(), DIRECTORY, NOW, (*HUB_RULES, *_crew_rule(rule_id="FLOOD-2")))
    assert [(h.traveller.passenger_ref, [r.id for r in h.reasons]) for h in hits] == [
        ("m-big-20", [DOCUMENT_EXPIRED.id])
    ]


# -- scoring -----------------------------------------------------------------------------------------------------


def test_member_rule_reasons_carry_owner_category_and_explanation():
    manifest = _manifest(_traveller("P1", expiry=(2026, 2, 1)), _traveller("C1", crew=True))
    rules = (*HUB_RULES, *_crew_rule("TON", "TON-CREW"))
    hits = score_batch([manifest], WatchlistStore(), DIRECTORY, NOW, rules)
    reasons = {
        h.traveller.passenger_ref: [(r.id, r.owner, r.category, r.score, r.explanation) for r in h.reasons]
        for h in hits
    }
    assert reasons == {
        "P1": [(DOCUMENT_EXPIRED.id, "", "document", 0.5, DOCUMENT_EXPIRED.explanation)],
        "C1": [("TON-CREW", "TON", "test", 0.4, "crew on board")],
    }


# -- CLI -----------------------------------------------------------------------------------------------------------

RULES_YAML = """owner: FJI
rules:
  - id: FJI-CREW
    description: crew on board
    category: test
    score: 0.4
    when: {role: crew}
  - id: FJI-DOC-SOON
    description: document expires within 6 months
    category: document
    score: 0.1
    when:
      doc_validity_days: {between: [0, 182]}
"""


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "fji.yaml"
    rules.write_text(RULES_YAML)
    manifest = _manifest(
        _traveller("P1"), _traveller("P2", expiry=(2026, 6, 1)), _traveller("C1", crew=True), manifest_id=""
    )
    samoa = _manifest(_traveller("C9", crew=True), origin="APW", destination="AKL", manifest_id="")
    path = tmp_path / "flight.json"
    path.write_text(json.dumps([json.loads(json_format.MessageToJson(m)) for m in (manifest, samoa)]))
    return rules, path


def test_rules_test_prints_a_table_of_refs_and_rule_ids_without_personal_data(files):
    rules, manifest = files
    result = CliRunner().invoke(rules_app, ["test", str(rules), str(manifest)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line.split() for line in lines if line.startswith(str(manifest))]
    assert [(row[-3], row[-2], row[-1]) for row in rows] == [
        ("P2", "passenger", "FJI-DOC-SOON"),
        ("C1", "crew", "FJI-CREW"),
    ]
    assert "Vaipulu" not in result.output and "TP0099887" not in result.output and "1975" not in result.output
    assert "2 manifests, 4 travellers screened" in result.output
    assert any(line.split() == ["FJI-CREW", "1"] for line in lines)  # the Samoa flight is not FJI's


def test_rules_test_json_prints_hits_like_hits_follow(files):
    rules, manifest = files
    result = CliRunner().invoke(rules_app, ["test", "--json", "--hub-rules", str(rules), str(manifest)])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert [(h["passenger"]["ref"], [r["id"] for r in h["reasons"]]) for h in hits] == [
        ("P2", ["FJI-DOC-SOON"]),
        ("C1", ["FJI-CREW"]),
    ]
    assert hits[0]["hit_id"].startswith("h-") and hits[0]["flight"]["route"] == ["NAN", "TBU"]


def test_rules_test_reports_breaker_trips(files, tmp_path):
    rules, _ = files
    crowded = tmp_path / "crowded.json"
    crowded.write_text(json_format.MessageToJson(_flight(20, 10, "")))
    result = CliRunner().invoke(rules_app, ["test", str(rules), str(crowded)])
    assert result.exit_code == 0
    assert "breaker: rule FJI-CREW suspended: flagged 10 of 20 travellers" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith(str(crowded))]


def test_rules_test_reads_paxlst(tmp_path):
    rules = tmp_path / "aus.yaml"
    rules.write_text(RULES_YAML.replace("FJI", "AUS"))
    guide = SAMPLES / GUIDE  # three interchanges: SYD-HNL passenger, SYD-HNL crew, BCN-IAD-SFO passengers
    result = CliRunner().invoke(rules_app, ["test", str(rules), str(guide)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith(str(guide))]
    # Only the Sydney flights are in Australia's jurisdiction; the crew member has no reference: position.
    assert [(row[0], row[-3], row[-1]) for row in rows] == [(f"{guide}[2]#1", "#1", "AUS-CREW")]
    assert "3 manifests, 4 travellers screened" in result.output


def test_rules_check_prints_problems_with_lines_and_fails(tmp_path, files):
    rules, _ = files
    ok = CliRunner().invoke(rules_app, ["check", str(rules)])
    assert ok.exit_code == 0 and "ok, owner FJI, 2 rules" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES_YAML.replace("role: crew", "rank: crew"))
    result = CliRunner().invoke(rules_app, ["check", str(rules), str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:7: rule FJI-CREW: unknown field 'rank'" in result.output


def test_rules_template_prints_the_starter_set_for_a_member():
    result = CliRunner().invoke(rules_app, ["template", "--member", "wsm"])
    assert result.exit_code == 0
    assert "\nowner: WSM\n" in result.output and "owner: MEMBER" not in result.output
    assert parse_ruleset(result.output).owner == "WSM"
