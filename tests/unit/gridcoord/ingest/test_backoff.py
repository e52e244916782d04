"""Backoff: grows only with failures in a row, bounded, and any success resets it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.ingest.backoff import Backoff


@given(outcomes=st.lists(st.booleans(), max_size=200))
def test_delay_is_bounded_and_set_by_the_failures_since_the_last_success(
    outcomes: list[bool],
) -> None:
    backoff = Backoff(0.5, 30.0)
    now = 0.0
    in_row = 0
    for ok in outcomes:
        assert backoff.due(now)
        if ok:
            backoff.succeeded()
            in_row = 0
            continue
        delay = backoff.failed(now)
        assert delay == min(0.5 * 2**in_row, 30.0)
        assert 0.5 <= delay <= 30.0
        assert not backoff.due(now + delay / 2)
        in_row += 1
        now += delay


def test_a_third_of_writes_failing_never_waits_more_than_the_minimum() -> None:
    backoff = Backoff(0.5, 30.0)
    waits = []
    for attempt in range(300):
        if attempt % 3 == 2:
            waits.append(backoff.failed(float(attempt)))
        else:
            backoff.succeeded()
    assert max(waits) == 0.5


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
