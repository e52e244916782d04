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


def _session_short(
    session: str,
    unmet_kwh: float,
    reason: Literal["window_too_short", "zone_headroom", "charger_shared", "plan_not_optimal"],
    limited_by: list[str],
) -> BindingSession:
    """A `BindingSession` of our own values, built like `model_construct` without its overhead.

    Thousands per explanation at 20,000 sessions; checked equal to `model_construct` in tests.
    """
    item = BindingSession.__new__(BindingSession)
    values = {
        "kind": "session_short",
        "session": session,
        "unmet_kwh": unmet_kwh,
        "reason": reason,
        "limited_by": limited_by,
    }
    object.__setattr__(item, "__dict__", values)
    object.__setattr__(item, "__pydantic_fields_set__", set(values) - {"kind"})  # a default
    object.__setattr__(item, "__pydantic_extra__", None)
    object.__setattr__(item, "__pydantic_private__", None)
    return item


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
    short = np.nonzero(unmet > SHORT_TOLERANCE_KWH)[0]
    # All short sessions at once: the slots of its window where each stayed below its own bound,
    # and at each depth whether its zone there was full in one of those slots.
    held = window[short] & (power[short] < compiled.session_max_kw[short, None] - _ABS_TOL)
    zone_at = at_depth[short]
    zone_hit = np.zeros(zone_at.shape, dtype=bool)
    for depth in range(zone_at.shape[1]):
        zone = zone_at[:, depth]
        zoned = zone >= 0
        zone_hit[zoned, depth] = (zone_full[zone[zoned]] & held[zoned]).any(axis=1)
    charger = compiled.session_charger[short]
    charger_hit = np.asarray((charger_full[charger] & held).any(axis=1), dtype=bool)
    too_short = reach[short] < compiled.energy_kwh[short] - SHORT_TOLERANCE_KWH
    unmet_list = unmet[short].tolist()
    for k, s in enumerate(short.tolist()):
        session_id = compiled.session_ids[s]
        reason: Literal["window_too_short", "zone_headroom", "charger_shared", "plan_not_optimal"]
        limited_by: list[str] = []
        if too_short[k]:
            reason = "window_too_short"
        elif zone_hit[k].any():
            reason = "zone_headroom"
            limited_by = [compiled.zone_ids[z] for z in zone_at[k][zone_hit[k]].tolist()]
        elif charger_hit[k]:
            reason, limited_by = "charger_shared", [compiled.charger_ids[charger[k]]]
        else:
            reason = "plan_not_optimal"
        found.append(_session_short(session_id, unmet_list[k], reason, limited_by))
    return found
