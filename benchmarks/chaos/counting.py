"""How the fault suite counts: what members should have been shown (from what carriers got receipts for), and what
they were shown (lost, shown twice, leaked), and how long the hub took to recover. Pure functions over plain
records, so the counting itself is tested on made-up delivery logs (tests/benchmarks/test_chaos.py).

A hit reaches a member as up to three versions here: as first raised (FIRST), updated by a change message that
corrects the traveller's data (AMENDED), and withdrawn by a change that cancels the traveller's reservation
(WITHDRAWN). A member is entitled to a hit when it has jurisdiction over a port of the flight's route (the suite runs
the hub without sharing arrangements, so jurisdiction is the whole rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

FIRST, AMENDED, WITHDRAWN = "first", "amended", "withdrawn"
# Receipt statuses that mean the hub holds the manifest (a retry of a stored manifest is answered duplicate).
HELD = frozenset({"accepted", "duplicate"})
# The channel whose repeats are the member system's to drop, by the delivery contract: a webhook POST may come
# again after a crash, with the same (hit id, version), and the member's system de-duplicates it. A repeat there is
# counted as redelivered, not as shown twice; a repeat in a tool that shows hits to people is shown twice.
DEDUPLICATED_CHANNELS = frozenset({"webhook"})


@dataclass
class Submission:
    """One manifest a carrier sent in a scenario, and what became of it."""

    seq: int
    # FIRST: an original manifest; AMENDED: a change correcting a traveller (CP); WITHDRAWN: a change cancelling
    # a traveller's reservation (XR).
    kind: str
    # The hits it raises (FIRST), updates (AMENDED) or withdraws (WITHDRAWN): only travellers on a watchlist.
    hit_ids: tuple[str, ...]
    route: tuple[str, ...]
    # The submission this one changes (its original): sent only once that one is held.
    after: int | None = None
    first_try: float | None = None  # monotonic seconds
    receipt_at: float | None = None
    # accepted, duplicate (a retry of a manifest already stored), rejected, unconfirmed (no receipt before the
    # suite gave up), failed (a call refused for another reason), skipped (its original was never held), not sent
    status: str = "not sent"
    tries: int = 0

    @property
    def held(self) -> bool:
        return self.status in HELD


@dataclass(frozen=True)
class Expected:
    member: str
    hit_id: str
    kind: str


@dataclass(frozen=True)
class Shown:
    """One hit a member's tool showed (or its webhook endpoint accepted with a 2xx) at ``at`` (monotonic s)."""

    at: float
    member: str
    # grpc (services.client.Follower), cli (`apihub hits follow --json`), webhook
    channel: str
    hit_id: str
    # "v<n>" from Hit.version; "fp:<digest>" of the hit's content where the copy carries no version
    version: str
    kind: str
    route: tuple[str, ...]

    @property
    def key(self) -> Expected:
        return Expected(self.member, self.hit_id, self.kind)


@dataclass
class Tally:
    expected: int = 0
    delivered: int = 0  # expected deliveries shown at least once
    lost: list[Expected] = field(default_factory=list)
    leaked: list[Shown] = field(default_factory=list)
    # Shown to an entitled member though no receipt announced it (e.g. a manifest stored whose receipt never came).
    extra: list[Shown] = field(default_factory=list)


Entitled = Callable[[str, tuple[str, ...]], bool]


def expected_deliveries(
    submissions: Iterable[Submission], jurisdiction: Callable[[tuple[str, ...]], set[str]]
) -> dict[Expected, float]:
    """Every (member, hit, version kind) the hub owes its members for the manifests it holds, with the time the
    manifest that raised it was acknowledged. A hit goes to every member with jurisdiction over its route; a
    member that got it gets its update and its withdrawal too."""
    out: dict[Expected, float] = {}
    for s in submissions:
        if not s.held or not s.hit_ids:
            continue
        for member in sorted(jurisdiction(s.route)):
            for hit_id in s.hit_ids:
                out.setdefault(Expected(member, hit_id, s.kind), s.receipt_at or 0.0)
    return out


def tally(expected: Mapping[Expected, float], shown: Iterable[Shown], entitled: Entitled) -> Tally:
    """What of ``expected`` members were shown, what they were not (lost), what reached a member not entitled
    to it (leaked) and what reached an entitled one unannounced (extra). ``shown`` is every showing that belongs
    to the same scenario as ``expected``."""
    seen: set[Expected] = set()
    result = Tally(expected=len(expected))
    for s in shown:
        if not entitled(s.member, s.route):
            result.leaked.append(s)
        elif s.key in expected:
            seen.add(s.key)
        else:
            result.extra.append(s)
    result.delivered = len(seen)
    result.lost = sorted((e for e in expected if e not in seen), key=lambda e: (e.member, e.hit_id, e.kind))
    return result


def repeats(shown: Iterable[Shown]) -> list[Shown]:
    """Every showing of a (member, hit id, version) after its first, in time order."""
    first: set[tuple[str, str, str]] = set()
    again = []
    for s in sorted(shown, key=lambda s: s.at):
        key = (s.member, s.hit_id, s.version)
        if key in first:
            again.append(s)
        first.add(key)
    return again


def first_showings(shown: Iterable[Shown]) -> dict[Expected, float]:
    """When each (member, hit, kind) was first shown."""
    out: dict[Expected, float] = {}
    for s in shown:
        if s.key not in out or s.at < out[s.key]:
            out[s.key] = s.at
    return out


def next_hit_after(
    since: float, shown: Iterable[Shown], expected: Mapping[Expected, float], member: str | None = None
) -> float | None:
    """Seconds from ``since`` to the next hit shown: for a fault of the whole hub, the first hit raised by a
    manifest acknowledged after ``since`` (hits already on their way before it prove nothing); for a fault of one
    member (``member``: offline, its webhook failing), the first hit that member is shown after ``since``."""
    times = []
    for s in shown:
        if s.at < since:
            continue
        if member is not None:
            if s.member == member:
                times.append(s.at)
        elif expected.get(s.key, -1.0) >= since:
            times.append(s.at)
    return min(times) - since if times else None


def recovered(
    since: float, shown: Iterable[Shown], expected: Mapping[Expected, float], member: str | None = None
) -> bool:
    """Whether the hub came back from a fault: a hit raised by a manifest acknowledged after ``since`` was shown
    (for a member's fault: the member was shown a hit after ``since``, or was owed none by then)."""
    shown = list(shown)
    if next_hit_after(since, shown, expected, member) is not None:
        return True
    if member is None:
        return False
    seen = first_showings(shown)
    return all(e in seen and seen[e] < since for e in expected if e.member == member)


def waits(
    since: float,
    shown: Iterable[Shown],
    expected: Mapping[Expected, float],
    submissions: Sequence[Submission] = (),
    member: str | None = None,
) -> list[tuple[float, str]]:
    """How long each hit, and each carrier's receipt, waited because of a fault, with what waited ("FJI cli",
    "carrier receipt"): over the hits first shown after ``since`` (only ``member``'s, for a fault of one member),
    the time from ``since`` or from the hit's manifest's receipt, whichever is later, to its first showing; over
    the receipts given after ``since`` (faults of the whole hub), the time from ``since`` or the first try,
    whichever is later, to the receipt."""
    first: dict[Expected, Shown] = {}
    for s in shown:
        if s.key not in first or s.at < first[s.key].at:
            first[s.key] = s
    out = []
    for key, s in first.items():
        if s.at < since or key not in expected or (member is not None and key.member != member):
            continue
        out.append((s.at - max(expected[key], since), f"{s.member} {s.channel}"))
    if member is None:
        for r in submissions:
            if r.receipt_at is not None and r.first_try is not None and r.receipt_at >= since:
                out.append((r.receipt_at - max(r.first_try, since), "carrier receipt"))
    return out


def worst_wait(
    since: float,
    shown: Iterable[Shown],
    expected: Mapping[Expected, float],
    submissions: Sequence[Submission] = (),
    member: str | None = None,
) -> float | None:
    """The longest any hit, or any carrier's receipt, waited because of a fault (see waits)."""
    found = waits(since, shown, expected, submissions, member)
    return max(found)[0] if found else None


def owner_of(shown: Shown, hit_owner: Mapping[str, str], windows: Sequence[tuple[str, float]]) -> str | None:
    """The scenario a showing belongs to: the one whose traffic raised the hit, else (a hit no scenario expected)
    the one running when it was shown. ``windows``: (scenario, start) in order."""
    if shown.hit_id in hit_owner:
        return hit_owner[shown.hit_id]
    return running_at(shown.at, windows)


def running_at(at: float, windows: Sequence[tuple[str, float]]) -> str | None:
    """The scenario running at ``at``: the last one started at or before it."""
    current = None
    for name, start in windows:
        if start <= at:
            current = name
    return current
