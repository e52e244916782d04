"""The solver's time budget ends before the slot starts; schedule ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridcoord.planning.timing import plan_start, schedule_id, time_budget_s

NOW = datetime(2026, 11, 24, 11, 0, 5, tzinfo=UTC)


def test_budget_is_the_shorter_of_the_limit_and_the_time_left() -> None:
    start = plan_start(NOW, 15)
    assert start == datetime(2026, 11, 24, 11, 15, tzinfo=UTC)
    assert time_budget_s(NOW, start, 60.0) == 60.0
    # 14 min 55 s left, minus the 20 s margin.
    assert time_budget_s(NOW, start, 3600.0) == 875.0
    late = start - timedelta(seconds=10)
    assert time_budget_s(late, start, 60.0) == 0.0  # straight to the fallback plan
    assert time_budget_s(late, start, 60.0, margin=timedelta(0)) == 10.0


def test_schedule_ids() -> None:
    start = datetime(2026, 11, 24, 11, 15, tzinfo=UTC)
    assert schedule_id(start) == "2026-11-24T11:15:00Z"
    assert schedule_id(start, fallback=True) == "2026-11-24T11:15:00Z/fallback"
