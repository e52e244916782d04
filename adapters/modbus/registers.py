"""Register value types: decoding 16-bit Modbus registers into numbers and encoding them back.

Pure functions, no I/O. Word order is the order of the 16-bit registers inside a 32/64-bit value
(`big`: most significant register first, the Modbus convention; `little`: swapped, as some
meters do). Bytes inside one register are always big-endian, as the Modbus standard says.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from enum import StrEnum


class RegisterType(StrEnum):
    """How the registers of one value are to be read."""

    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    F32 = "f32"
    U64 = "u64"
    F64 = "f64"
    # SunSpec's scale factor: a signed 16-bit power of ten.
    SUNSSF = "sunssf"
    # ASCII text, two characters per register, NUL padded (e.g. a charger's IEC 61851 state).
    STR = "str"


class WordOrder(StrEnum):
    """Order of the 16-bit registers inside a multi-register value."""

    BIG = "big"
    LITTLE = "little"


_WIDTH = {
    RegisterType.U16: 1,
    RegisterType.S16: 1,
    RegisterType.SUNSSF: 1,
    RegisterType.U32: 2,
    RegisterType.S32: 2,
    RegisterType.F32: 2,
    RegisterType.U64: 4,
    RegisterType.F64: 4,
}
_STRUCT = {
    RegisterType.U16: ">H",
    RegisterType.S16: ">h",
    RegisterType.SUNSSF: ">h",
    RegisterType.U32: ">I",
    RegisterType.S32: ">i",
    RegisterType.F32: ">f",
    RegisterType.U64: ">Q",
    RegisterType.F64: ">d",
}


def register_count(kind: RegisterType, length: int = 1) -> int:
    """Number of 16-bit registers a value of this type occupies (`length` only for `str`)."""
    if kind is RegisterType.STR:
        return length
    return _WIDTH[kind]


def decode(
    registers: Sequence[int], kind: RegisterType, order: WordOrder = WordOrder.BIG
) -> int | float | str:
    """Decode the registers of one value.

    Parameters
    ----------
    registers : the value's registers as read, each 0..65535 [-]
    kind : register type
    order : word order of multi-register values

    Returns
    -------
    The raw number (before any scale) or, for `str`, the text without NUL padding.
    """
    words = list(registers)
    if kind is RegisterType.STR:
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    if len(words) != _WIDTH[kind]:
        raise ValueError(f"{kind.value} needs {_WIDTH[kind]} registers, got {len(words)}")
    if order is WordOrder.LITTLE:
        words.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(_STRUCT[kind], raw)[0]
    return value


def encode(
    value: float | str, kind: RegisterType, order: WordOrder = WordOrder.BIG, length: int = 1
) -> list[int]:
    """Encode one raw value (already divided by its scale) into registers.

    Integers are rounded to the nearest step; a value outside the type's range raises
    ValueError rather than wrapping around (a wrapped setpoint would be a dangerous one).
    """
    if kind is RegisterType.STR:
        data = str(value).encode("ascii")[: 2 * length].ljust(2 * length, b"\0")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * length, 2)]
    if isinstance(value, str):
        raise ValueError(f"{kind.value} cannot hold text")
    number: int | float
    if kind in (RegisterType.F32, RegisterType.F64):
        if not math.isfinite(value):
            raise ValueError("value is not finite")
        number = float(value)
    else:
        number = round(value)
    try:
        raw = struct.pack(_STRUCT[kind], number)
    except struct.error:
        raise ValueError(f"{value!r} does not fit in {kind.value}") from None
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if order is WordOrder.LITTLE:
        words.reverse()
    return words


# SunSpec marks a point a device does not implement with these raw values.
_SUNSPEC_NOT_IMPLEMENTED: dict[RegisterType, frozenset[int]] = {
    RegisterType.U16: frozenset({0xFFFF}),
    RegisterType.S16: frozenset({-0x8000}),
    RegisterType.SUNSSF: frozenset({-0x8000}),
    RegisterType.U32: frozenset({0xFFFFFFFF}),
    RegisterType.S32: frozenset({-0x80000000}),
    RegisterType.U64: frozenset({0xFFFFFFFFFFFFFFFF}),
}


def is_not_implemented(value: int | float | str, kind: RegisterType) -> bool:
    """True for SunSpec's 'not implemented' marker of this type (and for NaN floats)."""
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return False
    return value in _SUNSPEC_NOT_IMPLEMENTED.get(kind, frozenset())
