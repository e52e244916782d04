"""Forecast error: MAE per kind of a past forecast, and MAE/bias per kind and lead time.

`forecast_errors` judges one forecast over the slots measured since (the previous run's);
`LeadTimeErrors` keeps judging every run's forecast, the blend and the day-ahead forecast
alone, per lead-time bucket: how good is a wind forecast 6-12 h ahead, and did blending help?
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from gridcoord.forecast.series import FloatArray, Series, slot_means
from gridcoord.timegrid import as_utc


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


# Upper ends of the lead-time buckets [h]; a lead beyond the last is not tracked.
LEAD_BUCKETS_H = (1.0, 3.0, 6.0, 12.0, 24.0, 48.0, 72.0)
SOURCES = ("blended", "day_ahead", "nowcast")
# Slots older than this are dropped unjudged (the PV and wind histories hold a day).
MAX_JUDGED_AGE = timedelta(hours=24)


def lead_bucket(lead_h: float) -> str | None:
    """The label of the bucket a lead time falls in (``"1-3h"``), None beyond the last."""
    lower = 0.0
    for upper in LEAD_BUCKETS_H:
        if lead_h < upper:
            return f"{lower:g}-{upper:g}h"
        lower = upper
    return None


class LeadTimeErrors:
    """MAE and bias of past forecasts per kind, source and lead-time bucket.

    Every planning run `record`s its forecast (the blend it planned with, the nowcast models
    alone and, where there was one, the day-ahead forecast alone); once a slot has passed and
    was measured, `score` compares each value forecast for it with the slot's measured mean,
    in the bucket of the lead time it was forecast at. A 20-hour-ahead value is judged a day
    later, so the pending values are bounded by the horizon x the runs per horizon, not by the
    uptime.

    Not thread-safe by itself: the planner records and scores (one run at a time) and readers
    call `summary`, which the caller serialises (`threading.Lock` in the planner).
    """

    def __init__(self, slot_minutes: int) -> None:
        self._slot = timedelta(minutes=slot_minutes)
        self._slot_minutes = slot_minutes
        # slot start → (kind, source, bucket, forecast value) still waiting for a measurement
        self._pending: dict[datetime, list[tuple[str, str, str, float]]] = {}
        # (kind, source, bucket) → [Σ|error|, Σ error, n]
        self._sums: dict[tuple[str, str, str], list[float]] = {}

    def record(
        self,
        made_at: datetime,
        starts: Sequence[datetime],
        blended: Mapping[str, Sequence[float] | FloatArray],
        day_ahead: Mapping[str, Sequence[float] | FloatArray],
        nowcast: Mapping[str, Sequence[float] | FloatArray] | None = None,
    ) -> None:
        """Remember one run's forecasts [kW] for the slots ``starts`` (NaN: no value).

        ``blended`` is what was planned with, ``day_ahead`` the external forecast alone and
        ``nowcast`` the models alone (the blend's two ingredients).
        """
        made_at = as_utc(made_at)
        half = self._slot / 2
        for source, by_kind in zip(SOURCES, (blended, day_ahead, nowcast or {}), strict=True):
            for kind, values in by_kind.items():
                array = np.asarray(values, dtype=np.float64)
                for start, value in zip(starts, array, strict=True):
                    bucket = lead_bucket((as_utc(start) + half - made_at) / timedelta(hours=1))
                    if bucket is None or not math.isfinite(value):
                        continue
                    self._pending.setdefault(as_utc(start), []).append(
                        (kind, source, bucket, float(value))
                    )

    def score(self, actuals: Mapping[str, Series], now: datetime) -> int:
        """Judge the pending values of every slot that has ended by ``now``; return how many.

        A slot without a measurement of a kind drops that kind's values unjudged.
        """
        now = as_utc(now)
        for old in [s for s in self._pending if s < now - MAX_JUDGED_AGE]:
            del self._pending[old]  # its measurements are no longer held: never judged
        done = sorted(s for s in self._pending if s + self._slot <= now)
        if not done:
            return 0
        # One pass per kind over the span of the slots done (slot_means wants a contiguous run).
        span = [done[0] + i * self._slot for i in range((done[-1] - done[0]) // self._slot + 1)]
        measured = {
            kind: dict(zip(span, slot_means(series, span, self._slot_minutes), strict=True))
            for kind, series in actuals.items()
        }
        judged = 0
        for start in done:
            for kind, source, bucket, value in self._pending.pop(start):
                actual = measured.get(kind, {}).get(start, math.nan)
                if not math.isfinite(actual):
                    continue
                cell = self._sums.setdefault((kind, source, bucket), [0.0, 0.0, 0.0])
                cell[0] += abs(value - actual)
                cell[1] += value - actual
                cell[2] += 1.0
                judged += 1
        return judged

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, float | int]]]]:
        """``{kind: {source: {bucket: {"mae_kw", "bias_kw", "n"}}}}``; bias = forecast − actual."""
        out: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
        order = {lead_bucket(u - 1e-9): i for i, u in enumerate(LEAD_BUCKETS_H)}
        for kind, source, bucket in sorted(self._sums, key=lambda k: (k[0], k[1], order[k[2]])):
            total_abs, total, n = self._sums[(kind, source, bucket)]
            out.setdefault(kind, {}).setdefault(source, {})[bucket] = {
                "mae_kw": round(total_abs / n, 3),
                "bias_kw": round(total / n, 3),
                "n": int(n),
            }
        return out

    @property
    def pending_slots(self) -> int:
        """Slots with values still waiting for their measurement."""
        return len(self._pending)
