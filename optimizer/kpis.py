"""Score a power plan: the objective terms of DESIGN 3.5 and the operator's figures of merit."""

from __future__ import annotations

import numpy as np

from optimizer.compiled import Compiled, FloatArray
from optimizer.schedule import Kpis

# A zone counts as overloaded only beyond solver-tolerance noise [kW].
OVERLOAD_TOLERANCE_KW = 1e-6


def import_kw(compiled: Compiled, power: FloatArray) -> FloatArray:
    """[T] grid import max(0, base + EV − renewable) [kW]."""
    ev = power.sum(axis=0)
    grid: FloatArray = np.maximum(0.0, compiled.base_load_kw + ev - compiled.renewable_kw)
    return grid


def score(compiled: Compiled, power: FloatArray) -> Kpis:
    """KPIs of the plan `power` [S, T] [kW] (feasible or not: overloads are counted, not fixed).

    Returns
    -------
    `Kpis`; `renewable_share` is renewable energy used over all consumption (0 when nothing is
    consumed), `import_cost` is Σ_t import_weight[t]·import[t]·dt, the second objective.
    """
    dt = compiled.dt
    ev = power.sum(axis=0)
    grid = import_kw(compiled, power)
    consumption = compiled.base_load_kw + ev
    used_renewable = np.minimum(compiled.renewable_kw, consumption)
    total = float(consumption.sum() * dt)
    delivered = power.sum(axis=1) * dt
    unmet = np.maximum(0.0, compiled.energy_kwh - delivered)
    overloads = compiled.zone_load(power) > compiled.zone_capacity_kw + OVERLOAD_TOLERANCE_KW
    return Kpis(
        renewable_share=float(used_renewable.sum() * dt / total) if total > 0 else 0.0,
        peak_import_kw=float(grid.max(initial=0.0)),
        unmet_kwh=float(unmet.sum()),
        delivered_kwh=float(delivered.sum()),
        import_kwh=float(grid.sum() * dt),
        import_cost=float((compiled.import_weight * grid).sum() * dt),
        peak_ev_kw=float(ev.max(initial=0.0)),
        zone_overloads=int(overloads.sum()),
    )
