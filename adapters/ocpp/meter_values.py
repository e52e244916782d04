"""OCPP meter values → contract fields (DESIGN 3.2 names, SI units): pure, both versions.

A sampled value names its measurand, phase and unit; OCPP 1.6 sends the value as a string with
a unit name (`kW`, `Wh`, ...), 2.0.1 as a number with `unitOfMeasure` (unit and a power-of-ten
multiplier). Only the measurands the planner uses are taken: active import power and energy,
current and voltage (per phase as `current_l1_a` ...), and the vehicle's state of charge.
Anything else (reactive power, temperatures, free text) is ignored, never stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAX_SAMPLES = 64  # per meter value; more is refused as malformed
MAX_METER_VALUES = 32  # per message

# unit → (contract unit, factor)
_UNITS: dict[str, tuple[str, float]] = {
    "w": ("w", 1.0),
    "kw": ("w", 1000.0),
    "wh": ("wh", 1.0),
    "kwh": ("wh", 1000.0),
    "a": ("a", 1.0),
    "v": ("v", 1.0),
    "percent": ("pct", 1.0),
}
_DEFAULT_UNIT = {
    "Power.Active.Import": "W",
    "Energy.Active.Import.Register": "Wh",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "SoC": "Percent",
}
_PHASES = {"L1": "l1", "L2": "l2", "L3": "l3", "L1-N": "l1", "L2-N": "l2", "L3-N": "l3"}


class MeterValueError(ValueError):
    """A meter value that cannot be read (the message names the problem, never the payload)."""


@dataclass(slots=True)
class Sample:
    """The contract fields of one meter value at one instant.

    Attributes
    ----------
    timestamp : str
        The station's timestamp (RFC 3339 text, checked by the caller).
    fields : dict
        Contract field name → value in its unit (``power_w`` [W], ``energy_wh`` [Wh],
        ``current_a``/``current_l1_a`` [A], ``voltage_v`` [V], ``soc_pct`` [%]).
    """

    timestamp: str
    fields: dict[str, float] = field(default_factory=dict)


def samples(meter_values: object) -> list[Sample]:
    """Read a `meterValue` list (snake_case keys, as the ocpp package hands it over).

    Raises
    ------
    MeterValueError
        Not a list of objects, too many entries, a non-numeric value or an unknown unit.
    """
    if not isinstance(meter_values, Sequence) or isinstance(meter_values, str | bytes):
        raise MeterValueError("meterValue must be a list")
    if len(meter_values) > MAX_METER_VALUES:
        raise MeterValueError(f"more than {MAX_METER_VALUES} meter values in one message")
    out = []
    for entry in meter_values:
        if not isinstance(entry, Mapping):
            raise MeterValueError("a meter value must be an object")
        timestamp = entry.get("timestamp")
        sampled = entry.get("sampled_value")
        if not isinstance(timestamp, str) or not isinstance(sampled, Sequence):
            raise MeterValueError("a meter value needs timestamp and sampledValue")
        if len(sampled) > MAX_SAMPLES:
            raise MeterValueError(f"more than {MAX_SAMPLES} sampled values")
        out.append(Sample(timestamp, _fields(sampled)))
    return out


def _fields(sampled: Sequence[object]) -> dict[str, float]:
    fields: dict[str, float] = {}
    phase_power: dict[str, float] = {}
    for item in sampled:
        if not isinstance(item, Mapping):
            raise MeterValueError("a sampled value must be an object")
        measurand = item.get("measurand", "Energy.Active.Import.Register")
        if not isinstance(measurand, str) or measurand not in _DEFAULT_UNIT:
            continue
        value = _number(item.get("value"))
        unit, multiplier = _unit(item, str(measurand))
        kind, factor = unit
        value *= factor * multiplier
        if not math.isfinite(value):
            raise MeterValueError(f"{measurand} is not finite")
        phase = _PHASES.get(str(item.get("phase", "")))
        if measurand == "Power.Active.Import":
            _expect(kind, "w", measurand)
            if phase is None:
                fields["power_w"] = value
            else:
                phase_power[phase] = value
        elif measurand == "Energy.Active.Import.Register":
            _expect(kind, "wh", measurand)
            if phase is None:
                fields["energy_wh"] = value
        elif measurand == "Current.Import":
            _expect(kind, "a", measurand)
            fields[f"current_{phase}_a" if phase else "current_a"] = value
        elif measurand == "Voltage":
            _expect(kind, "v", measurand)
            if phase in (None, "l1"):
                fields["voltage_v"] = value
        elif measurand == "SoC":
            _expect(kind, "pct", measurand)
            fields["soc_pct"] = value
    if "power_w" not in fields and phase_power:
        fields["power_w"] = sum(phase_power.values())
    return fields


def _number(value: object) -> float:
    # 1.6 sends "1234.5" (a string), 2.0.1 a JSON number.
    if isinstance(value, bool):
        raise MeterValueError("a sampled value must be a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 32:
        try:
            return float(value)
        except ValueError:
            pass
    raise MeterValueError("a sampled value must be a number")


def _unit(item: Mapping[str, object], measurand: str) -> tuple[tuple[str, float], float]:
    multiplier = 1.0
    unit_of_measure = item.get("unit_of_measure")
    if isinstance(unit_of_measure, Mapping):  # 2.0.1
        name = unit_of_measure.get("unit", _DEFAULT_UNIT[measurand])
        exponent = unit_of_measure.get("multiplier", 0)
        if not isinstance(exponent, int) or isinstance(exponent, bool) or abs(exponent) > 9:
            raise MeterValueError("unitOfMeasure.multiplier must be a small integer")
        multiplier = 10.0**exponent
    else:  # 1.6
        name = item.get("unit", _DEFAULT_UNIT[measurand])
    unit = _UNITS.get(str(name).lower())
    if unit is None:
        raise MeterValueError(f"unknown unit for {measurand}")
    return unit, multiplier


def _expect(kind: str, wanted: str, measurand: object) -> None:
    if kind != wanted:
        raise MeterValueError(f"wrong unit for {measurand}")
