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
