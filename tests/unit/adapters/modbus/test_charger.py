"""Power → current for chargers: never above what was asked, the rating, or the map's range."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.modbus.charger import CurrentLimits, power_to_current

THREE_PHASE = CurrentLimits(phases=3, voltage_v=230.0, min_current_a=6.0, max_current_a=16.0)


@pytest.mark.parametrize(
    ("power_w", "current_a"),
    [
        (11040.0, 16.0),  # exactly 16 A on three phases
        (50000.0, 16.0),  # clamped to the charger's maximum
        (4140.0, 6.0),  # the minimum current
        (4000.0, 0.0),  # below the minimum: pause, never round up
        (-5.0, 0.0),
        (math.nan, 0.0),
    ],
)
def test_examples(power_w: float, current_a: float) -> None:
    assert power_to_current(power_w, THREE_PHASE) == pytest.approx(current_a)


def test_register_step_rounds_down() -> None:
    limits = CurrentLimits(3, 230.0, 6.0, 32.0, step_a=0.1)
    assert power_to_current(7000.0, limits) == 10.1
    assert power_to_current(11040.0, limits) == 16.0


@settings(max_examples=300, deadline=None)
@given(
    power_w=st.floats(-1e5, 1e6, allow_nan=False),
    phases=st.sampled_from([1, 3]),
    voltage_v=st.floats(100, 400),
    min_current_a=st.floats(0, 10),
    span_a=st.floats(0, 60),
    step_a=st.sampled_from([0.0, 0.001, 0.01, 0.1, 1.0]),
)
def test_never_above_request_or_limit(
    power_w: float,
    phases: int,
    voltage_v: float,
    min_current_a: float,
    span_a: float,
    step_a: float,
) -> None:
    limits = CurrentLimits(phases, voltage_v, min_current_a, min_current_a + span_a, step_a)
    current = power_to_current(power_w, limits)
    assert current == 0.0 or limits.min_current_a <= current <= limits.max_current_a
    assert limits.power_w(current) <= max(power_w, 0.0) + 1e-6
