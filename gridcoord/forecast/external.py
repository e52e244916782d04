"""An external forecast (e.g. a weather service's, published on MQTT) that overrides the models.

Payload (JSON object), one per kind::

    {"kind": "pv" | "wind" | "load", "issued_at": RFC 3339, "start": RFC 3339,
     "slot_minutes": 15, "values_kw": [number, ...]}

``start`` must be on the slot grid. Slots it covers use its values (clamped like any forecast);
the rest of the horizon keeps the model's. A forecast older than its maximum age is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

from gridcoord.forecast.series import FloatArray
from gridcoord.timegrid import as_utc, check_slot_minutes, is_aligned, parse_rfc3339, slot_length

MAX_VALUES = 7 * 24 * 60  # a week of minutes: anything longer is not a planning forecast
MAX_SPAN = timedelta(days=7)  # likewise in time, whatever the slot length
MAX_LEAD = timedelta(hours=72)  # the longest planning horizon (planning.horizon_h)
CLOCK_SKEW = timedelta(minutes=5)  # an issuer's clock a little ahead of ours is no error
# A forecast may exceed the installed capacity a little (a fleet's nameplate is rounded, cloud
# enhancement); beyond this it is a unit error (W for kW) or a wrong site, not a forecast.
CAPACITY_FACTOR = 1.5


class ForecastKind(StrEnum):
    """What an external forecast predicts: PV output, wind output or non-EV load."""

    PV = "pv"
    WIND = "wind"
    LOAD = "load"


class ForecastError(ValueError):
    """An external forecast payload that cannot be used; the message names the element."""


@dataclass(frozen=True, slots=True)
class ExternalForecast:
    """A forecast from outside: values per slot from ``start`` [kW]."""

    kind: ForecastKind
    issued_at: datetime
    start: datetime
    slot_minutes: int
    values_kw: tuple[float, ...]

    def end(self) -> datetime:
        """End of the last slot covered [UTC]."""
        return self.start + len(self.values_kw) * slot_length(self.slot_minutes)


def parse_external(payload: object) -> ExternalForecast:
    """Validate a decoded JSON payload into an external forecast.

    Raises
    ------
    ForecastError
        naming the offending field (or the index in ``values_kw``).
    """
    if not isinstance(payload, Mapping):
        raise ForecastError("forecast payload must be a JSON object")
    raw_kind = payload.get("kind")
    if raw_kind not in tuple(k.value for k in ForecastKind):
        raise ForecastError("kind: must be one of pv, wind, load")
    kind = ForecastKind(raw_kind)
    times = {}
    for name in ("issued_at", "start"):
        value = payload.get(name)
        if not isinstance(value, str):
            raise ForecastError(f"{name}: must be an RFC 3339 string")
        try:
            times[name] = parse_rfc3339(value)
        except ValueError:
            raise ForecastError(f"{name}: not RFC 3339 with an offset") from None
    slot_minutes = payload.get("slot_minutes", 15)
    try:
        check_slot_minutes(slot_minutes)
    except ValueError as exc:
        raise ForecastError(f"slot_minutes: {exc}") from None
    if not is_aligned(times["start"], slot_minutes):
        raise ForecastError(f"start: not on a {slot_minutes}-minute boundary")
    values = payload.get("values_kw")
    if not isinstance(values, list) or not values:
        raise ForecastError("values_kw: must be a non-empty list of numbers")
    if len(values) > MAX_VALUES:
        raise ForecastError(f"values_kw: more than {MAX_VALUES} values")
    checked = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ForecastError(f"values_kw[{i}]: must be a number")
        if not math.isfinite(value):
            raise ForecastError(f"values_kw[{i}]: must be finite")
        checked.append(float(value))
    return ExternalForecast(kind, times["issued_at"], times["start"], slot_minutes, tuple(checked))


def check_plausible(
    forecast: ExternalForecast,
    now: datetime,
    capacity_kw: float | None,
    max_age: timedelta = timedelta(hours=12),
) -> None:
    """Refuse a well-formed forecast that cannot be meant for this city now.

    Parameters
    ----------
    forecast
        the parsed forecast.
    now
        the receiving instant [UTC].
    capacity_kw
        the installed capacity of its kind (largest plausible load for ``load``) [kW];
        None skips the magnitude check.
    max_age
        how old ``issued_at`` may be; older forecasts would be ignored anyway.

    Raises
    ------
    ForecastError
        naming the field: issued in the future or too long ago, a span beyond a week,
        ending before now or starting beyond the longest horizon, a value beyond
        ``CAPACITY_FACTOR`` x the capacity (or below minus a tenth of it).
    """
    now = as_utc(now)
    if forecast.issued_at > now + CLOCK_SKEW:
        raise ForecastError("issued_at: in the future")
    if now - forecast.issued_at > max_age:
        hours = max_age.total_seconds() / 3600
        raise ForecastError(f"issued_at: older than {hours:g} h")
    if forecast.end() - forecast.start > MAX_SPAN:
        raise ForecastError("values_kw: covers more than 7 days")
    if forecast.end() <= now:
        raise ForecastError("start: the forecast ends before now")
    if forecast.start > now + MAX_LEAD:
        raise ForecastError("start: more than 72 h ahead")
    if capacity_kw is None or not math.isfinite(capacity_kw):
        return
    upper = CAPACITY_FACTOR * max(0.0, capacity_kw)
    lower = -0.1 * max(0.0, capacity_kw)
    for i, value in enumerate(forecast.values_kw):
        if value > upper:
            raise ForecastError(
                f"values_kw[{i}]: {value:g} kW is above {CAPACITY_FACTOR:g} x the installed "
                f"{capacity_kw:g} kW"
            )
        if value < lower:
            raise ForecastError(f"values_kw[{i}]: {value:g} kW is below {lower:g} kW")


def overlay(
    model_kw: FloatArray,
    starts: Sequence[datetime],
    slot_minutes: int,
    external: ExternalForecast | None,
    now: datetime,
    max_age: timedelta = timedelta(hours=12),
) -> tuple[FloatArray, int]:
    """Replace the model's values by the external forecast where it covers the horizon.

    Each horizon slot takes the external value of the external slot containing its middle,
    so external forecasts in other slot lengths (e.g. hourly) fit the grid.

    Returns
    -------
    tuple[FloatArray, int]
        The combined forecast per slot (not yet clamped) [kW] and the number of slots taken
        from the external forecast.
    """
    combined = np.array(model_kw, dtype=np.float64, copy=True)
    if external is None or as_utc(now) - external.issued_at > max_age:
        return combined, 0
    step = slot_length(external.slot_minutes)
    half = slot_length(slot_minutes) / 2
    used = 0
    for i, start in enumerate(starts):
        index = (as_utc(start) + half - external.start) // step
        if 0 <= index < len(external.values_kw):
            combined[i] = external.values_kw[index]
            used += 1
    return combined, used
