"""Blend the measured nowcast with a day-ahead (weather-model) forecast by lead time.

A nowcast from the city's own meters (PV's measured clear-sky index, wind persistence) is the
best guess for the next hour and worthless a few hours on; a weather model's day-ahead forecast
is the other way round: a fixed error from the first slot, but it sees tomorrow's front and
tomorrow's sun. The planner takes, per slot at lead time h,

    blended = w(h) * nowcast + (1 - w(h)) * day_ahead,    w(h) = exp(-h / tau_kind),

and the nowcast alone where no fresh day-ahead forecast covers the slot. ``tau`` is the lead
time scale on which the nowcast's error overtakes the day-ahead's. Measured on the demo city
(docs/performance.md, issue 12) wind's nowcast MAE is half the day-ahead's in the first hour,
equal at 2-3 h and twice it at 6-12 h: inverse-variance weights of those errors are 0.8, 0.55,
0.35 and 0.2 at 0.5, 2, 4.5 and 9 h, which exp(-h / 3 h) follows (0.85, 0.5, 0.2, 0.05, a
little lower far out, where the nowcast's errors and the day-ahead's are not independent). PV's
day-ahead is already the better one in the first hour (its daily cloudiness beats a clear-sky
index measured at dawn), the inverse-variance weight there is about 0.4: tau 0.75 h.

Non-EV load has no nowcast (its model is the same-weekday history), so an external load
forecast replaces the model outright (``tau = 0``), as before blending existed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from gridcoord.forecast.external import ExternalForecast, ForecastKind
from gridcoord.forecast.series import FloatArray, slot_midpoints
from gridcoord.timegrid import as_utc, slot_length

# Lead time at which the nowcast's weight has fallen to 1/e, per kind [h].
NOWCAST_TAU_H: Mapping[ForecastKind, float] = {
    ForecastKind.PV: 0.75,
    ForecastKind.WIND: 3.0,
    ForecastKind.LOAD: 0.0,
}
EXTERNAL_MAX_AGE = timedelta(hours=12)


def lead_hours(starts: Sequence[datetime], slot_minutes: int, now: datetime) -> FloatArray:
    """Lead time of each slot's middle after ``now`` (never negative) [h]."""
    now = as_utc(now)
    middles = slot_midpoints(starts, slot_minutes)
    return np.array([max(0.0, (m - now) / timedelta(hours=1)) for m in middles], dtype=np.float64)


def nowcast_weight(leads_h: FloatArray, tau_h: float) -> FloatArray:
    """Weight of the nowcast per slot, 1 at lead 0 falling to 0 [-]; 0 throughout for tau 0."""
    if not (math.isfinite(tau_h) and tau_h > 0):
        return np.zeros_like(leads_h)
    return np.asarray(np.exp(-np.asarray(leads_h) / tau_h), dtype=np.float64)


def day_ahead_kw(
    starts: Sequence[datetime],
    slot_minutes: int,
    external: ExternalForecast | None,
    now: datetime,
    max_age: timedelta = EXTERNAL_MAX_AGE,
) -> FloatArray:
    """The external forecast on the horizon's slots; NaN where it does not cover one [kW].

    Each slot takes the external value of the external slot containing its middle, so an
    hourly forecast fills four quarter hours. A forecast older than ``max_age`` covers nothing.
    """
    values = np.full(len(starts), np.nan)
    if external is None or as_utc(now) - external.issued_at > max_age:
        return values
    step = slot_length(external.slot_minutes)
    half = slot_length(slot_minutes) / 2
    for i, start in enumerate(starts):
        index = (as_utc(start) + half - external.start) // step
        if 0 <= index < len(external.values_kw):
            values[i] = external.values_kw[index]
    return values


def blend(nowcast_kw: FloatArray, day_ahead: FloatArray, weight: FloatArray) -> FloatArray:
    """``weight * nowcast + (1 - weight) * day_ahead``; the nowcast where day-ahead is NaN [kW].

    Parameters
    ----------
    nowcast_kw
        the model's forecast per slot [kW].
    day_ahead
        the external forecast per slot, NaN where uncovered [kW].
    weight
        the nowcast's weight per slot, in [0, 1] [-].
    """
    now = np.asarray(nowcast_kw, dtype=np.float64)
    ahead = np.asarray(day_ahead, dtype=np.float64)
    w = np.clip(np.asarray(weight, dtype=np.float64), 0.0, 1.0)
    mixed = w * now + (1.0 - w) * ahead
    return np.where(np.isfinite(ahead), mixed, now)
