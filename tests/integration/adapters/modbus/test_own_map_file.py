"""A deployment's own register map (a YAML file): input registers, swapped word order, codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.modbus.maps import load_map
from adapters.modbus.simulator import SimulatedServer, SimulatedUnit
from tests.fixtures.modbus import Collected, modbus_asset, polling, run, serving, until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

METER_MAP = """\
name: test-swapped-meter
description: A meter with little-endian word order in its input registers
source: made up for this test
kinds: [meter]
max_read_registers: 10
registers:
  - {name: power, address: 30, type: s32, word_order: little, table: input, scale: 0.1,
     unit: W, field: power_w}
  - {name: energy, address: 32, type: u32, word_order: little, table: input, unit: Wh,
     field: energy_wh}
  - {name: volts, address: 34, type: f32, word_order: little, table: input, unit: V,
     field: voltage_v}
  - {name: state, address: 36, type: u16, table: input, field: meter_ok_count,
     values: {"1": 1}, default: 0}
"""


def test_own_map_with_swapped_words_in_input_registers(tmp_path: Path) -> None:
    path = tmp_path / "meter.yaml"
    path.write_text(METER_MAP)
    register_map = load_map(str(path))
    sim = SimulatedUnit(4, register_map.registers)
    sim.values.update({"power": -1234.5, "energy": 70_000_123, "volts": 229.75})
    sim.raw["state"] = 1
    port = free_port()
    asset = modbus_asset("meter-0007", "meter", str(path), port, 4, rated_kw=50)
    collected = Collected()

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset], collected):
            await until(lambda: collected.latest("meter-0007") is not None)

    run(scenario())
    reading = collected.latest("meter-0007")
    assert reading is not None
    assert dict(reading.fields) == {
        "power_w": pytest.approx(-1234.5),
        "energy_wh": 70_000_123.0,
        "voltage_v": 229.75,
        "meter_ok_count": 1.0,
    }
