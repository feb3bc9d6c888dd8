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
each piece becomes a polars expression.

Missing data never flags by accident: a comparison with an unknown value is unknown, `not` of unknown stays
unknown, and an unknown result does not flag; ask for it explicitly with `missing: true`.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import operator
import re
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from services.errors import ConfigError
from services.geo import is_country
from services.rules.rule import Rule

# The owner the starter templates carry: a member replaces it with its own code (or loads with member=...).
PLACEHOLDER_OWNER = "MEMBER"

# Kinds of field, each with its own operators and value type.
NUMBER = "number"  # whole numbers
CODE = "code"  # codes compared in upper case (ports, carrier, payment form)
CHOICE = "choice"  # one of a few lower-case words
FLAG = "flag"  # true / false
PORTS = "ports"  # a list of port codes


@dataclass(frozen=True)
class Field:
    column: str  # column of the batch frame (frames.TRAVELLER_SCHEMA or FEATURE_SCHEMA)
    kind: str
    help: str
    choices: tuple[str, ...] = ()


FIELDS: dict[str, Field] = {
    "age": Field("age", NUMBER, "whole years on the departure date; unknown unless the birth date is complete"),
    "doc_validity_days": Field(
        "doc_validity_days", NUMBER, "days from departure to the earliest document expiry (negative: expired)"
    ),
    "nationality_differs_from_issuer": Field(
        "nationality_differs", FLAG, "nationality differs from the state that issued the document"
    ),
    "role": Field("role_kind", CHOICE, "passenger or crew (transit included)", ("passenger", "crew", "unspecified")),
    "in_transit": Field("in_transit", FLAG, "transit passenger or transit crew"),
    "transport_mode": Field("transport_mode", CHOICE, "air or sea", ("air", "sea")),
    "carrier": Field("carrier_code", CODE, "IATA airline designator or cruise line code"),
    "flight_number": Field("flight_number", CODE, "flight or voyage number without the carrier"),
    "origin": Field("origin", CODE, "first port of the flight"),
    "destination": Field("destination", CODE, "last port of the flight"),
    "ports": Field("ports", PORTS, "every port of the flight's route"),
    "transit_ports": Field("transit_ports", PORTS, "ports between the flight's origin and destination"),
    "transit_count": Field("transit_count", NUMBER, "number of transit ports of the flight"),
    "party_size": Field("party_size", NUMBER, "travellers of the flight under the same reservation locator"),
    "booking_lead_days": Field("booking_lead_days", NUMBER, "days from booking to departure (when sent)"),
    "payment_form": Field("payment_form", CODE, "form of payment as the carrier sends it (when sent)"),
    "one_way": Field("one_way", FLAG, "one-way ticket (when sent)"),
}

_SCALAR_OPS = ("equals", "not_equals", "one_of", "none_of", "missing")
OPERATORS: dict[str, tuple[str, ...]] = {
    NUMBER: (*_SCALAR_OPS, "less_than", "at_most", "more_than", "at_least", "between"),
    CODE: _SCALAR_OPS,
    CHOICE: _SCALAR_OPS,
    FLAG: ("equals", "missing"),
    PORTS: ("includes_any", "includes_none"),
}
COMBINATORS = ("all", "any", "not")

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
# Bounds that keep a hostile or broken file from costing more than a glance.
MAX_RULES = 1000
MAX_DEPTH = 12
MAX_LIST = 1000
MAX_TEXT = 2000


@dataclass(frozen=True, order=True)
class RuleProblem:
    line: int  # 1-based line of the YAML node at fault
    rule_id: str  # "" when the problem is outside a rule or before its id
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", rule {self.rule_id}" if self.rule_id else "")
        return f"{where}: {self.message}"


class RulesetError(ConfigError):
    """A rule file that does not validate; .problems lists every problem found, in line order."""

    def __init__(self, source: str, problems: list[RuleProblem]):
        self.source = source
        self.problems = sorted(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


@dataclass(frozen=True)
class RuleSet:
    """One member's compiled rules: the enabled ones in file order, and the ids of the disabled ones."""

    owner: str
    rules: tuple[Rule, ...]
    disabled: tuple[str, ...] = ()
    source: str = ""
    # Content digest of the text, so logs and `rules check` can say which version is loaded.
    digest: str = ""


class _Invalid(Exception):
    def __init__(self, node: yaml.Node, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    """Walks the composed YAML node tree, so every problem carries the line of the node at fault."""

    def __init__(self, loader: yaml.SafeLoader):
        self._loader = loader
        self.problems: list[RuleProblem] = []
        self.rule_id = ""

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(RuleProblem(_line(node), self.rule_id, message))

    def value(self, node: yaml.Node) -> object:
        """A scalar's typed value (YAML 1.1 rules: 12 is a number, 2026-01-01 a date, true a flag)."""
        if not isinstance(node, yaml.ScalarNode):
            raise _Invalid(node, "expected a single value here, not a list or mapping")
        try:
            return self._loader.construct_object(node)
        except (ValueError, yaml.YAMLError) as exc:  # e.g. 2026-02-30 is read as a date and does not exist
            raise _Invalid(node, f"'{node.value}' is not a valid value: {exc}") from None

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping with plain-text keys, refusing repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            raise _Invalid(node, f"{what} must be a mapping (key: value)")
        seen: dict[str, int] = {}
        out = []
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise _Invalid(key_node, f"'{key_node.value}' is not a valid key in {what}")
            if key in seen:
                raise _Invalid(key_node, f"'{key}' appears twice in {what} (first at line {seen[key]})")
            seen[key] = _line(key_node)
            out.append((key, key_node, value_node))
        return out

    def items(self, node: yaml.Node, what: str, limit: int = MAX_LIST) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise _Invalid(node, f"{what} must be a list")
        if not node.value:
            raise _Invalid(node, f"{what} must not be empty")
        if len(node.value) > limit:
            raise _Invalid(node, f"{what} has {len(node.value)} items, at most {limit} allowed")
        return list(node.value)

    # -- conditions ------------------------------------------------------------------------------------------

    def condition(self, node: yaml.Node, depth: int = 0) -> pl.Expr | None:
        """The condition's expression, or None after recording its problems (all of them, not just one)."""
        if depth > MAX_DEPTH:
            self.problem(node, f"condition nested deeper than {MAX_DEPTH} levels")
            return None
        try:
            pairs = self.pairs(node, "a condition")
            if not pairs:
                raise _Invalid(node, "a condition needs at least one field or all/any/not")
        except _Invalid as bad:
            self.problem(bad.node, bad.message)
            return None
        parts: list[pl.Expr | None] = []
        for key, key_node, value_node in pairs:
            try:
                if key in ("all", "any"):
                    subs = [self.condition(n, depth + 1) for n in self.items(value_node, f"'{key}'")]
                    if any(s is None for s in subs):
                        parts.append(None)
                        continue
                    # Kleene logic, so unknown stays unknown: (unknown and false) is false, (unknown or
                    # true) is true, anything else with unknown is unknown, which does not flag.
                    parts.append(functools.reduce(operator.and_ if key == "all" else operator.or_, subs))
                elif key == "not":
                    sub = self.condition(value_node, depth + 1)
                    parts.append(None if sub is None else ~sub)
                elif key in FIELDS:
                    parts.append(self.field(key, FIELDS[key], value_node))
                else:
                    raise _Invalid(
                        key_node,
                        f"unknown field '{key}'{_suggest(key, [*FIELDS, *COMBINATORS])}; fields: "
                        f"{', '.join(FIELDS)}; combinators: all, any, not",
                    )
            except _Invalid as bad:
                self.problem(bad.node, bad.message)
                parts.append(None)
        if any(p is None for p in parts):
            return None
        return functools.reduce(operator.and_, parts)

    def field(self, name: str, field: Field, node: yaml.Node) -> pl.Expr:
        if isinstance(node, yaml.ScalarNode):  # shorthand: `role: crew`
            return self.operation(name, field, "includes_any" if field.kind == PORTS else "equals", node, node)
        if isinstance(node, yaml.SequenceNode):  # shorthand: `payment_form: [CASH, CA]`
            return self.operation(name, field, "includes_any" if field.kind == PORTS else "one_of", node, node)
        parts = [self.operation(name, field, op, key_node, v) for op, key_node, v in self.pairs(node, name)]
        if not parts:
            raise _Invalid(node, f"'{name}' needs an operator: {', '.join(OPERATORS[field.kind])}")
        return functools.reduce(operator.and_, parts)

    def scalar(self, name: str, field: Field, node: yaml.Node) -> object:
        """One comparison value of the field's kind, normalised (codes upper case, choices lower case)."""
        value = self.value(node)
        if field.kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _Invalid(node, f"'{name}' compares with whole numbers, not '{node.value}'")
            return value
        if field.kind == FLAG:
            if not isinstance(value, bool):
                raise _Invalid(node, f"'{name}' is true or false, not '{node.value}'")
            return value
        if isinstance(value, bool):
            raise _Invalid(node, f"'{name}' compares with text; '{node.value}' reads as true/false: quote it")
        if field.kind == CODE and isinstance(value, int):  # flight numbers are digits: 911
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(node, f"'{name}' compares with text, not '{node.value}'")
        if field.kind == CHOICE:
            value = value.strip().lower()
            if value not in field.choices:
                raise _Invalid(node, f"'{name}' is one of {', '.join(field.choices)}, not '{node.value}'")
            return value
        return value.strip().upper()

    def scalars(self, name: str, field: Field, node: yaml.Node) -> list:
        if isinstance(node, yaml.ScalarNode):
            return [self.scalar(name, field, node)]
        return [self.scalar(name, field, n) for n in self.items(node, f"the values of '{name}'")]

    def operation(self, name: str, field: Field, op: str, op_node: yaml.Node, node: yaml.Node) -> pl.Expr:
        if op not in OPERATORS[field.kind]:
            known = ", ".join(OPERATORS[field.kind])
            raise _Invalid(op_node, f"unknown operator '{op}' for '{name}'{_suggest(op, known.split(', '))}: {known}")
        col = pl.col(field.column)
        if op == "missing":
            flag = self.value(node)
            if not isinstance(flag, bool):
                raise _Invalid(node, f"'missing' is true or false, not '{node.value}'")
            return col.is_null() if flag else col.is_not_null()
        if op in ("includes_any", "includes_none"):
            ports = self.scalars(name, Field(field.column, CODE, field.help), node)
            found = col.list.eval(pl.element().is_in(ports)).list.any()
            return found if op == "includes_any" else ~found
        if op in ("one_of", "none_of"):
            values = self.scalars(name, field, node)
            found = col.is_in(values)  # unknown stays unknown (polars: null.is_in(...) is null)
            return found if op == "one_of" else ~found
        if op == "between":
            bounds = self.items(node, "'between'")
            if len(bounds) != 2:
                raise _Invalid(node, "'between' takes two numbers: [lowest, highest], both included")
            low, high = (self.scalar(name, field, b) for b in bounds)
            if low > high:
                raise _Invalid(node, f"'between' needs the lower bound first, got [{low}, {high}]")
            return col.is_between(low, high, closed="both")
        value = self.scalar(name, field, node)
        compare = {
            "equals": operator.eq,
            "not_equals": operator.ne,
            "less_than": operator.lt,
            "at_most": operator.le,
            "more_than": operator.gt,
            "at_least": operator.ge,
        }[op]
        return compare(col, value)

    # -- rule metadata -----------------------------------------------------------------------------------------

    def text(self, node: yaml.Node, key: str, pattern: re.Pattern | None = None, hint: str = "") -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(node, f"'{key}' must be text")
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise _Invalid(node, f"'{key}' is longer than {MAX_TEXT} characters")
        if pattern is not None and not pattern.fullmatch(value):
            raise _Invalid(node, f"'{key}' '{value}' is not valid: {hint}")
        return value

    def day(self, node: yaml.Node, key: str) -> date:
        value = self.value(node)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        elif isinstance(value, date) and not isinstance(value, datetime):
            return value
        raise _Invalid(node, f"'{key}' must be a date YYYY-MM-DD, not '{node.value}'")


def _check_tree(root: yaml.Node) -> None:
    """Refuse aliases (a tiny file could expand into billions of nodes) and oversized trees."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise _Invalid(node, "YAML anchors and aliases (& and *) are not allowed in rule files")
        seen.add(id(node))
        if len(seen) > 200_000:
            raise _Invalid(node, "rule file too large")
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _owner(reader: _Reader, node: yaml.Node, member: str | None) -> str:
    owner = reader.text(node, "owner").upper()
    if owner == PLACEHOLDER_OWNER:
        if not member:
            raise _Invalid(node, f"owner '{PLACEHOLDER_OWNER}' is the template placeholder: put your member code")
        owner = member
    if not is_country(owner):
        raise _Invalid(node, f"owner '{owner}' is not an ISO 3166-1 alpha-3 member code")
    if member and owner != member:
        raise _Invalid(node, f"owner '{owner}' differs from the member loading the file ({member})")
    return owner


def parse_ruleset(text: str, source: str = "<rules>", member: str | None = None) -> RuleSet:
    """Validate and compile one member's rule file; raises RulesetError listing every problem with its line.

    member, when given, is the member loading the file: the template placeholder owner becomes it, and
    any other owner is an error.
    """
    member = member.strip().upper() if member else None
    loader = yaml.SafeLoader(text)
    reader = _Reader(loader)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise RulesetError(source, [RuleProblem(line, "", f"not valid YAML: {exc.problem or exc}")]) from None
        except yaml.YAMLError as exc:
            raise RulesetError(source, [RuleProblem(1, "", f"not valid YAML: {exc}")]) from None
        if root is None:
            raise RulesetError(source, [RuleProblem(1, "", "empty file: expected 'owner:' and 'rules:'")])
        ruleset = _read_file(reader, root, member, source, text)
    finally:
        loader.dispose()
    if reader.problems:
        raise RulesetError(source, reader.problems)
    return ruleset


def _read_file(reader: _Reader, root: yaml.Node, member: str | None, source: str, text: str) -> RuleSet:
    file_owner = member
    rule_nodes: list[yaml.Node] = []
    try:
        _check_tree(root)
        for key, key_node, value_node in reader.pairs(root, "a rule file"):
            if key == "owner":
                file_owner = _owner(reader, value_node, member)
            elif key == "rules":
                if isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~", "null"):
                    continue  # `rules:` with nothing under it: the member has no rules
                if not isinstance(value_node, yaml.SequenceNode):
                    raise _Invalid(value_node, "'rules' must be a list of rules")
                if len(value_node.value) > MAX_RULES:
                    raise _Invalid(value_node, f"more than {MAX_RULES} rules in one file")
                rule_nodes = list(value_node.value)
            elif key == "description":
                reader.text(value_node, key)
            else:
                raise _Invalid(key_node, f"unknown key '{key}' in a rule file{_suggest(key, FILE_KEYS)}: {FILE_KEYS}")
    except _Invalid as bad:
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
    reader: _Reader, node: yaml.Node, file_owner: str | None, member: str | None, first_line: dict[str, int]
) -> tuple[Rule, bool] | None:
    before = len(reader.problems)
    try:
        pairs = {key: (k, v) for key, k, v in reader.pairs(node, "a rule")}
        if "id" in pairs:
            reader.rule_id = reader.text(
                pairs["id"][1], "id", _ID, "letters, digits, '.', '_' and '-', at most 64, starting alphanumeric"
            )
            if reader.rule_id in first_line:
                raise _Invalid(pairs["id"][1], f"duplicate id (first used at line {first_line[reader.rule_id]})")
            first_line[reader.rule_id] = _line(node)
        missing = [k for k in _REQUIRED if k not in pairs]
        if missing:
            raise _Invalid(node, f"missing {', '.join(missing)}")
    except _Invalid as bad:
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
                    raise _Invalid(value_node, f"one file holds one member's rules: file owner is {file_owner}")
            elif key in ("description", "explanation", "source"):
                values[key] = reader.text(value_node, key)
            elif key == "category":
                values[key] = reader.text(
                    value_node, key, _CATEGORY, "lower case letters, digits and '_', e.g. people_smuggling"
                )
            elif key == "score":
                score = reader.value(value_node)
                if isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score <= 1:
                    raise _Invalid(
                        value_node, f"'score' must be a number above 0 and at most 1, not '{value_node.value}'"
                    )
                values[key] = float(score)
            elif key in ("valid_from", "valid_to"):
                values[key] = reader.day(value_node, key)
            elif key == "enabled":
                flag = reader.value(value_node)
                if not isinstance(flag, bool):
                    raise _Invalid(value_node, f"'enabled' is true or false, not '{value_node.value}'")
                values[key] = flag
            elif key == "when":
                values[key] = reader.condition(value_node)
            else:
                raise _Invalid(
                    key_node, f"unknown key '{key}'{_suggest(key, RULE_KEYS)}; rule keys: {', '.join(RULE_KEYS)}"
                )
        except _Invalid as bad:
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


def load_ruleset(path: Path, member: str | None = None) -> RuleSet:
    """parse_ruleset of a file; unreadable or non-UTF-8 files are a RulesetError too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesetError(str(path), [RuleProblem(1, "", f"cannot read the file: {exc}")]) from None
    return parse_ruleset(text, str(path), member)


def starter_text(member: str | None = None) -> str:
    """The starter templates shipped with the hub; with member, its code replaces the placeholder owner."""
    text = resources.files("services.data").joinpath("starter_rules.yaml").read_text(encoding="utf-8")
    if member:
        text = re.sub(
            rf"^owner: {PLACEHOLDER_OWNER}\b.*$", f"owner: {member.strip().upper()}", text, count=1, flags=re.M
        )
    return text


def describe_fields() -> str:
    """Fields and their operators, for `apihub rules check --fields` and error messages."""
    lines = []
    for name, field in FIELDS.items():
        choices = f" ({' | '.join(field.choices)})" if field.choices else ""
        lines.append(f"{name:32} {field.kind}{choices}: {field.help}; operators: {', '.join(OPERATORS[field.kind])}")
    return "\n".join(lines)
