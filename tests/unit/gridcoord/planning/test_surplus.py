"""`planner._surplus_kw`: the renewable surplus a plan leaves, the same floats as a plain sum."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.forecast import Forecast
from gridcoord.planning.planner import _surplus_kw

SLOTS = 6
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-50.0, max_value=50.0),
    st.just(1e308),
)


def reference(forecast: Any, chargers_kw: dict[str, list[float]], slots: int) -> tuple[float, ...]:
    """The definition: per slot a plain left-to-right sum over the chargers' clean values."""
    ev = [
        sum(
            max(0.0, v[t]) if t < len(v) and math.isfinite(v[t]) else 0.0
            for v in chargers_kw.values()
        )
        for t in range(slots)
    ]
    spare = forecast.renewable_kw - forecast.load_kw
    return tuple(max(0.0, float(spare[t]) - ev[t]) for t in range(slots))


@given(
    rows=st.dictionaries(
        st.text(min_size=1, max_size=4), st.lists(values, max_size=SLOTS + 2), max_size=8
    ),
    renewable=st.lists(st.floats(0.0, 1e4), min_size=SLOTS, max_size=SLOTS),
    load=st.lists(st.floats(0.0, 1e4), min_size=SLOTS, max_size=SLOTS),
)
def test_the_surplus_is_the_plain_sum_s_to_the_last_bit(
    rows: dict[str, list[float]], renewable: list[float], load: list[float]
) -> None:
    forecast = SimpleNamespace(renewable_kw=np.array(renewable), load_kw=np.array(load))
    got = _surplus_kw(cast(Forecast, forecast), rows, SLOTS)
    assert got == reference(forecast, rows, SLOTS)
    assert all(v >= 0.0 for v in got)
