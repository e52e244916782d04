"""Register decoding and encoding: known vectors and round trips for every type and word order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.modbus.registers import (
    RegisterType,
    WordOrder,
    decode,
    encode,
    is_not_implemented,
    register_count,
)


def test_known_vectors() -> None:
    assert decode([0xFFFF], RegisterType.S16) == -1
    assert decode([0xFFFF], RegisterType.U16) == 65535
    assert decode([0x0001, 0x0002], RegisterType.U32) == 0x00010002
    assert decode([0x0002, 0x0001], RegisterType.U32, WordOrder.LITTLE) == 0x00010002
    # 1.5 as IEEE 754 single is 0x3FC00000.
    assert decode([0x3FC0, 0x0000], RegisterType.F32) == 1.5
    assert decode([0x0000, 0x3FC0], RegisterType.F32, WordOrder.LITTLE) == 1.5
    assert decode([0x4332, 0x0000, 0, 0, 0], RegisterType.STR) == "C2"


def test_encode_refuses_out_of_range_instead_of_wrapping() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode(70000, RegisterType.U16)
    with pytest.raises(ValueError, match="does not fit"):
        encode(-1, RegisterType.U32)
    with pytest.raises(ValueError, match="not finite"):
        encode(math.nan, RegisterType.F32)


def test_not_implemented_markers() -> None:
    assert is_not_implemented(0xFFFF, RegisterType.U16)
    assert is_not_implemented(-0x8000, RegisterType.SUNSSF)
    assert not is_not_implemented(0, RegisterType.U16)
    assert is_not_implemented(math.nan, RegisterType.F32)


_RANGES = {
    RegisterType.U16: (0, 0xFFFF),
    RegisterType.S16: (-0x8000, 0x7FFF),
    RegisterType.U32: (0, 0xFFFFFFFF),
    RegisterType.S32: (-0x80000000, 0x7FFFFFFF),
    RegisterType.U64: (0, 0xFFFFFFFFFFFFFFFF),
}


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(_RANGES)),
    order=st.sampled_from(list(WordOrder)),
    data=st.data(),
)
def test_integer_round_trip(kind: RegisterType, order: WordOrder, data: st.DataObject) -> None:
    low, high = _RANGES[kind]
    value = data.draw(st.integers(low, high))
    words = encode(value, kind, order)
    assert len(words) == register_count(kind)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode(words, kind, order) == value


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
    order=st.sampled_from(list(WordOrder)),
    kind=st.sampled_from([RegisterType.F32, RegisterType.F64]),
)
def test_float_round_trip(value: float, order: WordOrder, kind: RegisterType) -> None:
    assert decode(encode(value, kind, order), kind, order) == value


def test_word_order_matters_for_32_bit_values() -> None:
    words = encode(123456789, RegisterType.U32, WordOrder.BIG)
    assert decode(words, RegisterType.U32, WordOrder.LITTLE) != 123456789
