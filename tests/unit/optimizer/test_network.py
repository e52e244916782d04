"""The exact network path against the PuLP + HiGHS LP, and the deadline contract of `solve`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.optimizer import city_problem
from optimizer import Problem, solve
from optimizer.baselines import uncontrolled
from optimizer.compiled import IntArray, compile_problem
from optimizer.deadline import call_with_deadline, race_with_deadline
from optimizer.flow_solvers import lemon_flow, ortools_flow
from optimizer.kpis import score
from optimizer.network import build_network, import_ranks
from tests.unit.optimizer.strategies import problems

FEASIBLE = 1e-6
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _power(problem: Problem, schedule: Any) -> np.ndarray:
    return np.array([schedule.sessions[s.id].power_kw for s in problem.sessions]).reshape(
        len(problem.sessions), problem.slots
    )


def _same_optimum(problem: Problem) -> None:
    fast = solve(problem, time_limit_s=60)
    lp = solve(problem, time_limit_s=60, method="lp")
    assert fast.status == lp.status == "optimal"
    compiled = compile_problem(problem)
    for schedule in (fast, lp):
        assert compiled.max_violation(_power(problem, schedule)) <= FEASIBLE
    total = max(1.0, float(compiled.energy_kwh.sum()))
    assert fast.unmet_kwh_total == pytest.approx(lp.unmet_kwh_total, rel=1e-6, abs=1e-6 * total)
    assert fast.import_cost == pytest.approx(lp.import_cost, rel=1e-6, abs=1e-6)


@PROPERTY
@given(problems())
def test_network_path_equals_the_lp_on_small_problems(data: dict[str, Any]) -> None:
    _same_optimum(Problem.model_validate(data))


@st.composite
def cities(draw: st.DrawFn) -> dict[str, Any]:
    """A generated city of 50-400 sessions: one of the benchmark's families, any seed."""
    sessions = draw(st.integers(50, 400))
    return city_problem(
        sessions,
        chargers=draw(st.integers(10, 200)),
        feeders=draw(st.integers(1, 10)),
        slots=draw(st.sampled_from([24, 96])),
        seed=draw(st.integers(0, 2**31)),
        substation_kw=draw(st.sampled_from([2_000.0, 25_000.0, 70_000.0])),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cities())
def test_network_path_equals_the_lp_on_medium_cities(data: dict[str, Any]) -> None:
    _same_optimum(Problem.model_validate(data))


@settings(max_examples=40, deadline=None)
@given(problems(max_slots=8, max_sessions=10))
def test_both_network_solvers_reach_the_same_optimum(data: dict[str, Any]) -> None:
    compiled = compile_problem(Problem.model_validate(data))
    network = build_network(compiled)
    plans = [
        network.power_from_flow(flow(network), compiled.n_sessions, compiled.slots)
        for flow in (ortools_flow, lemon_flow)
    ]
    a, b = (score(compiled, plan) for plan in plans)
    assert a.unmet_kwh == pytest.approx(b.unmet_kwh, abs=1e-9)
    assert a.import_cost == pytest.approx(b.import_cost, abs=1e-9)


def test_network_capacities_never_exceed_the_real_limits() -> None:
    problem = Problem.model_validate(city_problem(300, chargers=60, feeders=4, seed=11))
    compiled = compile_problem(problem)
    network = build_network(compiled)
    # Saturate every power arc: the per-session bound is never above the real one.
    full = np.zeros(network.n_arcs, dtype=np.int64)
    arcs = slice(network.power_arc0, network.power_arc0 + len(network.power_session))
    full[arcs] = network.capacity[arcs]
    power = network.power_from_flow(full, compiled.n_sessions, compiled.slots)
    assert (power <= compiled.session_max_kw[:, None] * (1 + 1e-15)).all()


def test_import_costs_are_ranks_that_keep_the_order_and_the_ties() -> None:
    rank, top = import_ranks(np.array([0.3, 0.1, 0.3, 1e-9, 7.0]))
    assert rank.tolist() == [3, 2, 3, 1, 4]
    assert top == 4


def _stretch(problem: Problem) -> float:
    """How much the machine slows this process now: wall / CPU time of a fixed CPU-bound step.

    The contract "budget + 1 s" is for a machine that gives the solve a core; on a shared one
    the work after the deadline takes `stretch` times its CPU time. Measured on the same city
    (compile, baseline, score: the kind of work that follows the deadline), no sleeping.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    compiled = compile_problem(problem)
    score(compiled, uncontrolled(compiled))
    return max(1.0, (time.perf_counter() - wall) / max(time.process_time() - cpu, 1e-3))


def _within_budget(problem: Problem, budget: float, run: Callable[[], object]) -> None:
    """`run()` returns within `budget` + 1 s of this process's time (see `_stretch`)."""
    before = _stretch(problem)
    started = time.monotonic()
    run()
    elapsed = time.monotonic() - started
    stretch = max(before, _stretch(problem))
    assert elapsed <= budget + 1.0 * stretch, f"{elapsed:.2f} s, machine stretch {stretch:.1f}"


@pytest.mark.parametrize("sessions", [5_000, 20_000])
def test_a_tiny_budget_on_a_large_city_is_kept(sessions: int) -> None:
    """The deadline contract (returns by budget + 1 s, feasible, not optimal), not a speed."""
    # A quarter of the 20,000-session city and the whole one, the substation binding in every
    # slot: the exact solve needs seconds. The work after the deadline grows with
    # session-slots and with the machine's load (docs/optimizer.md); since the schedule keeps
    # its plans as arrays it is well inside 1 s of CPU at 20,000 sessions.
    scale = sessions / 20_000
    data = city_problem(
        sessions, chargers=sessions // 2, feeders=sessions // 50, seed=5, scale=scale
    )
    data["zones"][0]["capacity_kw"] = 18_000.0 * scale
    problem = Problem.model_validate(data)
    budget = 0.05
    schedules: list[Any] = []
    _within_budget(problem, budget, lambda: schedules.append(solve(problem, time_limit_s=budget)))
    (schedule,) = schedules
    assert schedule.status == "time_limit"
    assert schedule.message and "time limit of 0.05 s" in schedule.message
    compiled = compile_problem(problem)
    assert compiled.max_violation(_power(problem, schedule)) <= FEASIBLE


def test_a_solve_that_would_overrun_is_cut_at_the_deadline() -> None:
    """A budget the exact solve of a stressed city cannot meet: the child is killed in time."""
    data = city_problem(5_000, chargers=2_500, feeders=100, seed=6, scale=0.25)
    data["zones"][0]["capacity_kw"] = 4_500.0  # the substation binds in every slot
    problem = Problem.model_validate(data)
    budget = 1.0
    schedules: list[Any] = []
    _within_budget(problem, budget, lambda: schedules.append(solve(problem, time_limit_s=budget)))
    (schedule,) = schedules
    compiled = compile_problem(problem)
    assert compiled.max_violation(_power(problem, schedule)) <= FEASIBLE
    if schedule.status != "optimal":  # a fast machine may prove the optimum within 1.5 s
        assert schedule.status == "time_limit"


def _sleep_then_answer() -> IntArray:
    time.sleep(30)
    return np.zeros(1, dtype=np.int64)


def _sleep_briefly() -> IntArray:
    time.sleep(0.5)
    return np.full(1, 3, dtype=np.int64)


def _fail() -> IntArray:
    raise RuntimeError("boom")


def _children() -> set[int]:
    """Pids of this process's children, zombies included (other tests' servers among them)."""
    return {child.pid for child in psutil.Process().children()}


def test_call_with_deadline_kills_and_reaps_a_late_child() -> None:
    before = _children()
    started = time.monotonic()
    outcome = call_with_deadline(_sleep_then_answer, started + 0.3)
    assert outcome.values is None
    assert outcome.detail == "time_limit"
    assert time.monotonic() - started < 5.0
    assert _children() <= before  # killed and reaped: no new child, not even a zombie


def test_call_with_deadline_reports_failure_and_returns_values() -> None:
    deadline = time.monotonic() + 30
    failed = call_with_deadline(_fail, deadline)
    assert failed.values is None
    assert failed.detail.startswith("solver failed")
    answer = call_with_deadline(lambda: np.arange(200_000, dtype=np.int64), deadline)
    assert answer.detail == "ok"
    assert answer.values is not None
    assert answer.values.tolist() == list(range(200_000))


def test_meanwhile_runs_while_the_child_computes() -> None:
    seen: list[bool] = []

    def meanwhile(answered: Callable[[], bool]) -> None:
        seen.append(answered())  # the child has barely started
        while not answered():
            time.sleep(0.01)
        seen.append(answered())

    outcome = call_with_deadline(_sleep_briefly, time.monotonic() + 30, meanwhile)
    assert seen == [False, True]
    assert outcome.values is not None
    assert outcome.values.tolist() == [3]


def test_the_first_answer_of_a_race_wins_and_a_failure_does_not_end_it() -> None:
    before = _children()
    started = time.monotonic()
    outcome = race_with_deadline(
        [_sleep_then_answer, _fail, lambda: np.full(5, 7, dtype=np.int64)], started + 30
    )
    assert outcome.winner == 2
    assert outcome.values is not None
    assert outcome.values.tolist() == [7] * 5
    assert time.monotonic() - started < 10.0  # the sleeper was killed, not waited for
    assert _children() <= before


def test_a_race_of_failures_reports_the_failure() -> None:
    outcome = race_with_deadline([_fail, _fail], time.monotonic() + 30)
    assert outcome.values is None
    assert outcome.detail.startswith("solver failed")


def test_session_plans_are_built_like_model_construct() -> None:
    from optimizer.schedule import SessionPlan, session_plan

    fast = session_plan([1.0, 2.5], 0.875, 0.125)
    slow = SessionPlan.model_construct(power_kw=[1.0, 2.5], delivered_kwh=0.875, unmet_kwh=0.125)
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.power_kw == [1.0, 2.5]


def test_short_sessions_are_built_like_model_construct() -> None:
    from optimizer.explain import _session_short
    from optimizer.schedule import BindingSession

    fast = _session_short("s-1", 2.5, "zone_headroom", ["z-1"])
    slow = BindingSession.model_construct(
        session="s-1", unmet_kwh=2.5, reason="zone_headroom", limited_by=["z-1"]
    )
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set


def test_a_solver_child_dies_with_its_parent() -> None:
    """A parent killed by a signal takes its solver children with it (no orphan computing)."""
    script = (
        "import os, sys, time\n"
        "from optimizer.deadline import call_with_deadline\n"
        "def long():\n"
        "    time.sleep(60)\n"
        "    return None\n"
        "print(os.getpid(), flush=True)\n"
        "call_with_deadline(long, time.monotonic() + 120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    parent.stdout.readline()
    me = psutil.Process(parent.pid)
    children: list[psutil.Process] = []
    while not children:  # the fork follows the print: wait for it without sleeping blindly
        children = me.children()
        if parent.poll() is not None:
            pytest.fail("the parent ended early")
    parent.kill()
    parent.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "a solver child outlived its parent"
