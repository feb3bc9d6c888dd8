"""The condition part of the rule language: fields, operators, and the reader that walks a rule's YAML nodes,
reading values (errors carry the node's line) and compiling `when:` conditions into polars expressions.

services.rules.language reads whole files and rules with it; see there for the language itself.
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
import yaml

from services.rules.source import RuleProblem

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


# Bounds of the language itself; the file's size, nesting and counts are RuleLimits (services.rules.source).
MAX_DEPTH = 12  # all/any/not nested in one condition
MAX_TEXT = 2000  # characters of one text (description, explanation, source)


class InvalidNode(Exception):
    def __init__(self, node: yaml.Node, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class NodeReader:
    """Walks the composed YAML node tree, so every problem carries the line of the node at fault."""

    def __init__(self, loader: yaml.constructor.SafeConstructor):
        self._loader = loader
        self.problems: list[RuleProblem] = []
        self.rule_id = ""

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(RuleProblem(node_line(node), self.rule_id, message))

    def value(self, node: yaml.Node) -> object:
        """A scalar's typed value (YAML 1.1 rules: 12 is a number, 2026-01-01 a date, true a flag)."""
        if not isinstance(node, yaml.ScalarNode):
            raise InvalidNode(node, "expected a single value here, not a list or mapping")
        try:
            return self._loader.construct_object(node)
        except (ValueError, yaml.YAMLError) as exc:  # e.g. 2026-02-30 is read as a date and does not exist
            raise InvalidNode(node, f"'{node.value}' is not a valid value: {exc}") from None

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping with plain-text keys, refusing repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            raise InvalidNode(node, f"{what} must be a mapping (key: value)")
        seen: dict[str, int] = {}
        out = []
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise InvalidNode(key_node, f"'{key_node.value}' is not a valid key in {what}")
            if key in seen:
                raise InvalidNode(key_node, f"'{key}' appears twice in {what} (first at line {seen[key]})")
            seen[key] = node_line(key_node)
            out.append((key, key_node, value_node))
        return out

    def items(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        """A list's items (their number is bounded by RuleLimits.max_list when the file is read)."""
        if not isinstance(node, yaml.SequenceNode):
            raise InvalidNode(node, f"{what} must be a list")
        if not node.value:
            raise InvalidNode(node, f"{what} must not be empty")
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
                raise InvalidNode(node, "a condition needs at least one field or all/any/not")
        except InvalidNode as bad:
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
                    raise InvalidNode(
                        key_node,
                        f"unknown field '{key}'{suggest(key, [*FIELDS, *COMBINATORS])}; fields: "
                        f"{', '.join(FIELDS)}; combinators: all, any, not",
                    )
            except InvalidNode as bad:
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
            raise InvalidNode(node, f"'{name}' needs an operator: {', '.join(OPERATORS[field.kind])}")
        return functools.reduce(operator.and_, parts)

    def scalar(self, name: str, field: Field, node: yaml.Node) -> object:
        """One comparison value of the field's kind, normalised (codes upper case, choices lower case)."""
        value = self.value(node)
        if field.kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidNode(node, f"'{name}' compares with whole numbers, not '{node.value}'")
            return value
        if field.kind == FLAG:
            if not isinstance(value, bool):
                raise InvalidNode(node, f"'{name}' is true or false, not '{node.value}'")
            return value
        if isinstance(value, bool):
            raise InvalidNode(node, f"'{name}' compares with text; '{node.value}' reads as true/false: quote it")
        if field.kind == CODE and isinstance(value, int):  # flight numbers are digits: 911
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise InvalidNode(node, f"'{name}' compares with text, not '{node.value}'")
        if field.kind == CHOICE:
            value = value.strip().lower()
            if value not in field.choices:
                raise InvalidNode(node, f"'{name}' is one of {', '.join(field.choices)}, not '{node.value}'")
            return value
        return value.strip().upper()

    def scalars(self, name: str, field: Field, node: yaml.Node) -> list:
        if isinstance(node, yaml.ScalarNode):
            return [self.scalar(name, field, node)]
        return [self.scalar(name, field, n) for n in self.items(node, f"the values of '{name}'")]

    def operation(self, name: str, field: Field, op: str, op_node: yaml.Node, node: yaml.Node) -> pl.Expr:
        if op not in OPERATORS[field.kind]:
            known = ", ".join(OPERATORS[field.kind])
            raise InvalidNode(op_node, f"unknown operator '{op}' for '{name}'{suggest(op, known.split(', '))}: {known}")
        col = pl.col(field.column)
        if op == "missing":
            flag = self.value(node)
            if not isinstance(flag, bool):
                raise InvalidNode(node, f"'missing' is true or false, not '{node.value}'")
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
                raise InvalidNode(node, "'between' takes two numbers: [lowest, highest], both included")
            low, high = (self.scalar(name, field, b) for b in bounds)
            if low > high:
                raise InvalidNode(node, f"'between' needs the lower bound first, got [{low}, {high}]")
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
            raise InvalidNode(node, f"'{key}' must be text")
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise InvalidNode(node, f"'{key}' is longer than {MAX_TEXT} characters")
        if pattern is not None and not pattern.fullmatch(value):
            raise InvalidNode(node, f"'{key}' '{value}' is not valid: {hint}")
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
        raise InvalidNode(node, f"'{key}' must be a date YYYY-MM-DD, not '{node.value}'")


def describe_fields() -> str:
    """Fields and their operators, for `apihub rules check --fields` and error messages."""
    lines = []
    for name, field in FIELDS.items():
        choices = f" ({' | '.join(field.choices)})" if field.choices else ""
        lines.append(f"{name:32} {field.kind}{choices}: {field.help}; operators: {', '.join(OPERATORS[field.kind])}")
    return "\n".join(lines)
