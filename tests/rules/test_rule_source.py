"""Rule files read within bounds: size first, then characters, nesting, counts, tags and anchors, each refusal a
RuleSourceError naming the problem and its line, never a RecursionError or a ConstructorError."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

import services.rules.source as source_module
from services.config import HubSettings
from services.rules.language import RuleLimits, RulesetError, RuleSourceError, load_ruleset, parse_ruleset
from services.rules.store import RuleStore

HEAD = "owner: FJI\nrules:\n"


@pytest.fixture(autouse=True, params=["libyaml", "pure Python"])
def yaml_parser(request, monkeypatch):
    """Every case with both parsers: libyaml's where PyYAML has it (the wheels), PyYAML's own where not."""
    if request.param == "pure Python":
        monkeypatch.setattr(source_module, "_BoundedLoader", source_module._PyBoundedLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    return request.param


def _rule(n: int, when: str = "{age: 1}") -> str:
    return f"  - id: R{n}\n    description: d\n    category: test\n    score: 0.5\n    when: {when}\n"


def _refusal(text: str, limits: RuleLimits | None = None) -> tuple[int, str]:
    with pytest.raises(RuleSourceError) as caught:
        parse_ruleset(text, "t.yaml", "FJI", limits)
    [problem] = caught.value.problems
    assert str(caught.value).startswith("t.yaml: line ")
    return problem.line, problem.message


@pytest.mark.parametrize(
    "text",
    [
        "owner: FJI\nrules: " + "[" * 5000 + "]" * 5000 + "\n",
        "owner: FJI\nrules: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n",
        # Block style indents every level: 350 levels are all 256 KiB can hold.
        "owner: FJI\nrules:\n" + "".join(" " * i + "- \n" for i in range(0, 700, 2)),
    ],
    ids=["flow lists 5,000", "flow mappings 2,000", "block lists 350"],
)
def test_nesting_thousands_deep_is_refused_at_the_limit_with_its_line(text):
    line, message = _refusal(text)
    assert message == "nested deeper than 32 levels"
    # Flow style: all on line 2. Block style: level n (the file's mapping is 1, `rules` 2 on line 3) on line n + 1.
    assert line == (2 if "[" in text or "{" in text else 34)


def test_reading_stops_at_the_first_node_over_a_limit():
    # Broken YAML after the limit is never reached: the answer is the depth, not a syntax error further on.
    text = "owner: FJI\nrules: " + "[" * 40 + "\n" + "}: ][ :\t@`\n" * 20_000
    assert _refusal(text) == (2, "nested deeper than 32 levels")


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        (HEAD + _rule(1).replace("description: d", "description: d\x00x"), 4, 19, "NUL character U+0000"),
        ("owner: FJI\x00\n", 1, 11, "NUL character U+0000"),
        (HEAD + _rule(1) + "# \x1b]0;owned\x07\n", 8, 3, "control character U+001B"),
    ],
)
def test_nul_and_control_characters_are_refused_with_line_and_column(text, line, column, what):
    got_line, message = _refusal(text)
    assert got_line == line
    assert message.startswith(f"{what} at column {column}")


@pytest.mark.parametrize(
    ("text", "line", "tag"),
    [
        # The findings: tags on nodes the language walks without constructing them were ignored, the file stored.
        ("owner: FJI\nrules: !!python/name:os.system ''\n", 2, "!!python/name:os.system"),
        (HEAD + "  - !!python/object:builtins.dict\n    id: R1\n", 3, "!!python/object:builtins.dict"),
        (HEAD + _rule(1, "!!python/object/apply:os.system {age: 1}"), 7, "!!python/object/apply:os.system"),
        (HEAD + _rule(1).replace("description: d", "description: !!binary aGk="), 4, "!!binary"),
        (HEAD + _rule(1).replace("category: test", "category: !foo test"), 5, "!foo"),
        (HEAD + _rule(1).replace("{age: 1}", "{age: !!set {1: null}}"), 7, "!!set"),
        ("!<tag:example.com,2026:x> {owner: FJI}\n", 1, "tag:example.com,2026:x"),
    ],
)
def test_tags_the_language_does_not_define_are_refused_naming_tag_and_line(text, line, tag):
    got_line, message = _refusal(text)
    assert got_line == line
    assert f"YAML tag '{tag}' is not allowed" in message


def test_core_tags_say_no_more_than_plain_values_and_are_read():
    ruleset = parse_ruleset(HEAD + _rule(1).replace("description: d", "description: !!str 911"), member="FJI")
    assert ruleset.rules[0].description == "911"


def test_anchors_aliases_and_alias_bombs_are_refused_before_any_expansion():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert _refusal(bomb) == (1, "YAML anchors and aliases (& and *) are not allowed in rule files")
    # An alias alone, with its anchor earlier in the file: refused at the anchor.
    text = HEAD + _rule(1).replace("description: d", "description: &d d") + _rule(2).replace("d\n", "*d\n", 1)
    assert _refusal(text)[0] == 4


def test_an_oversized_file_is_refused_before_any_yaml_is_read(monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("the YAML of an oversized file must not be read")

    monkeypatch.setattr(source_module, "_BoundedLoader", no_reading)
    four_mb = HEAD + _rule(1) * (4 * 1024 * 1024 // len(_rule(1)))
    assert _refusal(four_mb) == (1, "rule file larger than 256 KiB (APIHUB_RULES_MAX_BYTES)")
    # Counted in UTF-8 bytes, not characters: 1,000 two-byte letters are 2,000 bytes.
    small = RuleLimits(max_bytes=1500)
    text = HEAD + _rule(1).replace("description: d", "description: " + "é" * 1000)
    assert len(text) < 1500 < len(text.encode())
    assert _refusal(text, small) == (1, "rule file larger than 1.465 KiB (APIHUB_RULES_MAX_BYTES)")


def test_counts_are_refused_at_the_first_item_over_the_limit():
    limits = RuleLimits(max_rules=3, max_list=5, max_conditions=6)
    assert _refusal(HEAD + "".join(_rule(n) for n in range(4)), limits) == (18, "more than 3 rules in one file")
    assert parse_ruleset(HEAD + "".join(_rule(n) for n in range(3)), member="FJI", limits=limits).rules
    many_values = _rule(1, "{payment_form: {one_of: [A, B, C, D, E, F]}}")
    assert _refusal(HEAD + many_values, limits) == (7, "more than 5 items in one list")
    many_keys = HEAD + _rule(1) + "    a: 1\n    b: 2\n"  # a rule has 5 keys: a sixth is over
    assert _refusal(many_keys, limits) == (8, "more than 5 keys in one mapping")
    # Conditions: every key under `when:`, 3 in the first rule, the seventh in the second.
    conditions = (
        HEAD + _rule(1, "{all: [{age: 1}, {age: 2}]}") + _rule(2, "{age: {at_least: 1}, role: crew, one_way: true}")
    )
    assert _refusal(conditions, limits) == (12, "more than 6 conditions in one file")


def test_limits_come_from_settings_with_documented_bounds():
    limits = RuleLimits.from_settings(HubSettings(rules_max_rules=7, rules_max_depth=40))
    assert (limits.max_rules, limits.max_depth, limits.max_bytes) == (7, 40, 256 * 1024)
    assert RuleLimits() == RuleLimits.from_settings(HubSettings())
    with pytest.raises(ValidationError, match="APIHUB_RULES_MAX_DEPTH must be between 1 and 100"):
        HubSettings(rules_max_depth=5000)
    with pytest.raises(ValidationError, match="APIHUB_RULES_MAX_BYTES must be at least 1"):
        HubSettings(rules_max_bytes=0)
    with pytest.raises(ValueError):
        RuleLimits(max_depth=1000)


def test_the_profilers_store_reads_records_within_its_limits():
    two_rules = (HEAD + _rule(1) + _rule(2)).encode()
    assert RuleStore().apply_record(b"FJI", two_rules) == "FJI"
    with pytest.raises(RulesetError, match="more than 1 rules"):
        RuleStore(limits=RuleLimits(max_rules=1)).apply_record(b"FJI", two_rules)


def test_rule_files_are_read_as_utf8_or_utf16_with_bom_and_refused_clearly_otherwise(tmp_path):
    text = HEAD + _rule(1).replace("description: d", "description: Île")
    for name, data in (("utf8.yaml", text.encode()), ("bom.yaml", text.encode("utf-8-sig"))):
        (tmp_path / name).write_bytes(data)
        assert load_ruleset(tmp_path / name).rules[0].description == "Île"
    (tmp_path / "utf16.yaml").write_bytes(text.encode("utf-16"))
    assert load_ruleset(tmp_path / "utf16.yaml").owner == "FJI"
    (tmp_path / "latin1.yaml").write_bytes(text.encode("latin-1"))
    cases = {
        tmp_path / "latin1.yaml": (4, "not UTF-8 text: byte 0xCE at offset 46"),
        tmp_path / "missing.yaml": (1, "cannot read the rule file: no such file"),
        tmp_path: (1, "cannot read the rule file: is a directory, not a file"),
    }
    for path, (line, message) in cases.items():
        with pytest.raises(RuleSourceError) as caught:
            load_ruleset(path)
        assert [(p.line, p.message) for p in caught.value.problems] == [(line, message)]
        assert caught.value.source == str(path)
