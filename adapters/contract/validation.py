"""Checks every adapter applies before a value becomes a `Reading`: types, finiteness, ranges.

The rules are the telemetry contract's (DESIGN 3.2) and the physics of each asset: a 10 kW PV
roof cannot report 40 kW, a charger cannot draw a negative 3 MW. Failures carry a short,
stable reason code (counted and published to `<prefix>/rejected/...`) and a human detail that
never echoes the raw payload.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from adapters.contract.asset import AssetInfo
from adapters.contract.reading import AssetKind, FieldValue, Reading


class Reason(StrEnum):
    """Why a message was rejected; stable codes for counters and integrators."""

    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_ASSET = "unknown_asset"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    NO_VALUES = "no_values"
    DEVICE_ERROR = "device_error"
    TIMEOUT = "timeout"
    BAD_FORECAST = "bad_forecast"
    # An unexpected exception while judging a message: a bug of ours, counted, never fatal.
    INTERNAL_ERROR = "internal_error"


class Rejected(Exception):
    """A message or value that must not be stored; `reason` is the counted code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# Readings further in the future than this are clock errors, not data.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Older readings are still stored (a device's buffer after an outage) but not older than this.
MAX_AGE = timedelta(days=31)
# A departure further from now than this (either way) is a device error, not a plan.
MAX_DEPARTURE_DISTANCE = timedelta(days=31)

BOOLEAN_FIELDS = frozenset({"connected"})
TIMESTAMP_FIELDS = frozenset({"departure"})
# Personal or unbounded identifiers a charger might send; never stored (DESIGN 6).
DROPPED_FIELDS = frozenset({"ts", "vehicle_id", "user_id", "id_tag", "rfid", "vin", "contract_id"})
_SPECIAL_FIELDS = DROPPED_FIELDS | BOOLEAN_FIELDS | TIMESTAMP_FIELDS
MAX_FIELDS = 64
# A tuple, not `int | float`: that expression builds a union object on every call (hot path).
_NUMBERS = (int, float)
KNOWN_NUMERIC = frozenset(
    {
        "power_w",
        "energy_wh",
        "current_a",
        "voltage_v",
        "soc_pct",
        "session_energy_wh",
        "energy_request_wh",
    }
)


def field_range(asset: AssetInfo, name: str) -> tuple[float, float] | None:
    """The accepted range of a known numeric field, or None for an unknown field."""
    return _field_ranges(asset.kind, asset.rated_kw).get(name)


def field_ranges(kind: AssetKind, rated_kw: float) -> dict[str, tuple[float, float]]:
    """Every known numeric field's accepted range for assets of this kind and rating [unit]."""
    return dict(_field_ranges(kind, rated_kw))


@functools.lru_cache(maxsize=1024)
def _field_ranges(kind: AssetKind, rated_kw: float) -> dict[str, tuple[float, float]]:
    # Cached per (kind, rating): every reading of every asset looks its ranges up.
    # Power in the contract's sign convention: generators produce and draw a little at night;
    # meters may see feed-in (negative); chargers only consume. 10 % above the rating allows
    # for measurement error.
    rated = rated_kw * 1000.0
    if kind in (AssetKind.PV, AssetKind.WIND):
        power = (-0.05 * rated, 1.1 * rated)
    elif kind is AssetKind.METER:
        power = (-1.1 * rated, 1.1 * rated)
    else:
        power = (-0.01 * rated, 1.1 * rated)
    current = 1.1 * rated / 200.0  # at the lowest plausible voltage
    return {
        "power_w": power,
        "energy_wh": (0.0, 1e15),
        "session_energy_wh": (0.0, 1e6),
        "energy_request_wh": (0.0, 1e6),
        "voltage_v": (0.0, 1000.0),
        "soc_pct": (0.0, 100.0),
        "current_a": (-current, current),
    }


def timestamp_window(now: datetime) -> tuple[datetime, datetime]:
    """The accepted range of `ts` at receive time ``now``: (oldest, newest), both included."""
    return now - MAX_AGE, now + MAX_CLOCK_SKEW


def parse_timestamp(
    value: object, *, now: datetime, window: tuple[datetime, datetime] | None = None
) -> datetime:
    """Parse RFC 3339 with offset, or epoch milliseconds, into aware UTC within sane bounds.

    Every value, however large or odd, ends as a timestamp or as `Rejected` (`bad_timestamp`):
    a 400-digit integer or ``0001-01-01T00:00:00+14:00`` (before year 1 in UTC) included.
    ``window`` is `timestamp_window(now)`, computed once for all readings of a message.
    """
    oldest, newest = window or timestamp_window(now)
    if type(value) is int:  # the common case first (a bool is not `int` here)
        try:
            ts = datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected(Reason.BAD_TIMESTAMP, "ts epoch milliseconds out of range") from None
    elif isinstance(value, bool) or value is None:
        raise Rejected(Reason.BAD_TIMESTAMP, "ts must be RFC 3339 with offset or epoch ms")
    elif isinstance(value, _NUMBERS):
        try:
            if not math.isfinite(value):
                raise Rejected(Reason.BAD_TIMESTAMP, "ts is not finite")
            ts = datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected(Reason.BAD_TIMESTAMP, "ts epoch milliseconds out of range") from None
    elif isinstance(value, str):
        ts = _parse_rfc3339("ts", value)
    else:
        raise Rejected(Reason.BAD_TIMESTAMP, "ts must be RFC 3339 with offset or epoch ms")
    if ts > newest:
        raise Rejected(Reason.BAD_TIMESTAMP, "ts is in the future")
    if ts < oldest:
        raise Rejected(Reason.BAD_TIMESTAMP, "ts is older than 31 days")
    return ts


def _parse_rfc3339(name: str, value: str) -> datetime:
    """An RFC 3339 string with offset as aware UTC, or `Rejected` naming the field."""
    if len(value) > 64:
        raise Rejected(Reason.BAD_TIMESTAMP, f"{name} is not RFC 3339 (too long)")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise Rejected(Reason.BAD_TIMESTAMP, f"{name} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise Rejected(Reason.BAD_TIMESTAMP, f"{name} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 or 9999-12-31T23:59:59-14:00: outside datetime's range in UTC.
        raise Rejected(Reason.BAD_TIMESTAMP, f"{name} is outside years 1 to 9999 in UTC") from None


def build_reading(
    asset: AssetInfo,
    values: Mapping[str, object],
    *,
    ts: datetime,
    now: datetime,
) -> Reading:
    """Validate contract-named values of one asset and return the reading.

    Parameters
    ----------
    asset
        the configured asset the values belong to.
    values
        field name → raw value (already scaled to the contract's units).
    ts
        instant of the observation, aware UTC.
    now
        the receive time, aware UTC (for timestamp fields).

    Raises
    ------
    Rejected
        with the reason code of the first problem found.
    """
    if len(values) > MAX_FIELDS:
        raise Rejected(Reason.WRONG_TYPE, f"more than {MAX_FIELDS} fields")
    fields: dict[str, FieldValue] = {}
    ranges = _field_ranges(asset.kind, asset.rated_kw)  # once per reading, not per field
    for name, value in values.items():
        if name in _SPECIAL_FIELDS:
            if name in DROPPED_FIELDS:
                continue
            if name in BOOLEAN_FIELDS:
                if not isinstance(value, bool):
                    raise Rejected(Reason.WRONG_TYPE, f"{name} must be true or false")
                fields[name] = value
                continue
            # a timestamp field
            if not isinstance(value, str):
                raise Rejected(Reason.WRONG_TYPE, f"{name} must be an RFC 3339 string")
            parsed = _parse_rfc3339(name, value)
            if abs(parsed - now) > MAX_DEPARTURE_DISTANCE:
                raise Rejected(Reason.BAD_TIMESTAMP, f"{name} is more than 31 days from now")
            fields[name] = parsed.isoformat()
            continue
        if name not in _VALID_NAMES and not _is_field_name(name):
            raise Rejected(Reason.WRONG_TYPE, "field names are short snake_case identifiers")
        number: float
        if type(value) is float:  # what JSON numbers with a point decode to: no conversion
            number = value
        elif type(value) is int:
            number = as_float(name, value)
        elif isinstance(value, bool) or not isinstance(value, _NUMBERS):
            if name in KNOWN_NUMERIC:
                raise Rejected(Reason.WRONG_TYPE, f"{name} must be a number")
            # Only unknown *numeric* fields are kept; text could carry personal data.
            continue
        else:
            number = as_float(name, value)  # a subclass of int or float
        if not math.isfinite(number):
            raise Rejected(Reason.NOT_FINITE, f"{name} is not a finite number")
        bounds = ranges.get(name)
        if bounds is not None:
            if not bounds[0] <= number <= bounds[1]:
                raise Rejected(
                    Reason.OUT_OF_RANGE,
                    f"{name}={number:g} outside [{bounds[0]:g}, {bounds[1]:g}] for this asset",
                )
        elif abs(number) > 1e15:
            raise Rejected(Reason.OUT_OF_RANGE, f"{name} magnitude above 1e15")
        fields[name] = number
    if not fields:
        raise Rejected(Reason.NO_VALUES, "no usable values")
    return Reading(asset.id, asset.kind, asset.zone, ts, fields)


def as_float(name: str, value: int | float) -> float:
    """A JSON number as float; an integer beyond float's range is `out_of_range`, not a crash."""
    try:
        return float(value)
    except OverflowError:
        raise Rejected(Reason.OUT_OF_RANGE, f"{name} magnitude above 1e308") from None


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Checked with one set lookup before any call: the contract's own names.
_VALID_NAMES = KNOWN_NUMERIC


@functools.lru_cache(maxsize=4096)
def _is_field_name(name: str) -> bool:
    return _FIELD_NAME.match(name) is not None
