"""Simulated renewable output of the demo city: PV under moving clouds, and a wind farm.

PV: the clear-sky output of `gridcoord.forecast.pv.clear_sky_kw` (pvlib, Ineichen) times a
clear-sky index from a daily cloudiness plus cloud passages on a 20-minute scale. The daily
cloudiness follows the month's climate: its mean is the month's mean cloud cover over
northern Germany (about 3/4 in December and January, 1/2 in July and August, after DWD's
sunshine-duration normals), so a January day is mostly grey and a July day mostly bright.

Wind: a hub-height wind speed with a synoptic (12 h) and a gust (1 h) component around the
month's mean (about 8 m/s at 100 m inland in winter, under 6 m/s in summer, after the DWD
wind atlas' seasonal cycle), through the published power curve of the Enercon E-82 E2
(2.3 MW) as shipped in windpowerlib's copy of the Open Energy Database turbine library
(source: ENERCON product overview 04/2017).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
from windpowerlib import WindTurbine, power_output

from gridcoord.forecast.pv import PvFleet, clear_sky_kw
from gridcoord.forecast.series import FloatArray
from gridcoord.simulation.noise import smooth, uniform
from gridcoord.timegrid import as_utc, local_date

# Mean daily cloud cover per month, January first [-] (northern Germany).
MONTHLY_CLOUD_COVER = (0.76, 0.72, 0.66, 0.58, 0.55, 0.52, 0.50, 0.50, 0.56, 0.65, 0.74, 0.78)
# Mean hub-height (~100 m) wind speed per month, January first [m/s] (inland Lower Saxony).
MONTHLY_WIND_MS = (8.2, 7.9, 7.6, 6.8, 6.2, 5.9, 5.7, 5.6, 6.2, 7.0, 7.6, 8.1)


def daily_cloudiness(seed: int, instant: datetime, tz: str = "Europe/Berlin") -> float:
    """The simulated sky's cloudiness of the local day of ``instant`` [-], in [0, 1].

    Its mean over many days is the month's cloud cover (`MONTHLY_CLOUD_COVER`). A weather
    model resolves this part of the sky (`gridcoord.simulation.weather_service`).
    """
    day = local_date(instant, tz)
    mean_cover = MONTHLY_CLOUD_COVER[day.month - 1]
    # u**k with u uniform has mean 1 / (1 + k).
    exponent = 1.0 / mean_cover - 1.0
    return float(uniform(seed, "cloudiness", day.toordinal()) ** exponent)


def clear_sky_index(seed: int, instant: datetime, tz: str = "Europe/Berlin") -> float:
    """The simulated sky's clear-sky index at an instant [-], in [0.2, 1.0].

    Each local day draws a cloudiness (`daily_cloudiness`: some days clear, some overcast);
    clouds then pass on a 20-minute scale around it.
    """
    cloudiness = daily_cloudiness(seed, instant, tz)
    passing = smooth(seed, "clouds", as_utc(instant), timedelta(minutes=20)) - 0.5
    cover = min(1.0, max(0.0, cloudiness + 0.6 * passing))
    return 0.2 + 0.8 * (1.0 - cover)


def pv_kw(fleet: PvFleet, instants: Sequence[datetime], seed: int) -> FloatArray:
    """Simulated output of the PV fleet at each instant [kW]."""
    clear = clear_sky_kw(fleet, instants)
    index = np.array([clear_sky_index(seed, t) for t in instants], dtype=np.float64)
    return np.asarray(clear * index, dtype=np.float64)


def monthly_wind_ms(instant: datetime) -> float:
    """The mean hub-height wind speed of ``instant``'s month [m/s] (`MONTHLY_WIND_MS`)."""
    return MONTHLY_WIND_MS[as_utc(instant).month - 1]


def synoptic_wind_ms(seed: int, instant: datetime, mean_ms: float | None = None) -> float:
    """The synoptic (12-hour) part of the simulated wind speed [m/s]: what a weather model sees.

    ``mean_ms`` is the mean it varies around [m/s]; None takes the month's (`monthly_wind_ms`).
    """
    t = as_utc(instant)
    mean = monthly_wind_ms(t) if mean_ms is None else mean_ms
    synoptic = smooth(seed, "wind-synoptic", t, timedelta(hours=12))
    return max(0.0, mean * (0.25 + 1.5 * synoptic))


def wind_speed_ms(seed: int, instant: datetime, mean_ms: float | None = None) -> float:
    """Simulated wind speed at hub height [m/s]: the synoptic part plus 1-hour gusts.

    ``mean_ms`` is the mean it varies around [m/s]; None takes the month's
    (`MONTHLY_WIND_MS`: inland Lower Saxony at ~100 m, ~7 m/s over the year).
    """
    t = as_utc(instant)
    mean = monthly_wind_ms(t) if mean_ms is None else mean_ms
    synoptic = smooth(seed, "wind-synoptic", t, timedelta(hours=12))
    gusts = smooth(seed, "wind-gusts", t, timedelta(hours=1)) - 0.5
    return max(0.0, mean * (0.25 + 1.5 * synoptic) + 2.0 * gusts)


@lru_cache(maxsize=8)
def _power_curve(turbine_type: str, hub_height_m: float) -> tuple[FloatArray, FloatArray]:
    with warnings.catch_warnings():
        # windpowerlib 0.2 uses pandas' `inplace=`, deprecated in pandas 3; harmless, noisy.
        warnings.simplefilter("ignore", DeprecationWarning)
        turbine = WindTurbine(hub_height=hub_height_m, turbine_type=turbine_type)
    curve = turbine.power_curve
    speeds = np.asarray(curve["wind_speed"], dtype=np.float64)
    watts = np.asarray(curve["value"], dtype=np.float64)
    return speeds, watts


@dataclass(frozen=True, slots=True)
class WindFarm:
    """A wind farm of identical turbines.

    Attributes
    ----------
    turbines
        number of turbines.
    turbine_type
        a windpowerlib/OEDB turbine type with a power curve.
    hub_height_m
        hub height [m].
    availability
        fraction of output left after wakes and downtime [-].
    cut_out_ms
        wind speed above which the turbines stop [m/s].
    """

    turbines: int = 10
    turbine_type: str = "E-82/2300"
    hub_height_m: float = 108.0
    availability: float = 0.9
    cut_out_ms: float = 25.0

    @property
    def rated_kw(self) -> float:
        """Installed capacity: turbines x the curve's maximum [kW]."""
        _, watts = _power_curve(self.turbine_type, self.hub_height_m)
        return self.turbines * float(watts.max()) / 1000.0

    def output_kw(self, wind_ms: Sequence[float] | FloatArray) -> FloatArray:
        """Farm output for hub-height wind speeds [kW]; 0 above cut-out."""
        speeds, watts = _power_curve(self.turbine_type, self.hub_height_m)
        wind = np.asarray(wind_ms, dtype=np.float64)
        one = np.asarray(
            power_output.power_curve(wind, speeds, watts, density_correction=False),
            dtype=np.float64,
        )
        one = np.where(wind > self.cut_out_ms, 0.0, one)
        return one * self.turbines * self.availability / 1000.0


def wind_kw(farm: WindFarm, instants: Sequence[datetime], seed: int) -> FloatArray:
    """Simulated output of the wind farm at each instant [kW]."""
    return farm.output_kw([wind_speed_ms(seed, t) for t in instants])
