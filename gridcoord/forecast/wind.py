"""Wind output by persistence blended toward the recent mean.

The last observed output persists for the next hour or so; further ahead it is no better than
the recent average. The forecast for a lead time h is ``mean + (last - mean) * exp(-h / tau)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from gridcoord.forecast.series import FloatArray, Series, clamp_kw, slot_midpoints, window


def forecast_wind_kw(
    rated_kw: float,
    starts: Sequence[datetime],
    slot_minutes: int,
    measured: Series,
    now: datetime,
    *,
    time_constant: timedelta = timedelta(hours=3),
    mean_window: timedelta = timedelta(hours=24),
    last_window: timedelta = timedelta(minutes=15),
) -> FloatArray:
    """Wind forecast per slot [kW].

    Parameters
    ----------
    rated_kw
        installed wind capacity [kW].
    starts
        slot starts of the horizon [UTC].
    slot_minutes
        slot length [min].
    measured
        recent total wind output [kW].
    now
        the planning time [UTC].
    time_constant
        how fast persistence gives way to the mean.
    mean_window
        window of the recent mean.
    last_window
        the "last" value is the mean of this final stretch (smooths gusts).

    Returns
    -------
    FloatArray
        Forecast per slot in [0, rated_kw]; zeros when there is no observation at all [kW].
    """
    recent = window(measured, now, mean_window)
    if not recent:
        return np.zeros(len(starts))
    mean = float(np.mean([v for _, v in recent]))
    last_time = recent[-1][0]
    tail = [v for t, v in recent if t > last_time - last_window]
    last = float(np.mean(tail))
    tau_h = time_constant.total_seconds() / 3600.0
    leads_h = [
        max(0.0, (mid - last_time).total_seconds() / 3600.0)
        for mid in slot_midpoints(starts, slot_minutes)
    ]
    values = [mean + (last - mean) * math.exp(-lead / tau_h) for lead in leads_h]
    return clamp_kw(values, rated_kw, fill_kw=mean)
