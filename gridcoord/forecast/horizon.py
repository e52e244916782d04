"""The forecast of one planning run: PV, wind and non-EV load per slot of the horizon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from gridcoord.forecast.blend import (
    EXTERNAL_MAX_AGE,
    NOWCAST_TAU_H,
    blend,
    day_ahead_kw,
    lead_hours,
    nowcast_weight,
)
from gridcoord.forecast.external import ExternalForecast, ForecastKind
from gridcoord.forecast.load import forecast_load_kw
from gridcoord.forecast.pv import PvFleet, forecast_pv_kw
from gridcoord.forecast.series import FloatArray, Series, clamp_kw
from gridcoord.forecast.wind import forecast_wind_kw
from gridcoord.timegrid import as_utc


@dataclass(frozen=True, slots=True)
class ForecastInputs:
    """Everything a forecast needs, frozen at the start of a planning run.

    Attributes
    ----------
    pv
        the city's PV fleet (None when there is none).
    wind_rated_kw
        installed wind capacity [kW] (0 for none).
    load_max_kw
        largest plausible non-EV load, e.g. the sum of root zone ratings [kW].
    pv_measured
        recent total PV output [kW].
    wind_measured
        recent total wind output [kW].
    load_history
        measured non-EV load, a few weeks of it [kW].
    external
        the latest external forecast per kind, if any.
    tz
        local zone for load habits.
    """

    pv: PvFleet | None
    wind_rated_kw: float
    load_max_kw: float
    pv_measured: Series = ()
    wind_measured: Series = ()
    load_history: Series = ()
    external: Mapping[ForecastKind, ExternalForecast] = field(default_factory=dict)
    tz: str = "Europe/Berlin"


@dataclass(frozen=True, slots=True)
class Forecast:
    """Per-slot forecasts of a horizon [kW] and where each came from.

    ``day_ahead`` holds, per kind that had a fresh external forecast, that forecast alone on
    the horizon's slots (NaN where it does not reach) and ``nowcast`` the models alone, so
    their errors can be tracked beside the blend's; ``made_at`` is the instant the lead times
    count from.
    """

    starts: tuple[datetime, ...]
    slot_minutes: int
    pv_kw: FloatArray
    wind_kw: FloatArray
    load_kw: FloatArray
    sources: dict[ForecastKind, str]
    day_ahead: Mapping[str, FloatArray] = field(default_factory=dict)
    nowcast: Mapping[str, FloatArray] = field(default_factory=dict)
    made_at: datetime | None = None

    @property
    def renewable_kw(self) -> FloatArray:
        """PV plus wind per slot [kW]."""
        return self.pv_kw + self.wind_kw

    def by_kind(self) -> dict[str, FloatArray]:
        """Per-slot values keyed ``pv``, ``wind``, ``load`` (for storing and for MAE later)."""
        return {"pv": self.pv_kw, "wind": self.wind_kw, "load": self.load_kw}


def build_forecast(
    inputs: ForecastInputs,
    starts: Sequence[datetime],
    slot_minutes: int,
    now: datetime,
    external_max_age: timedelta = EXTERNAL_MAX_AGE,
    nowcast_tau_h: Mapping[ForecastKind, float] = NOWCAST_TAU_H,
) -> Forecast:
    """Forecast PV, wind and non-EV load for the slots of a horizon.

    Models (the nowcast) first, then blended by lead time with a fresh external (day-ahead)
    forecast where it covers a slot (`gridcoord.forecast.blend`), then every value is clamped
    to [0, capacity] (NaN to 0 for generation, to the mean for load).
    """
    pv_cap = inputs.pv.rated_kw if inputs.pv is not None else 0.0
    models: dict[ForecastKind, tuple[FloatArray, float]] = {
        ForecastKind.PV: (
            forecast_pv_kw(inputs.pv, starts, slot_minutes, inputs.pv_measured, now)
            if inputs.pv is not None
            else clamp_kw([0.0] * len(starts), 0.0),
            pv_cap,
        ),
        ForecastKind.WIND: (
            forecast_wind_kw(inputs.wind_rated_kw, starts, slot_minutes, inputs.wind_measured, now),
            inputs.wind_rated_kw,
        ),
        ForecastKind.LOAD: (
            forecast_load_kw(
                starts,
                slot_minutes,
                inputs.load_history,
                now,
                max_kw=inputs.load_max_kw,
                tz=inputs.tz,
            ),
            inputs.load_max_kw,
        ),
    }
    result: dict[ForecastKind, FloatArray] = {}
    sources: dict[ForecastKind, str] = {}
    ahead: dict[str, FloatArray] = {}
    nowcast: dict[str, FloatArray] = {}
    leads = lead_hours(starts, slot_minutes, now)
    for kind, (model, upper) in models.items():
        external = day_ahead_kw(
            starts, slot_minutes, inputs.external.get(kind), now, external_max_age
        )
        used = int(np.isfinite(external).sum())
        weight = nowcast_weight(leads, nowcast_tau_h.get(kind, 0.0))
        result[kind] = clamp_kw(blend(model, external, weight), upper)
        nowcast[kind.value] = clamp_kw(model, upper)
        if used:
            ahead[kind.value] = np.where(np.isfinite(external), clamp_kw(external, upper), np.nan)
        sources[kind] = (
            "model" if used == 0 else "external" if used == len(starts) else "external+model"
        )
    return Forecast(
        tuple(starts),
        slot_minutes,
        result[ForecastKind.PV],
        result[ForecastKind.WIND],
        result[ForecastKind.LOAD],
        sources,
        ahead,
        nowcast,
        as_utc(now),
    )
