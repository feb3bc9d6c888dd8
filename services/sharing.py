"""The sharing policy: which owners of watchlist entries and rules may receive hits outside their jurisdiction.

The legal basis for sharing between members is a signed arrangement, so it is explicit data (a YAML file),
never code: an owner receives a hit its entry or rule raised on another member's flight only when an
arrangement lists the owner and every member with jurisdiction over that flight, and covers that kind of reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from services.directory import Directory
from services.errors import ConfigError
from services.wire import hit_pb2

KINDS = {"watchlist": hit_pb2.REASON_SOURCE_WATCHLIST, "rule": hit_pb2.REASON_SOURCE_RULE}


@dataclass(frozen=True)
class Arrangement:
    name: str
    parties: frozenset[str]
    shares: frozenset[int]


@dataclass(frozen=True)
class SharingPolicy:
    arrangements: tuple[Arrangement, ...]

    def allows(self, owner: str, source: int, jurisdiction: set[str]) -> bool:
        """May ``owner`` receive a hit its ``source`` reason raised on a flight of these members?"""
        return any(source in a.shares and owner in a.parties and jurisdiction <= a.parties for a in self.arrangements)

    def owner_recipients(self, hit: hit_pb2.Hit, jurisdiction: set[str]) -> set[str]:
        owners = {(r.owner, r.source) for r in hit.reasons if r.owner and r.owner not in jurisdiction}
        return {owner for owner, source in owners if jurisdiction and self.allows(owner, source, jurisdiction)}


NO_SHARING = SharingPolicy(())


def parse_policy(text: str, source: str, directory: Directory) -> SharingPolicy:
    data = yaml.safe_load(text) or {}
    arrangements = []
    for i, raw in enumerate(data.get("arrangements") or []):
        where = f"{source}: arrangements[{i}]"
        parties = {str(p).upper() for p in raw.get("parties") or []}
        unknown = sorted(p for p in parties if p not in directory)
        if unknown:
            raise ConfigError(f"{where}: parties {unknown} are not members of the directory")
        kinds = [str(k) for k in raw.get("shares") or []]
        bad = sorted(k for k in kinds if k not in KINDS)
        if bad or not kinds:
            raise ConfigError(f"{where}: shares must list some of {sorted(KINDS)}, not {bad or 'nothing'}")
        arrangements.append(
            Arrangement(
                str(raw.get("name", f"arrangement {i}")), frozenset(parties), frozenset(KINDS[k] for k in kinds)
            )
        )
    return SharingPolicy(tuple(arrangements))


def load_policy(path: Path | None, directory: Directory) -> SharingPolicy:
    if path is None:
        text = resources.files("services.data").joinpath("sharing.yaml").read_text()
        return parse_policy(text, "sharing.yaml (shipped)", directory)
    return parse_policy(Path(path).read_text(), str(path), directory)
