"""Pure EV charging scheduler: a problem in, a schedule out (PuLP + HiGHS); no I/O, no clocks."""

from optimizer import baselines
from optimizer.errors import describe_problem_errors
from optimizer.problem import Charger, Problem, Session, Zone
from optimizer.schedule import Baselines, Kpis, Schedule, SessionPlan
from optimizer.solve import fallback_schedule, solve

__all__ = [
    "Baselines",
    "Charger",
    "Kpis",
    "Problem",
    "Schedule",
    "Session",
    "SessionPlan",
    "Zone",
    "baselines",
    "describe_problem_errors",
    "fallback_schedule",
    "solve",
]
