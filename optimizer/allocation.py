"""Fit requested session power into the charger and zone limits by proportional curtailment.

This is what a static load manager does: when a charger or a zone is asked for more than it has,
every session below it gets the same fraction of its request. Only ever scaling *down* keeps any
plan feasible, which makes it the tool for the baselines, the fallback plan, and for cleaning a
solver's answer of tolerance-sized violations.
"""

from __future__ import annotations

import numpy as np

from optimizer.compiled import Compiled, FloatArray, IntArray, group_sum

# Scale a little below a limit so that floating-point sums never land above it.
_SAFETY = 1.0 - 1e-12


def _factor(load: FloatArray, limit: FloatArray) -> FloatArray:
    """Per group and slot: 1, or limit/load (a little less) where the load is over the limit."""
    over = load > limit  # load > limit ≥ 0: the quotient is in [0, 1), NaN loads stay at 1
    factor = np.ones(load.shape)
    np.divide(np.maximum(limit, 0.0) * _SAFETY, load, out=factor, where=over)
    return factor


def fit_power_limits(compiled: Compiled, request: FloatArray) -> FloatArray:
    """The largest proportional curtailment of `request` [kW] that meets every power limit.

    Parameters
    ----------
    compiled : the problem.
    request : [S, T] requested power [kW]; clipped to each session's window and bound first.

    Returns
    -------
    [S, T] power [kW] within session, charger and zone limits.
    """
    # In place on one copy (ufuncs, not np.where/np.clip: 1.9 M cells at 20,000 sessions).
    power = np.minimum(request, compiled.session_max_kw[:, None])
    np.maximum(power, 0.0, out=power)
    power = np.where(compiled.window, power, 0.0)  # not `*= window`: NaN · 0 is NaN
    return _fit(compiled, power)


def fit_sessions_at(
    compiled: Compiled, sessions: IntArray, request: FloatArray, slot: int
) -> FloatArray:
    """`fit_power_limits` for the single slot `slot` and only the sessions `sessions` [kW].

    Parameters
    ----------
    sessions : indices of the sessions that charge in `slot` (all others draw nothing).
    request : their requested power [kW], clipped to each session's bound first.
    """
    power = np.clip(request, 0.0, compiled.session_max_kw[sessions])
    charger = compiled.session_charger[sessions]
    load = _sum_by(charger, power, compiled.n_chargers)
    power = power * _factor(load, compiled.charger_max_kw)[charger]
    capacity = compiled.zone_capacity_kw[:, slot]
    at_depth = compiled.session_zone_at_depth[sessions]
    for depth in range(at_depth.shape[1] - 1, -1, -1):  # deepest first, as in `_fit`
        zone = at_depth[:, depth]
        member = zone >= 0
        if not member.any():
            continue
        load = _sum_by(zone[member], power[member], compiled.n_zones)
        power[member] *= _factor(load, capacity)[zone[member]]
    return power


def _sum_by(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """Sum of `weights` per value of `index` in 0..size-1 (np.bincount, typed as float)."""
    return np.asarray(np.bincount(index, weights=weights, minlength=size), dtype=np.float64)


def _fit(compiled: Compiled, power: FloatArray) -> FloatArray:
    """Scale `power` (in place) into the charger limits, then the zones', deepest first."""
    load = group_sum(compiled.session_charger, power, compiled.n_chargers)
    _scale(power, compiled.session_charger, _factor(load, compiled.charger_max_kw[:, None]))
    at_depth = compiled.session_zone_at_depth
    # Deepest zones first: scaling a subtree only lowers its ancestors' loads.
    for depth in range(at_depth.shape[1] - 1, -1, -1):
        zone = at_depth[:, depth]
        member = np.nonzero(zone >= 0)[0]
        if member.size == 0:
            continue
        load = group_sum(zone[member], power[member], compiled.n_zones)
        factor = _factor(load, compiled.zone_capacity_kw)
        _scale(power, np.where(zone >= 0, zone, 0), factor, member)
    return power


def _scale(
    power: FloatArray, group: IntArray, factor: FloatArray, rows: IntArray | None = None
) -> None:
    """power[s] *= factor[group[s]] for the sessions `rows` (all) whose group is curtailed.

    Only the rows of curtailed groups are touched: a solver's plan is within its limits almost
    everywhere, and a gather-multiply of every cell costs more than all the sums.
    """
    cut = np.asarray((factor < 1.0).any(axis=1), dtype=bool)
    if not cut.any():
        return
    candidates = rows if rows is not None else np.arange(len(group))
    hit = candidates[cut[group[candidates]]]
    power[hit] *= factor[group[hit]]


def fit_energy(compiled: Compiled, power: FloatArray) -> FloatArray:
    """Scale each session's row down so it delivers no more than it asked for [kW]."""
    delivered = power.sum(axis=1) * compiled.dt
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(
            delivered > compiled.energy_kwh, compiled.energy_kwh * _SAFETY / delivered, 1.0
        )
    fitted: FloatArray = power * np.minimum(np.maximum(factor, 0.0), 1.0)[:, None]
    return fitted


def repair(compiled: Compiled, power: FloatArray) -> FloatArray:
    """A feasible plan close to `power`: fit power limits, then energy requests [kW]."""
    return fit_energy(compiled, fit_power_limits(compiled, power))
