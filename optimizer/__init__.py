"""Pure EV charging scheduler: a problem in, a schedule out (exact min-cost flow); no I/O."""

from optimizer import baselines
from optimizer.errors import describe_problem_errors
from optimizer.incremental import IncrementalSolver
from optimizer.problem import Charger, Problem, Session, Zone
from optimizer.schedule import Baselines, Kpis, Schedule, SessionPlan
from optimizer.solve import fallback_schedule, solve

__all__ = [
    "Baselines",
    "Charger",
    "IncrementalSolver",
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
