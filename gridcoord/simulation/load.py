"""Simulated non-EV demand: household (BDEW H0-like) and commercial (G0-like) load profiles.

The shapes follow the German standard load profiles in spirit: households with a morning and a
high evening peak, later mornings at weekends; businesses busy on weekday working hours. The
household profile is scaled through the year by BDEW's published dynamisation polynomial
(about 1.24 in midwinter, 0.8 in midsummer). Profiles are in kW per average unit (a household of
3,500 kWh a year averages 0.4 kW), with a little seeded noise so that meters differ.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gridcoord.simulation.noise import smooth
from gridcoord.timegrid import as_utc

# Relative demand per local hour 0..23 (normalised to mean 1 below).
_H0 = {
    "weekday": [0.55, 0.45, 0.40, 0.38, 0.38, 0.45, 0.75, 1.05, 1.05, 0.95, 0.95, 1.05,
                1.20, 1.10, 0.95, 0.90, 0.95, 1.15, 1.45, 1.60, 1.55, 1.40, 1.10, 0.80],
    "saturday": [0.60, 0.50, 0.42, 0.40, 0.38, 0.40, 0.50, 0.70, 0.95, 1.10, 1.15, 1.20,
                 1.25, 1.15, 1.00, 0.95, 1.00, 1.15, 1.40, 1.55, 1.50, 1.40, 1.15, 0.85],
    "sunday": [0.65, 0.55, 0.45, 0.40, 0.38, 0.38, 0.42, 0.55, 0.80, 1.05, 1.20, 1.35,
               1.45, 1.25, 1.05, 0.95, 1.00, 1.15, 1.40, 1.50, 1.45, 1.35, 1.10, 0.85],
}  # fmt: skip
_G0 = {
    "weekday": [0.35, 0.33, 0.33, 0.33, 0.35, 0.45, 0.80, 1.35, 1.65, 1.75, 1.75, 1.75,
                1.60, 1.70, 1.75, 1.70, 1.60, 1.35, 0.95, 0.65, 0.50, 0.42, 0.38, 0.36],
    "saturday": [0.35, 0.33, 0.33, 0.33, 0.33, 0.35, 0.45, 0.65, 0.90, 1.05, 1.10, 1.10,
                 1.00, 0.80, 0.60, 0.50, 0.45, 0.42, 0.40, 0.38, 0.37, 0.36, 0.35, 0.35],
    "sunday": [0.33] * 24,
}  # fmt: skip


def _normalised(profile: dict[str, list[float]]) -> dict[str, np.ndarray]:
    weekly = np.array(profile["weekday"] * 5 + profile["saturday"] + profile["sunday"])
    scale = 1.0 / weekly.mean()
    return {k: np.array(v) * scale for k, v in profile.items()}


_H0_NORM = _normalised(_H0)
_G0_NORM = _normalised(_G0)


def bdew_dynamisation(day_of_year: int) -> float:
    """BDEW's seasonal factor for the H0 profile [-].

    -3.92e-10 t⁴ + 3.2e-7 t³ - 7.02e-5 t² + 2.1e-3 t + 1.24, with t the day of the year.
    """
    t = float(day_of_year)
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24


def _shape(profile: dict[str, np.ndarray], local: datetime) -> float:
    day = "weekday" if local.weekday() < 5 else "saturday" if local.weekday() == 5 else "sunday"
    hours = profile[day]
    # Linear between hour midpoints, so the curve has no steps on the hour.
    position = local.hour + local.minute / 60.0 - 0.5
    lower = int(np.floor(position)) % 24
    fraction = position - np.floor(position)
    return float((1 - fraction) * hours[lower] + fraction * hours[(lower + 1) % 24])


def household_kw(
    instant: datetime, mean_kw: float = 0.4, seed: int = 0, tz: str = "Europe/Berlin"
) -> float:
    """Demand of a group of households at an instant [kW].

    Parameters
    ----------
    instant
        aware instant.
    mean_kw
        the group's yearly mean demand [kW] (0.4 kW per household).
    seed
        noise seed (one per meter).
    tz
        local zone whose clock the households live by.
    """
    local = as_utc(instant).astimezone(ZoneInfo(tz))
    season = bdew_dynamisation(local.timetuple().tm_yday)
    noise = 0.9 + 0.2 * smooth(seed, "household", as_utc(instant), timedelta(minutes=30))
    return mean_kw * _shape(_H0_NORM, local) * season * noise


def commercial_kw(
    instant: datetime, mean_kw: float = 10.0, seed: int = 0, tz: str = "Europe/Berlin"
) -> float:
    """Demand of a group of businesses at an instant [kW] (``mean_kw`` is the yearly mean)."""
    local = as_utc(instant).astimezone(ZoneInfo(tz))
    noise = 0.92 + 0.16 * smooth(seed, "commercial", as_utc(instant), timedelta(minutes=30))
    return mean_kw * _shape(_G0_NORM, local) * noise
