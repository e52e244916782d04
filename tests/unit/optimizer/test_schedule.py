"""`Schedule`'s array-backed plans: they read, compare, validate and serialise like plain dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import Problem, Schedule, solve
from optimizer.compiled import compile_problem
from optimizer.schedule import PowerRows, SessionPlan, SessionPlans
from tests.unit.optimizer.strategies import problems


def _plain(schedule: Schedule) -> dict[str, object]:
    """The schedule's sessions and chargers as plain dicts of lists, built from its mappings."""
    return {
        "sessions": {
            sid: {
                "power_kw": list(plan.power_kw),
                "delivered_kwh": plan.delivered_kwh,
                "unmet_kwh": plan.unmet_kwh,
            }
            for sid, plan in schedule.sessions.items()
        },
        "chargers": {cid: list(row) for cid, row in schedule.chargers.items()},
    }


@settings(max_examples=30, deadline=None)
@given(problems(max_slots=6, max_sessions=6))
def test_a_schedule_serialises_and_validates_like_plain_dicts(data: dict[str, object]) -> None:
    problem = Problem.model_validate(data)
    schedule = solve(problem, time_limit_s=30)
    dumped = json.loads(schedule.model_dump_json())
    plain = _plain(schedule)
    assert dumped["sessions"] == plain["sessions"]
    assert dumped["chargers"] == plain["chargers"]
    assert list(dumped["sessions"]) == [s.id for s in problem.sessions]  # order kept
    assert schedule.model_dump()["sessions"] == plain["sessions"]
    again = Schedule.model_validate_json(schedule.model_dump_json())
    assert isinstance(again.sessions, SessionPlans) and isinstance(again.chargers, PowerRows)
    assert again.sessions == schedule.sessions
    assert again.chargers == schedule.chargers
    assert again.model_dump_json() == schedule.model_dump_json()


def test_the_mappings_read_like_dicts_and_cannot_be_changed() -> None:
    power = np.array([[1.0, 2.5], [0.0, 3.0]])
    plans = SessionPlans(["a", "b"], power, np.array([0.875, 0.75]), np.array([0.125, 0.0]))
    assert list(plans) == ["a", "b"] and len(plans) == 2 and "b" in plans and "c" not in plans
    assert plans["a"] == SessionPlan(power_kw=[1.0, 2.5], delivered_kwh=0.875, unmet_kwh=0.125)
    assert plans == {
        "a": SessionPlan(power_kw=[1.0, 2.5], delivered_kwh=0.875, unmet_kwh=0.125),
        "b": SessionPlan(power_kw=[0.0, 3.0], delivered_kwh=0.75, unmet_kwh=0.0),
    }
    with pytest.raises(KeyError):
        plans["c"]
    with pytest.raises(ValueError, match="read-only"):
        plans.array[0, 0] = 5.0
    rows = PowerRows(["c-1"], np.array([[4.0, 0.0]]))
    assert dict(rows) == {"c-1": [4.0, 0.0]}
    with pytest.raises(ValueError, match="ids for"):
        PowerRows(["c-1", "c-2"], np.zeros((1, 2)))


@given(st.lists(st.integers(1, 4), min_size=2, max_size=4, unique=True))
def test_rows_of_different_lengths_are_refused(widths: list[int]) -> None:
    plans = {
        f"s-{k}": {"power_kw": [0.0] * w, "delivered_kwh": 0.0, "unmet_kwh": 0.0}
        for k, w in enumerate(widths)
    }
    with pytest.raises(ValueError, match="same number of slots"):
        Schedule.model_validate(
            {
                "status": "optimal",
                "solve_seconds": 0.0,
                "unmet_kwh_total": 0.0,
                "import_kwh": 0.0,
                "import_cost": 0.0,
                "sessions": plans,
                "chargers": {},
                "kpis": _kpis(),
                "baseline": {"uncontrolled": _kpis()},
                "binding": [],
            }
        )


def _kpis() -> dict[str, float]:
    names = (
        "renewable_share",
        "peak_import_kw",
        "unmet_kwh",
        "delivered_kwh",
        "import_kwh",
        "import_cost",
        "peak_ev_kw",
    )
    return {**dict.fromkeys(names, 0.0), "zone_overloads": 0}


@settings(max_examples=60, deadline=None)
@given(problems(max_slots=5, max_sessions=8), st.integers(0, 2**31))
def test_zone_load_is_the_sum_over_every_zone_below(data: dict[str, object], seed: int) -> None:
    """`Compiled.zone_load` (rolled up a level at a time) against the definition, zone by zone."""
    problem = Problem.model_validate(data)
    compiled = compile_problem(problem)
    power = np.random.default_rng(seed).uniform(0.0, 10.0, compiled.window.shape)
    parent = {z.id: z.parent for z in problem.zones}
    zone_of = {c.id: c.zone for c in problem.chargers}
    expected = np.zeros((compiled.n_zones, compiled.slots))
    for s, session in enumerate(problem.sessions):
        zone = zone_of[session.charger]
        while zone is not None:  # the session's zone and every zone above it
            expected[compiled.zone_ids.index(zone)] += power[s]
            zone = parent[zone]
    assert np.allclose(compiled.zone_load(power), expected, rtol=1e-12, atol=1e-12)
