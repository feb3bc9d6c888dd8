"""Board policies: the template, every condition kind matching and not, the order of directives, missing fields
as Manifest paths, and each kind of problem reported with its line."""

from __future__ import annotations

import pytest

from services.board.policy import (
    DIRECTIVE_ORDER,
    BoardPolicy,
    PolicyError,
    PolicyLimits,
    default_policy,
    directive_name,
    most_restrictive,
    parse_directive,
    parse_policy,
    template_text,
)
from services.config import HubSettings
from services.wire import check_pb2, hit_pb2, manifest_pb2

OK = check_pb2.DIRECTIVE_OK_TO_BOARD
DNB = check_pb2.DIRECTIVE_DO_NOT_BOARD
CA = check_pb2.DIRECTIVE_CONTACT_AUTHORITY
INS = check_pb2.DIRECTIVE_INSUFFICIENT_DATA


def watch(score=0.95, owner="FJI", category="wanted", document_match=False) -> hit_pb2.Reason:
    return hit_pb2.Reason(
        source=hit_pb2.REASON_SOURCE_WATCHLIST,
        id="FJI-WL-0001",
        score=score,
        owner=owner,
        category=category,
        document_match=document_match,
    )


def rule(rule_id="FJI-OVERSTAY-RISK", owner="FJI", score=0.3) -> hit_pb2.Reason:
    return hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_RULE, id=rule_id, score=score, owner=owner, category="x")


def model(score=0.99, owner="FJI") -> hit_pb2.Reason:
    return hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_MODEL, id="m1", score=score, owner=owner, category="review")


def policy(body: str, owner: str | None = "FJI") -> BoardPolicy:
    return parse_policy("version: 1\nmember: FJI\n" + body, "p.yaml", owner)


def problems(text: str, owner: str | None = "FJI", limits: PolicyLimits | None = None) -> list[tuple[int, str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml", owner, limits)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("p.yaml: line ")
    return [(int(p.field.removeprefix("line ")), p.code, p.description) for p in caught.value.problems]


def only(text: str, **kw) -> tuple[int, str, str]:
    found = problems(text, **kw)
    assert len(found) == 1, found
    return found[0]


# -- directives


def test_directive_order_and_most_restrictive():
    assert DIRECTIVE_ORDER == (DNB, CA, INS, OK)
    assert most_restrictive([]) == OK
    assert most_restrictive([OK, INS]) == INS
    assert most_restrictive([OK, INS, CA]) == CA
    assert most_restrictive(iter([CA, DNB, OK])) == DNB
    with pytest.raises(ValueError):
        most_restrictive([OK, check_pb2.DIRECTIVE_UNSPECIFIED])


def test_directive_names_round_trip():
    for directive in DIRECTIVE_ORDER:
        assert parse_directive(directive_name(directive)) == directive
    assert directive_name(DNB) == "DO_NOT_BOARD"
    assert parse_directive("contact_authority") == CA
    assert parse_directive("DIRECTIVE_OK_TO_BOARD") == OK
    for bad in ("UNSPECIFIED", "deny", ""):
        with pytest.raises(ValueError):
            parse_directive(bad)


# -- the template and the default policy


def test_template_parses_for_a_member():
    p = parse_policy(template_text(), "template", "FJI")
    assert p.owner == "FJI"
    assert p.fallback == CA
    assert p.require == ("date_of_birth", "nationality", "document_number", "document_issuing_state")
    assert len(p.digest) == 12
    assert p.message(DNB).startswith("DO NOT BOARD")
    assert p.message(OK) == "OK TO BOARD"
    assert p.decide([watch(0.97, category="Terrorism")]) == DNB
    assert p.decide([watch(0.9, category="overstay")]) == CA
    assert p.decide([rule("HUB-DOC-EXPIRED", owner="")]) == CA
    assert p.decide([]) == OK
    # With the member's code filled in, it parses without naming the member; the placeholder alone does not.
    assert parse_policy(template_text("fji"), "template").owner == "FJI"
    assert only(template_text(), owner=None)[1] == "invalid_member"


def test_default_policy_always_answers_ok():
    p = default_policy("fji")
    assert (p.owner, p.fallback, p.require, p.digest) == ("FJI", CA, (), "")
    assert p.decide([watch(1.0), rule(), model(), watch(1.0, document_match=True)]) == OK
    assert p.matched([watch(1.0)]) == []
    assert p.missing(manifest_pb2.Traveller(), 0) == []
    assert [p.message(d) for d in DIRECTIVE_ORDER] == [
        "DO NOT BOARD",
        "CONTACT AUTHORITY",
        "INSUFFICIENT DATA",
        "OK TO BOARD",
    ]


# -- conditions


def test_watchlist_condition():
    p = policy("do_not_board:\n  - watchlist: {categories: [Wanted, terrorism], min_score: 0.9}\n")
    assert p.decide([watch(0.9)]) == DNB  # at min_score
    assert p.decide([watch(0.95, category="WANTED")]) == DNB  # categories case-insensitive
    assert p.decide([watch(0.95, document_match=True)]) == DNB  # a document match is a watchlist match too
    assert p.decide([watch(0.89)]) == OK  # below the score
    assert p.decide([watch(0.95, category="overstay")]) == OK  # another category
    assert p.decide([watch(0.95, owner="AUS")]) == OK  # another member's list
    assert p.decide([model(0.99), rule(score=1.0)]) == OK  # another source
    assert p.matched([watch(0.95), watch(0.5)]) == ["do_not_board[0] watchlist"]


def test_watchlist_owners_any_or_listed():
    p = policy(
        "do_not_board:\n  - watchlist: {min_score: 0.5, owners: any}\n"
        "contact_authority:\n  - watchlist: {min_score: 0.5, owners: [aus, NZL]}\n",
    )
    assert p.decide([watch(0.6, owner="WSM")]) == DNB
    q = policy("contact_authority:\n  - watchlist: {min_score: 0.5, owners: [aus, NZL]}\n")
    assert q.decide([watch(0.6, owner="AUS")]) == CA
    assert q.decide([watch(0.6, owner="FJI")]) == OK  # owners given: the member's own lists only if listed
    assert q.decide([watch(0.6, owner="WSM")]) == OK


def test_document_condition():
    p = policy("do_not_board:\n  - document: {categories: [lost, stolen]}\n")
    assert p.decide([watch(0.4, category="Stolen", document_match=True)]) == DNB
    assert p.decide([watch(1.0, category="stolen")]) == OK  # a name match, not a document match
    assert p.decide([watch(1.0, category="wanted", document_match=True)]) == OK
    assert p.decide([watch(1.0, category="stolen", owner="AUS", document_match=True)]) == OK
    q = policy("do_not_board:\n  - document:\n  - document: {min_score: 0.7, owners: any}\n")
    assert q.decide([watch(0.1, category="anything", document_match=True)]) == DNB
    assert q.matched([watch(0.8, owner="AUS", document_match=True)]) == ["do_not_board[1] document"]
    assert q.decide([watch(0.6, owner="AUS", document_match=True)]) == OK


def test_rule_condition():
    p = policy("contact_authority:\n  - rule: [FJI-OVERSTAY-RISK, HUB-DOC-EXPIRED]\n")
    assert p.decide([rule()]) == CA
    assert p.decide([rule("HUB-DOC-EXPIRED", owner="")]) == CA  # hub-wide
    assert p.decide([rule(owner="AUS")]) == OK  # another member's rule with the same id
    assert p.decide([rule("FJI-OTHER")]) == OK
    assert p.decide([rule("fji-overstay-risk")]) == CA  # ids compare case-insensitively
    assert p.decide([watch(1.0, category="x")]) == OK
    assert p.matched([rule()]) == ["contact_authority[0] rule"]


def test_model_reasons_never_trigger():
    p = policy(
        "do_not_board:\n  - watchlist: {min_score: 0, owners: any}\n  - document: {owners: any}\n"
        "contact_authority:\n  - rule: [m1]\n"
    )
    assert p.decide([model(1.0), model(1.0, owner="")]) == OK
    assert p.matched([model(1.0)]) == []


def test_do_not_board_beats_contact_authority():
    p = policy(
        "do_not_board:\n  - document: {categories: [stolen]}\n"
        "contact_authority:\n  - watchlist: {min_score: 0.5}\n  - rule: [FJI-OVERSTAY-RISK]\n"
    )
    reasons = [rule(), watch(0.6, category="stolen", document_match=True)]
    assert p.decide(reasons) == DNB
    assert p.matched(reasons) == [
        "do_not_board[0] document",
        "contact_authority[0] watchlist",
        "contact_authority[1] rule",
    ]
    assert p.decide(reasons[:1]) == CA


def test_messages_and_fallback():
    p = policy("fallback: do_not_board\nmessages:\n  contact_authority: '  CALL +679 000 0000  '\n")
    assert p.fallback == DNB
    assert p.message(CA) == "CALL +679 000 0000"
    assert p.message(DNB) == "DO NOT BOARD"
    assert policy("fallback: CONTACT_AUTHORITY\n").fallback == CA
    assert policy("").fallback == CA
    assert policy("require:\ndo_not_board:\ncontact_authority:\nmessages:\n").decide([watch(1.0)]) == OK


def test_digest_follows_the_text():
    assert policy("").digest == policy("").digest != policy("# another version\n").digest


# -- missing fields


def traveller(**kw) -> manifest_pb2.Traveller:
    base = dict(
        surname="DOE",
        given_names="JANE",
        sex=manifest_pb2.SEX_FEMALE,
        date_of_birth=manifest_pb2.PartialDate(year=1980),
        nationality="FJI",
        passenger_ref="P1",
        documents=[
            manifest_pb2.Document(
                type=manifest_pb2.DOCUMENT_TYPE_PASSPORT,
                number="X123",
                issuing_state="FJI",
                expiry=manifest_pb2.PartialDate(year=2030, month=1, day=1),
            )
        ],
    )
    base.update(kw)
    return manifest_pb2.Traveller(**base)


ALL = (
    "surname, given_names, date_of_birth, sex, nationality, passenger_ref, document_number, document_type, "
    "document_issuing_state, document_expiry"
)


def test_missing_nothing_when_complete():
    p = policy(f"require: [{ALL}]\n")
    assert p.missing(traveller(), 0) == []


def test_missing_paths_in_require_order():
    p = policy(f"require: [{ALL}]\n")
    assert p.missing(manifest_pb2.Traveller(), 2) == [
        "travellers[2].surname",
        "travellers[2].given_names",
        "travellers[2].date_of_birth",
        "travellers[2].sex",
        "travellers[2].nationality",
        "travellers[2].passenger_ref",
        "travellers[2].documents[0].number",
        "travellers[2].documents[0].type",
        "travellers[2].documents[0].issuing_state",
        "travellers[2].documents[0].expiry",
    ]
    q = policy("require: [date_of_birth, document_number, nationality]\n")
    assert q.missing(traveller(date_of_birth=None, nationality="  "), 4) == [
        "travellers[4].date_of_birth",
        "travellers[4].nationality",
    ]
    assert q.missing(traveller(date_of_birth=manifest_pb2.PartialDate(month=7, day=1)), 0) == [
        "travellers[0].date_of_birth"
    ]


def test_missing_reads_the_travel_document_not_the_visa():
    p = policy("require: [document_number, document_expiry]\n")
    visa = manifest_pb2.Document(type=manifest_pb2.DOCUMENT_TYPE_VISA, number="V1")
    passport = manifest_pb2.Document(type=manifest_pb2.DOCUMENT_TYPE_PASSPORT)
    assert p.missing(traveller(documents=[visa, passport]), 1) == [
        "travellers[1].documents[1].number",
        "travellers[1].documents[1].expiry",
    ]
    assert p.missing(traveller(documents=[visa]), 1) == ["travellers[1].documents[0].expiry"]


# -- problems, each with its line


HEAD = "version: 1\nmember: FJI\n"


@pytest.mark.parametrize(
    ("body", "line", "code", "words"),
    [
        ("colour: blue\n", 3, "unknown_key", "unknown key 'colour'"),
        ("fallbak: DO_NOT_BOARD\n", 3, "unknown_key", "did you mean 'fallback'"),
        ("fallback: OK_TO_BOARD\n", 3, "refused_directive", "never gives a silent OK"),
        ("fallback: INSUFFICIENT_DATA\n", 3, "refused_directive", "CONTACT_AUTHORITY or DO_NOT_BOARD"),
        ("fallback: deny\n", 3, "unknown_directive", "unknown directive 'deny'"),
        ("require: date_of_birth\n", 3, "invalid_value", "list of field names"),
        ("require:\n  - date_of_birth\n  - eye_colour\n", 5, "unknown_field", "unknown field 'eye_colour'"),
        ("require: [nationality, nationality]\n", 3, "duplicate", "listed twice"),
        ("do_not_board: {watchlist: {min_score: 1}}\n", 3, "invalid_value", "list of conditions"),
        ("do_not_board:\n  - watchlist: {categories: [wanted]}\n", 4, "required", "'min_score' is required"),
        ("do_not_board:\n  - watchlist: {min_score: 1.5}\n", 4, "out_of_range", "from 0 to 1"),
        ("do_not_board:\n  - watchlist: {min_score: -0.1}\n", 4, "out_of_range", "from 0 to 1"),
        ("do_not_board:\n  - watchlist: {min_score: .nan}\n", 4, "out_of_range", "from 0 to 1"),
        ("do_not_board:\n  - watchlist: {min_score: high}\n", 4, "invalid_value", "must be a number"),
        ("do_not_board:\n  - watchlist: {min_score: true}\n", 4, "invalid_value", "must be a number"),
        ("do_not_board:\n  - watchlist:\n      min_score: 0.9\n      score: 1\n", 6, "unknown_key", "'score'"),
        ("do_not_board:\n  - watchlist: {min_score: 0.9, categories: wanted}\n", 4, "invalid_value", "must be a list"),
        ("do_not_board:\n  - watchlist: {min_score: 0.9, categories: []}\n", 4, "invalid_value", "must not be empty"),
        ("do_not_board:\n  - watchlist: {min_score: 0.9, owners: all}\n", 4, "invalid_value", "'any' or a list"),
        ("do_not_board:\n  - watchlist: {min_score: 0.9, owners: [FJI, XYZ]}\n", 4, "invalid_member", "'XYZ'"),
        ("do_not_board:\n  - document: {categories: [lost], min_score: 2}\n", 4, "out_of_range", "from 0 to 1"),
        ("do_not_board:\n  - model: {min_score: 0.9}\n", 4, "model_condition", "only ranks travellers"),
        ("contact_authority:\n  - watchlists: {min_score: 0.9}\n", 4, "unknown_key", "did you mean 'watchlist'"),
        ("contact_authority:\n  - rule: HUB-DOC-EXPIRED\n", 4, "invalid_value", "list of rule ids"),
        ("contact_authority:\n  - rule: ['bad id!']\n", 4, "invalid_value", "not a rule id"),
        ("contact_authority:\n  - {rule: [A], document: {}}\n", 4, "invalid_value", "must be one condition"),
        ("contact_authority:\n  - watchlist\n", 4, "invalid_value", "must be one condition"),
        ("messages:\n  DENY: NO\n", 4, "unknown_directive", "unknown directive 'DENY'"),
        ("messages:\n  DO_NOT_BOARD: " + "X" * 71 + "\n", 4, "message_too_long", "71 characters long, at most 70"),
        ('messages:\n  DO_NOT_BOARD: "CALL\\tUS"\n', 4, "non_printable", "printable ASCII"),
        ('messages:\n  DO_NOT_BOARD: "APPELEZ L\'IMMIGRATION \u00e9"\n', 4, "non_printable", "printable ASCII"),
        ("messages:\n  DO_NOT_BOARD: 12\n", 4, "invalid_value", "must be text"),
        ("messages:\n  DO_NOT_BOARD: A\n  do_not_board: B\n", 5, "duplicate", "given twice"),
        ("messages: [DO_NOT_BOARD]\n", 3, "invalid_value", "must be a mapping"),
        ("fallback: DO_NOT_BOARD\nfallback: CONTACT_AUTHORITY\n", 4, "invalid_value", "appears twice"),
    ],
)
def test_each_problem_names_its_line(body, line, code, words):
    found_line, found_code, description = only(HEAD + body)
    assert (found_line, found_code) == (line, code), description
    assert words in description


@pytest.mark.parametrize(
    ("text", "line", "code", "words"),
    [
        ("", 1, "required", "empty file"),
        ("member: FJI\n", 1, "required", "missing 'version:'"),
        ("version: 1\n", 1, "required", "missing 'member:'"),
        ("version: 2\nmember: FJI\n", 1, "unsupported_version", "'version' must be 1"),
        ("version: 1\nmember: AUS\n", 2, "owner_mismatch", "differs from the member loading the policy (FJI)"),
        ("version: 1\nmember: XXX\n", 2, "invalid_member", "not an ISO 3166-1 alpha-3"),
        ("version: 1\nmember: [FJI]\n", 2, "invalid_value", "'member' must be"),
        ("- version: 1\n", 1, "invalid_value", "must be a mapping"),
        ("version: 1\nmember: FJI\nmessages: {a: [\n", 4, "invalid_yaml", "not valid YAML"),
        ("version: 1\nmember: &m FJI\n", 2, "invalid_yaml", "anchors and aliases"),
        ("version: 1\nmember: !!python/name:os.system FJI\n", 2, "invalid_yaml", "not allowed in board policies"),
        ("version: 1\nmember: FJI\n# \x00\n", 3, "invalid_text", "NUL character"),
    ],
)
def test_file_level_problems_name_their_line(text, line, code, words):
    found_line, found_code, description = only(text)
    assert (found_line, found_code) == (line, code), description
    assert words in description


def test_every_problem_is_listed_in_line_order():
    text = (
        "version: 1\nmember: FJI\nfallback: OK_TO_BOARD\nrequire: [height]\n"
        "do_not_board:\n  - watchlist: {min_score: 3}\n  - model: {}\nmessages:\n  NOPE: x\n"
    )
    assert [(line, code) for line, code, _ in problems(text)] == [
        (3, "refused_directive"),
        (4, "unknown_field"),
        (6, "out_of_range"),
        (7, "model_condition"),
        (9, "unknown_directive"),
    ]


def test_limits():
    assert PolicyLimits.from_settings(HubSettings()) == PolicyLimits()
    assert only(HEAD + "# " + "x" * 200 + "\n", limits=PolicyLimits(max_bytes=100))[1] == "too_large"
    deep = HEAD + "do_not_board:\n  - watchlist: {min_score: 0.5, categories: [[[[[[[a]]]]]]]}\n"
    assert only(deep)[:2] == (4, "too_large")
    many = HEAD + "contact_authority:\n" + "  - rule: [A]\n" * 4
    assert only(many, limits=PolicyLimits(max_conditions=3))[:2] == (7, "too_many_conditions")
    long_list = HEAD + "contact_authority:\n  - rule: [" + ", ".join(f"R{i}" for i in range(5)) + "]\n"
    assert only(long_list, limits=PolicyLimits(max_list=4))[:2] == (4, "too_large")
    assert policy("messages:\n  OK_TO_BOARD: " + "B" * 70 + "\n").message(OK) == "B" * 70
    with pytest.raises(ValueError):
        PolicyLimits(max_depth=0)
