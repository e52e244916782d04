"""Import weights from the forecast net load: monotone, bounded, and what the planner uses."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import optimizer
from gridcoord.config import Config
from gridcoord.forecast import parse_external
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.import_weights import (
    EARLY_PREFERENCE,
    early_weights,
    net_load_weights,
    surplus_ahead,
)
from gridcoord.timegrid import next_slot_start, to_rfc3339

odd = st.sampled_from([math.nan, math.inf, -math.inf])
loads = st.lists(st.floats(-1e6, 1e6) | odd, max_size=50)


@given(loads, st.floats(0.0, 10.0))
def test_weights_are_monotone_in_net_load(values: list[float], spread: float) -> None:
    net = np.nan_to_num(np.array(values), nan=0.0, posinf=0.0, neginf=0.0)
    weights = np.array(net_load_weights(net, np.zeros(len(net)), spread=spread, tie_break=0.0))
    order = np.argsort(net, kind="stable")
    assert np.all(np.diff(weights[order]) >= -1e-12)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 1.0)
    assert np.all(weights <= 1.0 + spread + 1e-12)


@given(loads, loads)
def test_weights_are_positive_and_finite_whatever_the_forecast(
    load: list[float], renewable: list[float]
) -> None:
    n = min(len(load), len(renewable))
    weights = net_load_weights(load[:n], renewable[:n])
    assert len(weights) == n and all(math.isfinite(w) and w >= 1.0 for w in weights)


def test_equal_net_load_prefers_the_earlier_slot() -> None:
    weights = net_load_weights([100.0] * 5, [0.0] * 5)
    assert weights == sorted(weights) and weights[0] < weights[-1] < 1.02
    assert early_weights(3) == [1.0, 1.0 + EARLY_PREFERENCE / 2, 1.0 + EARLY_PREFERENCE]


NOW = datetime(2026, 3, 1, 1, 50, tzinfo=UTC)


def city(weights: str) -> Config:
    return Config(
        zones=[{"id": "lt-1", "capacity_kw": 500.0}],
        assets=[
            {"id": "wind-1", "kind": "wind", "zone": "lt-1", "rated_kw": 1000.0},
            {"id": "charger-1", "kind": "charger", "zone": "lt-1", "rated_kw": 11.0},
        ],
        planning={"horizon_h": 12, "import_weights": weights},
    )


def planned_weights(weights: str) -> list[float]:
    """The import weights of the problem a planning run hands the solver."""
    seen: list[optimizer.Problem] = []

    def solver(problem: optimizer.Problem, budget: float) -> optimizer.Schedule:
        seen.append(problem)
        return optimizer.solve(problem, time_limit_s=budget)

    coordinator = Coordinator(city(weights), solver=solver)
    start = next_slot_start(NOW)
    # A weather service forecasts a windy spell from four to eight hours ahead.
    values = [0.0] * 16 + [900.0] * 16 + [0.0] * 16
    coordinator.observe_forecast(
        parse_external(
            {
                "kind": "wind",
                "issued_at": to_rfc3339(NOW),
                "start": to_rfc3339(start),
                "values_kw": values,
            }
        )
    )
    coordinator.plan(NOW)
    weight = seen[0].import_weight
    assert isinstance(weight, list)
    return weight


def test_the_planner_makes_the_windy_hours_cheap() -> None:
    weight = planned_weights("net_load")
    windy, calm = weight[20:28], weight[:12] + weight[36:]
    assert max(windy) < min(calm)


def test_early_weights_ignore_the_forecast() -> None:
    weight = planned_weights("early")
    assert weight == sorted(weight) and weight[-1] - weight[0] <= EARLY_PREFERENCE + 1e-9


def test_import_now_costs_a_premium_that_fades_with_the_lead_time() -> None:
    # A surplus in every slot: something to wait for after each but the last.
    load, renewable = [100.0] * 33, [150.0] * 33
    flat = net_load_weights(load, renewable, tie_break=0.0)
    weights = net_load_weights(load, renewable, tie_break=0.0, now_premium=0.3)
    extra = np.array(weights) - np.array(flat)
    assert math.isclose(extra[0], 0.3)
    # Quarter-hour slots: 1/e of it two hours on, 2 % of it after eight.
    assert math.isclose(extra[8], 0.3 / math.e)
    assert np.all(np.diff(extra) < 0) and extra[-2] < 0.3 * 0.03 and extra[-1] == 0.0
    assert net_load_weights(load, renewable, now_premium=0.0) == net_load_weights(load, renewable)


def test_the_premium_holds_only_where_a_surplus_comes_within_four_hours() -> None:
    net = [100.0] * 40
    net[20] = -400.0  # one quarter hour of surplus, five hours on
    ahead = surplus_ahead(net, 15)
    assert [t for t, a in enumerate(ahead) if a] == list(range(4, 20))
    # Nothing to wait for, no premium: a winter evening's weights are the plain net load's.
    calm = [0.0] * 40
    assert net_load_weights([100.0] * 40, calm, now_premium=0.3) == net_load_weights(
        [100.0] * 40, calm
    )


@given(st.lists(st.booleans(), max_size=60), st.sampled_from([5, 15, 60]), st.floats(0.0, 12.0))
def test_surplus_ahead_is_any_surplus_in_the_window_after_each_slot(
    surplus: list[bool], slot_minutes: int, within: float
) -> None:
    ahead = surplus_ahead([-100.0 if s else 100.0 for s in surplus], slot_minutes, within)
    reach = int(within * 60 // slot_minutes)
    expected = [float(any(surplus[t + 1 : t + 1 + reach])) for t in range(len(surplus))]
    assert list(ahead) == expected


@given(loads, st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_weights_with_the_premium_stay_bounded(
    values: list[float], spread: float, premium: float
) -> None:
    weights = net_load_weights(values, [0.0] * len(values), spread=spread, now_premium=premium)
    assert all(math.isfinite(w) and w >= 1.0 for w in weights)
    assert all(w <= 1.0 + spread + 0.01 + premium + 1e-9 for w in weights)


def test_the_premium_moves_import_after_an_uncertain_surplus_not_before_it() -> None:
    # A night's plan: one car needs 30 kWh by 06:00; the forecast sees 10 kW of wind surplus
    # from 00:00 to 01:00, a net load a little lower in the hour before it than in the hours
    # after it. Without the premium the grid energy is drawn now, before the forecast burst;
    # with it, after the burst, which the next plans may find stronger than forecast.
    slots = 28  # 23:00-06:00
    load = [200.0] * slots
    wind = [150.0] * 4 + [210.0] * 4 + [140.0] * 20
    problem = dict(
        slot_minutes=15,
        slots=slots,
        renewable_kw=wind,
        base_load_kw=load,
        chargers=[optimizer.Charger(id="c", max_kw=11.0)],
        sessions=[
            optimizer.Session(
                id="s", charger="c", arrival_slot=0, departure_slot=slots, energy_kwh=30.0
            )
        ],
    )

    def first_hour_kwh(premium: float) -> float:
        weights = net_load_weights(load, wind, now_premium=premium)
        schedule = optimizer.solve(optimizer.Problem(**problem, import_weight=weights))
        assert schedule.status == "optimal"
        return sum(schedule.sessions["s"].power_kw[:4]) / 4.0

    assert first_hour_kwh(0.0) > 10.0  # the cheapest import: now, at full power
    assert first_hour_kwh(0.3) < 1e-6  # the surplus first, the grid after it
