"""Checked by software that is not ours: Debian's `mbpoll` against our simulators (its `-r`
counts from 1, so every address is checked against the protocol's 0-based one), and our poller
against a libmodbus server (a few lines of C built in the test setup).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from adapters.modbus.maps import load_map
from adapters.modbus.simulator import (
    ChargerSimulator,
    SimulatedServer,
    SimulatedUnit,
    SunSpecSimulator,
)
from tests.fixtures.modbus import (
    Collected,
    LibmodbusServer,
    modbus_asset,
    polling,
    run,
    serving,
    until,
)
from tests.fixtures.ports import find_binary, free_port

pytestmark = pytest.mark.integration

_LINE = re.compile(r"^\[(\d+)\]:\s+(0x[0-9A-Fa-f]+|-?[\d.]+)", re.MULTILINE)


async def mbpoll(port: int, *args: str) -> dict[int, float]:
    """Run mbpoll once against 127.0.0.1:port; {reference (1-based): value}."""
    process = await asyncio.create_subprocess_exec(
        find_binary("mbpoll"),
        "-m",
        "tcp",
        "-p",
        str(port),
        "-1",
        "-o",
        "2",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return {
        int(ref): int(value, 16) if value.startswith("0x") else float(value)
        for ref, value in _LINE.findall(out.decode())
    }


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_mbpoll_reads_the_sunspec_simulator(base: int) -> None:
    sim = SunSpecSimulator(7, 103, base=base)
    sim.set_scale_factor("W_SF", 1)
    sim.set_point("W", 4560.0)
    port = free_port()

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])):
            marker = await mbpoll(port, "-a", "7", "-r", str(base + 1), "-c", "4", "127.0.0.1")
            assert marker == {base + 1: 0x5375, base + 2: 0x6E53, base + 3: 1, base + 4: 66}
            # Model 103 follows model 1 (2 + 66 registers); W and W_SF at offsets 14 and 15.
            model = base + 2 + 68
            values = await mbpoll(port, "-a", "7", "-r", str(model + 1), "-c", "16", "127.0.0.1")
            assert values[model + 1] == 103 and values[model + 2] == 50
            assert values[model + 15] == 456 and values[model + 16] == 1
            # Same addresses with -0 (PDU addressing): the protocol address itself.
            pdu = await mbpoll(port, "-a", "7", "-0", "-r", str(base), "-c", "2", "127.0.0.1")
            assert pdu == {base: 0x5375, base + 1: 0x6E53}

    run(scenario())


def test_mbpoll_reads_and_writes_the_charger_simulators() -> None:
    generic = ChargerSimulator(load_map("generic-charger"), 1, failsafe_current_a=8.0)
    alfen = ChargerSimulator(load_map("alfen-ng9xx"), 2, failsafe_current_a=8.0)
    keba = ChargerSimulator(load_map("keba-p30"), 255, failsafe_current_a=8.0)
    port = free_port()

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [generic, alfen, keba])):
            # Generic map: status at protocol address 100, power (u32) at 101.
            status = await mbpoll(port, "-a", "1", "-r", "101", "-c", "5", "127.0.0.1")
            assert status[101] == 1 and status[103] == 8 * 3 * 230
            await mbpoll(port, "-a", "1", "-r", "201", "127.0.0.1", "123")
            assert generic.setpoint_a == pytest.approx(12.3)
            # Alfen: big-endian float32 voltage at 306 and current setpoint at 1210.
            volts = await mbpoll(port, "-a", "2", "-t", "4:float", "-B", "-r", "307", "127.0.0.1")
            assert volts == {307: 230.0}
            await mbpoll(port, "-a", "2", "-t", "4:float", "-B", "-r", "1211", "127.0.0.1", "13.5")
            assert alfen.setpoint_a == 13.5
            # KEBA: u32 (big-endian words) power in mW at 1020, written setpoints in mA at 5004.
            power = await mbpoll(port, "-a", "255", "-t", "4:int", "-B", "-r", "1021", "127.0.0.1")
            assert power == {1021: 8 * 3 * 230 * 1000}
            await mbpoll(port, "-a", "255", "-r", "5005", "127.0.0.1", "10000")
            assert keba.setpoint_a == 10.0

    run(scenario())


def _image(unit: SimulatedUnit) -> tuple[int, list[int]]:
    """The unit's registers as one contiguous block (gaps zero) for the libmodbus server."""
    words: dict[int, int] = {}
    for block in unit.served_blocks():
        for i, word in enumerate(block.words):
            words[block.address + i] = word
    first, last = min(words), max(words)
    return first, [words.get(a, 0) for a in range(first, last + 1)]


def test_poller_against_a_libmodbus_server(
    libmodbus_server: Callable[[int, list[int]], LibmodbusServer],
) -> None:
    inverter = SunSpecSimulator(1, 103, base=40000)
    for name, factor in (("W_SF", 0), ("WH_SF", 1), ("A_SF", -2), ("V_SF", -1)):
        inverter.set_scale_factor(name, factor)
    for name, value in (("W", 3210.0), ("WH", 45670.0), ("A", 4.65), ("PhVphA", 230.5)):
        inverter.set_point(name, value)
    inverter.refresh()
    charger = ChargerSimulator(load_map("generic-charger"), 1, failsafe_current_a=6.0)
    pv_server = libmodbus_server(*_image(inverter))
    charger_server = libmodbus_server(*_image(charger))
    assets = [
        modbus_asset("pv-1", "pv", "sunspec", pv_server.port, rated_kw=10),
        modbus_asset("charger-1", "charger", "generic-charger", charger_server.port, rated_kw=11),
    ]
    collected = Collected()
    results = []

    async def scenario() -> None:
        async with polling(assets, collected) as poller:
            await until(lambda: all(collected.latest(a.id) for a in assets), what="readings")
            results.append(await poller.set_charger_power("charger-1", 9000.0))

    run(scenario())
    assert collected.rejects == []
    pv = collected.latest("pv-1")
    assert pv is not None
    assert dict(pv.fields) == pytest.approx(
        {"power_w": 3210.0, "energy_wh": 45670.0, "current_a": 4.65, "voltage_v": 230.5}
    )
    charger_reading = collected.latest("charger-1")
    assert charger_reading is not None and charger_reading.fields["connected"] is True
    (result,) = results
    # 9 kW / 690 V = 13.04 A → 13.0 A on the 0.1 A register; libmodbus stored and returned it.
    assert result.ok and result.current_a == 13.0 and result.read_back_a == 13.0


def _runs(image: dict[int, int], longest: int = 100) -> list[tuple[int, int]]:
    """Contiguous (start, count) runs of served addresses, each short enough for one request."""
    runs: list[tuple[int, int]] = []
    for address in sorted(image):
        if runs and runs[-1][0] + runs[-1][1] == address and runs[-1][1] < longest:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((address, 1))
    return runs


def test_every_served_address_matches_mbpoll() -> None:
    """Each simulator's whole image, read by mbpoll at address + 1: no off-by-one anywhere."""
    units: list[SimulatedUnit] = [
        ChargerSimulator(load_map(name), unit_id, connected=False)  # static: no vehicle
        for unit_id, name in enumerate(["generic-charger", "keba-p30", "alfen-ng9xx"], start=1)
    ]
    for unit_id, model_id in enumerate([101, 102, 103, 201, 202, 203, 204], start=10):
        sunspec = SunSpecSimulator(unit_id, model_id, base=40000)
        sunspec.set_scale_factor("W_SF", -1)
        sunspec.set_point("W", 123.4)
        units.append(sunspec)
    port = free_port()
    checked = 0

    async def scenario() -> None:
        nonlocal checked
        async with serving(SimulatedServer("127.0.0.1", port, units)):
            for unit in units:
                unit.refresh()
                image = {
                    block.address + i: word
                    for block in unit.served_blocks()
                    for i, word in enumerate(block.words)
                }
                for start, count in _runs(image):
                    got = await mbpoll(
                        port,
                        "-a",
                        str(unit.unit_id),
                        "-t",
                        "4:hex",
                        "-r",
                        str(start + 1),
                        "-c",
                        str(count),
                        "127.0.0.1",
                    )
                    expected = {a + 1: image[a] for a in range(start, start + count)}
                    assert got == expected, f"unit {unit.unit_id} from {start}"
                    checked += count

    run(scenario(), timeout=120)
    assert checked > 500
