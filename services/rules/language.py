"""Member targeting rules written as YAML: load, validate (errors name the rule and the line), compile to Rules.

One file holds one member's rules:

    owner: FJI
    rules:
      - id: FJI-LASTMIN-CASH
        description: Booked at most 2 days before departure and paid in cash (weak alone).
        category: trafficking
        score: 0.3
        valid_from: 2026-01-01
        valid_to: 2026-12-31
        when:
          all:
            - booking_lead_days: {at_most: 2}
            - payment_form: {one_of: [CASH, CA]}
            - role: passenger

A condition (`when:`) is a mapping. Each key is either a field (FIELDS), whose value is an operator mapping
(`{at_least: 18, at_most: 30}`, several operators must all hold), a bare value (shorthand for `equals`) or a
list (shorthand for `one_of`); or a combinator: `all: [conditions]`, `any: [conditions]`, `not: condition`.
Several keys in one mapping must all hold. Nothing is ever passed to eval: the YAML node tree is walked and
each piece becomes a polars expression. The file is read within bounds first (services.rules.source: size, nesting,
counts, no tags or anchors), so a hostile file costs no more than its size limit allows.

Missing data never flags by accident: a comparison with an unknown value is unknown, `not` of unknown stays
unknown, and an unknown result does not flag; ask for it explicitly with `missing: true`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from services.geo import is_country
from services.rules.conditions import (
    FIELDS,
    OPERATORS,
    InvalidNode,
    NodeReader,
    describe_fields,
    node_line,
    suggest,
)
from services.rules.rule import Rule
from services.rules.source import (
    RuleLimits,
    RuleProblem,
    RulesetError,
    RuleSourceError,
    compose_rule_file,
)
from services.userfiles import InputFileError, read_text

__all__ = [
    "FIELDS",
    "OPERATORS",
    "RuleLimits",
    "RuleProblem",
    "RuleSet",
    "RuleSourceError",
    "RulesetError",
    "describe_fields",
    "load_ruleset",
    "parse_ruleset",
    "starter_text",
]

# The owner the starter templates carry: a member replaces it with its own code (or loads with member=...).
PLACEHOLDER_OWNER = "MEMBER"

RULE_KEYS = (
    "id",
    "owner",
    "description",
    "category",
    "score",
    "valid_from",
    "valid_to",
    "enabled",
    "when",
    "explanation",
    "source",
)
_REQUIRED = ("id", "description", "category", "score", "when")
FILE_KEYS = ("owner", "description", "rules")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class RuleSet:
    """One member's compiled rules: the enabled ones in file order, and the ids of the disabled ones."""

    owner: str
    rules: tuple[Rule, ...]
    disabled: tuple[str, ...] = ()
    source: str = ""
    # Content digest of the text, so logs and `rules check` can say which version is loaded.
    digest: str = ""


def _owner(reader: NodeReader, node: yaml.Node, member: str | None) -> str:
    owner = reader.text(node, "owner").upper()
    if owner == PLACEHOLDER_OWNER:
        if not member:
            raise InvalidNode(node, f"owner '{PLACEHOLDER_OWNER}' is the template placeholder: put your member code")
        owner = member
    if not is_country(owner):
        raise InvalidNode(node, f"owner '{owner}' is not an ISO 3166-1 alpha-3 member code")
    if member and owner != member:
        raise InvalidNode(node, f"owner '{owner}' differs from the member loading the file ({member})")
    return owner


def parse_ruleset(
    text: str, source: str = "<rules>", member: str | None = None, limits: RuleLimits | None = None
) -> RuleSet:
    """Validate and compile one member's rule file; raises RulesetError listing every problem with its line.

    member, when given, is the member loading the file: the template placeholder owner becomes it, and
    any other owner is an error. The file is first read within limits (default RuleLimits()): a file over
    one, or not plain YAML, raises RuleSourceError (a RulesetError) before any rule is built.
    """
    member = member.strip().upper() if member else None
    root, constructor = compose_rule_file(text, source, limits or RuleLimits())
    if root is None:
        raise RulesetError(source, [RuleProblem(1, "", "empty file: expected 'owner:' and 'rules:'")])
    reader = NodeReader(constructor)
    ruleset = _read_file(reader, root, member, source, text)
    if reader.problems:
        raise RulesetError(source, reader.problems)
    return ruleset


def _read_file(reader: NodeReader, root: yaml.Node, member: str | None, source: str, text: str) -> RuleSet:
    file_owner = member
    rule_nodes: list[yaml.Node] = []
    try:
        for key, key_node, value_node in reader.pairs(root, "a rule file"):
            if key == "owner":
                file_owner = _owner(reader, value_node, member)
            elif key == "rules":
                if isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~", "null"):
                    continue  # `rules:` with nothing under it: the member has no rules
                if not isinstance(value_node, yaml.SequenceNode):
                    raise InvalidNode(value_node, "'rules' must be a list of rules")
                rule_nodes = list(value_node.value)
            elif key == "description":
                reader.text(value_node, key)
            else:
                raise InvalidNode(key_node, f"unknown key '{key}' in a rule file{suggest(key, FILE_KEYS)}: {FILE_KEYS}")
    except InvalidNode as bad:
        reader.problem(bad.node, bad.message)
        return RuleSet("", ())
    rules: list[Rule] = []
    disabled: list[str] = []
    first_line: dict[str, int] = {}
    for node in rule_nodes:
        reader.rule_id = ""
        compiled = _read_rule(reader, node, file_owner, member, first_line)
        if compiled is None:
            continue
        rule, enabled = compiled
        (rules if enabled else disabled).append(rule if enabled else rule.id)
    owners = {r.owner for r in rules}
    if not file_owner and len(owners) > 1:
        reader.rule_id = ""
        reader.problem(root, f"one file holds one member's rules, this one has {', '.join(sorted(owners))}")
    owner = file_owner or (owners.pop() if len(owners) == 1 else "")
    if not owner and not reader.problems:
        reader.problem(root, "no owner: add 'owner: XXX' (your member's ISO alpha-3 code)")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return RuleSet(owner, tuple(rules), tuple(disabled), source, digest)


def _read_rule(
    reader: NodeReader, node: yaml.Node, file_owner: str | None, member: str | None, first_line: dict[str, int]
) -> tuple[Rule, bool] | None:
    before = len(reader.problems)
    try:
        pairs = {key: (k, v) for key, k, v in reader.pairs(node, "a rule")}
        if "id" in pairs:
            reader.rule_id = reader.text(
                pairs["id"][1], "id", _ID, "letters, digits, '.', '_' and '-', at most 64, starting alphanumeric"
            )
            if reader.rule_id in first_line:
                raise InvalidNode(pairs["id"][1], f"duplicate id (first used at line {first_line[reader.rule_id]})")
            first_line[reader.rule_id] = node_line(node)
        missing = [k for k in _REQUIRED if k not in pairs]
        if missing:
            raise InvalidNode(node, f"missing {', '.join(missing)}")
    except InvalidNode as bad:
        reader.problem(bad.node, bad.message)
        return None
    values: dict[str, object] = {"owner": file_owner, "enabled": True, "valid_from": None, "valid_to": None}
    for key, (key_node, value_node) in pairs.items():
        try:
            if key == "id":
                continue
            if key == "owner":
                values["owner"] = _owner(reader, value_node, member)
                if file_owner and values["owner"] != file_owner:
                    raise InvalidNode(value_node, f"one file holds one member's rules: file owner is {file_owner}")
            elif key in ("description", "explanation", "source"):
                values[key] = reader.text(value_node, key)
            elif key == "category":
                values[key] = reader.text(
                    value_node, key, _CATEGORY, "lower case letters, digits and '_', e.g. people_smuggling"
                )
            elif key == "score":
                score = reader.value(value_node)
                if isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score <= 1:
                    raise InvalidNode(
                        value_node, f"'score' must be a number above 0 and at most 1, not '{value_node.value}'"
                    )
                values[key] = float(score)
            elif key in ("valid_from", "valid_to"):
                values[key] = reader.day(value_node, key)
            elif key == "enabled":
                flag = reader.value(value_node)
                if not isinstance(flag, bool):
                    raise InvalidNode(value_node, f"'enabled' is true or false, not '{value_node.value}'")
                values[key] = flag
            elif key == "when":
                values[key] = reader.condition(value_node)
            else:
                raise InvalidNode(
                    key_node, f"unknown key '{key}'{suggest(key, RULE_KEYS)}; rule keys: {', '.join(RULE_KEYS)}"
                )
        except InvalidNode as bad:
            reader.problem(bad.node, bad.message)
    if not values["owner"]:
        reader.problem(node, "no owner: give 'owner:' in the rule or at the top of the file")
    start, end = values["valid_from"], values["valid_to"]
    if start and end and start > end:
        reader.problem(pairs["valid_to"][1], f"valid_to {end} is before valid_from {start}")
    if len(reader.problems) > before:
        return None
    description = str(values["description"])
    rule = Rule(
        id=reader.rule_id,
        owner=str(values["owner"]),
        category=str(values["category"]),
        score=float(values["score"]),  # type: ignore[arg-type]
        description=description,
        explanation=str(values.get("explanation") or description),
        expression=values["when"],  # type: ignore[arg-type]
        valid_from=start,  # type: ignore[arg-type]
        valid_to=end,  # type: ignore[arg-type]
    )
    return rule, bool(values["enabled"])


def load_ruleset(path: Path, member: str | None = None, limits: RuleLimits | None = None) -> RuleSet:
    """parse_ruleset of a file (UTF-8, or UTF-16 with a byte order mark); a missing, unreadable, oversized or
    undecodable file is a RuleSourceError too."""
    limits = limits or RuleLimits()
    try:
        text = read_text(path, "rule file", limits.max_bytes, setting="APIHUB_RULES_MAX_BYTES")
    except InputFileError as exc:
        raise RuleSourceError(str(path), exc.line or 1, exc.problem) from None
    return parse_ruleset(text, str(path), member, limits)


def starter_text(member: str | None = None) -> str:
    """The starter templates shipped with the hub; with member, its code replaces the placeholder owner."""
    text = resources.files("services.data").joinpath("starter_rules.yaml").read_text(encoding="utf-8")
    if member:
        text = re.sub(
            rf"^owner: {PLACEHOLDER_OWNER}\b.*$", f"owner: {member.strip().upper()}", text, count=1, flags=re.M
        )
    return text
