"""PV output from a clear-sky model (pvlib) scaled by the recently measured clear-sky index.

The clear-sky index is the ratio of measured to clear-sky output: it carries the present
cloudiness into the forecast. Forecast = clear-sky output of the city's PV fleet at each slot x
the index measured over the last hours of daylight.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pvlib import irradiance, location, pvsystem, temperature

from gridcoord.forecast.series import FloatArray, Series, clamp_kw, slot_midpoints, window
from gridcoord.timegrid import as_utc

# Below this fraction of rated output the index is mostly noise (dawn, dusk, night).
_DAYLIGHT_FRACTION = 0.05
_MAX_INDEX = 1.2  # cloud enhancement can exceed clear sky briefly, not for hours


@dataclass(frozen=True, slots=True)
class PvFleet:
    """The city's PV, modelled as one plant.

    Attributes
    ----------
    latitude
        [degrees north].
    longitude
        [degrees east].
    rated_kw
        installed AC capacity [kW].
    tilt_deg
        module tilt from horizontal [degrees].
    azimuth_deg
        module azimuth, 180 = south [degrees].
    altitude_m
        site altitude above sea level [m].
    dc_ac_ratio
        DC capacity per AC capacity [-]; output is clipped at ``rated_kw``.
    losses
        system losses (wiring, soiling, mismatch, inverter) [-].
    temp_air_c
        air temperature assumed for cell temperature [°C].
    """

    latitude: float
    longitude: float
    rated_kw: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    altitude_m: float = 70.0
    dc_ac_ratio: float = 1.1
    losses: float = 0.14
    temp_air_c: float = 15.0


# Clear-sky output per (fleet, instant) [kW], remembered: it is a pure function of both, pvlib
# takes milliseconds per call (and reads the Linke turbidity file each time), and consecutive
# planning runs ask for nearly the same instants (the horizon moves on by one slot, the
# index's lookback window by one reading). Cleared when full; a few MB at most.
_CLEAR_SKY_CACHE_MAX = 100_000
_clear_sky_cache: dict[tuple[PvFleet, datetime], float] = {}
_clear_sky_lock = threading.Lock()


def clear_sky_kw(fleet: PvFleet, instants: Sequence[datetime]) -> FloatArray:
    """AC output of the fleet under a clear sky at each instant [kW].

    Ineichen clear-sky irradiance (pvlib, Linke turbidity from its climatology), transposed to
    the module plane (isotropic sky), cell temperature by Faiman, DC by PVWatts. Each
    instant's value is computed once per fleet and remembered (pvlib computes every instant
    on its own, so a value does not depend on the instants asked with it).

    Parameters
    ----------
    fleet
        the PV fleet.
    instants
        aware instants.

    Returns
    -------
    FloatArray
        Output per instant in [0, rated_kw] [kW].
    """
    if not instants:
        return np.zeros(0)
    keys = [as_utc(t) for t in instants]
    with _clear_sky_lock:
        known = [_clear_sky_cache.get((fleet, t)) for t in keys]
    missing = sorted({t for t, value in zip(keys, known, strict=True) if value is None})
    computed: dict[datetime, float] = {}
    if missing:
        computed = dict(zip(missing, _clear_sky(fleet, missing).tolist(), strict=True))
        with _clear_sky_lock:
            if len(_clear_sky_cache) + len(computed) > _CLEAR_SKY_CACHE_MAX:
                _clear_sky_cache.clear()
            _clear_sky_cache.update(((fleet, t), v) for t, v in computed.items())
    return np.array(
        [computed[t] if value is None else value for t, value in zip(keys, known, strict=True)],
        dtype=np.float64,
    )


def _clear_sky(fleet: PvFleet, instants: Sequence[datetime]) -> FloatArray:
    """`clear_sky_kw` computed by pvlib, for aware UTC instants [kW]."""
    times = pd.DatetimeIndex(instants)
    site = location.Location(fleet.latitude, fleet.longitude, "UTC", altitude=fleet.altitude_m)
    with warnings.catch_warnings():
        # pvlib <= 0.16 uses pandas accessors that pandas 3 deprecates; harmless, and noisy.
        warnings.simplefilter("ignore", DeprecationWarning)
        sun = site.get_solarposition(times)
        sky = site.get_clearsky(times, model="ineichen", solar_position=sun)
    poa = irradiance.get_total_irradiance(
        fleet.tilt_deg,
        fleet.azimuth_deg,
        sun["apparent_zenith"],
        sun["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
    )["poa_global"]
    cell = temperature.faiman(poa, fleet.temp_air_c, 1.0)
    pdc0_w = fleet.rated_kw * fleet.dc_ac_ratio * 1000.0
    dc_w = pvsystem.pvwatts_dc(poa, cell, pdc0_w, -0.004)  # positional: renamed across pvlib
    ac_kw = np.asarray(dc_w, dtype=np.float64) * (1.0 - fleet.losses) / 1000.0
    return clamp_kw(ac_kw, fleet.rated_kw)


def clear_sky_index(
    fleet: PvFleet,
    measured: Series,
    now: datetime,
    lookback: timedelta = timedelta(hours=3),
) -> float | None:
    """Measured over clear-sky energy in daylight over the last ``lookback`` [-].

    Parameters
    ----------
    fleet
        the PV fleet the measurements are the total output of.
    measured
        total PV output observations [kW].
    now
        end of the window [UTC].
    lookback
        length of the window.

    Returns
    -------
    float | None
        The index in [0, 1.2], or None when the window holds no daylight observation.
    """
    recent = window(measured, now, lookback)
    if not recent:
        return None
    clear = clear_sky_kw(fleet, [t for t, _ in recent])
    daylight = clear > _DAYLIGHT_FRACTION * fleet.rated_kw
    if not daylight.any():
        return None
    values = np.array([v for _, v in recent], dtype=np.float64)
    index = float(np.clip(values[daylight], 0.0, None).sum() / clear[daylight].sum())
    return min(index, _MAX_INDEX)


def forecast_pv_kw(
    fleet: PvFleet,
    starts: Sequence[datetime],
    slot_minutes: int,
    measured: Series,
    now: datetime,
    *,
    default_index: float = 0.7,
    lookback: timedelta = timedelta(hours=3),
) -> FloatArray:
    """PV forecast per slot: clear-sky output at the slot's middle x the measured index [kW].

    Parameters
    ----------
    fleet
        the PV fleet.
    starts
        slot starts of the horizon [UTC].
    slot_minutes
        slot length [min].
    measured
        recent total PV output [kW].
    now
        the planning time [UTC].
    default_index
        index used when there is no recent daylight measurement (at dawn, or
        after an outage); 0.7 is a moderate, slightly cloudy sky [-].
    lookback
        window for the measured index.

    Returns
    -------
    FloatArray
        Forecast per slot in [0, rated_kw] [kW].
    """
    index = clear_sky_index(fleet, measured, now, lookback)
    scale = default_index if index is None else index
    return clamp_kw(
        clear_sky_kw(fleet, slot_midpoints(starts, slot_minutes)) * scale, fleet.rated_kw
    )
