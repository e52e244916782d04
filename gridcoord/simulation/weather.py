"""Simulated renewable output of the demo city: PV under moving clouds, and a wind farm.

PV: the clear-sky output of `gridcoord.forecast.pv.clear_sky_kw` (pvlib, Ineichen) times a
clear-sky index from a daily cloudiness plus cloud passages on a 20-minute scale.

Wind: a hub-height wind speed with a synoptic (12 h) and a gust (1 h) component, through the
published power curve of the Enercon E-82 E2 (2.3 MW) as shipped in windpowerlib's copy of the
Open Energy Database turbine library (source: ENERCON product overview 04/2017).
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


def clear_sky_index(seed: int, instant: datetime, tz: str = "Europe/Berlin") -> float:
    """The simulated sky's clear-sky index at an instant [-], in [0.2, 1.0].

    Each local day draws a cloudiness (some days clear, some overcast); clouds then pass on a
    20-minute scale around it.
    """
    day = local_date(instant, tz)
    cloudiness = float(uniform(seed, "cloudiness", day.toordinal()) ** 1.3)
    passing = smooth(seed, "clouds", as_utc(instant), timedelta(minutes=20)) - 0.5
    cover = min(1.0, max(0.0, cloudiness + 0.6 * passing))
    return 0.2 + 0.8 * (1.0 - cover)


def pv_kw(fleet: PvFleet, instants: Sequence[datetime], seed: int) -> FloatArray:
    """Simulated output of the PV fleet at each instant [kW]."""
    clear = clear_sky_kw(fleet, instants)
    index = np.array([clear_sky_index(seed, t) for t in instants], dtype=np.float64)
    return np.asarray(clear * index, dtype=np.float64)


def wind_speed_ms(seed: int, instant: datetime, mean_ms: float = 7.0) -> float:
    """Simulated wind speed at hub height [m/s] (inland Lower Saxony at ~100 m: ~7 m/s mean)."""
    t = as_utc(instant)
    synoptic = smooth(seed, "wind-synoptic", t, timedelta(hours=12))
    gusts = smooth(seed, "wind-gusts", t, timedelta(hours=1)) - 0.5
    return max(0.0, mean_ms * (0.25 + 1.5 * synoptic) + 2.0 * gusts)


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
