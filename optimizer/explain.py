"""What limited a plan: zones and chargers at capacity, and sessions left short with the reason."""

from __future__ import annotations

from typing import Literal

import numpy as np

from optimizer.compiled import BoolArray, Compiled, FloatArray, group_sum
from optimizer.schedule import Binding, BindingCharger, BindingSession, BindingZone

# A limit counts as reached within this share of it (plus an absolute floor) [kW].
_REL_TOL = 1e-6
_ABS_TOL = 1e-6
# Sessions short by less than this are not reported [kWh].
SHORT_TOLERANCE_KWH = 1e-6


def _at(load: FloatArray, limit: FloatArray) -> BoolArray:
    return np.asarray(load >= limit - (_ABS_TOL + _REL_TOL * np.abs(limit)))


def binding(compiled: Compiled, power: FloatArray) -> list[Binding]:
    """Limits the plan `power` [S, T] [kW] runs into, and why each short session is short.

    Parameters
    ----------
    compiled : the problem.
    power : the (feasible) plan [kW].

    Returns
    -------
    Zones at capacity (slots in which some session below could charge), chargers at capacity
    while shared by several sessions, then sessions short by more than 1e-6 kWh. In an optimum
    every short session that could reach its energy is held back by a full zone or charger
    (otherwise charging more would lower the objective); a session of a time_limit or
    fallback plan may be short without one: ``plan_not_optimal``.
    """
    window = compiled.window
    zone_active = np.zeros((compiled.n_zones, compiled.slots), dtype=bool)
    at_depth = compiled.session_zone_at_depth
    for depth in range(at_depth.shape[1]):
        member = at_depth[:, depth] >= 0
        inside = window[member].astype(np.float64)
        zone_active |= group_sum(at_depth[member, depth], inside, compiled.n_zones) > 0
    zone_full = _at(compiled.zone_load(power), compiled.zone_capacity_kw) & zone_active
    sharing = group_sum(compiled.session_charger, window.astype(np.float64), compiled.n_chargers)
    charger_full = _at(compiled.charger_load(power), compiled.charger_max_kw[:, None])
    charger_full &= sharing >= 2

    found: list[Binding] = []
    for z in np.nonzero(zone_full.any(axis=1))[0]:
        slots = np.nonzero(zone_full[z])[0].tolist()
        found.append(BindingZone.model_construct(zone=compiled.zone_ids[z], slots=slots))
    for c in np.nonzero(charger_full.any(axis=1))[0]:
        slots = np.nonzero(charger_full[c])[0].tolist()
        found.append(BindingCharger.model_construct(charger=compiled.charger_ids[c], slots=slots))

    dt = compiled.dt
    delivered = power.sum(axis=1) * dt
    unmet = compiled.energy_kwh - delivered
    reach = compiled.session_max_kw * window.sum(axis=1) * dt
    for s in np.nonzero(unmet > SHORT_TOLERANCE_KWH)[0]:
        session_id = compiled.session_ids[s]
        short = float(unmet[s])
        if reach[s] < compiled.energy_kwh[s] - SHORT_TOLERANCE_KWH:
            found.append(
                BindingSession.model_construct(
                    session=session_id, unmet_kwh=short, reason="window_too_short", limited_by=[]
                )
            )
            continue
        # Slots of the window where the session stayed below its own bound.
        held = window[s] & (power[s] < compiled.session_max_kw[s] - _ABS_TOL)
        zones = [z for z in at_depth[s] if z >= 0]
        limiting_zones = [compiled.zone_ids[z] for z in zones if (zone_full[z] & held).any()]
        charger = int(compiled.session_charger[s])
        reason: Literal["zone_headroom", "charger_shared", "plan_not_optimal"]
        if limiting_zones:
            reason, limited_by = "zone_headroom", limiting_zones
        elif (charger_full[charger] & held).any():
            reason, limited_by = "charger_shared", [compiled.charger_ids[charger]]
        else:
            reason, limited_by = "plan_not_optimal", []
        found.append(  # our own values: no validation (it was most of the explanation's time)
            BindingSession.model_construct(
                session=session_id,
                unmet_kwh=short,
                reason=reason,
                limited_by=limited_by,
            )
        )
    return found
