"""Hypothesis strategies for small charging problems, and an independent reference solve."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.optimize import linprog

from optimizer import Problem
from optimizer.compiled import Compiled

_power = st.sampled_from([0.0, 1.0, 2.5, 4.0, 7.0, 11.0])


@st.composite
def problems(draw: st.DrawFn, max_slots: int = 6, max_sessions: int = 6) -> dict[str, Any]:
    """A small valid problem as JSON-like data: a zone forest, chargers, overlapping sessions."""
    slots = draw(st.integers(1, max_slots))

    def series(values: st.SearchStrategy[float]) -> Any:
        return draw(st.one_of(values, st.lists(values, min_size=slots, max_size=slots)))

    n_zones = draw(st.integers(0, 3))
    zones = []
    for z in range(n_zones):
        zone: dict[str, Any] = {"id": f"z{z}", "capacity_kw": series(_power)}
        parent = draw(st.one_of(st.none(), st.integers(0, z - 1))) if z else None
        if parent is not None:
            zone["parent"] = f"z{parent}"
        zones.append(zone)
    n_chargers = draw(st.integers(1, 4))
    chargers = []
    for c in range(n_chargers):
        charger: dict[str, Any] = {"id": f"c{c}", "max_kw": draw(st.sampled_from([3.7, 7.0, 11.0]))}
        zone_of = draw(st.one_of(st.none(), st.integers(0, n_zones - 1))) if n_zones else None
        if zone_of is not None:
            charger["zone"] = f"z{zone_of}"
        chargers.append(charger)
    sessions = []
    for s in range(draw(st.integers(0, max_sessions))):
        arrival = draw(st.integers(0, slots - 1))
        session: dict[str, Any] = {
            "id": f"s{s}",
            "charger": f"c{draw(st.integers(0, n_chargers - 1))}",
            "arrival_slot": arrival,
            "departure_slot": draw(st.integers(arrival + 1, slots)),
            "energy_kwh": draw(st.sampled_from([0.0, 1.0, 3.0, 5.5, 10.0, 20.0, 40.0])),
        }
        if draw(st.booleans()):
            session["max_kw"] = draw(st.sampled_from([2.0, 5.0, 22.0]))
        sessions.append(session)
    return {
        "slot_minutes": draw(st.sampled_from([15, 30, 60])),
        "slots": slots,
        "renewable_kw": series(st.sampled_from([0.0, 3.0, 8.0, 20.0])),
        "base_load_kw": series(st.sampled_from([0.0, 2.0, 5.0])),
        "import_weight": series(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
        "zones": zones,
        "chargers": chargers,
        "sessions": sessions,
    }


def reference_optimum(problem: Problem, compiled: Compiled) -> tuple[float, float]:
    """(least unmet kWh, least import cost among those), by a differently formulated solve.

    Two stages with scipy's `linprog`: explicit unmet and import variables, one row per zone
    summing every session below it (no flow variables), dense matrices; stage 2 fixes the
    unmet total of stage 1 (plus 1e-7 slack) and minimises import cost.
    """
    sessions, slots, dt = compiled.n_sessions, compiled.slots, compiled.dt
    n_p = sessions * slots
    n = n_p + sessions + slots  # p, unmet, import

    def p(s: int, t: int) -> int:
        return s * slots + t

    bounds = []
    for s in range(sessions):
        for t in range(slots):
            inside = compiled.window[s, t] and compiled.energy_kwh[s] > 0
            bounds.append((0.0, float(compiled.session_max_kw[s]) if inside else 0.0))
    bounds += [(0.0, None)] * (sessions + slots)
    a_ub: list[np.ndarray] = []
    b_ub: list[float] = []
    for c in range(compiled.n_chargers):
        for t in range(slots):
            row = np.zeros(n)
            for s in np.nonzero(compiled.session_charger == c)[0]:
                row[p(s, t)] = 1.0
            a_ub.append(row)
            b_ub.append(float(compiled.charger_max_kw[c]))
    for z in range(compiled.n_zones):
        below = [s for s in range(sessions) if z in compiled.session_zone_at_depth[s]]
        for t in range(slots):
            row = np.zeros(n)
            for s in below:
                row[p(s, t)] = 1.0
            a_ub.append(row)
            b_ub.append(float(compiled.zone_capacity_kw[z, t]))
    for t in range(slots):  # base + Σp − ren ≤ imp
        row = np.zeros(n)
        for s in range(sessions):
            row[p(s, t)] = 1.0
        row[n_p + sessions + t] = -1.0
        a_ub.append(row)
        b_ub.append(float(compiled.renewable_kw[t] - compiled.base_load_kw[t]))
    a_eq: list[np.ndarray] = []
    b_eq: list[float] = []
    for s in range(sessions):  # Σ p dt + unmet = E
        row = np.zeros(n)
        row[p(s, 0) : p(s, 0) + slots] = dt
        row[n_p + s] = 1.0
        a_eq.append(row)
        b_eq.append(float(compiled.energy_kwh[s]))
    unmet_cost = np.zeros(n)
    unmet_cost[n_p : n_p + sessions] = 1.0
    import_cost = np.zeros(n)
    import_cost[n_p + sessions :] = compiled.import_weight * dt
    eq = {"A_eq": np.array(a_eq), "b_eq": b_eq} if a_eq else {}
    first = linprog(unmet_cost, A_ub=np.array(a_ub), b_ub=b_ub, bounds=bounds, **eq)
    assert first.status == 0, first.message
    a_ub.append(unmet_cost)
    b_ub.append(float(first.fun) + 1e-7)
    second = linprog(import_cost, A_ub=np.array(a_ub), b_ub=b_ub, bounds=bounds, **eq)
    assert second.status == 0, second.message
    return float(first.fun), float(second.fun)
