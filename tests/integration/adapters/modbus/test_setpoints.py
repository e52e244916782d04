"""Charger setpoints over Modbus: clamped, written, read back, refreshed, left to expire."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.modbus.maps import Register, load_map
from adapters.modbus.setpoints import ModbusSetpointSink
from adapters.modbus.simulator import ChargerSimulator, SimulatedServer
from adapters.sink import Setpoint
from tests.fixtures.modbus import Collected, modbus_asset, polling, run, serving, until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

CHARGER_MAPS = ["generic-charger", "keba-p30", "alfen-ng9xx"]


def _charger(name: str, port: int, **modbus: object) -> object:
    return modbus_asset(
        "charger-1",
        "charger",
        name,
        port,
        1,
        rated_kw=11,
        charger={"safe_power_kw": 4.2},
        modbus=modbus,
    )


@pytest.mark.parametrize("name", CHARGER_MAPS)
def test_setpoint_written_read_back_and_clamped(name: str) -> None:
    sim = ChargerSimulator(load_map(name), 1, failsafe_current_a=16.0, failsafe_timeout_s=60)
    port = free_port()
    asset = _charger(name, port, failsafe_timeout_s=30)
    results = []

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            await until(lambda: poller.available("charger-1"), what="first poll")
            results.append(await poller.set_charger_power("charger-1", 7000.0))
            results.append(await poller.set_charger_power("charger-1", 50_000.0))
            results.append(await poller.set_charger_power("charger-1", 1000.0))

    run(scenario())
    normal, too_much, too_little = results
    assert normal.ok and not normal.clamped
    assert normal.power_w <= 7000.0 and normal.power_w > 6900.0
    assert normal.read_back_a == pytest.approx(normal.current_a, abs=1e-3)
    # 11 kW on three phases at 230 V is 15.94 A: never more, whatever was asked.
    assert too_much.ok and too_much.clamped
    assert too_much.current_a <= 11000.0 / 690.0 and too_much.power_w <= 11000.0
    # Below the 6 A minimum the charger pauses rather than drawing more than asked.
    assert too_little.ok and too_little.current_a == 0.0
    assert sim.setpoint_a == 0.0
    charger = load_map(name).charger
    assert charger is not None
    if charger.failsafe_current and charger.failsafe_current.write:
        # Configured when it connected: 4.2 kW → 6.09 A, rounded down to the register's step.
        assert 6.0 <= sim.failsafe_current_a <= 4200.0 / 690.0
    if charger.failsafe_timeout and charger.failsafe_timeout.write:
        assert sim.failsafe_timeout_s == 30


@pytest.mark.parametrize("poll_interval_s", [0.2, 5.0])
def test_refreshed_inside_the_timeout_then_expires_to_the_failsafe(poll_interval_s: float) -> None:
    sim = ChargerSimulator(load_map("generic-charger"), 1)
    port = free_port()
    # A 1 s fail-safe timeout: the poller re-writes every third of it, even when it polls the
    # charger far less often.
    asset = _charger("generic-charger", port, failsafe_timeout_s=1, poll_interval_s=poll_interval_s)

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            await until(lambda: poller.available("charger-1"), what="first poll")
            assert sim.failsafe_timeout_s == 1.0
            valid_until = datetime.now(UTC) + timedelta(seconds=2.5)
            result = await poller.set_charger_power("charger-1", 7000.0, valid_until=valid_until)
            assert result.ok
            writes = lambda: sum(n == "current_setpoint" for n, _ in sim.writes)  # noqa: E731
            first = writes()
            # Well past the 1 s timeout, the charger still runs on the setpoint: refreshed.
            await until(lambda: writes() >= first + 4, what="refreshes")
            assert sim.applied_current_a() == pytest.approx(10.1)
            # After valid_until nobody refreshes: the charger falls back to 4.2 kW → 6.0 A.
            await until(lambda: sim.applied_current_a() == pytest.approx(6.0))
            assert datetime.now(UTC) >= valid_until
            assert poller.refresh_interval_s("charger-1") == pytest.approx(1 / 3)

    run(scenario())


def test_read_back_mismatch_is_an_alarm(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.modbus.poller")
    # The charger's DIP switches limit it to 8 A; its read-back register shows the limit in force.
    sim = ChargerSimulator(load_map("keba-p30"), 1, hardware_max_a=8.0)
    port = free_port()
    asset = _charger("keba-p30", port)
    results = []

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            await until(lambda: poller.available("charger-1"), what="first poll")
            results.append(await poller.set_charger_power("charger-1", 6900.0))
            sim.fail_with = 6  # busy
            results.append(await poller.set_charger_power("charger-1", 6900.0))
            with pytest.raises(KeyError):
                await poller.set_charger_power("pv-1", 1000.0)

    run(scenario())
    mismatch, failed = results
    assert not mismatch.ok and mismatch.read_back_a == 8.0
    assert mismatch.alarm == "read-back 8 A differs from written 10 A"
    assert not failed.ok and failed.alarm is not None and "write failed" in failed.alarm
    assert any("setpoint alarm: read-back 8 A" in r.getMessage() for r in caplog.records)


def test_charger_that_went_away_is_reconfigured_and_gets_its_setpoint_again() -> None:
    sim = ChargerSimulator(load_map("keba-p30"), 1)
    port = free_port()
    asset = _charger("keba-p30", port, failsafe_timeout_s=30)
    server = SimulatedServer("127.0.0.1", port, [sim])

    def writes(name: str) -> int:
        return sum(n == name for n, _ in sim.writes)

    async def scenario() -> None:
        async with serving(server), polling([asset]) as poller:  # type: ignore[list-item]
            await until(lambda: poller.available("charger-1"), what="first poll")
            assert (await poller.set_charger_power("charger-1", 9000.0)).ok
            assert writes("set_failsafe_current") == 1 and writes("set_charging_current") == 1
            await server.stop()
            await until(lambda: not poller.available("charger-1"), what="unavailable")
            # The charger reboots: fail-safe settings and setpoint lost.
            sim.failsafe_current_a, sim.failsafe_timeout_s, sim.setpoint_a = 32.0, 0.0, None
            await server.start()
            await until(lambda: writes("set_charging_current") >= 2, what="setpoint re-sent")
            assert poller.available("charger-1")

    run(scenario())
    assert writes("set_failsafe_current") == 2 and writes("set_failsafe_timeout") == 2
    assert sim.failsafe_timeout_s == 30 and 6.0 <= sim.failsafe_current_a <= 4200 / 690
    assert sim.setpoint_a == pytest.approx(9000 // 0.69 / 1000, abs=0.001)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(CHARGER_MAPS),
    powers=st.lists(
        st.floats(-1e4, 1e6, allow_nan=False) | st.sampled_from([0.0, 4139.9, 4140.0, 11040.0]),
        min_size=1,
        max_size=12,
    ),
)
def test_no_setpoint_on_the_wire_exceeds_the_request_or_the_rating(
    name: str, powers: list[float]
) -> None:
    """Whatever power is asked, the current the charger ends up with (decoded from its
    registers by the simulator) allows at most that power and at most the 11 kW rating.
    """
    sim = ChargerSimulator(load_map(name), 1)
    port = free_port()
    asset = _charger(name, port)

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            for power in powers:
                result = await poller.set_charger_power("charger-1", power)
                assert result.ok, result.alarm
                assert sim.setpoint_a is not None
                allowed = sim.setpoint_a * 3 * 230.0
                assert allowed <= max(power, 0.0) + 1e-3
                assert allowed <= 11_000.0 + 1e-3

    run(scenario())


class _PickyCharger(ChargerSimulator):
    """Refuses fail-safe timeouts below 10 s, as some firmware does."""

    def on_write(self, register: Register, value: float) -> int | None:
        if register.name == "failsafe_timeout" and value < 10:
            return 3  # illegal data value
        return super().on_write(register, value)


def test_charger_refusing_its_failsafe_settings_is_still_polled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.modbus.poller")
    sim = _PickyCharger(load_map("generic-charger"), 1)
    port = free_port()
    asset = _charger("generic-charger", port, failsafe_timeout_s=5)
    collected = Collected()

    async def scenario() -> None:
        async with (
            serving(SimulatedServer("127.0.0.1", port, [sim])),
            polling(
                [asset],  # type: ignore[list-item]
                collected,
            ) as poller,
        ):
            await until(lambda: poller.available("charger-1"), what="readings despite refusal")

    run(scenario())
    assert any("cannot set fail-safe timeout" in r.getMessage() for r in caplog.records)
    assert collected.readings


def test_setpoint_from_another_thread() -> None:
    sim = ChargerSimulator(load_map("generic-charger"), 1)
    port = free_port()
    asset = _charger("generic-charger", port)

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            assert poller.charger_ids == ["charger-1"]
            await until(lambda: poller.available("charger-1"), what="first poll")
            # A scheduler thread hands the setpoint over and waits for the result.
            future = await asyncio.to_thread(poller.submit_charger_power, "charger-1", 8280.0)
            result = await asyncio.wrap_future(future)
            assert result.ok and result.current_a == 12.0
            assert sim.setpoint_a == 12.0

    run(scenario())


def test_the_modbus_sink_reports_read_back_mismatch_and_failure() -> None:
    # The DIP switches hold the charger at 8 A, so a 10 A setpoint reads back as a mismatch.
    sim = ChargerSimulator(load_map("keba-p30"), 1, hardware_max_a=8.0)
    port = free_port()
    asset = _charger("keba-p30", port)
    deliveries = []
    until_ = datetime.now(UTC) + timedelta(minutes=3)

    def setpoint(charger_id: str, power_w: float) -> Setpoint:
        return Setpoint(charger_id, power_w, until_, "s-1", datetime.now(UTC))

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:  # type: ignore[list-item]
            await until(lambda: poller.available("charger-1"), what="first poll")
            sink = ModbusSetpointSink(poller)
            assert sink.charger_ids == frozenset({"charger-1"})
            deliveries.append(await sink.send(setpoint("charger-1", 5000.0)))  # 7.2 A: fits
            deliveries.append(await sink.send(setpoint("charger-1", 6900.0)))  # 10 A
            sim.fail_with = 6  # busy
            deliveries.append(await sink.send(setpoint("charger-1", 6900.0)))
            deliveries.append(await sink.send(setpoint("pv-1", 1000.0)))

    run(scenario())
    fits, mismatch, busy, unknown = deliveries
    assert fits.state == "read_back" and fits.read_back_w is not None
    assert 4990.0 < fits.read_back_w <= 5000.0  # rounded down to the register step
    assert mismatch.state == "mismatch" and mismatch.read_back_w == pytest.approx(8.0 * 690.0)
    assert mismatch.detail == "read-back 8 A differs from written 10 A"
    assert busy.state == "failed" and "write failed" in busy.detail
    assert unknown.state == "failed" and unknown.charger_id == "pv-1"
