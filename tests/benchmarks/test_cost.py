"""The cost model's arithmetic, on hand-checkable numbers (no timings)."""

import math
from dataclasses import replace

import pytest

from benchmarks import cost
from benchmarks.pipeline import percentiles


def _a(**kw) -> cost.Assumptions:
    base = dict(
        movement_factor=2.0,
        peak_month_factor=1.0,
        peak_hour_share=1 / 24,
        cruise_peak_travellers=0.0,
        target_utilisation=0.5,
        price_per_vcpu_hour=0.05,
        region_premium=1.0,
        min_ha_vcpus=10,
        fixed_annual_per_deployment_usd=0.0,
        hours_per_year=8760,
        capacity_per_core=100.0,
    )
    base.update(kw)
    return cost.Assumptions(**base)


def test_peak_rate_flat_traffic():
    # 365 * 3600 * 24 arrivals x 2 movements, spread evenly: 2 travellers per second.
    assert cost.peak_rate(365 * 86400, _a()) == pytest.approx(2.0)
    # A cruise call of 3,600 in the peak hour adds one per second.
    assert cost.peak_rate(365 * 86400, _a(), cruise=3600) == pytest.approx(3.0)
    assert cost.peak_rate(365 * 86400, _a(peak_month_factor=1.5, peak_hour_share=0.1)) == pytest.approx(
        2.0 * 1.5 * 0.1 * 24
    )


def test_cores_and_footprint():
    a = _a()
    assert cost.cores_needed(100.0, a) == pytest.approx(2.0)  # 100/s at 100 per core, 50 % utilisation
    assert cost.deployment_vcpus(100.0, a) == 10  # the HA footprint dominates
    assert cost.deployment_vcpus(1001.0, a) == 21  # ceil(20.02)


def test_annual_cost():
    a = _a(region_premium=1.2, fixed_annual_per_deployment_usd=1000)
    assert cost.annual_cost(10, a) == pytest.approx(10 * 0.05 * 1.2 * 8760 + 1000)
    assert cost.annual_cost(10, a, deployments=3) == pytest.approx(10 * 0.05 * 1.2 * 8760 + 3000)


def test_answer_regional_vs_per_member():
    members = [
        cost.Member("AAA", 365 * 86400, 2019, "test"),
        cost.Member("BBB", 365 * 86400, 2019, "test"),
        cost.Member("CCC", 1e11, 2019, "test", in_scope_default=False),
    ]
    a = _a()
    ans = cost.answer(members, a)
    assert ans.members == 2
    assert ans.annual_travellers == pytest.approx(2 * 2 * 365 * 86400)
    assert ans.regional_peak_per_s == pytest.approx(4.0)
    assert ans.regional_vcpus == 10 and ans.per_member_vcpus == 20
    assert ans.regional_cost == pytest.approx(10 * 0.05 * 8760)
    assert ans.per_member_cost == pytest.approx(2 * ans.regional_cost)
    assert ans.saving == pytest.approx(ans.regional_cost)
    assert ans.cost_per_1000_regional == pytest.approx(ans.regional_cost / ans.annual_travellers * 1000)
    assert ans.headroom == pytest.approx(10 * 100 * 0.5 / 4.0)
    everyone = cost.answer(members, a, scope={"AAA", "BBB", "CCC"})
    assert everyone.members == 3 and everyone.regional_vcpus > 10


def test_no_travellers_gives_nan_per_thousand():
    ans = cost.answer([cost.Member("AAA", 0, 2019, "x")], _a())
    assert math.isnan(ans.cost_per_1000_regional) and ans.headroom == math.inf


def test_sensitivity_moves_one_assumption_at_a_time():
    members = [cost.Member("AAA", 1e6, 2019, "t"), cost.Member("BBB", 1e5, 2019, "t")]
    a = _a()
    rows = cost.sensitivity(members, a)
    price = [r for r in rows if r["assumption"] == "price_per_vcpu_hour"]
    assert [r["case"] for r in price] == ["low", "high"]
    assert price[0]["regional_cost"] == pytest.approx(
        cost.answer(members, replace(a, price_per_vcpu_hour=0.023)).regional_cost
    )
    assert {r["assumption"] for r in rows} >= set(cost.SENSITIVITY) | {"capacity_per_core", "scope"}


def test_data_file_loads_with_sources_and_overrides():
    members, a = cost.load()
    assert all(m.source and m.year for m in members)
    assert set(a.sources) >= set(cost.SENSITIVITY)
    _, b = cost.load(overrides={"price_per_vcpu_hour": 0.5})
    assert b.price_per_vcpu_hour == 0.5
    with pytest.raises(ValueError):
        cost.load(overrides={"no_such_thing": 1})


def test_percentiles_nearest_rank():
    assert percentiles(list(range(1, 101))) == {"p50": 50, "p95": 95, "p99": 99}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert percentiles([7.0])["p99"] == 7.0
