"""Plain time series as forecasting inputs: (UTC time, value) pairs, slot averages, clamping."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from gridcoord.timegrid import as_utc, slot_length

Series = Sequence[tuple[datetime, float]]
"""Observations as (instant, value) pairs in any order; instants aware, values in kW."""

FloatArray = npt.NDArray[np.float64]


def slot_means(series: Series, starts: Sequence[datetime], slot_minutes: int) -> FloatArray:
    """Mean of the finite observations falling in each slot; NaN for a slot without any.

    Parameters
    ----------
    series
        observations [kW].
    starts
        slot starts, consecutive and aligned [UTC].
    slot_minutes
        slot length [min].

    Returns
    -------
    FloatArray
        One value per slot [kW].
    """
    count = len(starts)
    sums = np.zeros(count)
    counts = np.zeros(count)
    if count:
        first = as_utc(starts[0])
        step = slot_length(slot_minutes)
        for instant, value in series:
            if not math.isfinite(value):
                continue
            index = (as_utc(instant) - first) // step
            if 0 <= index < count:
                sums[index] += value
                counts[index] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def window(series: Series, end: datetime, length: timedelta) -> list[tuple[datetime, float]]:
    """The finite observations in (end - length, end], sorted by time."""
    end = as_utc(end)
    begin = end - length
    return sorted(
        (as_utc(t), v) for t, v in series if begin < as_utc(t) <= end and math.isfinite(v)
    )


def clamp_kw(
    values: Sequence[float] | FloatArray, upper_kw: float, fill_kw: float = 0.0
) -> FloatArray:
    """Clamp a forecast to what is physically possible.

    Parameters
    ----------
    values
        forecast per slot [kW].
    upper_kw
        largest plausible value, e.g. the installed capacity [kW].
    fill_kw
        replacement for NaN or infinite values [kW] (itself clamped).

    Returns
    -------
    FloatArray
        Values in [0, upper_kw]: negatives become 0, absurdly large ones ``upper_kw``.
    """
    upper = max(0.0, upper_kw) if math.isfinite(upper_kw) else 0.0
    fill = min(max(0.0, fill_kw), upper) if math.isfinite(fill_kw) else 0.0
    array = np.asarray(values, dtype=np.float64)
    array = np.where(np.isfinite(array), array, fill)
    return np.clip(array, 0.0, upper)


def slot_midpoints(starts: Sequence[datetime], slot_minutes: int) -> list[datetime]:
    """The middle instant of every slot [UTC]."""
    half = slot_length(slot_minutes) / 2
    return [as_utc(s) + half for s in starts]
