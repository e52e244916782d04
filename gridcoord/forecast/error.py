"""Forecast error: mean absolute error per kind of a past forecast against what was measured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from gridcoord.forecast.series import FloatArray, Series, slot_means


def mean_absolute_error_kw(
    starts: Sequence[datetime],
    forecast_kw: Sequence[float] | FloatArray,
    actual: Series,
    slot_minutes: int,
) -> float | None:
    """MAE of a forecast over the slots that have measurements [kW].

    Parameters
    ----------
    starts
        slot starts the forecast was made for [UTC].
    forecast_kw
        the forecast per slot [kW].
    actual
        what was measured [kW]; averaged per slot first.
    slot_minutes
        slot length [min].

    Returns
    -------
    float | None
        The MAE, or None when no slot has both a forecast and a measurement.
    """
    predicted = np.asarray(forecast_kw, dtype=np.float64)
    if predicted.shape != (len(starts),):
        raise ValueError(f"forecast has {predicted.size} values for {len(starts)} slots")
    measured = slot_means(actual, starts, slot_minutes)
    both = np.isfinite(measured) & np.isfinite(predicted)
    if not both.any():
        return None
    return float(np.mean(np.abs(predicted[both] - measured[both])))


def forecast_errors(
    starts: Sequence[datetime],
    forecasts_kw: Mapping[str, Sequence[float] | FloatArray],
    actuals: Mapping[str, Series],
    slot_minutes: int,
) -> dict[str, float | None]:
    """MAE per kind (``pv``, ``wind``, ``load``, ...) for the kinds that have a forecast [kW]."""
    return {
        kind: mean_absolute_error_kw(starts, values, actuals.get(kind, ()), slot_minutes)
        for kind, values in forecasts_kw.items()
    }
