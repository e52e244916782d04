"""Planning runs: a frozen snapshot of state and forecasts in, an optimizer problem out."""

from gridcoord.planning.problem_builder import (
    BuiltProblem,
    PlanCharger,
    PlanZone,
    Snapshot,
    build_problem,
    zone_headroom_series,
)
from gridcoord.planning.snapshot import take_snapshot
from gridcoord.planning.timing import plan_start, schedule_id, time_budget_s

__all__ = [
    "BuiltProblem",
    "PlanCharger",
    "PlanZone",
    "Snapshot",
    "build_problem",
    "plan_start",
    "schedule_id",
    "take_snapshot",
    "time_budget_s",
    "zone_headroom_series",
]
