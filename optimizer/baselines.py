"""Reference plans the optimizer is measured against, scored with the same `kpis.score`.

* `uncontrolled`: every session charges at its max from arrival until it is full; chargers and
  zones curtail proportionally when over their limit (a static load manager, no planning).
* `renewable_surplus_first`: the greedy rule home chargers use (earliest departure first): charge
  from the renewable surplus left over by base load and earlier vehicles, then top up in the
  cheapest remaining slots of the window.
"""

from __future__ import annotations

import numpy as np

from optimizer.allocation import fit_power_limits_at, repair
from optimizer.compiled import Compiled, FloatArray


def uncontrolled(compiled: Compiled) -> FloatArray:
    """[S, T] power [kW]: as fast as possible from arrival, curtailed into charger/zone limits."""
    power = np.zeros((compiled.n_sessions, compiled.slots))
    remaining = compiled.energy_kwh.copy()
    for slot in range(compiled.slots):
        request = np.minimum(compiled.session_max_kw, remaining / compiled.dt)
        power[:, slot] = fit_power_limits_at(compiled, request, slot)
        remaining = np.maximum(0.0, remaining - power[:, slot] * compiled.dt)
    return power


def renewable_surplus_first(compiled: Compiled) -> FloatArray:
    """[S, T] power [kW] of the greedy surplus-first heuristic (feasible by construction)."""
    dt = compiled.dt
    power = np.zeros((compiled.n_sessions, compiled.slots))
    surplus = np.maximum(0.0, compiled.renewable_kw - compiled.base_load_kw)
    charger_free = np.repeat(compiled.charger_max_kw[:, None], compiled.slots, axis=1)
    zone_free = compiled.zone_capacity_kw.copy()
    order = np.lexsort((compiled.arrival, compiled.departure))
    for s in order:
        remaining = float(compiled.energy_kwh[s])
        if remaining <= 0.0:
            continue
        a, d = int(compiled.arrival[s]), int(compiled.departure[s])
        charger = int(compiled.session_charger[s])
        zones = compiled.session_zone_at_depth[s]
        zones = zones[zones >= 0]
        free = np.minimum(compiled.session_max_kw[s], charger_free[charger, a:d])
        if zones.size:
            free = np.minimum(free, zone_free[zones, a:d].min(axis=0))
        free = np.maximum(free, 0.0)
        plan = np.zeros(d - a)
        # Pass 1: the renewable surplus, largest first; pass 2: cheapest slots, earliest first.
        passes = (
            (np.argsort(-surplus[a:d], kind="stable"), surplus[a:d]),
            (np.lexsort((np.arange(d - a), compiled.import_weight[a:d])), None),
        )
        for slots, cap in passes:
            for k in slots:
                if remaining <= 1e-12:
                    break
                room = free[k] - plan[k]
                if cap is not None:
                    room = min(room, cap[k] - plan[k])
                take = min(max(room, 0.0), remaining / dt)
                plan[k] += take
                remaining -= take * dt
        power[s, a:d] = plan
        charger_free[charger, a:d] -= plan
        if zones.size:
            zone_free[zones, a:d] -= plan
        surplus[a:d] = np.maximum(0.0, surplus[a:d] - plan)
    return repair(compiled, power)  # only removes floating-point dust
