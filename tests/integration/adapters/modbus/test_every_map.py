"""Every shipped register map, decoded by the poller against a simulated device (one table).

All devices sit behind one simulated gateway (one host:port, one unit id each), so this also
checks that several unit ids share one connection.
"""

from __future__ import annotations

import pytest

from adapters.modbus.maps import builtin_map_names, load_map
from adapters.modbus.simulator import (
    ChargerSimulator,
    SimulatedServer,
    SimulatedUnit,
    SunSpecSimulator,
)
from tests.fixtures.modbus import Collected, modbus_asset, polling, run, serving, until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

INVERTER = {"W": 4560.0, "WH": 1234500.0, "A": 6.61, "PhVphA": 231.2}
INVERTER_SF = {"W_SF": 1, "WH_SF": 2, "A_SF": -2, "V_SF": -1}
INVERTER_FIELDS = {"power_w": 4560.0, "energy_wh": 1234500.0, "current_a": 6.61, "voltage_v": 231.2}
METER = {"W": -2345.0, "TotWhImp": 987650.0, "TotWhExp": 12340.0, "A": 10.2, "PhV": 229.5}
METER_SF = {"W_SF": 0, "TotWh_SF": 1, "A_SF": -1, "V_SF": -1}
METER_FIELDS = {
    "power_w": -2345.0,
    "energy_wh": 987650.0,
    "energy_export_wh": 12340.0,
    "current_a": 10.2,
    "voltage_v": 229.5,
}


def _cases() -> list[tuple[str, str, SimulatedUnit, dict[str, object]]]:
    """(map, asset kind, simulated unit, expected fields) for every shipped map."""
    cases: list[tuple[str, str, SimulatedUnit, dict[str, object]]] = []
    unit_id = 1
    for name in builtin_map_names():
        register_map = load_map(name)
        if register_map.sunspec is not None:
            for model_id in sorted(register_map.sunspec.models):
                sim = SunSpecSimulator(unit_id, model_id)
                meter = model_id >= 200
                for point, factor in (METER_SF if meter else INVERTER_SF).items():
                    sim.set_scale_factor(point, factor)
                for point, value in (METER if meter else INVERTER).items():
                    sim.set_point(point, value)
                expected = METER_FIELDS if meter else INVERTER_FIELDS
                cases.append((name, "meter" if meter else "pv", sim, dict(expected)))
                unit_id += 1
        elif register_map.charger is not None:
            charger = ChargerSimulator(register_map, unit_id, failsafe_current_a=10.0)
            expected = {
                "connected": True,
                "power_w": 10.0 * 3 * 230.0,
                "current_a": 10.0,
                "voltage_v": 230.0,
            }
            cases.append((name, "charger", charger, expected))
            unit_id += 1
        else:
            pytest.fail(f"map {name!r}: add a simulated device for it to this table")
    return cases


def test_every_shipped_map_decodes_against_a_simulated_device() -> None:
    cases = _cases()
    port = free_port()
    server = SimulatedServer("127.0.0.1", port, [sim for _, _, sim, _ in cases])
    # The poller configures the chargers' fail-safe current from safe_power_kw: 6.9 kW = 10 A.
    assets = [
        modbus_asset(
            f"dev-{sim.unit_id:02d}",
            kind,
            name,
            port,
            sim.unit_id,
            rated_kw=30,
            **({"charger": {"safe_power_kw": 6.9}} if kind == "charger" else {}),
        )
        for name, kind, sim, _ in cases
    ]
    collected = Collected()

    async def scenario() -> None:
        async with serving(server), polling(assets, collected):
            await until(
                lambda: all(collected.latest(a.id) for a in assets), what="a reading from each"
            )

    run(scenario())
    assert collected.rejects == []
    for asset, (name, _, sim, expected) in zip(assets, cases, strict=True):
        reading = collected.latest(asset.id)
        assert reading is not None
        for key, value in expected.items():
            got = reading.fields.get(key)
            assert got == pytest.approx(value, rel=1e-6), f"{name} (unit {sim.unit_id}): {key}"
        if name != "sunspec":
            assert reading.fields["energy_wh"] == pytest.approx(1_000_000.0, abs=50)
