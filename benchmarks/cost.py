"""The regional-hub cost model: one hub for all members versus one deployment per member.

Inputs: benchmarks/data/pacific_traffic.yaml (traffic with year and source, every assumption with its source)
and the capacity per core measured in this run. Pure arithmetic: unit-tested in tests/benchmarks/test_cost.py.

    peak travellers/s (member or region) = annual arrivals x movement factor / 365 x peak-month factor
                                           x peak-hour share / 3600  (+ cruise peak / 3600 for the region)
    cores needed = peak / (capacity per core x target utilisation), never below the minimum HA footprint
    annual cost  = cores x price per vCPU-hour x region premium x hours per year + fixed cost per deployment
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data" / "pacific_traffic.yaml"


@dataclass(frozen=True)
class Member:
    code: str
    arrivals: float
    year: int
    source: str
    in_scope_default: bool = True


@dataclass(frozen=True)
class Assumptions:
    movement_factor: float
    peak_month_factor: float
    peak_hour_share: float
    cruise_peak_travellers: float
    target_utilisation: float
    price_per_vcpu_hour: float
    region_premium: float
    min_ha_vcpus: float
    fixed_annual_per_deployment_usd: float
    hours_per_year: float = 8760
    # Travellers per second one core sustains through the whole pipeline (services + broker): measured.
    capacity_per_core: float = 1000.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def load(path: Path = DATA, overrides: dict[str, float] | None = None) -> tuple[list[Member], Assumptions]:
    data = yaml.safe_load(path.read_text())
    members = [
        Member(code, float(m["arrivals"]), int(m["year"]), m["source"], bool(m.get("in_scope_default", True)))
        for code, m in data["members"].items()
    ]
    values = {k: float(v["value"]) for k, v in data["assumptions"].items()}
    sources = {k: v["source"] for k, v in data["assumptions"].items()}
    a = Assumptions(**values, sources=sources)
    if overrides:
        unknown = set(overrides) - (set(Assumptions.__dataclass_fields__) - {"sources"})
        if unknown:
            raise ValueError(f"unknown assumptions: {sorted(unknown)}")
        a = replace(a, **{k: float(v) for k, v in overrides.items()})
    return members, a


def annual_travellers(arrivals: float, a: Assumptions) -> float:
    return arrivals * a.movement_factor


def peak_rate(arrivals: float, a: Assumptions, cruise: float = 0.0) -> float:
    """Travellers per second in the busiest hour."""
    per_day = annual_travellers(arrivals, a) / 365.0
    return (per_day * a.peak_month_factor * a.peak_hour_share + cruise) / 3600.0


def cores_needed(peak: float, a: Assumptions) -> float:
    """Cores for the load alone (may be a fraction)."""
    return peak / (a.capacity_per_core * a.target_utilisation)


def deployment_vcpus(peak: float, a: Assumptions) -> float:
    """vCPUs of one deployment: the load's cores rounded up, never below the minimum HA footprint."""
    return max(a.min_ha_vcpus, math.ceil(cores_needed(peak, a)))


def annual_cost(vcpus: float, a: Assumptions, deployments: int = 1) -> float:
    compute = vcpus * a.price_per_vcpu_hour * a.region_premium * a.hours_per_year
    return compute + deployments * a.fixed_annual_per_deployment_usd


@dataclass(frozen=True)
class Answer:
    members: int
    annual_travellers: float
    regional_peak_per_s: float
    regional_cores_needed: float
    regional_vcpus: float
    regional_cost: float
    per_member_vcpus: float
    per_member_cost: float
    saving: float
    cost_per_1000_regional: float
    cost_per_1000_per_member: float
    # Peak the regional hub's minimum footprint could carry over today's regional peak.
    headroom: float


def answer(members: list[Member], a: Assumptions, scope: set[str] | None = None) -> Answer:
    chosen = [m for m in members if (m.code in scope if scope is not None else m.in_scope_default)]
    arrivals = sum(m.arrivals for m in chosen)
    travellers = annual_travellers(arrivals, a)
    regional_peak = peak_rate(arrivals, a, cruise=a.cruise_peak_travellers)
    regional_vcpus = deployment_vcpus(regional_peak, a)
    regional_cost = annual_cost(regional_vcpus, a)
    # Each member's own deployment must also absorb a cruise call's burst; the footprint dominates anyway.
    own = [deployment_vcpus(peak_rate(m.arrivals, a, cruise=a.cruise_peak_travellers / 2), a) for m in chosen]
    per_member_vcpus = float(sum(own))
    per_member_cost = annual_cost(per_member_vcpus, a, deployments=len(chosen))
    # Service cores of the minimal footprint: what is left after brokers and monitoring (8 of 14 by default).
    capacity = regional_vcpus * a.capacity_per_core * a.target_utilisation
    return Answer(
        members=len(chosen),
        annual_travellers=travellers,
        regional_peak_per_s=regional_peak,
        regional_cores_needed=cores_needed(regional_peak, a),
        regional_vcpus=regional_vcpus,
        regional_cost=regional_cost,
        per_member_vcpus=per_member_vcpus,
        per_member_cost=per_member_cost,
        saving=per_member_cost - regional_cost,
        cost_per_1000_regional=regional_cost / travellers * 1000 if travellers else math.nan,
        cost_per_1000_per_member=per_member_cost / travellers * 1000 if travellers else math.nan,
        headroom=capacity / regional_peak if regional_peak else math.inf,
    )


# Low and high values of each assumption for the sensitivity table (capacity is scaled from the measured one).
SENSITIVITY: dict[str, tuple[float, float]] = {
    "movement_factor": (2.0, 4.0),
    "peak_month_factor": (1.1, 1.6),
    "peak_hour_share": (0.08, 0.30),
    "cruise_peak_travellers": (0, 30000),
    "target_utilisation": (0.3, 0.7),
    "price_per_vcpu_hour": (0.023, 0.085),
    "region_premium": (1.0, 1.5),
    "min_ha_vcpus": (6, 24),
    "fixed_annual_per_deployment_usd": (0, 100_000),
}
CAPACITY_FACTORS = (0.1, 10.0)


def sensitivity(members: list[Member], a: Assumptions) -> list[dict]:
    """How the answer moves when one assumption at a time takes its low or high value."""
    rows = []
    cases = [(k, lo, hi) for k, (lo, hi) in SENSITIVITY.items()]
    low, high = (a.capacity_per_core * f for f in CAPACITY_FACTORS)
    cases.append(("capacity_per_core", low, high))
    for key, lo, hi in cases:
        for label, value in (("low", lo), ("high", hi)):
            ans = answer(members, replace(a, **{key: value}))
            rows.append(
                {
                    "assumption": key,
                    "case": label,
                    "value": value,
                    "regional_cost": ans.regional_cost,
                    "per_member_cost": ans.per_member_cost,
                    "ratio": ans.per_member_cost / ans.regional_cost if ans.regional_cost else math.nan,
                    "regional_vcpus": ans.regional_vcpus,
                }
            )
    scope_all = {m.code for m in members}
    ans = answer(members, a, scope=scope_all)
    rows.append(
        {
            "assumption": "scope",
            "case": "with AUS and NZL",
            "value": len(scope_all),
            "regional_cost": ans.regional_cost,
            "per_member_cost": ans.per_member_cost,
            "ratio": ans.per_member_cost / ans.regional_cost,
            "regional_vcpus": ans.regional_vcpus,
        }
    )
    return rows
