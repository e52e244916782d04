"""`IncrementalSolver`: after any change, the same optimum as a cold solve; warm where it fits."""

from __future__ import annotations

import copy
import os
import signal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.optimizer import city_problem
from optimizer import IncrementalSolver, Problem, Schedule, solve, warm
from optimizer.compiled import compile_problem
from tests.unit.optimizer.strategies import problems

FEASIBLE = 1e-6


def _power(problem: Problem, schedule: Schedule) -> np.ndarray:
    return np.array([schedule.sessions[s.id].power_kw for s in problem.sessions]).reshape(
        len(problem.sessions), problem.slots
    )


def _same_as_cold(problem: Problem, schedule: Schedule) -> None:
    cold = solve(problem, time_limit_s=60)
    assert schedule.status == cold.status == "optimal"
    compiled = compile_problem(problem)
    assert compiled.max_violation(_power(problem, schedule)) <= FEASIBLE
    total = max(1.0, float(compiled.energy_kwh.sum()))
    assert schedule.unmet_kwh_total == pytest.approx(
        cold.unmet_kwh_total, rel=1e-6, abs=1e-6 * total
    )
    assert schedule.import_cost == pytest.approx(cold.import_cost, rel=1e-6, abs=1e-6)


@st.composite
def changed(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """`data` after one small change of the kinds the planning loop sees."""
    out = copy.deepcopy(data)
    slots = out["slots"]
    kind = draw(
        st.sampled_from(["leave", "arrive", "energy", "window", "zone", "forecast", "weight"])
    )
    sessions = out["sessions"]
    if kind == "leave" and sessions:
        del sessions[draw(st.integers(0, len(sessions) - 1))]
    elif kind == "arrive":
        arrival = draw(st.integers(0, slots - 1))
        sessions.append(
            {
                "id": f"new{draw(st.integers(0, 10**6))}-{len(sessions)}",
                "charger": draw(st.sampled_from([c["id"] for c in out["chargers"]])),
                "arrival_slot": arrival,
                "departure_slot": draw(st.integers(arrival + 1, slots)),
                "energy_kwh": draw(st.sampled_from([1.0, 6.0, 25.0])),
            }
        )
    elif kind == "energy" and sessions:
        sessions[draw(st.integers(0, len(sessions) - 1))]["energy_kwh"] = draw(
            st.sampled_from([0.0, 2.0, 15.0, 50.0])
        )
    elif kind == "window" and sessions:
        session = sessions[draw(st.integers(0, len(sessions) - 1))]
        session["departure_slot"] = draw(st.integers(session["arrival_slot"] + 1, slots))
    elif kind == "zone" and out["zones"]:
        zone = out["zones"][draw(st.integers(0, len(out["zones"]) - 1))]
        zone["capacity_kw"] = draw(st.sampled_from([0.0, 3.0, 9.0, 30.0]))
    elif kind == "forecast":
        out["renewable_kw"] = draw(
            st.lists(st.sampled_from([0.0, 4.0, 12.0]), min_size=slots, max_size=slots)
        )
    elif kind == "weight":
        out["import_weight"] = draw(
            st.lists(st.sampled_from([0.5, 1.0, 2.0, 4.0]), min_size=slots, max_size=slots)
        )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_re_plan_equals_a_cold_solve(data: st.DataObject) -> None:
    current = data.draw(problems(max_slots=6, max_sessions=8))
    with IncrementalSolver(spares_per_zone=2) as planner:
        for _ in range(4):
            problem = Problem.model_validate(current)
            _same_as_cold(problem, planner.solve(problem, time_limit_s=60))
            current = data.draw(changed(current))


def _city() -> dict[str, Any]:
    return city_problem(400, chargers=200, feeders=8, seed=3, scale=0.02)


def test_capacity_changes_re_plan_warm_and_exactly() -> None:
    data = _city()
    with IncrementalSolver() as planner:
        planner.solve(Problem.model_validate(data))
        assert planner.last_start == "cold"
        steps = []
        leave = copy.deepcopy(data)
        del leave["sessions"][17]
        steps.append(leave)
        forecast = copy.deepcopy(leave)
        forecast["renewable_kw"] = [0.7 * x for x in forecast["renewable_kw"]]
        steps.append(forecast)
        feeder = copy.deepcopy(forecast)
        feeder["zones"][2]["capacity_kw"] = [0.5 * x for x in feeder["zones"][2]["capacity_kw"]]
        steps.append(feeder)
        weights = copy.deepcopy(feeder)
        weights["import_weight"] = [
            w * (1.5 if t % 7 == 0 else 1.0) for t, w in enumerate(weights["import_weight"])
        ]
        steps.append(weights)
        for step in steps:
            problem = Problem.model_validate(step)
            assert planner.ready(timeout_s=120)  # LEMON's basis (OR-Tools may answer first)
            schedule = planner.solve(problem)
            assert planner.last_start == "warm"
            _same_as_cold(problem, schedule)


def _with_late_car_on_a_free_charger(data: dict[str, Any]) -> dict[str, Any]:
    """The city plus one car arriving on a charger no session uses (it takes a spare)."""
    used = {s["charger"] for s in data["sessions"]}
    free = next(c["id"] for c in data["chargers"] if c["id"] not in used)
    arrived = copy.deepcopy(data)
    arrived["sessions"].append(
        {
            "id": "late-car",
            "charger": free,
            "arrival_slot": 30,
            "departure_slot": 60,
            "energy_kwh": 35.0,
        }
    )
    return arrived


def test_an_arrival_on_a_free_charger_takes_a_spare_and_stays_warm() -> None:
    data = _city()
    with IncrementalSolver() as planner:
        planner.solve(Problem.model_validate(data))
        arrived = _with_late_car_on_a_free_charger(data)
        problem = Problem.model_validate(arrived)
        assert planner.ready(timeout_s=120)
        schedule = planner.solve(problem)
        assert planner.last_start == "warm"
        assert schedule.sessions["late-car"].delivered_kwh > 0
        _same_as_cold(problem, schedule)


def test_a_new_charger_is_a_cold_solve_and_still_exact() -> None:
    data = _city()
    with IncrementalSolver() as planner:
        planner.solve(Problem.model_validate(data))
        grown = copy.deepcopy(data)
        grown["chargers"].append({"id": "cp-new", "zone": "feeder-0001", "max_kw": 11.0})
        problem = Problem.model_validate(grown)
        schedule = planner.solve(problem)
        assert planner.last_start == "cold"
        _same_as_cold(problem, schedule)


def test_a_dead_warm_solver_costs_a_cold_solve_not_a_wrong_plan() -> None:
    data = _city()
    with IncrementalSolver() as planner:
        planner.solve(Problem.model_validate(data))
        state = planner._state
        assert state is not None and state.worker is not None
        os.kill(state.worker.pid, signal.SIGKILL)
        changed_data = copy.deepcopy(data)
        changed_data["renewable_kw"] = [1.2 * x for x in changed_data["renewable_kw"]]
        problem = Problem.model_validate(changed_data)
        _same_as_cold(problem, planner.solve(problem))
        again = copy.deepcopy(changed_data)
        del again["sessions"][3]
        problem = Problem.model_validate(again)
        _same_as_cold(problem, planner.solve(problem))


def test_a_cold_re_solve_inside_the_child_is_not_reported_warm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "repair_only": pylmcf may not repair a primal-infeasible basis (an arrival on a spare:
    # its arcs sat at capacity 0), so it re-solves from scratch inside the child. That answer
    # comes from LEMON, but it is no warm start and must not be reported as one.
    monkeypatch.setattr(warm, "WARM_REPAIR", "repair_only")
    data = _city()
    with IncrementalSolver() as planner:
        planner.solve(Problem.model_validate(data))
        arrived = _with_late_car_on_a_free_charger(data)
        problem = Problem.model_validate(arrived)
        assert planner.ready(timeout_s=120)
        schedule = planner.solve(problem, time_limit_s=120)
        state = planner._state
        assert state is not None and state.worker is not None
        assert state.worker.last_cold
        assert planner.last_start == "same_network"
        _same_as_cold(problem, schedule)
        # New import weights only (costs): the retained basis stays feasible, a warm start.
        weights = copy.deepcopy(arrived)
        weights["import_weight"] = [
            w * (1.5 if t % 7 == 0 else 1.0) for t, w in enumerate(weights["import_weight"])
        ]
        problem = Problem.model_validate(weights)
        assert planner.ready(timeout_s=120)
        schedule = planner.solve(problem, time_limit_s=120)
        assert planner.last_start == "warm"
        _same_as_cold(problem, schedule)
