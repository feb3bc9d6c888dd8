"""Reading a rule file's YAML with bounds: size, characters, nesting, counts, tags, anchors; problems with lines.

A rule file comes from a member over gRPC (RulesAdmin) or from a file named on the command line, so it is checked
in time bounded by its size limit before anything is built from it:

1. its size in bytes (RuleLimits.max_bytes), before any parsing;
2. its characters: a NUL or another control character is refused with its line and column;
3. its YAML, read event by event by a parser that does not recurse (libyaml's, else PyYAML's own) under a
   composer that refuses, as each node arrives, nesting deeper than max_depth, more than max_rules rules, more
   than max_list items in one list or keys in one mapping, more than max_conditions conditions in the file,
   anchors and aliases (a tiny file could expand into billions of nodes: "billion laughs") and any tag the
   language does not define (!!python/name:, !!binary, !foo...). The node tree so built is bounded by the
   limits, and the rule language walks it (services.rules.language).

Every refusal is a RuleSourceError, a RulesetError whose one problem names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from services.errors import ConfigError
from services.userfiles import size_text

if TYPE_CHECKING:
    from services.config import HubSettings

# The tags a rule file may carry: none (plain values), YAML's non-specific '!', and the core schema's data types,
# which say no more than an unquoted value does. Anything else (!!python/*, !!binary, !!set, local !tags) is refused.
_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    {"!", *(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map"))}
)
# Characters a YAML stream may not hold (YAML 1.1's printable set, as PyYAML's reader checks it).
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Deepest nesting a setting may ask for: the composer recurses once per level, far below Python's own limit.
DEPTH_CEILING = 100


@dataclass(frozen=True)
class RuleLimits:
    """Bounds on one member's rule file (HubSettings.rules_*; the defaults are those settings' defaults)."""

    max_bytes: int = 256 * 1024  # the file's size in UTF-8 bytes
    max_depth: int = 32  # nesting of lists and mappings, the file's own top-level mapping being 1
    max_rules: int = 500  # rules in one member's file
    max_list: int = 1000  # items in any one list, keys in any one mapping
    max_conditions: int = 5000  # keys of the mappings under every rule's `when:` (fields, operators, all/any/not)

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= DEPTH_CEILING:
            raise ValueError(f"rule file depth must be between 1 and {DEPTH_CEILING}, not {self.max_depth}")
        for name in ("max_bytes", "max_rules", "max_list", "max_conditions"):
            if getattr(self, name) < 1:
                raise ValueError(f"rule file {name} must be at least 1")

    @classmethod
    def from_settings(cls, settings: HubSettings) -> RuleLimits:
        return cls(
            max_bytes=settings.rules_max_bytes,
            max_depth=settings.rules_max_depth,
            max_rules=settings.rules_max_rules,
            max_list=settings.rules_max_list_items,
            max_conditions=settings.rules_max_conditions,
        )


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


class RuleSourceError(RulesetError):
    """A file refused before its rules are read: over a limit, not text, not YAML, or YAML the language does not
    allow (tags, anchors). Its one problem names the line."""

    def __init__(self, source: str, line: int, message: str):
        super().__init__(source, [RuleProblem(line, "", message)])


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark | None, message: str):
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else 1
        self.message = message


def _shown_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
    return shown if len(shown) <= 60 else shown[:57] + "..."


class _Bounds:
    """Mixed into a safe loader: its composer checks every node against the limits before composing it (PyYAML's
    extension point compose_node), so an oversized or hostile file stops at its first node over a limit. The
    parser under it works event by event and is not recursive; the composer recurses once per level, at most
    max_depth."""

    def __init__(self, text: str, limits: RuleLimits):
        super().__init__(text)  # the loader's, next in the method order
        self._start(limits)

    def _start(self, limits: RuleLimits) -> None:
        self.limits = limits
        self._keys: list[str | None] = []  # the key each collection being composed sits under (None: none)
        self._in_when = 0
        self._conditions = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        self._check_event(event)
        if isinstance(parent, yaml.SequenceNode):
            is_rules = self._keys == [None, "rules"]
            limit = self.limits.max_rules if is_rules else self.limits.max_list
            if len(parent.value) >= limit:
                what = "rules in one file" if is_rules else "items in one list"
                raise _Refused(event.start_mark, f"more than {limit} {what}")
        elif isinstance(parent, yaml.MappingNode) and index is None:  # a key
            if len(parent.value) >= self.limits.max_list:
                raise _Refused(event.start_mark, f"more than {self.limits.max_list} keys in one mapping")
            if self._in_when:
                self._conditions += 1
                if self._conditions > self.limits.max_conditions:
                    raise _Refused(event.start_mark, f"more than {self.limits.max_conditions} conditions in one file")
        if isinstance(event, yaml.CollectionStartEvent) and len(self._keys) >= self.limits.max_depth:
            raise _Refused(event.start_mark, f"nested deeper than {self.limits.max_depth} levels")
        key = index.value if isinstance(parent, yaml.MappingNode) and isinstance(index, yaml.ScalarNode) else None
        when = int(key == "when")
        self._keys.append(key)
        self._in_when += when
        try:
            return super().compose_node(parent, index)
        finally:
            self._keys.pop()
            self._in_when -= when

    @staticmethod
    def _check_event(event: yaml.Event) -> None:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "YAML anchors and aliases (& and *) are not allowed in rule files")
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in ALLOWED_TAGS:
            raise _Refused(
                event.start_mark,
                f"YAML tag '{_shown_tag(tag)}' is not allowed in rule files (write plain values, without tags)",
            )


class _PyBoundedLoader(_Bounds, yaml.SafeLoader):
    """PyYAML's pure-Python parser: what a PyYAML built without libyaml has."""


_BoundedLoader: type[_Bounds] = _PyBoundedLoader
if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _CBoundedLoader(_Bounds, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's parser (C, several times faster than PyYAML's own) under PyYAML's composer, so that the
        bounds see every node; like SafeLoader, it constructs plain data only."""

        def __init__(self, text: str, limits: RuleLimits):
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start(limits)

    _BoundedLoader = _CBoundedLoader


def check_size(text: str, source: str, limits: RuleLimits) -> None:
    """Refuse a file over max_bytes (RuleSourceError): the first check, before anything else reads it."""
    # A character is 1 to 4 bytes in UTF-8: encode only when the count alone cannot tell.
    if len(text) > limits.max_bytes or (
        len(text) * 4 > limits.max_bytes and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes
    ):
        raise RuleSourceError(
            source, 1, f"rule file larger than {size_text(limits.max_bytes)} (APIHUB_RULES_MAX_BYTES)"
        )


def _check_characters(text: str, source: str) -> None:
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        char = bad.group()
        name = "NUL character" if char == "\x00" else "control character"
        raise RuleSourceError(
            source, line, f"{name} U+{ord(char):04X} at column {column}: a rule file is plain text (UTF-8)"
        )


def compose_rule_file(
    text: str, source: str, limits: RuleLimits
) -> tuple[yaml.Node | None, yaml.constructor.SafeConstructor]:
    """The file's YAML node tree (None for an empty file) and the constructor that reads its scalars' values.

    Raises RuleSourceError for a file over a limit, with characters a text file does not hold, that is not
    YAML, or that uses YAML the language does not allow.
    """
    check_size(text, source, limits)
    _check_characters(text, source)
    loader = _BoundedLoader(text, limits)
    try:
        return loader.get_single_node(), loader
    except _Refused as refused:
        raise RuleSourceError(source, refused.line, refused.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own bound (1000), met while scanning ahead
            raise RuleSourceError(source, line, f"nested deeper than {limits.max_depth} levels") from None
        raise RuleSourceError(source, line, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RuleSourceError(source, 1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
