"""Import weights of a planning run: what a kWh of grid import costs in each slot [-].

The optimizer's second objective (DESIGN 3.5: after unmet energy) is Σ import_weight·import.
Two signals are offered (``planning.import_weights``):

- ``net_load`` (default): the slot's forecast net load, non-EV load minus PV and wind. Import
  is dearest when the city already draws most from the grid (the winter evening peak) and
  cheapest when wind or sun cover most of it (a windy night, a sunny midday), so flexible
  charging moves there and the peak import falls. The weight is ``1 + spread x`` the net load
  scaled to [0, 1] over the horizon, plus a small rise over the horizon so that of two slots
  with the same net load the earlier wins (the hedge against a car leaving early).
- ``early``: flat, rising ``EARLY_PREFERENCE`` over the horizon (the rule before net-load
  weights; no signal at all).

Weights stay > 0 and finite whatever the forecast holds, so the problem is always valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridcoord.forecast.series import FloatArray

# How much dearer the last slot's import is than the first's under ``early``.
EARLY_PREFERENCE = 0.1
# The same rise under ``net_load``: only a tie-break between slots of equal net load.
NET_LOAD_TIE_BREAK = 0.01


def early_weights(slots: int) -> list[float]:
    """Import weights rising by ``EARLY_PREFERENCE`` over the horizon [-].

    With a flat price the LP is indifferent between importing now or later and may leave a
    car's charging for its last slots; a car that leaves before its assumed departure then
    goes short. The rise makes earlier import the cheaper of two otherwise equal plans.
    """
    return [1.0 + EARLY_PREFERENCE * t / max(1, slots - 1) for t in range(slots)]


def net_load_weights(
    load_kw: Sequence[float] | FloatArray,
    renewable_kw: Sequence[float] | FloatArray,
    *,
    spread: float = 1.0,
    tie_break: float = NET_LOAD_TIE_BREAK,
) -> list[float]:
    """Import weights from the forecast net load (non-EV load − renewable) per slot [-].

    Parameters
    ----------
    load_kw
        forecast non-EV load per slot [kW].
    renewable_kw
        forecast PV + wind per slot [kW].
    spread
        weight of the slot with the highest net load minus that of the lowest [-] (>= 0).
    tie_break
        rise over the horizon for slots of equal net load [-] (>= 0).

    Returns
    -------
    list[float]
        One weight per slot in [1, 1 + spread + tie_break]: non-decreasing in net load for
        slots at the same place in the horizon; a flat net load gives `tie_break`'s ramp.
    """
    load = np.asarray(load_kw, dtype=np.float64)
    renewable = np.asarray(renewable_kw, dtype=np.float64)
    if load.shape != renewable.shape:
        raise ValueError(f"load has {load.size} slots, renewable {renewable.size}")
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, treated as 0 below
        net = np.nan_to_num(load - renewable, nan=0.0, posinf=0.0, neginf=0.0)
    slots = net.size
    if slots == 0:
        return []
    low, high = float(net.min()), float(net.max())
    scaled = (net - low) / (high - low) if high > low else np.zeros(slots)
    ramp = np.arange(slots) / max(1, slots - 1)
    weights = 1.0 + max(0.0, spread) * scaled + max(0.0, tie_break) * ramp
    return [float(w) for w in weights]
