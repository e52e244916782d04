"""`solve`: a problem in, a feasible schedule out: optimal, best found in time, or fallback.

The LP's answer is cleaned by `allocation.repair` (it only scales down) so that the schedule
never exceeds a limit by even the solver's tolerance; for an optimal answer this moves nothing
by more than about 1e-9 kW.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optimizer.allocation import repair
from optimizer.baselines import renewable_surplus_first, uncontrolled
from optimizer.compiled import Compiled, FloatArray, compile_problem
from optimizer.explain import binding
from optimizer.kpis import score
from optimizer.layout import build_layout
from optimizer.lp import build_model, solve_model
from optimizer.max_delivery import max_delivery_plan
from optimizer.problem import Problem
from optimizer.schedule import Baselines, Schedule, SessionPlan, Status


def solve(problem: Problem, *, time_limit_s: float = 60.0) -> Schedule:
    """The lexicographic optimum of DESIGN 3.5: least unmet energy, then least import cost.

    Parameters
    ----------
    problem : a validated problem.
    time_limit_s : wall-time budget of the LP solve [s].

    Returns
    -------
    A feasible `Schedule`. ``status`` is ``optimal``; or ``time_limit`` when HiGHS ran out of
    time: the lexicographically best of its last point (repaired to feasibility), the
    max-delivery plan (`max_delivery`: near-least unmet energy from a max-flow), the
    renewable-surplus-first plan and the fallback plan; or ``fallback`` (fair share of each
    zone's headroom) when HiGHS failed. `message` says why whenever the status is not optimal.
    Never raises for a valid problem. `time_limit_s` bounds model building and the solve;
    scoring and explaining the plan come on top (about 3 s at 20,000 sessions).
    """
    started = time.perf_counter()
    compiled = compile_problem(problem)
    references = _References(uncontrolled(compiled), renewable_surplus_first(compiled))
    fallback = references.uncontrolled
    try:
        layout = build_layout(compiled)
        model = build_model(compiled, layout)
        remaining = time_limit_s - (time.perf_counter() - started)
        result = solve_model(model, remaining)
    except Exception as exc:  # a solver failure must still end in a safe plan
        message = f"solver failed: {exc}"
        return _schedule(compiled, fallback, "fallback", started, references, message)
    if result.values is None:
        return _schedule(compiled, fallback, "fallback", started, references, result.detail)
    power = repair(compiled, layout.power_from_columns(result.values, compiled))
    if result.status == "optimal":
        return _schedule(compiled, power, "optimal", started, references, None)
    # Out of time: the best of the solver's last point (repaired) and three quick plans.
    candidates = {
        "the solver's last point": power,
        "the max-delivery plan": max_delivery_plan(compiled, layout),
        "the renewable-surplus-first plan": references.surplus_first,
        "the fallback plan": fallback,
    }
    chosen = min(candidates, key=lambda name: _objective(compiled, candidates[name]))
    message = f"{result.detail}; returned {chosen}, the best feasible plan found"
    return _schedule(compiled, candidates[chosen], "time_limit", started, references, message)


def fallback_schedule(problem: Problem) -> Schedule:
    """The plan that needs no solver: fair share of each zone's headroom.

    Every session asks for its full power from arrival until it is full; where a charger or zone
    cannot serve all requests, each session below it gets the same fraction of its request.
    Always feasible; ``status`` is ``fallback``.
    """
    started = time.perf_counter()
    compiled = compile_problem(problem)
    references = _References(uncontrolled(compiled), renewable_surplus_first(compiled))
    plan = references.uncontrolled
    return _schedule(compiled, plan, "fallback", started, references, "fallback plan requested")


@dataclass(frozen=True)
class _References:
    uncontrolled: FloatArray
    surplus_first: FloatArray


def _objective(compiled: Compiled, power: FloatArray) -> tuple[float, float]:
    kpis = score(compiled, power)
    return (round(kpis.unmet_kwh, 9), kpis.import_cost)


def _schedule(
    compiled: Compiled,
    power: FloatArray,
    status: Status,
    started: float,
    references: _References,
    message: str | None,
) -> Schedule:
    kpis = score(compiled, power)
    dt = compiled.dt
    delivered = power.sum(axis=1) * dt
    unmet = np.maximum(0.0, compiled.energy_kwh - delivered)
    rows = power.tolist()
    sessions = {
        # Built from arrays we made ourselves: skip re-validating 20,000 x 96 floats.
        sid: SessionPlan.model_construct(
            power_kw=rows[s], delivered_kwh=float(delivered[s]), unmet_kwh=float(unmet[s])
        )
        for s, sid in enumerate(compiled.session_ids)
    }
    chargers = dict(zip(compiled.charger_ids, compiled.charger_load(power).tolist(), strict=True))
    baseline = Baselines(
        uncontrolled=score(compiled, references.uncontrolled),
        renewable_surplus_first=score(compiled, references.surplus_first),
    )
    limits = binding(compiled, power)
    return Schedule.model_construct(
        status=status,
        solve_seconds=time.perf_counter() - started,
        unmet_kwh_total=kpis.unmet_kwh,
        import_kwh=kpis.import_kwh,
        import_cost=kpis.import_cost,
        sessions=sessions,
        chargers=chargers,
        kpis=kpis,
        baseline=baseline,
        binding=limits,
        message=message,
    )
