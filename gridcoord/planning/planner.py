"""One planning run on a frozen `StateImage`: floors, forecast, problem, a solve within budget.

The run never reads live state: everything it needs is in the image (latest readings, open
sessions, learnt car limits, histories, external forecasts). Its only side effect is the
solver call, which runs in a worker thread joined with a timeout: an overrunning solver cannot
make a run late; its thread is abandoned and no new solve starts until it has ended.

Decisions where the issue and DESIGN are silent (see also `gridcoord.planning.coordinator`):

- *A default need is a guess*: a car that reports no need and has had its type's default
  energy is planned for another default chunk (`another_chunk`) until it shows it is full
  (it stops drawing while allowed clearly more, `StateImage.vehicle_full`); the dispatch
  cuts such a car first in a full zone (issue 12: home cars that wanted 25-40 kWh got the
  15 kWh default and little more once the plan had filled their feeder with the others).
- *Hedging guesses*: a default departure is planned a quarter of the stay early, and import
  weights rise a little over the horizon so that of two equal plans the earlier-charging wins
  (`gridcoord.planning.import_weights`; the weights themselves follow the forecast net load).
- *Floors*: zones are planned net of the safe power of stale chargers, which the safety layer
  holds whatever the plan says. A charger without a car holds no minimum (only connected
  chargers do), so nothing is reserved for it: a car that plugs in triggers a dispatch.
- *Forecast error*: each run reports the MAE per kind of the previous run's forecast over the
  slots measured since.
- *Re-plans warm*: without an injected solver, a planner keeps one `optimizer.IncrementalSolver`
  (not thread-safe: only the one solve thread a planner allows at a time uses it; `close` ends
  its LEMON child). Periodic and event re-plans on the same slots, zones and chargers start
  from the last optimum's basis; anything else is a cold solve inside it. If it fails or
  returns its fallback plan, `optimizer.solve` gets the rest of the budget, and the next run
  starts cold. `Planner.solver_starts` counts how each solve went.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

import optimizer
from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import Config
from gridcoord.dispatch import charger_limits, stale_chargers
from gridcoord.forecast import (
    Forecast,
    ForecastInputs,
    ForecastKind,
    PvFleet,
    build_forecast,
    forecast_errors,
)
from gridcoord.forecast.error import LeadTimeErrors
from gridcoord.forecast.series import Series
from gridcoord.outcomes import ActivePlan, PlanOutcome
from gridcoord.planning.import_weights import early_weights, net_load_weights
from gridcoord.planning.problem_builder import PlanZone, build_problem
from gridcoord.planning.snapshot import take_snapshot
from gridcoord.planning.state import CityMeters, StateImage
from gridcoord.planning.timing import DEFAULT_MARGIN, plan_start, schedule_id, time_budget_s
from gridcoord.sessions import ChargingSession, Source
from gridcoord.timegrid import horizon_slot_count, slot_starts
from gridcoord.zones import ancestors, parents_of

log = logging.getLogger(__name__)

Solver = Callable[[optimizer.Problem, float], optimizer.Schedule]

# Time the solver's thread gets beyond its own limit to return (model building and the
# schedule's KPIs come after HiGHS's limit); still well inside the margin before the slot.
SOLVE_GRACE_S = 5.0
# Share of a stay by which a default departure is planned early (see `hedged`).
DEFAULT_DEPARTURE_HEDGE = 0.25
# How long `Planner.close` waits for a solve under way before it ends the solver anyway [s].
CLOSE_WAIT_S = 5.0
# A new car's first minutes at full power (dispatch): what it draws then tells its own limit
# (a 3.7 kW car on an 11 kW charger), which a plan needs before it defers the car's charging.
# A plug-in's event re-plan waits for it (`gridcoord.planning.loop`): planned at the
# charger's rating, a short stay's energy was packed into too few slots (issue 12).
PROBE = timedelta(minutes=5)


def default_solver(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
    """The production solver: `optimizer.solve` with the run's time budget."""
    return optimizer.solve(problem, time_limit_s=time_limit_s)


class Planner:
    """Makes plans for one deployment, one run at a time (the caller serialises runs).

    Parameters
    ----------
    config : Config
        The deployment (zones, assets, site, planning settings).
    solver : callable, optional
        ``(problem, time_limit_s) -> schedule``; by default the planner's own
        `optimizer.IncrementalSolver` (warm re-plans), `optimizer.solve` when that fails.
    """

    def __init__(self, config: Config, *, solver: Solver | None = None) -> None:
        self.config = config
        self._incremental: optimizer.IncrementalSolver | None = None
        self._solver: Solver
        self._worker = _SolveThread()
        if solver is None:
            incremental = optimizer.IncrementalSolver()
            self._incremental = incremental
            self._solver = self._solve_incrementally
        else:
            self._solver = solver
        # A planner dropped without `close` must not leave its thread or LEMON child behind.
        self._finalizer = weakref.finalize(self, _end, self._worker, self._incremental)
        # How each solve went: the incremental solver's `last_start` (cold, warm,
        # same_network), or "solve" when `optimizer.solve` had to take over.
        self.solver_starts: Counter[str] = Counter()
        # The last problem solved and its schedule (for tests and diagnostics).
        self.last_solved: tuple[optimizer.Problem, optimizer.Schedule] | None = None
        planning = config.planning
        self.slot_minutes = planning.slot_minutes
        self.slots = horizon_slot_count(timedelta(hours=planning.horizon_h), self.slot_minutes)
        self._limits = charger_limits(config)
        self._inputs = _forecast_inputs(config)
        self._previous_forecast: Forecast | None = None
        self._errors = LeadTimeErrors(self.slot_minutes)
        self._errors_lock = threading.Lock()
        self._solving: Future[optimizer.Schedule] | None = None

    def close(self) -> None:
        """End the solve thread and the incremental solver's LEMON child.

        A solve under way gets `CLOSE_WAIT_S` to finish first.
        """
        solving = self._solving
        if solving is not None:
            with contextlib.suppress(Exception):
                solving.exception(timeout=CLOSE_WAIT_S)
        self._finalizer()

    def _solve_incrementally(
        self, problem: optimizer.Problem, time_limit_s: float
    ) -> optimizer.Schedule:
        """The incremental solver; `optimizer.solve` with the budget left when it fails."""
        incremental = self._incremental
        assert incremental is not None, "only planners with their own solver get here"
        began = time.monotonic()
        schedule: optimizer.Schedule | None = None
        try:
            schedule = incremental.solve(problem, time_limit_s=time_limit_s)
        except Exception:  # the production solver takes over; the next run starts cold
            log.exception("incremental solve failed; solving cold")
        if schedule is not None and schedule.status != "fallback":
            self.solver_starts[incremental.last_start] += 1
            self.last_solved = (problem, schedule)
            return schedule
        incremental.close()
        left = time_limit_s - (time.monotonic() - began)
        if schedule is not None and left <= 0:
            return schedule
        self.solver_starts["solve"] += 1
        schedule = optimizer.solve(problem, time_limit_s=max(0.0, left))
        self.last_solved = (problem, schedule)
        return schedule

    @property
    def previous_forecast(self) -> Forecast | None:
        """The forecast the latest run used (None before the first)."""
        return self._previous_forecast

    def forecast_error(self) -> dict[str, dict[str, dict[str, dict[str, float | int]]]]:
        """MAE and bias per kind, source (blended, day_ahead) and lead-time bucket so far."""
        with self._errors_lock:
            return self._errors.summary()

    def plan(
        self, image: StateImage, *, started: float | None = None
    ) -> tuple[PlanOutcome, ActivePlan]:
        """One run on ``image`` (frozen at ``image.at``); never raises for runtime problems.

        The plan covers the horizon from the next slot boundary; the solver's budget ends
        `timing.DEFAULT_MARGIN` before that boundary. Failure, overrun, no budget or invalid
        input → the fallback plan (fair share), with the reason in ``failure``.

        Parameters
        ----------
        image : StateImage
            The city frozen for this run, with its histories.
        started : float, optional
            `time.monotonic` when the run began (before the freeze) [s]; now by default.

        Returns
        -------
        (PlanOutcome, ActivePlan)
            What the run produced, and the plan to dispatch from its first slot (no
            per-slot powers for a fallback).
        """
        started = time.monotonic() if started is None else started
        now = image.at
        start = plan_start(now, self.slot_minutes)
        starts = slot_starts(start, self.slots, self.slot_minutes)
        inputs = replace(
            self._inputs,
            pv_measured=image.pv_measured,
            wind_measured=image.wind_measured,
            load_history=image.load_history,
            external=dict(image.external),
            tz=self.config.site.timezone,
        )
        mae = self._forecast_mae(inputs)
        actual = {"pv": image.pv_measured, "wind": image.wind_measured, "load": image.load_history}
        try:
            forecast = build_forecast(inputs, starts, self.slot_minutes, now)
            self._track_errors(forecast, actual, now)
            planned = [
                hedged(another_chunk(s, s.id in image.vehicle_full), now) for s in image.sessions
            ]
            snapshot = take_snapshot(self.config, image.latest, planned, forecast, now)
            snapshot = replace(
                snapshot,
                vehicle_max_kw=dict(image.vehicle_max_kw),
                zones=self._reserve_floors(snapshot.zones, image.latest, now),
                import_weight=self._import_weights(forecast),
            )
            built = build_problem(snapshot)
            problem = built.problem
        except Exception as exc:  # bad input must end in the fallback plan, reported
            log.exception("planning run at %s: no problem could be built", now.isoformat())
            outcome = _outcome_without_problem(now, start, f"problem not built: {exc}", mae)
            return outcome, self._active(outcome)
        self._previous_forecast = forecast
        elapsed = timedelta(seconds=time.monotonic() - started)
        budget = time_budget_s(now + elapsed, start, self.config.planning.solver_time_limit_s)
        schedule, failure, solve_s = self._solve(problem, budget)
        if schedule is None:
            schedule = _fallback_or_none(problem)
        fallback = schedule is None or schedule.status == "fallback" or failure is not None
        if failure is None and schedule is not None and schedule.status == "fallback":
            failure = schedule.message or "the optimizer returned its fallback plan"
        outcome = PlanOutcome(
            schedule_id=schedule_id(start, fallback=fallback),
            slot_start=start,
            status="fallback" if fallback else (schedule.status if schedule else "fallback"),
            failure=failure,
            solve_s=solve_s,
            sessions=len(problem.sessions),
            kpis=_kpis(schedule.kpis) if schedule is not None else {},
            baseline=_kpis(schedule.baseline.uncontrolled) if schedule is not None else {},
            baseline_ev_kw=tuple(schedule.baseline.uncontrolled_ev_kw) if schedule else (),
            binding=[b.model_dump(mode="json") for b in schedule.binding] if schedule else [],
            forecast_mae=mae,
            made_at=now,
            budget_s=budget,
            skipped=dict(built.skipped),
            forecast_sources={k.value: v for k, v in forecast.sources.items()},
            history_buckets=_history_buckets(image),
            forecast_mean_kw={
                kind: float(values.mean()) if len(values) else 0.0
                for kind, values in forecast.by_kind().items()
            },
        )
        if fallback or schedule is None:
            return outcome, self._active(outcome)
        surplus = _surplus_kw(forecast, schedule.chargers, self.slots)
        spare = forecast.renewable_kw - forecast.load_kw
        sessions = frozenset(s.id for s in problem.sessions)
        return outcome, self._active(
            outcome,
            schedule.chargers,
            sessions,
            surplus,
            tuple(float(x) for x in spare[: self.slots]),
        )

    def _active(
        self,
        outcome: PlanOutcome,
        chargers_kw: Mapping[str, list[float]] | None = None,
        session_ids: frozenset[str] = frozenset(),
        surplus_kw: tuple[float, ...] = (),
        spare_kw: tuple[float, ...] = (),
    ) -> ActivePlan:
        """The outcome as the plan for its slots (a fallback keeps no per-slot powers)."""
        return ActivePlan(
            outcome.schedule_id,
            outcome.slot_start,
            dict(chargers_kw) if chargers_kw is not None else {},
            session_ids,
            self.slots if chargers_kw is not None else 0,
            surplus_kw,
            spare_kw,
        )

    def _import_weights(self, forecast: Forecast) -> list[float]:
        """The run's import weights from ``planning.import_weights`` (see `import_weights`)."""
        planning = self.config.planning
        if planning.import_weights == "early":
            return early_weights(len(forecast.starts))
        return net_load_weights(
            forecast.load_kw,
            forecast.renewable_kw,
            spread=planning.import_weight_spread,
            now_premium=planning.import_now_premium,
            slot_minutes=self.slot_minutes,
        )

    def _reserve_floors(
        self,
        zones: Sequence[PlanZone],
        latest: Mapping[str, Reading],
        now: datetime,
    ) -> tuple[PlanZone, ...]:
        """Zones with the power dispatch will hold for chargers the plan does not steer.

        The safety layer holds a stale charger at its safe power (or its minimum, if more);
        a plan that handed that headroom to the cars would be cut back at every dispatch. So
        each zone's capacity is planned net of its stale chargers' floors. Chargers without
        a session hold nothing (minima are for connected chargers only).
        """
        stale = stale_chargers(self.config, {a: r.ts for a, r in latest.items()}, now)
        parents = parents_of(zones)
        reserved: dict[str, float] = {z.id: 0.0 for z in zones}
        for c in self._limits:
            if c.id not in stale:
                continue
            floor = min(max(c.safe_power_kw, c.guaranteed_kw), c.max_kw)
            for zone_id in ancestors(c.zone, parents):
                reserved[zone_id] += floor
        out = []
        for z in zones:
            values = [z.capacity_kw] if isinstance(z.capacity_kw, int | float) else z.capacity_kw
            net = [max(0.0, float(v) - reserved[z.id]) for v in values]
            out.append(replace(z, capacity_kw=net[0] if len(net) == 1 else net))
        return tuple(out)

    def _solve(
        self, problem: optimizer.Problem, budget_s: float
    ) -> tuple[optimizer.Schedule | None, str | None, float]:
        """Solve on the planner's solve thread, with a timeout; (schedule, failure, seconds)."""
        if budget_s <= 0:
            return None, "no time left before the slot starts", 0.0
        if self._solving is not None and not self._solving.done():
            return None, "the previous solve is still running (overran its budget)", 0.0
        began = time.monotonic()
        solving = self._worker.submit(lambda: self._solver(problem, budget_s))
        self._solving = solving
        try:
            schedule: object = solving.result(
                budget_s + min(SOLVE_GRACE_S, DEFAULT_MARGIN.total_seconds() / 4)
            )
        except FutureTimeout:
            return None, f"solver overran its budget of {budget_s:.1f} s", time.monotonic() - began
        except BaseException as error:  # reported as the run's failure, never lost
            solve_s = time.monotonic() - began
            return None, f"solver failed: {type(error).__name__}: {error}", solve_s
        solve_s = time.monotonic() - began
        if not isinstance(schedule, optimizer.Schedule):
            return None, f"solver returned {type(schedule).__name__}, not a schedule", solve_s
        return schedule, None, solve_s

    def _track_errors(
        self, forecast: Forecast, actual: Mapping[str, Series], now: datetime
    ) -> None:
        """Judge past forecasts against what was measured; remember this one's values."""
        try:
            with self._errors_lock:
                self._errors.score(actual, now)
                self._errors.record(
                    now, forecast.starts, forecast.by_kind(), forecast.day_ahead, forecast.nowcast
                )
        except (ValueError, TypeError):  # a statistic must never cost the run its plan
            log.exception("forecast error by lead time not tracked")

    def _forecast_mae(self, inputs: ForecastInputs) -> dict[str, float]:
        """MAE per kind of the previous run's forecast over the slots measured since."""
        previous = self._previous_forecast
        if previous is None:
            return {}
        actual = {
            "pv": inputs.pv_measured,
            "wind": inputs.wind_measured,
            "load": inputs.load_history,
        }
        try:
            errors = forecast_errors(
                previous.starts, previous.by_kind(), actual, previous.slot_minutes
            )
        except ValueError:  # a statistic must never cost the run its plan
            log.exception("forecast error not computed")
            return {}
        return {kind: value for kind, value in errors.items() if value is not None}


class _SolveThread:
    """One daemon thread that runs a planner's solves, one at a time, for the planner's life.

    Not a thread per solve: the incremental solver's LEMON child is killed when the thread
    that forked it ends (Linux ties `PR_SET_PDEATHSIG` to the forking thread, not the
    process), so its basis survives only on a thread that lives on. Not a
    `ThreadPoolExecutor`: its threads are joined at interpreter exit, so an abandoned,
    overrunning solve would hold up the process's exit; this one is a daemon.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[
            tuple[Callable[[], optimizer.Schedule], Future[optimizer.Schedule]] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], optimizer.Schedule]) -> Future[optimizer.Schedule]:
        """Queue ``work``; its future holds the schedule or the exception it raised."""
        future: Future[optimizer.Schedule] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="gridcoord-solve", daemon=True
                )
                self._thread.start()
            self._queue.put((work, future))
        return future

    def stop(self) -> None:
        """End the thread after the work queued (idempotent)."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None

    @staticmethod
    def _run(
        jobs: queue.SimpleQueue[
            tuple[Callable[[], optimizer.Schedule], Future[optimizer.Schedule]] | None
        ],
    ) -> None:
        while (job := jobs.get()) is not None:
            work, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # handed to the run, which reports it
                future.set_exception(exc)


def _end(worker: _SolveThread, incremental: optimizer.IncrementalSolver | None) -> None:
    """A planner's end: its incremental solver's LEMON child, then its solve thread."""
    if incremental is not None:
        incremental.close()
    worker.stop()


def forecast_capacity_kw(config: Config) -> dict[ForecastKind, float]:
    """Installed PV and wind, and the largest plausible non-EV load, of a deployment [kW]."""
    inputs = _forecast_inputs(config)
    return {
        ForecastKind.PV: inputs.pv.rated_kw if inputs.pv is not None else 0.0,
        ForecastKind.WIND: inputs.wind_rated_kw,
        ForecastKind.LOAD: inputs.load_max_kw,
    }


def _forecast_inputs(config: Config) -> ForecastInputs:
    """The fixed part of the forecast inputs: installed capacities from the config."""
    site = config.site
    consumers = CityMeters.of(config).consumers
    pv_kw = sum(a.rated_kw for a in config.assets if a.kind is AssetKind.PV)
    wind_kw = sum(a.rated_kw for a in config.assets if a.kind is AssetKind.WIND)
    roots = [z.capacity_kw for z in config.zones if z.parent is None]
    consumer_kw = [a.rated_kw for a in config.assets if a.id in consumers]
    load_max = sum(roots) if roots else sum(consumer_kw)
    fleet = PvFleet(site.latitude, site.longitude, pv_kw) if pv_kw > 0 else None
    return ForecastInputs(pv=fleet, wind_rated_kw=wind_kw, load_max_kw=load_max)


def _history_buckets(image: StateImage) -> dict[str, int]:
    return {
        "pv": len(image.pv_measured),
        "wind": len(image.wind_measured),
        "load": len(image.load_history),
    }


def _outcome_without_problem(
    now: datetime, start: datetime, failure: str, mae: dict[str, float]
) -> PlanOutcome:
    return PlanOutcome(
        schedule_id=schedule_id(start, fallback=True),
        slot_start=start,
        status="fallback",
        failure=failure,
        solve_s=0.0,
        sessions=0,
        kpis={},
        baseline={},
        binding=[],
        forecast_mae=mae,
        made_at=now,
    )


def _fallback_or_none(problem: optimizer.Problem) -> optimizer.Schedule | None:
    """The optimizer's fallback schedule (for the run's KPIs), or None if even that fails."""
    try:
        return optimizer.fallback_schedule(problem)
    except Exception:  # the fallback dispatch (fair share) needs no schedule
        log.exception("no fallback schedule for the run's KPIs")
        return None


def _surplus_kw(
    forecast: Forecast, chargers_kw: Mapping[str, list[float]], slots: int
) -> tuple[float, ...]:
    """Renewable power the plan expects left over per slot: PV + wind − load − EV [kW]."""
    # A schedule from a wrong optimizer may hold huge values: plain sums overflow to inf (no
    # surplus left) where fsum would raise. One charger's row at a time, in the mapping's
    # order: the same additions, in the same order, as a Python sum per slot (so the same
    # floats), without a Python loop over chargers × slots (a fifth of a demo plan's work).
    ev = np.zeros(slots)
    with np.errstate(over="ignore", invalid="ignore"):
        for row in chargers_kw.values():
            values = np.asarray(row[:slots], dtype=np.float64)
            ev[: len(values)] += np.where(np.isfinite(values), np.maximum(values, 0.0), 0.0)
    spare = forecast.renewable_kw - forecast.load_kw
    return tuple(max(0.0, float(spare[t]) - float(ev[t])) for t in range(slots))


def probing(session: ChargingSession, now: datetime, learnt: Mapping[str, float]) -> bool:
    """Whether ``session``'s car is in its first `PROBE` minutes with its limit not yet learnt.

    Dispatch gives such a car its full rating, cut last in a full zone: what it draws tells
    its limit, which the re-plan after the probe counts on.
    """
    return session.id not in learnt and now - session.plugged_in_at < PROBE


def another_chunk(session: ChargingSession, full: bool) -> ChargingSession:
    """The session as planned: past a default need, its car not full, one default more.

    A need nobody reported is the charger type's default (`SessionTracker` sets
    ``requested_kwh`` to it), a guess: a car that has had it and still charges is planned for
    another chunk of that size, and so on, until it shows it is full (``full``). A need the
    device or user gave is planned as given.
    """
    if session.request_source is not Source.DEFAULT or full or session.remaining_kwh > 0:
        return session
    chunk = max(0.0, session.requested_kwh)
    return replace(session, requested_kwh=session.delivered_kwh + chunk)


def hedged(session: ChargingSession, now: datetime) -> ChargingSession:
    """The session as planned: a default departure brought forward by a quarter of the stay.

    A charger-type default ("home until 07:00") is a guess; planning to finish a little before
    it leaves a margin for the car that leaves early. Departures the device or user gave are
    planned as given.
    """
    if session.departure_source is not Source.DEFAULT or session.departure <= now:
        return session
    stay = session.departure - session.plugged_in_at
    return replace(session, departure=max(now, session.departure - stay * DEFAULT_DEPARTURE_HEDGE))


def _kpis(kpis: optimizer.Kpis) -> dict[str, float]:
    return {key: float(value) for key, value in kpis.model_dump().items()}
