"""What a planning run and a dispatch produced: the records the loop logs, stores and sends.

Plain immutable values, shared by the planner (`gridcoord.planning`), the planning loop and
the storage code that turns them into points (`gridcoord.storage.outcomes`); this module
imports nothing of the service but the safety layer's overload record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridcoord.dispatch import ZoneOverload


@dataclass(frozen=True)
class PlanOutcome:
    """What one planning run produced and how (the ``plan`` measurement of DESIGN 3.4).

    Attributes
    ----------
    schedule_id
        the plan's id (`timing.schedule_id`; ``…/fallback`` for a fallback plan).
    slot_start
        start of the plan's first slot [UTC].
    status
        ``optimal``, ``time_limit`` or ``fallback``.
    failure
        why it fell back (solver error, overrun, no budget, bad input), else None.
    solve_s
        wall time of the solve, 0 when there was none [s].
    sessions
        sessions in the problem.
    kpis
        the plan's KPIs over the horizon (``unmet_kwh``, ``import_kwh``,
        ``renewable_share``, ``peak_import_kw``, ...); empty when no problem could be built.
    baseline
        the same KPIs for uncontrolled charging of the same sessions.
    baseline_ev_kw
        EV power of uncontrolled charging per slot from ``slot_start``, all sessions [kW];
        empty when no problem was solved.
    binding
        what limited the plan (the schedule's ``binding``, as JSON objects).
    forecast_mae
        MAE of the previous run's forecast per kind (pv, wind, load) [kW].
    made_at
        when the run started [UTC].
    budget_s
        the solver's time budget [s].
    skipped
        sessions left out of the problem, with the reason.
    forecast_sources
        per kind, ``model``, ``external`` or ``external+model``.
    history_buckets
        per kind (pv, wind, load), the buckets of measured history the
        forecast had (after a restart: what was warmed from the store).
    forecast_mean_kw
        per kind, the forecast's mean over the horizon [kW].
    """

    schedule_id: str
    slot_start: datetime
    status: str
    failure: str | None
    solve_s: float
    sessions: int
    kpis: dict[str, float]
    baseline: dict[str, float]
    binding: list[dict[str, Any]]
    forecast_mae: dict[str, float]
    made_at: datetime
    budget_s: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)
    forecast_sources: dict[str, str] = field(default_factory=dict)
    history_buckets: dict[str, int] = field(default_factory=dict)
    forecast_mean_kw: dict[str, float] = field(default_factory=dict)
    baseline_ev_kw: tuple[float, ...] = ()


@dataclass(frozen=True)
class DispatchOutcome:
    """The setpoints of one dispatch (DESIGN 3.2 payloads, the ``setpoint`` measurement).

    Attributes
    ----------
    schedule_id
        the plan they come from (a fallback plan has its own id).
    at
        dispatch instant [UTC].
    valid_until
        when the setpoints expire [UTC].
    setpoints_kw
        every configured charger's limit after the safety layer [kW].
    payloads
        charger id → the setpoint JSON object.
    order
        charger ids in sending order (decreases first).
    overloads
        zones whose guaranteed minima and stale chargers alone exceed them.
    limited
        charger id → what decided its setpoint (``plan``, ``charger_max``,
        ``invalid``, ``stale``, ``guaranteed``, ``zone:<id>``).
    fallback
        True when no (valid) optimised plan was dispatched.
    """

    schedule_id: str
    at: datetime
    valid_until: datetime
    setpoints_kw: dict[str, float]
    payloads: dict[str, dict[str, object]]
    order: list[str]
    overloads: list[ZoneOverload]
    limited: dict[str, str]
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class ActivePlan:
    """A plan kept for dispatch: power per charger and slot from ``start``.

    Attributes
    ----------
    schedule_id
        the plan's id.
    start
        start of its first slot [UTC].
    chargers_kw
        charger id → planned power per slot [kW].
    session_ids
        the sessions the plan knew.
    slots
        slots planned; 0 for a fallback outcome (dispatch then shares fairly).
    surplus_kw
        renewable power the plan expects left over per slot [kW].
    """

    schedule_id: str
    start: datetime
    chargers_kw: Mapping[str, list[float]]
    session_ids: frozenset[str]
    slots: int
    surplus_kw: tuple[float, ...] = ()
