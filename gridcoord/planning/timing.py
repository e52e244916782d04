"""When a planning run must finish: the solver's time budget and the schedule's id.

A plan is for the slots from the next boundary on; it is worthless if it arrives after that
boundary. The solver therefore gets the configured limit or the time left before the slot
starts minus a margin for building the problem and dispatching, whichever is shorter. With no
time left the run goes straight to the fallback plan (and reports it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gridcoord.timegrid import as_utc, next_slot_start, to_rfc3339

DEFAULT_MARGIN = timedelta(seconds=20)


def time_budget_s(
    now: datetime,
    slot_start: datetime,
    configured_s: float,
    margin: timedelta = DEFAULT_MARGIN,
) -> float:
    """Seconds the solver may take, 0 when there is no time left [s].

    Parameters
    ----------
    now
        when the solve would start.
    slot_start
        start of the plan's first slot.
    configured_s
        the configured solver time limit (``planning.solver_time_limit_s``) [s].
    margin
        time kept for building the problem, storing and dispatching the plan.
    """
    left = (as_utc(slot_start) - as_utc(now) - margin).total_seconds()
    return max(0.0, min(configured_s, left))


def plan_start(now: datetime, slot_minutes: int) -> datetime:
    """The first slot a plan made at ``now`` covers: the next boundary strictly after ``now``."""
    return next_slot_start(now, slot_minutes)


def schedule_id(slot_start: datetime, fallback: bool = False) -> str:
    """A stable, readable id of the plan for a slot, e.g. ``2026-11-24T11:15:00Z``.

    A fallback plan for the same slot gets a ``/fallback`` suffix so the two never mix in the
    store or in the chargers' setpoints.
    """
    base = to_rfc3339(slot_start)
    return f"{base}/fallback" if fallback else base
