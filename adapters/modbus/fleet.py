"""Simulated devices for the Modbus-read assets of a configuration (`gridcoord simulate`).

Each asset gets a simulator matching its register map, grouped into one server per host:port
(so several unit ids behind one address behave like a gateway). PV follows a clear-sky-like
day curve of the site's local solar time; meters show a modest load; chargers have a vehicle
plugged in that draws whatever the charger allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from adapters.contract.reading import AssetKind
from adapters.modbus.maps import load_map
from adapters.modbus.simulator import (
    ChargerSimulator,
    SimulatedServer,
    SimulatedUnit,
    SunSpecSimulator,
)
from adapters.modbus.source import ModbusAsset, check_unique_units


def day_curve(rated_w: float, longitude: float) -> Callable[[], float]:
    """PV power at the current solar time: a half sine from 06:00 to 18:00 [W]."""

    def power() -> float:
        now = datetime.now(UTC)
        solar_hour = (now.hour + now.minute / 60 + longitude / 15) % 24
        return max(0.0, rated_w * 0.8 * math.sin(math.pi * (solar_hour - 6) / 12))

    return power


def build_fleet(
    assets: Sequence[ModbusAsset], *, longitude: float = 10.79
) -> list[SimulatedServer]:
    """One simulated server per host:port with a unit per Modbus-read asset."""
    units: dict[tuple[str, int], list[SimulatedUnit]] = {}
    check_unique_units(assets)
    for asset in assets:
        source = asset.modbus
        if source is None:
            continue
        register_map = load_map(source.register_map)
        unit: SimulatedUnit
        if register_map.sunspec is not None:
            meter = asset.kind is AssetKind.METER
            sunspec = SunSpecSimulator(source.unit_id, 203 if meter else 103)
            for name, factor in (("W_SF", 0), ("A_SF", -2), ("V_SF", -1)):
                sunspec.set_scale_factor(name, factor)
            sunspec.set_scale_factor("TotWh_SF" if meter else "WH_SF", 0)
            sunspec.set_point("A", 0.0)
            sunspec.set_point("PhV" if meter else "PhVphA", 230.0)
            sunspec.set_point("TotWhImp" if meter else "WH", 1_000_000.0)
            if meter:
                sunspec.set_point("W", asset.rated_kw * 100.0)
            else:
                sunspec.power = day_curve(asset.rated_kw * 1000.0, longitude)
            unit = sunspec
        elif register_map.charger is not None and asset.charger is not None:
            spec = asset.charger
            rated_a = asset.rated_kw * 1000.0 / (spec.phases * spec.voltage_v)
            unit = ChargerSimulator(
                register_map,
                source.unit_id,
                phases=spec.phases,
                voltage_v=spec.voltage_v,
                hardware_max_a=min(register_map.charger.max_current_a, rated_a),
                failsafe_current_a=register_map.charger.min_current_a,
            )
        else:
            raise ValueError(f"asset {asset.id!r}: no simulator for map {register_map.name!r}")
        units.setdefault((source.host, source.port), []).append(unit)
    return [SimulatedServer(host, port, group) for (host, port), group in units.items()]
