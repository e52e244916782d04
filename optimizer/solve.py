"""`solve`: a problem in, a feasible schedule out: optimal, best found in time, or fallback.

Two exact paths solve the same lexicographic problem of DESIGN 3.5:

* ``network`` (default): the problem as an integer min-cost flow (`network`), solved by
  OR-Tools and LEMON racing (`flow_solvers`) in forked children under a hard deadline
  (`deadline`) while this process computes the baselines;
* ``lp``: the PuLP model (`lp`), solved by HiGHS: the general formulation for extensions that
  break the network structure, and the independent cross-check of the tests.

Every phase watches one deadline, so `solve` returns within its budget plus the time to score
and explain the plan. Every plan goes through `allocation.repair` (it only scales down), so a
schedule never exceeds a limit by even a rounding error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from optimizer.allocation import repair
from optimizer.baselines import renewable_surplus_first, renewable_surplus_first_until, uncontrolled
from optimizer.compiled import Compiled, FloatArray, compile_problem
from optimizer.deadline import race_with_deadline
from optimizer.explain import binding
from optimizer.flow_solvers import lemon_flow, ortools_flow
from optimizer.kpis import score
from optimizer.layout import build_layout
from optimizer.leader import choose_leader
from optimizer.lp import build_model, solve_model
from optimizer.max_delivery import max_delivery_plan
from optimizer.network import build_network
from optimizer.problem import Problem
from optimizer.schedule import Baselines, Kpis, PowerRows, Schedule, SessionPlans, Status

Method = Literal["network", "lp"]

# Scoring and explaining a plan take about this long per session-slot [s] on a quiet machine,
# and about this many times as long as compiling the problem and its uncontrolled plan took
# (which tracks how loaded the machine is): the larger is kept of the budget for them, at most
# half of it (docs/optimizer.md, "Time limit").
FINISH_SECONDS_PER_CELL = 3e-7
FINISH_PER_PREPARATION = 4.0
# The leader's head start over the other solver [s per arc]. LEMON leading: 3 s at 20,000
# sessions (565,000 arcs), about what LEMON needs there on a busy machine. OR-Tools leading (a
# short substation, `leader`): 9 s, since LEMON is 5–10× slower there; it only hedges against
# OR-Tools stalling.
RACE_HEAD_START_S_PER_ARC = {"lemon": 5.3e-6, "ortools": 16e-6}
# Building the network takes about this many times as long as compiling the problem and its
# uncontrolled plan (1.5-2.1 measured at 20,000 and 100,000 sessions); it cannot be
# interrupted, so it only starts when that much time is left before the work deadline.
BUILD_PER_PREPARATION = 2.5
# Above this many sessions `solve` leaves the surplus-first baseline out (null): it is a
# sequential Python loop of ~0.1 ms per session, computed on demand by `baselines`.
SURPLUS_FIRST_MAX_SESSIONS = 5_000


def solve(problem: Problem, *, time_limit_s: float = 60.0, method: Method = "network") -> Schedule:
    """The lexicographic optimum of DESIGN 3.5: least unmet energy, then least import cost.

    Parameters
    ----------
    problem : a validated problem.
    time_limit_s : wall-time budget [s] for everything up to the chosen plan (compiling,
        building, solving, baselines); scoring and explaining the plan come on top (well under
        a second at 20,000 sessions).
    method : ``network`` (exact min-cost flow, the default) or ``lp`` (PuLP + HiGHS).

    Returns
    -------
    A feasible `Schedule`. ``status`` is ``optimal`` only when the solver proved it;
    ``time_limit`` when the budget ran out first: the lexicographically best plan found (the
    renewable-surplus-first plan, the uncontrolled plan, for ``lp`` also HiGHS's last point
    repaired and a max-flow plan); ``fallback`` (fair share of each zone's headroom) when the
    solver failed. `message` says why whenever the status is not optimal. Never raises for a
    valid problem.
    """
    started = time.monotonic()
    budget = max(0.0, float(time_limit_s))
    compiled = compile_problem(problem)
    fallback = uncontrolled(compiled)
    prepared = time.monotonic() - started
    cells = compiled.n_sessions * compiled.slots
    finishing = max(FINISH_SECONDS_PER_CELL * cells, FINISH_PER_PREPARATION * prepared)
    deadline = started + budget - min(0.5 * budget, finishing)
    explain_by = started + budget
    if method == "lp":
        return _solve_lp(compiled, fallback, started, deadline, explain_by)
    surplus_first: list[FloatArray | None] = [None]

    def baseline_meanwhile(answered: Callable[[], bool]) -> None:
        # Deterministic: computed whenever it is cheap, never for a large city (seconds of
        # Python the exact plan would wait for; no production caller reads it).
        del answered
        if compiled.n_sessions <= SURPLUS_FIRST_MAX_SESSIONS:
            surplus_first[0] = renewable_surplus_first_until(compiled, deadline)

    if not build_fits(prepared, deadline):  # no time to build: the quick plan is all there is
        references = _References(fallback, None, explain_by)
        return _best_of(
            compiled, {"the uncontrolled plan": fallback}, time_limit_s, started, references
        )
    try:
        network = build_network(compiled)
    except Exception as exc:  # a failure here must still end in a safe plan
        references = _References(fallback, None, explain_by)
        message = f"network build failed: {exc}"
        return _schedule(compiled, fallback, "fallback", started, references, message)
    # Two exact solvers race, each in its own child: LEMON's network simplex is several times
    # faster on most cities, OR-Tools' cost scaling when a substation is short of what is asked
    # below it (`leader`). The other solver starts only after the leader's head start.
    lemon, ortools = (lambda: lemon_flow(network)), (lambda: ortools_flow(network))
    leader = choose_leader(compiled)
    racers = [lemon, ortools] if leader == "lemon" else [ortools, lemon]
    head_start = RACE_HEAD_START_S_PER_ARC[leader] * network.n_arcs
    outcome = race_with_deadline(racers, deadline, baseline_meanwhile, delays=(0.0, head_start))
    references = _References(fallback, surplus_first[0], explain_by)
    if outcome.values is not None:
        power = network.power_from_flow(outcome.values, compiled.n_sessions, compiled.slots)
        return _schedule(compiled, repair(compiled, power), "optimal", started, references, None)
    if outcome.detail != "time_limit":
        return _schedule(compiled, fallback, "fallback", started, references, outcome.detail)
    candidates = {"the uncontrolled plan": fallback}
    if references.surplus_first is not None:
        candidates["the renewable-surplus-first plan"] = references.surplus_first
    return _best_of(compiled, candidates, time_limit_s, started, references)


def build_fits(prepared_s: float, deadline: float) -> bool:
    """Whether building the network (~`BUILD_PER_PREPARATION` × `prepared_s`) ends by `deadline`."""
    return time.monotonic() + BUILD_PER_PREPARATION * prepared_s < deadline


def _solve_lp(
    compiled: Compiled, fallback: FloatArray, started: float, deadline: float, explain_by: float
) -> Schedule:
    """The PuLP + HiGHS path, with the deadline checked between its phases."""
    surplus_first = renewable_surplus_first_until(compiled, deadline)
    references = _References(fallback, surplus_first, explain_by)
    budget = deadline - started
    candidates = {"the uncontrolled plan": fallback}
    if surplus_first is not None:
        candidates["the renewable-surplus-first plan"] = surplus_first
    try:
        layout = build_layout(compiled)
        if time.monotonic() >= deadline:
            return _best_of(compiled, candidates, budget, started, references)
        model = build_model(compiled, layout)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _best_of(compiled, candidates, budget, started, references)
        result = solve_model(model, remaining)
    except Exception as exc:  # a solver failure must still end in a safe plan
        message = f"solver failed: {exc}"
        return _schedule(compiled, fallback, "fallback", started, references, message)
    if result.values is None:
        return _schedule(compiled, fallback, "fallback", started, references, result.detail)
    power = repair(compiled, layout.power_from_columns(result.values, compiled))
    if result.status == "optimal":
        return _schedule(compiled, power, "optimal", started, references, None)
    # Out of time: the best of the solver's last point (repaired) and the quick plans.
    candidates["the solver's last point"] = power
    if time.monotonic() < deadline:
        candidates["the max-delivery plan"] = max_delivery_plan(compiled, layout)
    return _best_of(compiled, candidates, budget, started, references)


def _best_of(
    compiled: Compiled,
    candidates: dict[str, FloatArray],
    budget_s: float,
    started: float,
    references: _References,
) -> Schedule:
    scored = {name: score(compiled, plan) for name, plan in candidates.items()}
    chosen = min(
        scored, key=lambda name: (round(scored[name].unmet_kwh, 9), scored[name].import_cost)
    )
    message = (
        f"no proven optimum within the time limit of {budget_s:g} s; returned {chosen}, "
        "the best feasible plan found"
    )
    plan = candidates[chosen]
    return _schedule(
        compiled, plan, "time_limit", started, references, message, kpis=scored[chosen]
    )


def fallback_schedule(problem: Problem) -> Schedule:
    """The plan that needs no solver: fair share of each zone's headroom.

    Every session asks for its full power from arrival until it is full; where a charger or zone
    cannot serve all requests, each session below it gets the same fraction of its request.
    Always feasible; ``status`` is ``fallback``.
    """
    started = time.monotonic()
    compiled = compile_problem(problem)
    references = _References(uncontrolled(compiled), renewable_surplus_first(compiled))
    plan = references.uncontrolled
    return _schedule(compiled, plan, "fallback", started, references, "fallback plan requested")


@dataclass(frozen=True)
class _References:
    """The baseline plans, and when explaining the plan must be skipped (`time.monotonic`)."""

    uncontrolled: FloatArray
    surplus_first: FloatArray | None
    explain_by: float = float("inf")


def _schedule(
    compiled: Compiled,
    power: FloatArray,
    status: Status,
    started: float,
    references: _References,
    message: str | None,
    kpis: Kpis | None = None,
) -> Schedule:
    kpis = kpis if kpis is not None else score(compiled, power)
    delivered = power.sum(axis=1) * compiled.dt
    unmet = np.maximum(0.0, compiled.energy_kwh - delivered)
    # Arrays, not 1.9 M Python floats: the lists are made when (and if) someone reads them.
    sessions = SessionPlans(compiled.session_ids, power, delivered, unmet)
    chargers = PowerRows(compiled.charger_ids, compiled.charger_load(power))
    baseline = Baselines(
        uncontrolled=(
            kpis if power is references.uncontrolled else score(compiled, references.uncontrolled)
        ),
        uncontrolled_ev_kw=references.uncontrolled.sum(axis=0).tolist(),
        renewable_surplus_first=(
            score(compiled, references.surplus_first)
            if references.surplus_first is not None
            else None
        ),
    )
    if time.monotonic() <= references.explain_by:
        limits = binding(compiled, power)
    else:  # the budget is spent: the plan matters, its explanation can wait for the next one
        limits = []
        message = (message + "; " if message else "") + "explanation skipped: out of time"
    return Schedule.model_construct(
        status=status,
        solve_seconds=time.monotonic() - started,
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
