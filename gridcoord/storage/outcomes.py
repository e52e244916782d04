"""Planning and dispatch outcomes as points of the ``plan`` and ``setpoint`` measurements.

DESIGN 3.4: ``plan`` has one point per run (tag ``schedule_id``; status, timings, the plan's
and the baseline's KPIs, forecast errors, the failure if any); ``setpoint`` one point per
charger and dispatch (tags ``asset_id``, ``schedule_id``; field ``max_power_w``).
"""

from __future__ import annotations

import math

from gridcoord.outcomes import DispatchOutcome, PlanOutcome
from gridcoord.storage.points import Point, datetime_to_ns


def plan_points(outcome: PlanOutcome) -> list[Point]:
    """The run as one point of the ``plan`` measurement, at the run's start."""
    fields: dict[str, float | int | bool | str] = {
        "status": outcome.status,
        "solve_s": float(outcome.solve_s),
        "budget_s": float(outcome.budget_s),
        "sessions": float(outcome.sessions),
    }
    for key, value in outcome.kpis.items():
        if math.isfinite(value):
            fields[key] = float(value)
    for key, value in outcome.baseline.items():
        if math.isfinite(value):
            fields[f"baseline_{key}"] = float(value)
    for kind, mae in outcome.forecast_mae.items():
        fields[f"forecast_mae_{kind}_kw"] = float(mae)
    if outcome.failure:
        fields["failure"] = outcome.failure
    tags = {"schedule_id": outcome.schedule_id}
    return [Point("plan", tags, fields, datetime_to_ns(outcome.made_at))]


def setpoint_points(outcome: DispatchOutcome) -> list[Point]:
    """One ``setpoint`` point per charger at the dispatch instant [W]."""
    ts = datetime_to_ns(outcome.at)
    return [
        Point(
            "setpoint",
            {"asset_id": charger, "schedule_id": outcome.schedule_id},
            {"max_power_w": kw * 1000.0},
            ts,
        )
        for charger, kw in sorted(outcome.setpoints_kw.items())
    ]
