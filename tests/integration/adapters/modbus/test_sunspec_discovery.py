"""SunSpec discovery at each base address, and values that follow their scale factors."""

from __future__ import annotations

import pytest

from adapters.modbus.simulator import SimulatedServer, SunSpecSimulator
from tests.fixtures.modbus import Collected, modbus_asset, polling, run, serving, until
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("base", [40000, 0, 50000])
@pytest.mark.parametrize("model_id", [103, 203])
def test_discovery_and_changing_scale_factors(base: int, model_id: int) -> None:
    sim = SunSpecSimulator(3, model_id, base=base)
    energy = "TotWhImp" if model_id > 200 else "WH"
    energy_sf = "TotWh_SF" if model_id > 200 else "WH_SF"
    sim.set_scale_factor("W_SF", 0)
    sim.set_scale_factor(energy_sf, 0)
    sim.set_point("W", 1500.0)
    sim.set_point(energy, 20000.0)
    port = free_port()
    kind = "meter" if model_id > 200 else "pv"
    asset = modbus_asset("dev-1", kind, "sunspec", port, 3, rated_kw=100)
    collected = Collected()

    def power() -> object:
        reading = collected.latest("dev-1")
        return reading.fields.get("power_w") if reading else None

    async def scenario() -> None:
        async with serving(SimulatedServer("127.0.0.1", port, [sim])), polling([asset], collected):
            await until(lambda: power() == 1500.0, what="1500 W at W_SF 0")
            # The device changes range: same register, new scale factor, in one poll.
            sim.set_scale_factor("W_SF", 2)
            sim.set_point("W", 87600.0)
            await until(lambda: power() == 87600.0, what="87600 W at W_SF 2")
            sim.set_scale_factor("W_SF", -1)
            sim.set_point("W", 1234.5)
            await until(lambda: power() == pytest.approx(1234.5), what="1234.5 W at W_SF -1")
            sim.set_scale_factor(energy_sf, 3)
            sim.set_point(energy, 5_000_000.0)
            await until(
                lambda: collected.latest("dev-1").fields["energy_wh"] == 5_000_000.0,  # type: ignore[union-attr]
                what="energy with its new scale factor",
            )

    run(scenario())
    assert collected.rejects == []
    # Never a value scaled with the wrong factor: only the values set above were ever read.
    seen = {round(float(r.fields["power_w"]), 6) for r in collected.readings}
    assert seen <= {1500.0, 87600.0, 1234.5}


def test_device_without_sunspec_is_a_counted_device_error() -> None:
    sim = SunSpecSimulator(1, 103, base=1000)  # marker where discovery does not look
    port = free_port()
    collected = Collected()

    async def scenario() -> None:
        async with (
            serving(SimulatedServer("127.0.0.1", port, [sim])),
            polling([modbus_asset("pv-1", "pv", "sunspec", port)], collected),
        ):
            await until(lambda: len(collected.rejects) >= 1, what="a rejection")

    run(scenario())
    asset_id, reason, detail = collected.rejects[0]
    assert (asset_id, reason.value) == ("pv-1", "device_error")
    assert "no SunS marker" in detail
    assert collected.readings == []
