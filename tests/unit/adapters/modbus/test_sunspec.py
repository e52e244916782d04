"""SunSpec model layouts from the published definitions, and discovery on a register image."""

from __future__ import annotations

import asyncio

import pytest

from adapters.modbus.maps import load_map
from adapters.modbus.sunspec import (
    ModelInstance,
    NotSunSpec,
    discover,
    model_registers,
    sunspec_blocks,
)
from adapters.modbus.transport import DeviceException


def test_model_103_layout_comes_from_the_published_definition() -> None:
    regs = {r.name: r for r in model_registers(103, 40070)}
    # SunSpec model 103: ID, L, A, AphA, AphB, AphC, A_SF, ... W at offset 14, WH at 24.
    assert regs["103.ID"].address == 40070
    assert regs["103.W"].address == 40084
    assert regs["103.W"].scale_register == "103.W_SF"
    assert regs["103.W_SF"].address == 40085
    assert regs["103.WH"].address == 40094 and regs["103.WH"].count == 2


def _image(base: int, models: list[tuple[int, int]]) -> dict[int, int]:
    words = {base: 0x5375, base + 1: 0x6E53}
    address = base + 2
    for model_id, length in models:
        words[address], words[address + 1] = model_id, length
        address += 2 + length
    words[address], words[address + 1] = 0xFFFF, 0
    return words


def _reader(words: dict[int, int]):  # type: ignore[no-untyped-def]
    async def read(address: int, count: int) -> list[int]:
        if any(a not in words for a in range(address, address + count)):
            raise DeviceException(2)
        return [words[a] for a in range(address, address + count)]

    return read


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovery_at_each_base(base: int) -> None:
    image = _image(base, [(1, 66), (103, 50)])
    found_base, models = asyncio.run(discover(_reader(image), [40000, 0, 50000]))
    assert found_base == base
    assert models == [ModelInstance(1, base + 2, 66), ModelInstance(103, base + 70, 50)]
    blocks = sunspec_blocks(load_map("sunspec").sunspec, models)  # type: ignore[arg-type]
    assert [(b.address, b.count) for b in blocks] == [(base + 72, 50)]


def test_no_marker_and_unsupported_models() -> None:
    with pytest.raises(NotSunSpec, match="no SunS marker"):
        asyncio.run(discover(_reader({0: 1, 1: 2}), [40000, 0, 50000]))
    image = _image(40000, [(1, 66), (160, 48)])
    _, models = asyncio.run(discover(_reader(image), [40000]))
    with pytest.raises(NotSunSpec, match="no supported model"):
        sunspec_blocks(load_map("sunspec").sunspec, models)  # type: ignore[arg-type]
