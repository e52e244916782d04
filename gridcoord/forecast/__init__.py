"""Forecasts for a planning horizon: PV, wind, non-EV load, external overrides, their error.

PV is pvlib's clear sky x the measured clear-sky index, wind persistence toward the mean,
non-EV load the same-weekday history; an external forecast overrides the slots it covers.

Inputs are plain series of (UTC time, kW); outputs are per-slot kW arrays for the horizon.
"""

from gridcoord.forecast.error import forecast_errors, mean_absolute_error_kw
from gridcoord.forecast.external import (
    ExternalForecast,
    ForecastError,
    ForecastKind,
    overlay,
    parse_external,
)
from gridcoord.forecast.horizon import Forecast, ForecastInputs, build_forecast
from gridcoord.forecast.load import forecast_load_kw
from gridcoord.forecast.pv import PvFleet, clear_sky_index, clear_sky_kw, forecast_pv_kw
from gridcoord.forecast.series import Series, clamp_kw, slot_means
from gridcoord.forecast.wind import forecast_wind_kw

__all__ = [
    "ExternalForecast",
    "Forecast",
    "ForecastError",
    "ForecastInputs",
    "ForecastKind",
    "PvFleet",
    "Series",
    "build_forecast",
    "clamp_kw",
    "clear_sky_index",
    "clear_sky_kw",
    "forecast_errors",
    "forecast_load_kw",
    "forecast_pv_kw",
    "forecast_wind_kw",
    "mean_absolute_error_kw",
    "overlay",
    "parse_external",
    "slot_means",
]
