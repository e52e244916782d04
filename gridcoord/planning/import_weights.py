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

Under ``net_load`` the import of the next hours is also dearer by a premium that fades with
the lead time (``now_premium x exp(-lead / NOW_PREMIUM_TAU_H)``, ``planning.import_now_premium``),
in the slots after which the forecast shows a surplus within `SURPLUS_AHEAD_H`: the price of
deciding now. A kWh imported in the next slot is spent for good, while the same
kWh planned hours ahead is only a plan that the next run, on a newer forecast, may still move
into a surplus that the forecast saw too weak or too late. Without it the plan drew the grid
energy it needed at the slots of lowest forecast net load, which are the hours next to a
forecast wind burst or sunny spell: on summer, seed 1, it imported ~500 kW in the hour before
a night's wind burst that came stronger than forecast, and the cars were full when it did
(issue 12, docs/performance.md). The unmet energy comes first in the objective, so the
premium never defers a need past what the plan can still deliver by the departure.

Weights stay > 0 and finite whatever the forecast holds, so the problem is always valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gridcoord.forecast.series import FloatArray

# How much dearer the last slot's import is than the first's under ``early``.
EARLY_PREFERENCE = 0.1
# The same rise under ``net_load``: only a tie-break between slots of equal net load.
NET_LOAD_TIE_BREAK = 0.01
# Lead time over which the premium on deciding now fades to 1/e [h].
NOW_PREMIUM_TAU_H = 2.0
# The premium holds only in slots after which the forecast shows a surplus this soon [h]:
# with none to wait for, deferring import only bunches it towards the departures (issue 12:
# on winter, seed 1, an ungated premium took 32 kWh more unmet, 1.6 % more peak import).
SURPLUS_AHEAD_H = 4.0


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
    now_premium: float = 0.0,
    slot_minutes: int = 15,
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
    now_premium
        extra weight of the first slot's import, fading with the lead time over
        `NOW_PREMIUM_TAU_H` [-] (>= 0; 0: none).
    slot_minutes
        slot length, for the premium's lead times [min].

    Returns
    -------
    list[float]
        One weight per slot in [1, 1 + spread + tie_break + now_premium]: non-decreasing in
        net load for slots at the same place in the horizon; a flat net load gives
        `tie_break`'s ramp less the premium's fade.
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
    if math.isfinite(now_premium) and now_premium > 0:
        lead_h = np.arange(slots) * (slot_minutes / 60.0)
        fade = np.exp(-lead_h / NOW_PREMIUM_TAU_H)
        weights = weights + now_premium * fade * surplus_ahead(net, slot_minutes)
    return [float(w) for w in weights]


def surplus_ahead(
    net_kw: Sequence[float] | FloatArray, slot_minutes: int, within: float = SURPLUS_AHEAD_H
) -> FloatArray:
    """Per slot 1 where a forecast surplus comes after it within ``within`` hours, else 0.

    A surplus slot is one whose forecast net load (non-EV load − renewable) is below 0;
    "after" counts the slots ``t + 1 ... t + within``: where waiting has something to wait
    for [-].
    """
    surplus = np.asarray(net_kw, dtype=np.float64) < 0
    reach = max(0, int(within * 60 // slot_minutes))
    # Surplus slots counted up to each index: any in (t, t + reach] is a difference of two.
    counted = np.concatenate(([0], np.cumsum(surplus)))
    t = np.arange(surplus.size)
    last = np.minimum(t + reach, surplus.size - 1)
    ahead: FloatArray = (counted[last + 1] - counted[t + 1] > 0).astype(np.float64)
    return ahead
