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
from gridcoord.planning.import_weights import EARLY_PREFERENCE, early_weights, net_load_weights
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
