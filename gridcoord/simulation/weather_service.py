"""A simulated weather service: day-ahead PV and wind forecasts of the demo city, with error.

A real weather service publishes a numerical weather model's forecast a few times a day. Its
error has two parts this module imitates, both seeded (the same seed and issue time always give
the same forecast):

- what a weather model cannot resolve: the 1-hour gusts of the wind and the 20-minute cloud
  passages are not in the forecast (it carries their expectation), only the synoptic wind
  speed and the day's cloudiness are;
- what it gets wrong, and more so the further ahead: an error in wind speed and in cloud cover
  that is an AR(1) process in the lead time, small at issue and approaching its stationary
  spread within hours (``Var_k = phi^2k sigma0^2 + (1 - phi^2k) sigma_inf^2``). The spreads
  are those of operational day-ahead forecasts: a wind speed error of about 1.5 m/s at hub height,
  a cloud cover error of about a fifth.

The forecast is turned into power the way the city makes its own output: the same pvlib clear
sky, the same turbine power curve (`gridcoord.simulation.weather`). `publications` gives the
MQTT messages of one issue (DESIGN / docs/mqtt.md, ``<prefix>/forecast/<kind>``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from gridcoord.forecast.pv import PvFleet, clear_sky_kw
from gridcoord.forecast.series import FloatArray
from gridcoord.simulation.city import CityLayout
from gridcoord.simulation.noise import stream_seed
from gridcoord.simulation.weather import daily_cloudiness, synoptic_wind_ms
from gridcoord.timegrid import as_utc, floor_slot, to_rfc3339


@dataclass(frozen=True, slots=True)
class ForecastError:
    """An AR(1) error in lead time: its spread at issue, its stationary spread, its memory.

    Attributes
    ----------
    sigma0
        standard deviation at lead 0 (in the quantity's unit).
    sigma_inf
        stationary standard deviation, reached after a few ``memory_h``.
    memory_h
        e-folding time of the autocorrelation [h].
    """

    sigma0: float
    sigma_inf: float
    memory_h: float

    def draw(self, leads_h: FloatArray, rng: np.random.Generator) -> FloatArray:
        """One error path at the given, increasing lead times [h]."""
        out = np.zeros(len(leads_h))
        if not len(leads_h):
            return out
        value = rng.normal(0.0, self.sigma0)
        previous = 0.0
        for i, lead in enumerate(leads_h):
            phi = math.exp(-max(0.0, lead - previous) / self.memory_h)
            # The innovation's variance makes the path's variance move toward sigma_inf^2.
            variance = (self.sigma_inf**2) * (1.0 - phi**2)
            value = phi * value + rng.normal(0.0, math.sqrt(variance)) if i else value
            out[i] = value
            previous = lead
        return out


WIND_SPEED_ERROR = ForecastError(sigma0=0.6, sigma_inf=1.5, memory_h=6.0)  # [m/s]
CLOUD_COVER_ERROR = ForecastError(sigma0=0.05, sigma_inf=0.2, memory_h=4.0)  # [-]


class WeatherService:
    """Day-ahead forecasts of the city's total PV and wind output.

    Parameters
    ----------
    layout
        the city (PV plants, wind farm, site).
    seed
        the city's seed: the weather's, and the forecast errors' with the issue time.
    tz
        local zone of the simulated sky's daily cloudiness.
    horizon
        how far each issue reaches.
    slot_minutes
        forecast resolution [min].
    """

    def __init__(
        self,
        layout: CityLayout,
        seed: int,
        *,
        tz: str = "Europe/Berlin",
        horizon: timedelta = timedelta(hours=48),
        slot_minutes: int = 15,
    ) -> None:
        self.layout, self.seed, self.tz = layout, seed, tz
        self.horizon, self.slot_minutes = horizon, slot_minutes
        self._pv_kw = sum(p.rated_kw for p in layout.pv)
        self._unit_pv = PvFleet(layout.latitude, layout.longitude, rated_kw=1.0)

    def forecast(self, issued_at: datetime) -> dict[str, tuple[datetime, FloatArray]]:
        """The issue of ``issued_at``: kind → (first slot start, kW per slot)."""
        issued_at = as_utc(issued_at)
        start = floor_slot(issued_at, self.slot_minutes)
        step = timedelta(minutes=self.slot_minutes)
        count = self.horizon // step
        middles = [start + step * i + step / 2 for i in range(count)]
        leads = np.array([(m - issued_at) / timedelta(hours=1) for m in middles])
        rng = np.random.default_rng(stream_seed(self.seed, "weather-service", issued_at))
        wind_error = WIND_SPEED_ERROR.draw(leads, rng)
        cover_error = CLOUD_COVER_ERROR.draw(leads, rng)
        speed = np.array([self._synoptic_ms(m) for m in middles]) + wind_error
        wind = self.layout.wind_farm.output_kw(np.clip(speed, 0.0, None))
        cover = np.array([self._cloudiness(m) for m in middles]) + cover_error
        index = 0.2 + 0.8 * (1.0 - np.clip(cover, 0.0, 1.0))
        pv = clear_sky_kw(self._unit_pv, middles) * self._pv_kw * index
        return {"pv": (start, np.asarray(pv)), "wind": (start, np.asarray(wind))}

    def publications(self, issued_at: datetime, prefix: str) -> list[tuple[str, bytes]]:
        """The MQTT messages of one issue: (topic, JSON payload) per kind."""
        messages = []
        for kind, (start, values) in self.forecast(issued_at).items():
            payload = {
                "kind": kind,
                "issued_at": to_rfc3339(as_utc(issued_at)),
                "start": to_rfc3339(start),
                "slot_minutes": self.slot_minutes,
                "values_kw": [round(float(v), 1) for v in values],
            }
            messages.append((f"{prefix}/forecast/{kind}", json.dumps(payload).encode()))
        return messages

    # The parts of `gridcoord.simulation.weather` a weather model resolves (same streams).

    def _synoptic_ms(self, instant: datetime) -> float:
        # The simulated sky's own synoptic wind and daily cloudiness (the seasonal climate).
        return synoptic_wind_ms(self.seed, instant)

    def _cloudiness(self, instant: datetime) -> float:
        return daily_cloudiness(self.seed, instant, self.tz)
