"""Picking the current slot of a schedule for the minute-by-minute refresh."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from gridcoord.dispatch import current_slot_kw

START = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST, the hour that repeats
PLAN = {"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0]}


def test_the_slot_containing_now() -> None:
    assert current_slot_kw(PLAN, START, 15, START) == {"a": 1.0, "b": 5.0}
    assert current_slot_kw(PLAN, START, 15, START + timedelta(minutes=29, seconds=59)) == {
        "a": 2.0,
        "b": 6.0,
    }
    third = current_slot_kw(PLAN, START, 15, START + timedelta(minutes=30))
    assert third is not None and third["a"] == 3.0 and math.isnan(third["b"])


def test_outside_the_plan_there_is_none() -> None:
    assert current_slot_kw(PLAN, START, 15, START - timedelta(seconds=1)) is None
    assert current_slot_kw(PLAN, START, 15, START + timedelta(hours=1)) is None
    assert current_slot_kw({}, START, 15, START) is None
