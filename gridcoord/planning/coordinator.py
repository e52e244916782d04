"""The coordinator: observed readings in, plans and safe setpoints out (DESIGN 2, 4).

Three parts with one job each, around one frozen image of the city:

- `CityState` (`state.py`) takes every accepted reading: latest values, sessions, histories,
  learnt car limits;
- `Planner` (`planner.py`) makes a plan from a `StateImage` frozen at the run's start: the
  horizon from the next slot boundary, one solve within a budget that ends before that slot
  starts, else the fallback plan — said so, never raised;
- `DispatchPolicy` (`dispatch_policy.py`) turns an image frozen at the dispatch instant and
  the kept plans into setpoints, through the safety layer.

`Coordinator` ties them together: `plan` freezes, plans and keeps the plan for dispatch;
`dispatch` freezes, decides and hands the setpoints back to the state (a car's learnt limit
depends on what it was allowed). Outcomes become stored points in `gridcoord.storage.outcomes`.

The clock is a parameter everywhere, so the service (wall clock, APScheduler) and the demo
(an accelerated simulated clock) drive the same code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from adapters.contract.reading import Reading
from gridcoord.config import Config
from gridcoord.forecast import ExternalForecast, Forecast
from gridcoord.outcomes import ActivePlan, DispatchOutcome, PlanOutcome
from gridcoord.planning.dispatch_policy import DispatchPolicy
from gridcoord.planning.planner import Planner, Solver, default_solver
from gridcoord.planning.state import CityState, StateImage
from gridcoord.storage.points import Point
from gridcoord.timegrid import as_utc

__all__ = [
    "Coordinator",
    "DispatchOutcome",
    "PlanOutcome",
    "Solver",
    "default_solver",
]

_PLANS_KEPT = 4


class Coordinator:
    """Turns observed readings into plans and setpoints for one deployment.

    Parameters
    ----------
    config : Config
        The deployment (zones, assets, site, planning settings).
    solver : callable, optional
        ``(problem, time_limit_s) -> schedule``; by default the planner's incremental
        solver (`Planner`). Tests inject failing or slow ones. `close` ends it.
    """

    def __init__(self, config: Config, *, solver: Solver | None = None) -> None:
        self.config = config
        self.state = CityState(config)
        self._planner = Planner(config, solver=solver)
        self._policy = DispatchPolicy(config)
        self._lock = threading.Lock()
        self._plans: list[ActivePlan] = []
        self._plan_lock = threading.Lock()
        # Called with (event, subject) on a plug-in, plug-out (charger id) or a new external
        # forecast (its kind), on the thread that observed it; it must be quick.
        self.on_event: Callable[[str, str], None] | None = None

    def close(self) -> None:
        """End what the planner keeps running between runs (its incremental solver's child)."""
        self._planner.close()

    @property
    def solver_starts(self) -> dict[str, int]:
        """How the planning runs' solves went so far (see `Planner.solver_starts`)."""
        return dict(self._planner.solver_starts)

    def observe(self, reading: Reading) -> None:
        """Take one accepted reading (thread-safe); a plug-in or plug-out is an event."""
        for event in self.state.observe(reading):
            listener = self.on_event
            if listener is not None:
                listener(event.kind.value, event.session.charger_id)

    def observe_forecast(self, forecast: ExternalForecast) -> None:
        """Take an external forecast; the newest per kind wins. A forecast update is an event."""
        self.state.observe_forecast(forecast)
        listener = self.on_event
        if listener is not None:
            listener("forecast", forecast.kind.value)

    def image(self, now: datetime) -> StateImage:
        """The city's state frozen at ``now`` (read-only: changes nothing; for an API, a test).

        Parameters
        ----------
        now
            the instant to freeze at, timezone-aware [UTC inside].

        Returns
        -------
        StateImage
            latest values, open sessions and staleness as seen at ``now``.
        """
        return self.state.freeze(as_utc(now), prune=False)

    @property
    def last_forecast(self) -> Forecast | None:
        """The forecast the latest planning run used (None before the first)."""
        return self._planner.previous_forecast

    def forecast_error(self) -> dict[str, dict[str, dict[str, dict[str, float | int]]]]:
        """Forecast MAE and bias per kind, source and lead-time bucket (see `LeadTimeErrors`)."""
        return self._planner.forecast_error()

    def plans(self) -> tuple[ActivePlan, ...]:
        """The plans kept for dispatch, oldest first."""
        with self._lock:
            return tuple(self._plans)

    def plan(self, now: datetime, *, event: bool = False) -> PlanOutcome:
        """One planning run at ``now``; never raises for runtime problems.

        See `Planner.plan`. The outcome becomes the plan dispatched once its first slot
        begins. Runs are serialised. An ``event`` re-plan (out of turn, after a plug-in, a
        plug-out or a forecast) replaces the plan for its slots only when it succeeded: a
        failed one keeps the plan there is.

        Parameters
        ----------
        now
            start of the run, timezone-aware; the plan's horizon starts at the next slot
            boundary after it.
        event
            True for an event re-plan (see above).

        Returns
        -------
        PlanOutcome
            the schedule (or the fallback plan, with the failure said) and its timing.
        """
        with self._plan_lock:
            started = time.monotonic()
            image = self.state.freeze(as_utc(now), close_silent=True, histories=True)
            outcome, active = self._planner.plan(image, started=started)
            if not (event and outcome.status == "fallback"):
                self._keep(active)
            return outcome

    def take_stay_points(self) -> list[Point]:
        """Completed stays since the last call, to store (read back by the warm start)."""
        return self.state.take_stay_points()

    def dispatch(self, now: datetime) -> DispatchOutcome:
        """The setpoints for ``now`` (see `DispatchPolicy.decide`).

        Parameters
        ----------
        now
            the dispatch instant, timezone-aware.

        Returns
        -------
        DispatchOutcome
            every charger's setpoint after the safety layer [kW], and what limited each.
        """
        image = self.state.freeze(as_utc(now))
        outcome = self._policy.decide(image, self.plans())
        self.state.note_setpoints(outcome.setpoints_kw)
        return outcome

    def _keep(self, plan: ActivePlan) -> None:
        """Make ``plan`` the one for its slots, replacing an older one for the same start."""
        with self._lock:
            self._plans = [p for p in self._plans if p.start != plan.start][-(_PLANS_KEPT - 1) :]
            self._plans.append(plan)
            self._plans.sort(key=lambda p: p.start)
