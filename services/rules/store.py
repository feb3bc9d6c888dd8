"""The rules every profiler runs, converged from the compacted rules topic (one record per owner member)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from services.rules.language import RuleLimits, RuleSet, parse_ruleset
from services.rules.rule import HUB_RULES, Rule


class RuleStore:
    """The latest rule set of every owner member (replace semantics), plus the hub-wide rules.

    Fed from the compacted rules topic: key = owner member code, value = the member's rule file (UTF-8 YAML),
    a tombstone clears the owner. Every profiler process replays the topic into a RuleStore and converges on
    the same rules. A record that does not validate raises and leaves the owner's previous rules in place.
    Records are read within ``limits`` (RuleLimits.from_settings: the limits RulesAdmin stored them under).
    """

    def __init__(
        self,
        hub_rules: Sequence[Rule] = HUB_RULES,
        compile_ruleset: Callable[[str, str, str | None], RuleSet] | None = None,
        limits: RuleLimits | None = None,
    ) -> None:
        self._hub = tuple(hub_rules)
        self._compile = compile_ruleset or functools.partial(parse_ruleset, limits=limits)
        self._sets: dict[str, RuleSet] = {}
        self._rules: tuple[Rule, ...] | None = None

    def apply(self, ruleset: RuleSet) -> str:
        """Replace the owner's rules with this set (no enabled rules: clear them); returns the owner."""
        owner = ruleset.owner.strip().upper()
        if not owner:
            raise ValueError("rule set has no owner")
        if ruleset.rules or ruleset.disabled:
            self._sets[owner] = ruleset
        else:
            self._sets.pop(owner, None)
        self._rules = None
        return owner

    def apply_record(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one record of the rules topic; raises ValueError / RulesetError for one that cannot be."""
        owner = (key or b"").decode("utf-8", errors="strict").strip().upper()
        if not owner:
            raise ValueError("rules record without an owner key")
        if value is None:
            self.clear(owner)
            return owner
        # The key names the owner: a file claiming another owner is refused (member=owner checks it).
        return self.apply(self._compile(value.decode("utf-8"), f"rules of {owner}", owner))

    def clear(self, owner: str) -> None:
        self._sets.pop(owner.strip().upper(), None)
        self._rules = None

    @property
    def owners(self) -> list[str]:
        return sorted(self._sets)

    def ruleset(self, owner: str) -> RuleSet | None:
        return self._sets.get(owner.strip().upper())

    def count(self, owner: str) -> int:
        found = self.ruleset(owner)
        return 0 if found is None else len(found.rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Hub-wide rules, then each owner's enabled rules (owners in code order): what score_batch takes."""
        if self._rules is None:
            self._rules = self._hub + tuple(r for o in sorted(self._sets) for r in self._sets[o].rules)
        return self._rules
