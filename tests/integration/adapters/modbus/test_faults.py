"""Exceptions, timeouts, a device that disappears and returns: counted, logged once, never 0 W."""

from __future__ import annotations

import logging

import pytest

from adapters.contract.validation import Reason
from adapters.modbus.simulator import SimulatedServer, SunSpecSimulator
from tests.fixtures.modbus import Collected, modbus_asset, polling, run, serving, until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration


def _inverter(unit_id: int = 1) -> SunSpecSimulator:
    sim = SunSpecSimulator(unit_id, 103)
    sim.set_scale_factor("W_SF", 0)
    sim.set_point("W", 2000.0)
    return sim


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("exception", Reason.DEVICE_ERROR), ("stall", Reason.TIMEOUT), ("disappear", Reason.TIMEOUT)],
)
def test_failing_device_goes_unavailable_once_and_recovers_once(
    fault: str, reason: Reason, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.modbus.poller")
    sim, healthy = _inverter(1), _inverter(2)
    port = free_port()
    server = SimulatedServer("127.0.0.1", port, [sim, healthy])
    assets = [
        modbus_asset("pv-1", "pv", "sunspec", port, 1, timeout_s=0.3),
        modbus_asset("pv-2", "pv", "sunspec", port, 2, timeout_s=0.3),
    ]
    collected = Collected()

    async def scenario() -> None:
        async with serving(server), polling(assets, collected) as poller:
            await until(lambda: poller.available("pv-1") and poller.available("pv-2"))
            if fault == "exception":
                sim.fail_with = 4  # server device failure
            elif fault == "stall":
                sim.stall()
            else:
                await server.stop()
            await until(lambda: not poller.available("pv-1"), what="pv-1 unavailable")
            before = sum(r.asset_id == "pv-1" for r in collected.readings)
            failures = sum(1 for a, _, _ in collected.rejects if a == "pv-1")
            await until(
                lambda: sum(1 for a, _, _ in collected.rejects if a == "pv-1") >= failures + 2,
                what="more failed polls",
            )
            # Unavailable means no reading at all, never a made-up 0 W.
            assert sum(r.asset_id == "pv-1" for r in collected.readings) == before
            assert not poller.available("pv-1")
            if fault != "disappear":
                assert poller.available("pv-2"), "one failing unit must not take its gateway down"
            if fault == "exception":
                sim.fail_with = None
            elif fault == "stall":
                sim.resume()
            else:
                await server.start()
            await until(lambda: poller.available("pv-1"), what="pv-1 recovered")
            last = poller.last_good("pv-1")
            assert last is not None and last.tzinfo is not None

    run(scenario())
    reasons = {r for a, r, _ in collected.rejects if a == "pv-1"}
    assert reasons == {reason}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("pv-1: unavailable" in m for m in messages) == 1, messages
    assert sum("pv-1: recovered" in m for m in messages) == 1, messages
    if fault == "exception":
        assert any("Modbus exception 4" in d for _, _, d in collected.rejects)


def test_a_device_not_heard_from_within_stale_after_is_unavailable() -> None:
    sim = _inverter()
    port = free_port()
    # Polled every 2 s but stale after 0.3 s: between polls it must read as unavailable.
    asset = modbus_asset(
        "pv-1", "pv", "sunspec", port, poll_interval_s=2.0, modbus={"stale_after_s": 0.3}
    )

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset]) as poller:
            await until(lambda: poller.available("pv-1"), what="first poll")
            await until(lambda: not poller.available("pv-1"), what="stale")
            assert poller.last_good("pv-1") is not None

    run(scenario())
