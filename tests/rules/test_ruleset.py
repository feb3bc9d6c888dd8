"""Rule files: validation with rule ids and line numbers, every operator and derived feature, the templates."""

import dataclasses
from datetime import UTC, date, datetime

import pytest

from services.profiler.frames import FEATURE_SCHEMA, add_features, manifests_to_frame
from services.profiler.rules import evaluate_rules, with_jurisdiction
from services.rules.language import (
    FIELDS,
    OPERATORS,
    RulesetError,
    parse_ruleset,
    starter_text,
)
from services.wire import manifest_pb2

DEPARTURE = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)  # 19:00 on 1 March in Nadi


def _traveller(
    ref,
    dob=(1980, 7, 14),
    expiry=(2031, 1, 1),
    nationality="TON",
    issuer="TON",
    role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
    locator="",
    booked=None,
    payment="",
    one_way=None,
):
    t = manifest_pb2.Traveller(
        role=role,
        surname="Test",
        given_names="Person",
        date_of_birth=manifest_pb2.PartialDate(year=dob[0], month=dob[1], day=dob[2]),
        nationality=nationality,
        passenger_ref=ref,
        reservation_locator=locator,
    )
    t.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
        number="X1",
        issuing_state=issuer,
        expiry=manifest_pb2.PartialDate(year=expiry[0], month=expiry[1], day=expiry[2]),
    )
    if booked or payment or one_way is not None:
        if booked:
            t.booking.booking_date.CopyFrom(manifest_pb2.PartialDate(year=booked[0], month=booked[1], day=booked[2]))
        t.booking.payment_form = payment
        if one_way is not None:
            t.booking.one_way = one_way
    return t


def _manifest(*travellers, route=("NAN", "TBU"), mode=manifest_pb2.TRANSPORT_MODE_AIR):
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", transport_mode=mode, travellers=travellers)
    for i, (origin, destination) in enumerate(zip(route, route[1:], strict=False)):
        leg = manifest.legs.add(origin=origin, destination=destination)
        if i == 0:
            leg.scheduled_departure.FromDatetime(DEPARTURE)
    return manifest


# One flight NAN -> TBU -> APW (one transit), and one sea voyage without booking data.
TRAVELLERS = [
    _traveller("A", dob=(1980, 3, 2), locator="LOC1", booked=(2026, 2, 28), payment="cash", one_way=True),
    _traveller("B", dob=(1980, 3, 1), locator="LOC1", booked=(2026, 1, 1), payment="CC", one_way=False),
    _traveller("C", dob=(2012, 6, 1), expiry=(2026, 5, 1), nationality="COK", issuer="NZL", locator="LOC2"),
    _traveller("D", dob=(1970, 1, 0), role=manifest_pb2.TRAVELLER_ROLE_CREW),
    _traveller("E", role=manifest_pb2.TRAVELLER_ROLE_TRANSIT_PASSENGER, expiry=(2026, 2, 1)),
]
BATCH = [
    _manifest(*TRAVELLERS, route=("NAN", "TBU", "APW")),
    _manifest(_traveller("F"), route=("NZAKL", "TOVAV"), mode=manifest_pb2.TRANSPORT_MODE_SEA),
]
REFS = ["A", "B", "C", "D", "E", "F"]


@pytest.fixture(scope="module")
def frame():
    return add_features(manifests_to_frame(BATCH), BATCH)


def _rules(when: str, extra: str = "") -> str:
    body = "\n".join("      " + line for line in when.strip().splitlines())
    return f"""owner: FJI
rules:
  - id: R1
    description: test rule
    category: test
    score: 0.5
{extra}    when:
{body}
"""


def _flags(frame, when: str) -> list[str]:
    [rule] = parse_ruleset(_rules(when)).rules
    anywhere = dataclasses.replace(rule, owner="")  # jurisdiction has its own tests (test_rules.py)
    evaluated = evaluate_rules(frame, [anywhere])
    return [REFS[i] for i, hit in enumerate(evaluated[anywhere.column]) if hit]


# -- derived features ----------------------------------------------------------------------------------------


def test_features_are_computed_per_traveller(frame):
    assert set(FEATURE_SCHEMA) <= set(frame.columns)
    rows = frame.select(*FEATURE_SCHEMA).to_dicts()
    a, b, c, d, e, f = rows
    assert [r["age"] for r in rows] == [45, 46, 13, None, 45, 45]  # A's birthday is the day after departure
    assert c["doc_validity_days"] == 61 and e["doc_validity_days"] == -28
    assert [r["nationality_differs"] for r in rows] == [False, False, True, False, False, False]
    assert [r["role_kind"] for r in rows] == ["passenger", "passenger", "passenger", "crew", "passenger", "passenger"]
    assert [r["in_transit"] for r in rows] == [False, False, False, False, True, False]
    assert (a["origin"], a["destination"], a["ports"], a["transit_ports"], a["transit_count"]) == (
        "NAN",
        "APW",
        ["NAN", "TBU", "APW"],
        ["TBU"],
        1,
    )
    assert (f["transport_mode"], f["transit_count"], f["origin"]) == ("sea", 0, "NZAKL")
    assert [r["party_size"] for r in rows] == [2, 2, 1, None, None, None]
    assert (a["booking_lead_days"], b["booking_lead_days"], c["booking_lead_days"]) == (1, 59, None)
    assert (a["payment_form"], b["payment_form"], c["payment_form"]) == ("CASH", "CC", None)
    assert (a["one_way"], b["one_way"], c["one_way"]) == (True, False, None)


def test_features_of_an_empty_batch_keep_their_types():
    empty = add_features(manifests_to_frame([]), [])
    assert empty.is_empty()
    assert {k: empty.schema[k] for k in FEATURE_SCHEMA} == FEATURE_SCHEMA


# -- operators -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("age: {less_than: 18}", ["C"]),
        ("age: {at_most: 45}", ["A", "C", "E", "F"]),
        ("age: {more_than: 45}", ["B"]),
        ("age: {at_least: 46}", ["B"]),
        ("age: {between: [13, 45]}", ["A", "C", "E", "F"]),
        ("age: 13", ["C"]),
        ("age: {equals: 13}", ["C"]),
        ("age: {not_equals: 45}", ["B", "C"]),  # D's age is unknown: never flagged by a comparison
        ("age: {one_of: [13, 46]}", ["B", "C"]),
        ("age: {none_of: [13, 46]}", ["A", "E", "F"]),
        ("age: {missing: true}", ["D"]),
        ("age: {missing: false}", ["A", "B", "C", "E", "F"]),
        ("doc_validity_days: {less_than: 0}", ["E"]),
        ("doc_validity_days: {between: [0, 182]}", ["C"]),
        ("nationality_differs_from_issuer: true", ["C"]),
        ("role: crew", ["D"]),
        ("role: {not_equals: crew}", ["A", "B", "C", "E", "F"]),
        ("in_transit: true", ["E"]),
        ("transport_mode: sea", ["F"]),
        ("carrier: fj", ["A", "B", "C", "D", "E", "F"]),
        ("flight_number: 911", ["A", "B", "C", "D", "E", "F"]),
        ("origin: NAN", ["A", "B", "C", "D", "E"]),
        ("destination: [APW, TOVAV]", ["A", "B", "C", "D", "E", "F"]),
        ("ports: {includes_any: [TBU]}", ["A", "B", "C", "D", "E"]),
        ("ports: TOVAV", ["F"]),
        ("ports: {includes_none: [TBU, XXX]}", ["F"]),
        ("transit_ports: [tbu]", ["A", "B", "C", "D", "E"]),
        ("transit_count: {at_least: 1}", ["A", "B", "C", "D", "E"]),
        ("party_size: {at_least: 2}", ["A", "B"]),
        ("party_size: 1", ["C"]),
        ("booking_lead_days: {at_most: 2}", ["A"]),
        ("payment_form: {one_of: [CA, cash]}", ["A"]),
        ("payment_form: {none_of: [CASH]}", ["B"]),  # unknown payment is not "not cash"
        ("payment_form: {missing: true}", ["C", "D", "E", "F"]),
        ("one_way: true", ["A"]),
        ("one_way: false", ["B"]),
    ],
)
def test_each_operator_on_each_kind_of_field(frame, when, expected):
    assert _flags(frame, when) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("all:\n  - role: passenger\n  - age: {at_least: 46}", ["B"]),
        ("role: passenger\nage: {at_least: 46}", ["B"]),  # keys of one mapping: all must hold
        ("any:\n  - role: crew\n  - age: {less_than: 18}", ["C", "D"]),
        ("not: {role: crew}", ["A", "B", "C", "E", "F"]),
        ("not: {one_way: true}", ["B"]),  # unknown stays unknown under not
        ("any:\n  - one_way: true\n  - transport_mode: sea", ["A", "F"]),  # unknown or true is true
        ("not:\n  any:\n    - role: crew\n    - in_transit: true\n    - transit_count: 0", ["A", "B", "C"]),
    ],
)
def test_combinators_use_three_valued_logic(frame, when, expected):
    assert _flags(frame, when) == expected


# -- validation ------------------------------------------------------------------------------------------------


def _problems(text: str, member=None) -> list[tuple[int, str, str]]:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(text, "test.yaml", member)
    return [(p.line, p.rule_id, p.message) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("when", "line", "needle"),
    [
        ("agee: {less_than: 18}", 8, "unknown field 'agee' (did you mean 'age'?)"),
        ("age: {lower_than: 18}", 8, "unknown operator 'lower_than'"),
        ("age: {less_than: eighteen}", 8, "whole numbers"),
        ("age: {less_than: '18'}", 8, "whole numbers"),
        ("one_way: yes please", 8, "true or false"),
        ("role: pilot", 8, "one of passenger, crew"),
        ("payment_form: true", 8, "quote it"),
        ("ports: {includes_any: []}", 8, "must not be empty"),
        ("age: {between: [30, 20]}", 8, "lower bound first"),
        ("age: {between: [1, 2, 3]}", 8, "two numbers"),
        ("one_way: {less_than: 1}", 8, "unknown operator 'less_than' for 'one_way'"),
        ("all: {role: crew}", 8, "must be a list"),
        ("all:\n  - role: crew\n  - bogus: 1", 10, "unknown field 'bogus'"),
        ("age: {less_than: 1, less_than: 2}", 8, "appears twice"),
        ("age: {missing: maybe}", 8, "true or false"),
    ],
)
def test_condition_errors_name_the_rule_and_the_line(when, line, needle):
    [(got_line, rule_id, message)] = _problems(_rules(when))
    assert (got_line, rule_id) == (line, "R1")
    assert needle in message


def test_every_problem_of_a_file_is_reported_with_its_line():
    text = """owner: FJI
rules:
  - id: OK-1
    description: fine
    category: test
    score: 0.5
    when: {age: {less_than: 18}}
  - id: BAD-DATE
    description: impossible date
    category: test
    score: 0.5
    valid_from: 2026-02-30
    when: {age: 1}
  - id: OK-1
    description: same id again
    category: test
    score: 0.5
    when: {age: 1}
  - id: BAD-SCORE
    description: score too high
    category: Test Category
    score: 1.5
    colour: red
    when: {age: 1}
  - id: BAD-RANGE
    description: ends before it starts
    category: test
    score: 0.2
    valid_from: 2026-06-01
    valid_to: "2026-01-01"
    when: {age: 1}
  - description: no id
    category: test
"""
    problems = _problems(text)
    assert [(line, rid) for line, rid, _ in problems] == [
        (12, "BAD-DATE"),
        (14, "OK-1"),
        (21, "BAD-SCORE"),
        (22, "BAD-SCORE"),
        (23, "BAD-SCORE"),
        (30, "BAD-RANGE"),
        (32, ""),
    ]
    messages = [m for _, _, m in problems]
    assert "not a valid value" in messages[0]
    assert "duplicate id (first used at line 3)" in messages[1]
    assert "category" in messages[2] and "score" in messages[3] and "unknown key 'colour'" in messages[4]
    assert "before valid_from" in messages[5]
    assert "missing id, score, when" in messages[6]
    assert "test.yaml: line 12, rule BAD-DATE:" in str(
        pytest.raises(RulesetError, parse_ruleset, text, "test.yaml").value
    )


def test_owner_rules():
    assert parse_ruleset(_rules("age: 1")).owner == "FJI"
    assert "not an ISO 3166-1 alpha-3" in _problems(_rules("age: 1").replace("FJI", "FIJ"))[0][2]
    assert "differs from the member" in _problems(_rules("age: 1"), member="TON")[0][2]
    mixed = _rules("age: 1").replace("owner: FJI\n", "").replace("  - id: R1\n", "  - id: R1\n    owner: TON\n")
    mixed += "  - {id: R2, owner: WSM, description: d, category: test, score: 0.1, when: {age: 1}}\n"
    assert any("one member's rules" in m for _, _, m in _problems(mixed))
    no_owner = _rules("age: 1").replace("owner: FJI\n", "")
    assert "no owner" in _problems(no_owner)[0][2]


def test_unsafe_or_broken_yaml_is_refused_with_a_line():
    bomb = _rules("age: 1") + "  - &a {id: X}\n  - *a\n"
    assert any("aliases" in m for _, _, m in _problems(bomb))
    [(line, _, message)] = _problems("owner: FJI\nrules:\n  - id: [unclosed\n")
    assert line >= 3 and "not valid YAML" in message
    with pytest.raises(RulesetError):
        parse_ruleset("owner: FJI\nrules:\n  - !!python/object/apply:os.system [echo hi]\n")


def test_disabled_rules_are_validated_but_not_compiled():
    ruleset = parse_ruleset(_rules("age: 1", extra="    enabled: false\n"))
    assert (ruleset.rules, ruleset.disabled) == ((), ("R1",))
    assert _problems(_rules("agee: 1", extra="    enabled: false\n"))[0][1] == "R1"


def test_dates_explanation_and_digest():
    text = _rules(
        "age: 1", extra="    valid_from: 2026-01-01\n    valid_to: '2026-12-31'\n    explanation: short reason\n"
    )
    ruleset = parse_ruleset(text)
    [rule] = ruleset.rules
    assert (rule.valid_from, rule.valid_to, rule.explanation) == (date(2026, 1, 1), date(2026, 12, 31), "short reason")
    assert ruleset.digest and ruleset.digest != parse_ruleset(_rules("age: 2")).digest


# -- starter templates ---------------------------------------------------------------------------------------


def test_starter_templates_load_for_a_member_and_describe_their_source():
    ruleset = parse_ruleset(starter_text(), "starter", member="FJI")
    assert ruleset.owner == "FJI" and len(ruleset.rules) >= 6
    assert all(r.owner == "FJI" and r.score <= 0.3 for r in ruleset.rules)
    assert parse_ruleset(starter_text("TON"), "starter").owner == "TON"
    # Without a member the placeholder owner is an error, so nobody loads templates by mistake.
    assert "placeholder" in _problems(starter_text())[0][2]
    # Every template cites its source.
    assert starter_text().count("    source: ") == len(ruleset.rules) + len(ruleset.disabled)


def test_starter_templates_evaluate_on_a_batch(frame):
    ruleset = parse_ruleset(starter_text(), "starter", member="FJI")
    jurisdiction = {0: {"FJI", "TON"}, 1: {"NZL", "TON"}}
    evaluated = evaluate_rules(with_jurisdiction(frame, jurisdiction), ruleset.rules)
    hits = {r.id: [REFS[i] for i, h in enumerate(evaluated[r.column]) if h] for r in ruleset.rules}
    assert hits["DOC-VALIDITY-6M"] == ["C"]
    assert hits["LASTMIN-CASH"] == ["A"]
    assert hits["LASTMIN-ONEWAY"] == ["A"]


def test_every_field_reads_a_feature_or_frame_column(frame):
    assert all(field.column in frame.columns and field.kind in OPERATORS for field in FIELDS.values())


# -- live rule store -------------------------------------------------------------------------------------------


def test_rule_store_keeps_the_latest_set_per_owner():
    from services.rules.rule import HUB_RULES
    from services.rules.store import RuleStore

    store = RuleStore()
    assert store.rules == HUB_RULES
    store.apply_record(b"FJI", _rules("age: 1").encode())
    store.apply_record(b"TON", _rules("age: 2").replace("FJI", "TON").encode())
    assert [(r.owner, r.id) for r in store.rules] == [("", "HUB-DOC-EXPIRED"), ("FJI", "R1"), ("TON", "R1")]
    # A new file replaces the owner's whole set, and leaves the other owners alone.
    store.apply_record(b"fji", _rules("age: 3").replace("id: R1", "id: R9").encode())
    assert [(r.owner, r.id) for r in store.rules] == [("", "HUB-DOC-EXPIRED"), ("FJI", "R9"), ("TON", "R1")]
    # A broken file, or one claiming another owner, raises and keeps the previous rules.
    with pytest.raises(RulesetError):
        store.apply_record(b"FJI", _rules("agee: 3").encode())
    with pytest.raises(RulesetError):
        store.apply_record(b"WSM", _rules("age: 3").encode())
    assert [r.id for r in store.rules if r.owner == "FJI"] == ["R9"] and store.owners == ["FJI", "TON"]
    # An empty file or a tombstone clears the owner.
    store.apply_record(b"TON", b"owner: TON\nrules: []\n")
    store.apply_record(b"FJI", None)
    assert store.rules == HUB_RULES and store.owners == []
    with pytest.raises(ValueError):
        store.apply_record(None, b"owner: FJI\n")


def test_rule_store_takes_an_injected_compiler():
    from services.rules.language import RuleSet
    from services.rules.store import RuleStore

    seen = []

    def compile_ruleset(text, source, member):
        seen.append((text, member))
        return RuleSet(member, parse_ruleset(_rules("age: 1")).rules)

    store = RuleStore(hub_rules=(), compile_ruleset=compile_ruleset)
    store.apply_record(b"FJI", b"anything")
    assert seen == [("anything", "FJI")] and [r.id for r in store.rules] == ["R1"] and store.count("fji") == 1
