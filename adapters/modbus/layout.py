"""From a register map to read requests and back: batching registers, decoding reading fields.

Pure logic. Registers that lie close together are read in one request (bounded by the device's
request size and the gap it tolerates), because one transaction per register does not scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adapters.modbus.maps import Register, Table
from adapters.modbus.registers import RegisterType, decode, is_not_implemented

Raw = int | float | str


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers of `table` from `address`, and what they hold."""

    table: Table
    address: int
    count: int
    registers: tuple[Register, ...]


def plan_blocks(registers: Iterable[Register], *, max_read: int, max_gap: int) -> list[Block]:
    """Group the readable registers into as few requests as the device allows.

    Parameters
    ----------
    registers : the map's registers (write-only ones are skipped)
    max_read : most registers per request [registers]
    max_gap : most unmapped registers a request may span [registers]
    """
    ordered = sorted(
        (r for r in registers if r.readable), key=lambda r: (r.table, r.address, r.count)
    )
    blocks: list[Block] = []
    current: list[Register] = []
    for register in ordered:
        if current:
            first, end = current[0], max(r.address + r.count for r in current)
            fits = (
                register.table == first.table
                and register.address - end <= max_gap
                and register.address + register.count - first.address <= max_read
            )
            if not fits:
                blocks.append(_block(current))
                current = []
        if register.count > max_read:
            raise ValueError(f"register {register.name!r} is longer than one request allows")
        current.append(register)
    if current:
        blocks.append(_block(current))
    return blocks


def _block(registers: list[Register]) -> Block:
    start = registers[0].address
    end = max(r.address + r.count for r in registers)
    return Block(registers[0].table, start, end - start, tuple(registers))


def decode_block(block: Block, words: Sequence[int]) -> dict[str, Raw]:
    """Raw values by register name from the words of one block (SunSpec 'not implemented' out)."""
    if len(words) != block.count:
        raise ValueError(f"expected {block.count} registers, got {len(words)}")
    raws: dict[str, Raw] = {}
    for register in block.registers:
        offset = register.address - block.address
        value = decode(words[offset : offset + register.count], register.type, register.word_order)
        if not is_not_implemented(value, register.type):
            raws[register.name] = value
    return raws


def scaled(register: Register, raws: Mapping[str, Raw]) -> float | str | None:
    """The register's value in its unit, or None when it (or its scale factor) is missing."""
    raw = raws.get(register.name)
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    value = float(raw) * register.scale
    if register.scale_register is not None:
        factor = raws.get(register.scale_register)
        if not isinstance(factor, int):
            return None
        value *= 10.0**factor
    return value


def to_fields(registers: Iterable[Register], raws: Mapping[str, Raw]) -> dict[str, object]:
    """Reading fields (contract names and units) from the raw values of one poll."""
    fields: dict[str, object] = {}
    for register in registers:
        if register.field is None or register.type is RegisterType.SUNSSF:
            continue
        if register.values is not None:
            raw = raws.get(register.name)
            if raw is None:
                continue
            code = int(raw) if isinstance(raw, float) else raw
            # A code may be written as a number or as text in the YAML; accept either.
            mapped = register.values.get(code, register.values.get(str(code)))
            if mapped is None:
                mapped = register.default
            if mapped is not None:
                fields[register.field] = mapped
            continue
        value = scaled(register, raws)
        if value is not None and not isinstance(value, str):
            fields[register.field] = value
    return fields
