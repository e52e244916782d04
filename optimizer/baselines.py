"""Reference plans the optimizer is measured against, scored with the same `kpis.score`.

* `uncontrolled`: every session charges at its max from arrival until it is full; chargers and
  zones curtail proportionally when over their limit (a static load manager, no planning).
* `renewable_surplus_first`: the greedy rule home chargers use (earliest departure first): charge
  from the renewable surplus left over by base load and earlier vehicles, then top up in the
  cheapest remaining slots of the window.
"""

from __future__ import annotations

import time

import numpy as np

from optimizer.allocation import fit_sessions_at, repair
from optimizer.compiled import Compiled, FloatArray, IntArray


def uncontrolled(compiled: Compiled) -> FloatArray:
    """[S, T] power [kW]: as fast as possible from arrival, curtailed into charger/zone limits."""
    power = np.zeros((compiled.n_sessions, compiled.slots))
    remaining = compiled.energy_kwh.copy()
    for slot in range(compiled.slots):
        # Only the sessions plugged in now: a slot touches a fraction of the city.
        here = np.nonzero(compiled.window[:, slot] & (remaining > 0))[0]
        if here.size == 0:
            continue
        request = np.minimum(compiled.session_max_kw[here], remaining[here] / compiled.dt)
        granted = fit_sessions_at(compiled, here, request, slot)
        power[here, slot] = granted
        remaining[here] = np.maximum(0.0, remaining[here] - granted * compiled.dt)
    return power


def renewable_surplus_first(compiled: Compiled) -> FloatArray:
    """[S, T] power [kW] of the greedy surplus-first heuristic (feasible by construction)."""
    plan = renewable_surplus_first_until(compiled, None)
    assert plan is not None  # no deadline: always complete
    return plan


def renewable_surplus_first_until(compiled: Compiled, deadline: float | None) -> FloatArray | None:
    """`renewable_surplus_first`, or None if `deadline` (`time.monotonic`) [s] passes first."""
    dt = compiled.dt
    power = np.zeros((compiled.n_sessions, compiled.slots))
    surplus = np.maximum(0.0, compiled.renewable_kw - compiled.base_load_kw)
    charger_free = np.repeat(compiled.charger_max_kw[:, None], compiled.slots, axis=1)
    zone_free = compiled.zone_capacity_kw.copy()
    order = np.lexsort((compiled.arrival, compiled.departure))
    for done, s in enumerate(order):
        if deadline is not None and done % 256 == 0 and time.monotonic() > deadline:
            return None
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
        # Pass 1: the renewable surplus, largest first; pass 2: cheapest slots, earliest first.
        room = np.minimum(free, surplus[a:d])
        plan, remaining = _take_in_order(
            room, np.argsort(-surplus[a:d], kind="stable"), remaining, dt
        )
        if remaining > 1e-12:
            cheapest = np.lexsort((np.arange(d - a), compiled.import_weight[a:d]))
            top_up, remaining = _take_in_order(free - plan, cheapest, remaining, dt)
            plan += top_up
        power[s, a:d] = plan
        charger_free[charger, a:d] -= plan
        if zones.size:
            zone_free[zones, a:d] -= plan
        surplus[a:d] = np.maximum(0.0, surplus[a:d] - plan)
    return repair(compiled, power)  # only removes floating-point dust


def _take_in_order(
    room: FloatArray, order: IntArray, remaining: float, dt: float
) -> tuple[FloatArray, float]:
    """Fill `room` [kW] slot by slot in `order` until `remaining` [kWh] is used up.

    Returns the power taken per slot [kW] and the energy still wanted [kWh]: the vectorised
    form of "for k in order: take min(room[k], remaining / dt)".
    """
    room_kwh = np.maximum(room[order], 0.0) * dt
    before = room_kwh.cumsum() - room_kwh  # energy taken by the slots earlier in the order
    # min(room, max(0, remaining − before)); ufuncs directly: np.clip's wrapper costs more here.
    take_kwh = np.minimum(np.maximum(remaining - before, 0.0), room_kwh)
    taken = np.empty(len(room))
    taken[order] = take_kwh / dt
    return taken, max(0.0, remaining - float(take_kwh.sum()))
