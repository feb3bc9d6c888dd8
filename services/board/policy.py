"""Members' board policies: the data that turns a hit's reasons into a directive for the carrier (interactive API).

A board policy is one member's YAML file (template: services/data/board_policy.yaml, `template_text()`):

    version: 1
    member: FJI
    fallback: CONTACT_AUTHORITY
    require: [date_of_birth, document_number, nationality]
    do_not_board:
      - watchlist: {categories: [wanted, terrorism], min_score: 0.9}
      - document: {categories: [lost, stolen]}
    contact_authority:
      - watchlist: {min_score: 0.8}
      - rule: [FJI-OVERSTAY-RISK, HUB-DOC-EXPIRED]
    messages:
      DO_NOT_BOARD: "DO NOT BOARD - CALL FIJI IMMIGRATION +679 000 0000"

BoardPolicy.decide gives DO_NOT_BOARD when any `do_not_board` condition matches one of the reasons, else
CONTACT_AUTHORITY when any `contact_authority` condition does, else OK_TO_BOARD. The conditions:

    watchlist  a watchlist reason (name or document match) of the member's own lists (`owners:` default: the
               member; `owners: any` or a list of member codes), in `categories` (omitted: any; compared
               case-insensitively), with a score at or above `min_score` (required, 0..1)
    document   a watchlist reason whose document number matched (document_match), same owners and categories,
               `min_score` optional (default 0)
    rule       a rule reason with one of these ids (case-insensitive), owned by the member or hub-wide (owner "")

Model reasons never trigger anything: the model only ranks travellers for a human review, it never decides; a
`model:` condition is refused. The default policy (no file loaded) answers OK_TO_BOARD: the hub never invents a
refusal the member did not set. `fallback` is what the carrier is told when the hub cannot screen in time (broker
down, lists loading, the deadline): CONTACT_AUTHORITY or DO_NOT_BOARD, never OK_TO_BOARD (the hub never gives a
silent OK). `require` lists the fields every traveller must have, else INSUFFICIENT_DATA with the missing ones
(BoardPolicy.missing). `messages` are the member's free text for the carrier's agent (printable ASCII, at most
70 characters: one CUSRES FTX line).

A file is read like a rule file, with the same bounded YAML reader (services.rules.source: size first, then
characters, nesting, counts, no tags or anchors) and node reader (services.rules.conditions); every problem is a
FieldViolation naming its line, and PolicyError lists them all. PolicyStore holds every member's policy, fed from
the compacted board-policies topic like RuleStore is from the rules topic.

Platform code: imports no service.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING

import yaml

from services.errors import ConfigError
from services.geo import is_country
from services.rules.conditions import InvalidNode, NodeReader, node_line, suggest
from services.rules.source import RuleLimits, RuleSourceError, compose_rule_file
from services.userfiles import size_text
from services.wire import check_pb2, hit_pb2, intake_pb2, manifest_pb2

if TYPE_CHECKING:
    from services.config import HubSettings

__all__ = [
    "DEFAULT_MESSAGES",
    "DIRECTIVE_ORDER",
    "PLACEHOLDER_MEMBER",
    "REQUIRE_FIELDS",
    "BoardPolicy",
    "Condition",
    "PolicyError",
    "PolicyLimits",
    "PolicyStore",
    "default_policy",
    "directive_name",
    "most_restrictive",
    "parse_directive",
    "parse_policy",
    "template_text",
]

# -- directives ------------------------------------------------------------------------------------------------

# Most restrictive first: the order in which directives of several members (or of several causes) combine.
DIRECTIVE_ORDER: tuple[int, ...] = (
    check_pb2.DIRECTIVE_DO_NOT_BOARD,
    check_pb2.DIRECTIVE_CONTACT_AUTHORITY,
    check_pb2.DIRECTIVE_INSUFFICIENT_DATA,
    check_pb2.DIRECTIVE_OK_TO_BOARD,
)
_RANK = {directive: rank for rank, directive in enumerate(DIRECTIVE_ORDER)}
_PREFIX = "DIRECTIVE_"
# What the carrier's agent is shown when the member set no message of its own.
DEFAULT_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        check_pb2.DIRECTIVE_OK_TO_BOARD: "OK TO BOARD",
        check_pb2.DIRECTIVE_DO_NOT_BOARD: "DO NOT BOARD",
        check_pb2.DIRECTIVE_CONTACT_AUTHORITY: "CONTACT AUTHORITY",
        check_pb2.DIRECTIVE_INSUFFICIENT_DATA: "INSUFFICIENT DATA",
    }
)
# The fallbacks a member may choose: never OK_TO_BOARD (no silent OK), nor INSUFFICIENT_DATA (not about data).
_FALLBACKS = (check_pb2.DIRECTIVE_CONTACT_AUTHORITY, check_pb2.DIRECTIVE_DO_NOT_BOARD)


def directive_name(directive: int) -> str:
    """ "DO_NOT_BOARD" for DIRECTIVE_DO_NOT_BOARD; "UNSPECIFIED" for 0, "UNKNOWN_<n>" for a number not in the enum."""
    try:
        return check_pb2.Directive.Name(directive).removeprefix(_PREFIX)
    except ValueError:
        return f"UNKNOWN_{directive}"


def parse_directive(name: str) -> int:
    """The directive named "DO_NOT_BOARD" (case-insensitive, "DIRECTIVE_" prefix optional); ValueError otherwise."""
    key = str(name).strip().upper().replace(" ", "_").removeprefix(_PREFIX)
    try:
        directive = check_pb2.Directive.Value(_PREFIX + key)
    except ValueError:
        directive = None
    if directive not in _RANK:
        names = ", ".join(directive_name(d) for d in DIRECTIVE_ORDER)
        raise ValueError(f"unknown directive '{name}': {names}")
    return directive


def most_restrictive(directives: Iterable[int]) -> int:
    """The most restrictive of the directives (DIRECTIVE_ORDER); none at all: OK_TO_BOARD.

    An UNSPECIFIED or unknown directive raises ValueError: it is a bug upstream, never read as a permission.
    """
    best = check_pb2.DIRECTIVE_OK_TO_BOARD
    for directive in directives:
        rank = _RANK.get(directive)
        if rank is None:
            raise ValueError(f"not a directive: {directive_name(directive)}")
        if rank < _RANK[best]:
            best = directive
    return best


# -- the policy --------------------------------------------------------------------------------------------------

# The fields `require:` may name, and where each sits in the Manifest. A document field is read from the
# traveller's travel document: its first document that is not a visa (else its first; documents[0] if none).
REQUIRE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "surname": "surname",
        "given_names": "given_names",
        "date_of_birth": "date_of_birth",
        "sex": "sex",
        "nationality": "nationality",
        "document_number": "number",
        "document_type": "type",
        "document_issuing_state": "issuing_state",
        "document_expiry": "expiry",
        "passenger_ref": "passenger_ref",
    }
)

# Kinds of condition (and the refused `model`).
WATCHLIST, DOCUMENT, RULE = "watchlist", "document", "rule"
CONDITION_KINDS = (WATCHLIST, DOCUMENT, RULE)


@dataclass(frozen=True)
class Condition:
    """One condition of a policy's `do_not_board` or `contact_authority` list.

    owners: member codes whose reasons count (None: any owner; rule conditions: the member and hub-wide "").
    categories: casefolded categories (None: any). rule_ids: the casefolded rule ids of a `rule` condition.
    """

    kind: str
    label: str  # "do_not_board[0] watchlist": where it is in the file, without any personal data
    owners: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    min_score: float = 0.0
    rule_ids: frozenset[str] = frozenset()

    def matches(self, reason: hit_pb2.Reason) -> bool:
        if self.kind == RULE:
            return (
                reason.source == hit_pb2.REASON_SOURCE_RULE
                and reason.id.strip().casefold() in self.rule_ids
                and (self.owners is None or reason.owner.strip().upper() in self.owners)
            )
        if reason.source != hit_pb2.REASON_SOURCE_WATCHLIST:  # model reasons never trigger anything
            return False
        if self.kind == DOCUMENT and not reason.document_match:
            return False
        if self.owners is not None and reason.owner.strip().upper() not in self.owners:
            return False
        if self.categories is not None and reason.category.strip().casefold() not in self.categories:
            return False
        return reason.score >= self.min_score


@dataclass(frozen=True)
class BoardPolicy:
    """One member's board policy (parse_policy), or the default one (default_policy: no conditions)."""

    owner: str
    digest: str
    fallback: int
    require: tuple[str, ...]
    messages: Mapping[int, str]
    do_not_board: tuple[Condition, ...] = ()
    contact_authority: tuple[Condition, ...] = ()
    source: str = field(default="", compare=False)

    def decide(self, reasons: Sequence[hit_pb2.Reason]) -> int:
        """DO_NOT_BOARD if any do_not_board condition matches a reason, else CONTACT_AUTHORITY if any
        contact_authority condition does, else OK_TO_BOARD. Model reasons never match a condition: the model
        ranks for review and never decides. Missing data (INSUFFICIENT_DATA, `missing`) is the caller's to add."""
        if any(c.matches(r) for c in self.do_not_board for r in reasons):
            return check_pb2.DIRECTIVE_DO_NOT_BOARD
        if any(c.matches(r) for c in self.contact_authority for r in reasons):
            return check_pb2.DIRECTIVE_CONTACT_AUTHORITY
        return check_pb2.DIRECTIVE_OK_TO_BOARD

    def matched(self, reasons: Sequence[hit_pb2.Reason]) -> list[str]:
        """Labels of the conditions that match some reason, in file order ("do_not_board[0] watchlist"), for the
        audit trail: they name the file's condition, never a reason's id, name or list entry."""
        return [c.label for c in (*self.do_not_board, *self.contact_authority) if any(c.matches(r) for r in reasons)]

    def missing(self, traveller: manifest_pb2.Traveller, index: int) -> list[str]:
        """The required fields the traveller lacks, as Manifest paths in `require` order
        ("travellers[2].date_of_birth", "travellers[2].documents[0].number"). A partial date counts when its
        year is known (birth dates on documents often are: "1980")."""
        if not self.require:
            return []
        base = f"travellers[{index}]"
        doc_index = _travel_document(traveller)
        document = traveller.documents[doc_index] if doc_index < len(traveller.documents) else None
        out = []
        for name in self.require:
            attribute = REQUIRE_FIELDS[name]
            if name.startswith("document_"):
                if document is None or not _present(getattr(document, attribute)):
                    out.append(f"{base}.documents[{doc_index}].{attribute}")
            elif not _present(getattr(traveller, attribute)):
                out.append(f"{base}.{attribute}")
        return out

    def message(self, directive: int) -> str:
        """The member's text for the carrier's agent, or the default ("DO NOT BOARD"...)."""
        text = self.messages.get(directive)
        return text if text else DEFAULT_MESSAGES.get(directive, directive_name(directive).replace("_", " "))


def _travel_document(traveller: manifest_pb2.Traveller) -> int:
    for j, document in enumerate(traveller.documents):
        if document.type != manifest_pb2.DOCUMENT_TYPE_VISA:
            return j
    return 0


def _present(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, manifest_pb2.PartialDate):
        return value.year > 0
    return bool(value)  # enums: 0 is UNSPECIFIED


def default_policy(owner: str) -> BoardPolicy:
    """The policy of a member that loaded none: no condition, so decide() always answers OK_TO_BOARD (the hub
    never invents a refusal the member did not set); fallback CONTACT_AUTHORITY; nothing required."""
    return BoardPolicy(
        owner=owner.strip().upper(),
        digest="",
        fallback=check_pb2.DIRECTIVE_CONTACT_AUTHORITY,
        require=(),
        messages=MappingProxyType({}),
    )


# -- reading a file ----------------------------------------------------------------------------------------------

# The member code the template carries: the member loading it replaces it (or loads it with owner=...).
PLACEHOLDER_MEMBER = "MEMBER"
FILE_KEYS = ("version", "member", "fallback", "require", "do_not_board", "contact_authority", "messages")
SECTIONS = ("do_not_board", "contact_authority")  # the lists of conditions, most restrictive first
FORMAT_VERSION = 1
_CONDITION_KEYS = {
    WATCHLIST: ("owners", "categories", "min_score"),
    DOCUMENT: ("owners", "categories", "min_score"),
}
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # the rule language's ids
_MAX_CATEGORY = 64
# What a carrier's screen and a CUSRES FTX segment carry: printable ASCII.
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class PolicyLimits:
    """Bounds on one member's board policy file: small, so constants (no settings)."""

    max_bytes: int = 64 * 1024  # the file's size in UTF-8 bytes
    max_depth: int = 8  # nesting of lists and mappings, the file's top-level mapping being 1
    max_list: int = 256  # items in any one list (categories, rule ids...), keys in any one mapping
    max_conditions: int = 256  # conditions of do_not_board and contact_authority together
    max_message: int = 70  # characters of one message: a CUSRES FTX line

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= 100:
            raise ValueError(f"board policy depth must be between 1 and 100, not {self.max_depth}")
        for name in ("max_bytes", "max_list", "max_conditions", "max_message"):
            if getattr(self, name) < 1:
                raise ValueError(f"board policy {name} must be at least 1")

    @classmethod
    def from_settings(cls, settings: HubSettings) -> PolicyLimits:
        return cls()

    def rule_limits(self) -> RuleLimits:
        """The same bounds for the shared YAML reader (services.rules.source)."""
        return RuleLimits(
            max_bytes=self.max_bytes,
            max_depth=self.max_depth,
            max_rules=self.max_list,
            max_list=self.max_list,
            max_conditions=self.max_list,
        )


class PolicyError(ConfigError, ValueError):
    """A board policy that does not validate: .problems lists every problem, in line order, each a FieldViolation
    whose field is "line N" (code: a stable word such as unknown_key, description: what is wrong)."""

    def __init__(self, source: str, problems: list[intake_pb2.FieldViolation]):
        self.source = source
        self.problems = sorted(problems, key=lambda p: (_line_of(p.field), p.description))
        super().__init__("\n".join(f"{source}: {p.field}: {p.description}" for p in self.problems))


def _line_of(field_name: str) -> int:
    number = field_name.removeprefix("line ")
    return int(number) if number.isdigit() else 0


def _violation(line: int, code: str, description: str) -> intake_pb2.FieldViolation:
    return intake_pb2.FieldViolation(field=f"line {line}", code=code, description=description)


class _Bad(InvalidNode):
    def __init__(self, node: yaml.Node, code: str, message: str):
        super().__init__(node, message)
        self.code = code


def _reworded(message: str) -> str:
    """The shared reader's refusal, about a board policy rather than a rule file."""
    return message.replace("rule files", "board policies").replace("rule file", "board policy")


def _source_code(message: str) -> str:
    if message.startswith(("nested deeper", "more than")):
        return "too_large"
    if "character" in message and "plain text" in message:
        return "invalid_text"
    return "invalid_yaml"


def parse_policy(text: str, source: str, owner: str | None = None, limits: PolicyLimits | None = None) -> BoardPolicy:
    """Validate one member's board policy; raises PolicyError listing every problem with its line.

    owner, when given, is the member loading the file: the file's `member:` must equal it (the template's
    placeholder MEMBER becomes it). The file is read within limits (default PolicyLimits()) by the rule files'
    bounded reader before anything is built from it.
    """
    limits = limits or PolicyLimits()
    owner = owner.strip().upper() if owner else None
    if len(text) > limits.max_bytes or (
        len(text) * 4 > limits.max_bytes and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes
    ):
        raise PolicyError(
            source, [_violation(1, "too_large", f"board policy larger than {size_text(limits.max_bytes)}")]
        )
    try:
        root, constructor = compose_rule_file(text, source, limits.rule_limits())
    except RuleSourceError as exc:
        raise PolicyError(
            source,
            [_violation(p.line, _source_code(p.message), _reworded(p.message)) for p in exc.problems],
        ) from None
    if root is None:
        raise PolicyError(source, [_violation(1, "required", "empty file: expected 'version: 1' and 'member:'")])
    reader = _PolicyReader(NodeReader(constructor), owner, limits, source)
    policy = reader.read(root, text)
    if reader.problems:
        raise PolicyError(source, reader.problems)
    return policy


class _PolicyReader:
    def __init__(self, nodes: NodeReader, owner: str | None, limits: PolicyLimits, source: str):
        self.nodes = nodes
        self.owner = owner
        self.limits = limits
        self.source = source
        self.problems: list[intake_pb2.FieldViolation] = []
        self.conditions = 0

    def problem(self, node: yaml.Node, code: str, message: str) -> None:
        self.problems.append(_violation(node_line(node), code, message))

    def bad(self, exc: InvalidNode) -> None:
        self.problem(exc.node, getattr(exc, "code", "invalid_value"), exc.message)

    def read(self, root: yaml.Node, text: str) -> BoardPolicy:
        try:
            pairs = {key: (k, v) for key, k, v in self.nodes.pairs(root, "a board policy")}
        except InvalidNode as exc:
            self.bad(exc)
            return default_policy(self.owner or "")
        for key, (key_node, _) in pairs.items():
            if key not in FILE_KEYS:
                self.problem(
                    key_node, "unknown_key", f"unknown key '{key}'{suggest(key, FILE_KEYS)}: {', '.join(FILE_KEYS)}"
                )
        for key in ("version", "member"):
            if key not in pairs:
                self.problem(root, "required", f"missing '{key}:'")
        member = self.owner or ""
        sections: dict[str, tuple[Condition, ...]] = {}
        readers = {
            "version": self.version,
            "fallback": self.fallback,
            "require": self.require,
            "messages": self.messages,
        }
        if "member" in pairs:
            try:
                member = self.member(pairs["member"][1])
            except InvalidNode as exc:
                self.bad(exc)
        values: dict[str, object] = {}
        for key in FILE_KEYS:
            if key == "member" or key not in pairs:
                continue
            node = pairs[key][1]
            try:
                if key in SECTIONS:
                    sections[key] = self.section(key, node, member)
                else:
                    values[key] = readers[key](node)
            except InvalidNode as exc:
                self.bad(exc)
        return BoardPolicy(
            owner=member,
            digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12],
            fallback=values.get("fallback", check_pb2.DIRECTIVE_CONTACT_AUTHORITY),  # type: ignore[arg-type]
            require=values.get("require", ()),  # type: ignore[arg-type]
            messages=MappingProxyType(values.get("messages", {})),  # type: ignore[arg-type]
            do_not_board=sections.get("do_not_board", ()),
            contact_authority=sections.get("contact_authority", ()),
            source=self.source,
        )

    # -- top-level keys

    def version(self, node: yaml.Node) -> int:
        value = self.nodes.value(node)
        if isinstance(value, bool) or value != FORMAT_VERSION:
            raise _Bad(node, "unsupported_version", f"'version' must be {FORMAT_VERSION}, not '{_shown(node)}'")
        return FORMAT_VERSION

    def member(self, node: yaml.Node) -> str:
        value = self.nodes.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            raise _Bad(node, "invalid_value", "'member' must be your member code (ISO 3166-1 alpha-3)")
        code = value.strip().upper()
        if code == PLACEHOLDER_MEMBER:
            if not self.owner:
                raise _Bad(
                    node,
                    "invalid_member",
                    f"member '{PLACEHOLDER_MEMBER}' is the template placeholder: put your member code",
                )
            return self.owner
        if not is_country(code):
            raise _Bad(node, "invalid_member", f"member '{_clip(code)}' is not an ISO 3166-1 alpha-3 member code")
        if self.owner and code != self.owner:
            raise _Bad(
                node, "owner_mismatch", f"member '{code}' differs from the member loading the policy ({self.owner})"
            )
        return code

    def fallback(self, node: yaml.Node) -> int:
        directive = self.directive(node, "fallback")
        if directive not in _FALLBACKS:
            raise _Bad(
                node,
                "refused_directive",
                f"'fallback' must be CONTACT_AUTHORITY or DO_NOT_BOARD, not {directive_name(directive)}: "
                "the hub never gives a silent OK when it could not screen",
            )
        return directive

    def directive(self, node: yaml.Node, what: str) -> int:
        value = self.nodes.value(node)
        if not isinstance(value, str):
            raise _Bad(node, "unknown_directive", f"{what}: '{_shown(node)}' is not a directive name")
        try:
            return parse_directive(value)
        except ValueError:
            names = ", ".join(directive_name(d) for d in DIRECTIVE_ORDER)
            raise _Bad(node, "unknown_directive", f"{what}: unknown directive '{_clip(value)}' ({names})") from None

    def require(self, node: yaml.Node) -> tuple[str, ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise _Bad(node, "invalid_value", "'require' must be a list of field names")
        out: list[str] = []
        for item in node.value:
            try:
                name = self.nodes.value(item)
                if not isinstance(name, str) or name.strip() not in REQUIRE_FIELDS:
                    shown = _clip(str(name))
                    raise _Bad(
                        item,
                        "unknown_field",
                        f"require: unknown field '{shown}'{suggest(shown, REQUIRE_FIELDS)}: "
                        + ", ".join(REQUIRE_FIELDS),
                    )
                name = name.strip()
                if name in out:
                    raise _Bad(item, "duplicate", f"require: '{name}' is listed twice")
                out.append(name)
            except InvalidNode as exc:
                self.bad(exc)
        return tuple(out)

    def messages(self, node: yaml.Node) -> dict[int, str]:
        if _is_null(node):
            return {}
        out: dict[int, str] = {}
        for _, key_node, value_node in self.nodes.pairs(node, "'messages'"):
            try:
                directive = self.directive(key_node, "messages")
                text = self.nodes.value(value_node)
                name = directive_name(directive)
                if not isinstance(text, str) or not text.strip():
                    raise _Bad(value_node, "invalid_value", f"messages.{name} must be text")
                text = text.strip()
                if not _PRINTABLE.fullmatch(text):
                    raise _Bad(
                        value_node,
                        "non_printable",
                        f"messages.{name} has characters a carrier's screen may not show: printable ASCII only",
                    )
                if len(text) > self.limits.max_message:
                    raise _Bad(
                        value_node,
                        "message_too_long",
                        f"messages.{name} is {len(text)} characters long, at most {self.limits.max_message}",
                    )
                if directive in out:
                    raise _Bad(key_node, "duplicate", f"messages: {name} is given twice")
                out[directive] = text
            except InvalidNode as exc:
                self.bad(exc)
        return out

    # -- conditions

    def section(self, key: str, node: yaml.Node, member: str) -> tuple[Condition, ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise _Bad(node, "invalid_value", f"'{key}' must be a list of conditions")
        out = []
        for i, item in enumerate(node.value):
            self.conditions += 1
            if self.conditions > self.limits.max_conditions:
                raise _Bad(
                    item, "too_many_conditions", f"more than {self.limits.max_conditions} conditions in one policy"
                )
            try:
                out.append(self.condition(f"{key}[{i}]", item, member))
            except InvalidNode as exc:
                self.bad(exc)
        return tuple(out)

    def condition(self, path: str, node: yaml.Node, member: str) -> Condition:
        pairs = self.nodes.pairs(node, f"{path} (a condition)") if isinstance(node, yaml.MappingNode) else None
        if not pairs or len(pairs) != 1:
            raise _Bad(
                node,
                "invalid_value",
                f"{path} must be one condition: watchlist: {{...}}, document: {{...}} or rule: [ids]",
            )
        [(kind, key_node, value_node)] = pairs
        label = f"{path} {kind}"
        if kind == "model":
            raise _Bad(
                key_node,
                "model_condition",
                f"{path}: a model condition is not allowed: the model only ranks travellers for a human review, "
                "it never decides boarding (use watchlist, document or rule)",
            )
        if kind == RULE:
            return Condition(RULE, label, owners=frozenset({member, ""}), rule_ids=self.rule_ids(path, value_node))
        if kind not in _CONDITION_KEYS:
            raise _Bad(
                key_node,
                "unknown_key",
                f"{path}: unknown condition '{_clip(kind)}'{suggest(kind, CONDITION_KINDS)}: "
                + ", ".join(CONDITION_KINDS),
            )
        where = f"{path}.{kind}"
        options = {} if _is_null(value_node) else {k: (kn, v) for k, kn, v in self.nodes.pairs(value_node, where)}
        allowed = _CONDITION_KEYS[kind]
        for option, (option_node, _) in options.items():
            if option not in allowed:
                raise _Bad(
                    option_node,
                    "unknown_key",
                    f"{where}: unknown key '{_clip(option)}'{suggest(option, allowed)}: {', '.join(allowed)}",
                )
        if kind == WATCHLIST and "min_score" not in options:
            raise _Bad(value_node, "required", f"{where}: 'min_score' is required (0 to 1)")
        owners: frozenset[str] | None = frozenset({member})
        categories = None
        min_score = 0.0
        if "owners" in options:
            owners = self.owners(where, options["owners"][1])
        if "categories" in options:
            categories = self.categories(where, options["categories"][1])
        if "min_score" in options:
            min_score = self.score(where, options["min_score"][1])
        return Condition(kind, label, owners=owners, categories=categories, min_score=min_score)

    def rule_ids(self, path: str, node: yaml.Node) -> frozenset[str]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise _Bad(node, "invalid_value", f"{path}.rule must be a list of rule ids, e.g. [HUB-DOC-EXPIRED]")
        ids = set()
        for item in node.value:
            value = self.nodes.value(item)
            if not isinstance(value, str) or not _RULE_ID.fullmatch(value.strip()):
                raise _Bad(
                    item,
                    "invalid_value",
                    f"{path}.rule: '{_shown(item)}' is not a rule id (letters, digits, '.', '_' and '-', at most 64)",
                )
            ids.add(value.strip().casefold())
        return frozenset(ids)

    def owners(self, where: str, node: yaml.Node) -> frozenset[str] | None:
        if isinstance(node, yaml.ScalarNode):
            if str(node.value).strip().lower() == "any":
                return None
            raise _Bad(node, "invalid_value", f"{where}.owners must be 'any' or a list of member codes")
        codes = set()
        for item in self.nodes.items(node, f"{where}.owners"):
            value = self.nodes.value(item)
            code = value.strip().upper() if isinstance(value, str) else ""
            if not is_country(code):
                raise _Bad(
                    item, "invalid_member", f"{where}.owners: '{_shown(item)}' is not a member code (ISO alpha-3)"
                )
            codes.add(code)
        return frozenset(codes)

    def categories(self, where: str, node: yaml.Node) -> frozenset[str]:
        out = set()
        for item in self.nodes.items(node, f"{where}.categories (omit it for any category)"):
            value = self.nodes.value(item)
            if (
                not isinstance(value, str)
                or not value.strip()
                or len(value.strip()) > _MAX_CATEGORY
                or not _PRINTABLE.fullmatch(value)
            ):
                raise _Bad(
                    item, "invalid_value", f"{where}.categories: '{_shown(item)}' is not a category (text, at most 64)"
                )
            out.add(value.strip().casefold())
        return frozenset(out)

    def score(self, where: str, node: yaml.Node) -> float:
        value = self.nodes.value(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(node, "invalid_value", f"{where}.min_score must be a number from 0 to 1, not '{_shown(node)}'")
        if not 0 <= value <= 1:  # NaN fails too
            raise _Bad(node, "out_of_range", f"{where}.min_score must be from 0 to 1, not {_shown(node)}")
        return float(value)


def _is_null(node: yaml.Node) -> bool:
    """`key:` with nothing under it (or ~, null): the resolver tags it null; a quoted "" stays text."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _clip(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _shown(node: yaml.Node) -> str:
    return _clip(str(node.value)) if isinstance(node, yaml.ScalarNode) else "a list or mapping"


def template_text(member: str | None = None) -> str:
    """services/data/board_policy.yaml, the starter template; with member, its code replaces the placeholder."""
    text = resources.files("services.data").joinpath("board_policy.yaml").read_text(encoding="utf-8")
    if member:
        text = re.sub(
            rf"^member: {PLACEHOLDER_MEMBER}\b.*$", f"member: {member.strip().upper()}", text, count=1, flags=re.M
        )
    return text


# -- the store ---------------------------------------------------------------------------------------------------


class PolicyStore:
    """The latest board policy of every member, fed from the compacted board-policies topic.

    key = member code, value = the policy YAML (UTF-8); a tombstone clears the member (default policy again).
    A record that does not validate raises (PolicyError, ValueError) and leaves the member's previous policy in
    place. `version` increases on every record applied (a cache keyed on it sees every change). Safe to read from
    other threads while one thread applies records.
    """

    def __init__(self, limits: PolicyLimits | None = None) -> None:
        self._limits = limits or PolicyLimits()
        self._policies: dict[str, BoardPolicy] = {}
        self._version = 0
        self._lock = threading.Lock()

    def apply_record(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one record; returns the member. The key names the member: a file naming another is refused."""
        owner = (key or b"").decode("utf-8", errors="strict").strip().upper()
        if not owner:
            raise ValueError("board policy record without a member key")
        if value is None:
            self.clear(owner)
            return owner
        policy = parse_policy(value.decode("utf-8", errors="strict"), f"board policy of {owner}", owner, self._limits)
        with self._lock:
            self._policies[owner] = policy
            self._version += 1
        return owner

    def clear(self, owner: str) -> None:
        with self._lock:
            self._policies.pop(owner.strip().upper(), None)
            self._version += 1

    def policy(self, owner: str) -> BoardPolicy:
        """The member's policy; default_policy(owner) when it loaded none."""
        code = owner.strip().upper()
        found = self._policies.get(code)
        return found if found is not None else default_policy(code)

    def loaded(self, owner: str) -> BoardPolicy | None:
        """The member's loaded policy, None when it loaded none."""
        return self._policies.get(owner.strip().upper())

    @property
    def owners(self) -> list[str]:
        """Members with a policy loaded, in code order."""
        return sorted(self._policies)

    @property
    def version(self) -> int:
        return self._version
