"""Batching registers into requests and decoding reading fields."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.modbus.layout import Block, decode_block, plan_blocks, to_fields
from adapters.modbus.maps import Register, load_map
from adapters.modbus.registers import RegisterType, encode


def _reg(name: str, address: int, kind: str = "u16", **kw: object) -> Register:
    return Register(name=name, address=address, type=kind, **kw)  # type: ignore[arg-type]


def test_contiguous_registers_share_a_request() -> None:
    regs = [_reg("a", 0), _reg("b", 1, "u32"), _reg("c", 3), _reg("d", 10)]
    blocks = plan_blocks(regs, max_read=125, max_gap=0)
    assert [(b.address, b.count) for b in blocks] == [(0, 4), (10, 1)]
    assert [(b.address, b.count) for b in plan_blocks(regs, max_read=125, max_gap=6)] == [(0, 11)]


def test_request_size_and_tables_split_blocks() -> None:
    regs = [_reg("a", 0, "u32"), _reg("b", 2, "u32"), _reg("c", 4, "u32", table="input")]
    blocks = plan_blocks(regs, max_read=2, max_gap=0)
    assert [(b.table, b.address, b.count) for b in blocks] == [
        ("holding", 0, 2),
        ("holding", 2, 2),
        ("input", 4, 2),
    ]


def test_write_only_registers_are_not_polled() -> None:
    blocks = plan_blocks(load_map("keba-p30").registers, max_read=2, max_gap=0)
    assert all(b.address < 5000 for b in blocks)
    assert all(b.count == 2 for b in blocks)


@settings(max_examples=100, deadline=None)
@given(
    starts=st.lists(st.integers(0, 400), min_size=1, max_size=30, unique=True),
    max_read=st.integers(2, 125),
    max_gap=st.integers(0, 10),
)
def test_every_register_in_exactly_one_bounded_block(
    starts: list[int], max_read: int, max_gap: int
) -> None:
    # u32 registers on even addresses never overlap.
    regs = [_reg(f"r{a}", 2 * a, "u32") for a in starts]
    blocks = plan_blocks(regs, max_read=max_read, max_gap=max_gap)
    seen = [r.name for b in blocks for r in b.registers]
    assert sorted(seen) == sorted(r.name for r in regs)
    for block in blocks:
        assert block.count <= max_read
        for register in block.registers:
            assert block.address <= register.address
            assert register.address + register.count <= block.address + block.count


def test_scale_factor_and_code_mapping() -> None:
    power = _reg("W", 0, "s16", unit="W", field="power_w", scale_register="W_SF")
    factor = _reg("W_SF", 1, "sunssf")
    state = _reg("state", 2, field="connected", values={5: True, 7: True}, default=False)
    block = Block("holding", 0, 3, (power, factor, state))
    words = encode(-1234, RegisterType.S16) + encode(-1, RegisterType.SUNSSF) + [7]
    fields = to_fields(block.registers, decode_block(block, words))
    assert fields == {"power_w": -123.4, "connected": True}
    words[2] = 1
    assert to_fields(block.registers, decode_block(block, words))["connected"] is False


def test_missing_scale_factor_drops_the_value_rather_than_guessing() -> None:
    power = _reg("W", 0, "s16", unit="W", field="power_w", scale_register="W_SF")
    factor = _reg("W_SF", 1, "sunssf")
    block = Block("holding", 0, 2, (power, factor))
    # 0x8000 is SunSpec's "not implemented" for a scale factor.
    assert to_fields(block.registers, decode_block(block, [100, 0x8000])) == {}
