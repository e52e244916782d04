"""The coordinator: observed readings in, plans and safe setpoints out (DESIGN 2, 4).

One object holds the state a planning run needs (latest reading per asset, open charging
sessions, bounded histories of PV, wind and non-EV load, external forecasts) and turns it into

- a **plan** (`Coordinator.plan`): a snapshot frozen at ``now``, the forecast and problem for
  the horizon from the next slot boundary, one solve within a budget that ends before that
  slot starts, else the fallback plan — said so, never raised;
- **setpoints** (`Coordinator.dispatch`): the plan's slot containing ``now`` (or the fair-share
  fallback), through the safety layer with stale chargers and zone meters as of ``now``.

Decisions where the issue and DESIGN are silent:

- *Which plan is dispatched*: the newest plan whose first slot has begun, while it is less
  than two planning intervals old (a plan made at 12:00 covers 12:15 on, so 12:00-12:15 is
  dispatched from the 11:45 run); a fallback outcome, or none, means fair share now.
- *Cars the plan does not know* (arrived after its snapshot) ask for their full rating in the
  same safety pass as the planned cars: waiting up to two slots for the next plan would
  starve a short public stay.
- *Cars past a default need* (no request from the device, the assumed energy delivered) may
  still charge from the headroom the plan leaves: the default is a guess, not their need.
- *Renewable surplus*: in a slot the plan expects surplus, connected cars may take what the
  plan leaves of it — the LP is indifferent between slots without import.
- *Hedging guesses*: a default departure is planned a quarter of the stay early, and import
  weights rise 10 % over the horizon so that of two equal plans the earlier-charging wins.
- *Floors*: zones are planned net of the guaranteed minima of chargers without a session and
  the safe power of stale chargers, which the safety layer holds whatever the plan says.
- *Forecast error*: each run stores the MAE per kind of the previous run's forecast over the
  slots measured since.

The clock is a parameter everywhere, so the service (wall clock, APScheduler) and the demo
(an accelerated simulated clock) drive the same code. The only side effect is the solver call,
which runs in a worker thread joined with a timeout: an overrunning solver cannot make a run
late; its thread is abandoned and no new solve starts until it has ended.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import optimizer
from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import Config
from gridcoord.dispatch import (
    ChargerLimit,
    Dispatch,
    Limiter,
    ZoneLimit,
    ZoneOverload,
    apply_limits,
    charger_limits,
    current_slot_kw,
    fair_share_kw,
    sending_order,
    setpoint_payload,
    stale_chargers,
    valid_until,
    zone_state,
)
from gridcoord.forecast import (
    ExternalForecast,
    Forecast,
    ForecastInputs,
    ForecastKind,
    PvFleet,
    build_forecast,
    forecast_errors,
)
from gridcoord.planning.history import BucketSeries, RunningTotal
from gridcoord.planning.problem_builder import PlanZone, build_problem
from gridcoord.planning.snapshot import take_snapshot
from gridcoord.planning.timing import DEFAULT_MARGIN, plan_start, schedule_id, time_budget_s
from gridcoord.sessions import ChargingSession, SessionTracker, Source
from gridcoord.storage.points import Point, datetime_to_ns
from gridcoord.timegrid import as_utc, floor_slot, horizon_slot_count, slot_index, slot_starts

log = logging.getLogger(__name__)

Solver = Callable[[optimizer.Problem, float], optimizer.Schedule]

# Time the solver's thread gets beyond its own limit to return (model building and the
# schedule's KPIs come after HiGHS's limit); still well inside the margin before the slot.
SOLVE_GRACE_S = 5.0
# PV and wind are kept per minute for a day (the wind mean's window), load per slot for the
# four weeks of the same-weekday forecast plus a day.
_MINUTE = timedelta(minutes=1)
_GENERATION_WINDOW = timedelta(hours=25)
_LOAD_WINDOW = timedelta(weeks=4, days=1)
_PLANS_KEPT = 4
# How much dearer the last slot's import is than the first's (see `_early_preference`).
EARLY_PREFERENCE = 0.1
# Below this a car's draw says nothing about its limit (idle, or a full battery) [kW].
VEHICLE_MIN_KW = 1.0
# Share of a stay by which a default departure is planned early (see `_hedged`).
DEFAULT_DEPARTURE_HEDGE = 0.25


def default_solver(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
    """The production solver: `optimizer.solve` with the run's time budget."""
    return optimizer.solve(problem, time_limit_s=time_limit_s)


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

    def points(self) -> list[Point]:
        """The run as one point of the ``plan`` measurement, at the run's start."""
        fields: dict[str, float | int | bool | str] = {
            "status": self.status,
            "solve_s": float(self.solve_s),
            "budget_s": float(self.budget_s),
            "sessions": float(self.sessions),
        }
        for key, value in self.kpis.items():
            if math.isfinite(value):
                fields[key] = float(value)
        for key, value in self.baseline.items():
            if math.isfinite(value):
                fields[f"baseline_{key}"] = float(value)
        for kind, mae in self.forecast_mae.items():
            fields[f"forecast_mae_{kind}_kw"] = float(mae)
        if self.failure:
            fields["failure"] = self.failure
        tags = {"schedule_id": self.schedule_id}
        return [Point("plan", tags, fields, datetime_to_ns(self.made_at))]


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

    def points(self) -> list[Point]:
        """One ``setpoint`` point per charger at the dispatch instant."""
        ts = datetime_to_ns(self.at)
        return [
            Point(
                "setpoint",
                {"asset_id": charger, "schedule_id": self.schedule_id},
                {"max_power_w": kw * 1000.0},
                ts,
            )
            for charger, kw in sorted(self.setpoints_kw.items())
        ]


@dataclass(frozen=True, slots=True)
class _ActivePlan:
    """A plan kept for dispatch: power per charger and slot from ``start``."""

    schedule_id: str
    start: datetime
    chargers_kw: Mapping[str, list[float]]
    session_ids: frozenset[str]
    slots: int
    surplus_kw: tuple[float, ...] = ()


class Coordinator:
    """Turns observed readings into plans and setpoints for one deployment.

    Parameters
    ----------
    config
        the deployment (zones, assets, site, planning settings).
    solver
        ``(problem, time_limit_s) -> schedule``; `optimizer.solve` by default. Tests
        inject failing or slow ones.
    """

    def __init__(self, config: Config, *, solver: Solver | None = None) -> None:
        self.config = config
        self._solver: Solver = solver or default_solver
        planning = config.planning
        self._slot_minutes = planning.slot_minutes
        self._slots = horizon_slot_count(timedelta(hours=planning.horizon_h), self._slot_minutes)
        self._lock = threading.Lock()
        self._latest: dict[str, Reading] = {}
        chargers = [a for a in config.assets if a.kind is AssetKind.CHARGER]
        self._tracker = SessionTracker(
            {a.id: a.charger.type for a in chargers if a.charger is not None}, planning.sessions
        )
        self._limits = charger_limits(config)
        zone_meters = {z.meter for z in config.zones if z.meter is not None}
        self._consumer_meters = {
            a.id for a in config.assets if a.kind is AssetKind.METER and a.id not in zone_meters
        }
        self._root_meters = {z.meter for z in config.zones if z.parent is None and z.meter}
        self._totals = {kind: RunningTotal() for kind in ("pv", "wind", "load", "ev", "root")}
        self._history = {
            "pv": BucketSeries(_MINUTE, _GENERATION_WINDOW),
            "wind": BucketSeries(_MINUTE, _GENERATION_WINDOW),
            "load": BucketSeries(timedelta(minutes=self._slot_minutes), _LOAD_WINDOW),
        }
        self._external: dict[ForecastKind, ExternalForecast] = {}
        self._inputs = self._forecast_inputs()
        self._plans: list[_ActivePlan] = []
        self._previous_forecast: Forecast | None = None
        self._previous_setpoints: dict[str, float] = {}
        # Session id → most power seen; sessions seen drawing well below their setpoint.
        self._vehicle_kw: dict[str, float] = {}
        self._vehicle_limited: set[str] = set()
        self._solving: threading.Thread | None = None
        self._plan_lock = threading.Lock()

    # --- observing -----------------------------------------------------------------------

    def observe(self, reading: Reading) -> None:
        """Take one accepted reading (thread-safe, O(1) apart from session bookkeeping)."""
        power = reading.fields.get("power_w")
        kw = (
            float(power) / 1000.0
            if isinstance(power, int | float) and not isinstance(power, bool)
            else None
        )
        with self._lock:
            previous = self._latest.get(reading.asset_id)
            if previous is not None and reading.ts < previous.ts:
                return  # a device replaying its buffer: the newer reading stays the latest
            self._latest[reading.asset_id] = reading
            if reading.kind is AssetKind.CHARGER:
                self._tracker.update(reading)
                if kw is not None and math.isfinite(kw):
                    self._learn_vehicle(reading.asset_id, kw)
            if kw is None or not math.isfinite(kw):
                return
            self._record(reading, kw)

    def _learn_vehicle(self, charger_id: str, kw: float) -> None:
        """Learn a car's own power limit: the most it drew while allowed clearly more.

        Many cars charge slower than the charger allows (one phase, 3.7 or 7.4 kW); planning
        and reserving the charger's rating for them leaves a zone's headroom unused. Called
        under the lock.
        """
        session = self._tracker.session(charger_id)
        if session is None:
            return
        self._vehicle_kw[session.id] = max(self._vehicle_kw.get(session.id, 0.0), kw)
        allowed = self._previous_setpoints.get(charger_id)
        if allowed is not None and kw >= VEHICLE_MIN_KW and kw < 0.9 * allowed:
            self._vehicle_limited.add(session.id)

    def _vehicle_limits(self, sessions: Sequence[ChargingSession]) -> dict[str, float]:
        """Session id → the car's learnt limit with a margin to grow [kW]; prunes the past.

        The margin lets an estimate that was too low (a car tapering near full) rise again:
        a car that can draw more does so up to its setpoint, which raises the estimate.
        """
        with self._lock:
            open_ids = {s.id for s in sessions}
            self._vehicle_kw = {k: v for k, v in self._vehicle_kw.items() if k in open_ids}
            self._vehicle_limited &= open_ids
            return {
                sid: self._vehicle_kw[sid] * 1.1 + 0.5
                for sid in self._vehicle_limited
                if sid in self._vehicle_kw
            }

    def observe_forecast(self, forecast: ExternalForecast) -> None:
        """Take an external forecast (e.g. from ``<prefix>/forecast/<kind>``); the newest wins."""
        with self._lock:
            current = self._external.get(forecast.kind)
            if current is None or forecast.issued_at >= current.issued_at:
                self._external[forecast.kind] = forecast

    def _record(self, reading: Reading, kw: float) -> None:
        """Update the city totals and their histories (called under the lock)."""
        asset, ts = reading.asset_id, reading.ts
        if reading.kind is AssetKind.PV:
            self._history["pv"].add(ts, self._totals["pv"].update(asset, kw))
        elif reading.kind is AssetKind.WIND:
            self._history["wind"].add(ts, self._totals["wind"].update(asset, kw))
        elif reading.kind is AssetKind.CHARGER:
            self._totals["ev"].update(asset, max(0.0, kw))
        elif asset in self._consumer_meters:
            self._history["load"].add(ts, self._totals["load"].update(asset, kw))
        elif asset in self._root_meters and not self._consumer_meters:
            # No consumer meters: the non-EV load is what the root meters see, plus the
            # generation they net out, minus the charging.
            root = self._totals["root"].update(asset, kw)
            generation = self._totals["pv"].total + self._totals["wind"].total
            self._history["load"].add(ts, max(0.0, root + generation - self._totals["ev"].total))

    # --- planning ------------------------------------------------------------------------

    def plan(self, now: datetime) -> PlanOutcome:
        """One planning run at ``now``; never raises for runtime problems.

        The plan covers the horizon from the next slot boundary; the solver's budget ends
        `timing.DEFAULT_MARGIN` before that boundary. Failure, overrun, no budget or invalid
        input → the fallback plan (fair share), with the reason in ``failure``. The outcome
        becomes the plan dispatched once its first slot begins.
        """
        with self._plan_lock:
            return self._plan(as_utc(now))

    def _plan(self, now: datetime) -> PlanOutcome:
        started = time.monotonic()
        start = plan_start(now, self._slot_minutes)
        starts = slot_starts(start, self._slots, self._slot_minutes)
        with self._lock:
            self._tracker.close_silent(now)
            latest = dict(self._latest)
            sessions = self._tracker.open_sessions()
            inputs = ForecastInputs(
                pv=self._inputs.pv,
                wind_rated_kw=self._inputs.wind_rated_kw,
                load_max_kw=self._inputs.load_max_kw,
                pv_measured=self._history["pv"].series(),
                wind_measured=self._history["wind"].series(),
                load_history=self._history["load"].series(),
                external=dict(self._external),
                tz=self.config.site.timezone,
            )
        mae = self._forecast_mae(inputs)
        try:
            forecast = build_forecast(inputs, starts, self._slot_minutes, now)
            planned = [_hedged(s, now) for s in sessions]
            snapshot = take_snapshot(self.config, latest, planned, forecast, now)
            snapshot = replace(
                snapshot,
                vehicle_max_kw=self._vehicle_limits(sessions),
                zones=self._reserve_floors(snapshot.zones, sessions, latest, now),
                import_weight=_early_preference(self._slots),
            )
            built = build_problem(snapshot)
            problem = optimizer.Problem.model_validate(built.problem)
        except Exception as exc:  # bad input must end in the fallback plan, reported
            log.exception("planning run at %s: no problem could be built", now.isoformat())
            return self._keep(
                self._outcome_without_problem(now, start, f"problem not built: {exc}", mae)
            )
        self._previous_forecast = forecast
        elapsed = timedelta(seconds=time.monotonic() - started)
        budget = time_budget_s(now + elapsed, start, self.config.planning.solver_time_limit_s)
        schedule, failure, solve_s = self._solve(problem, budget)
        if schedule is None:
            schedule = _fallback_or_none(problem)
        fallback = schedule is None or schedule.status == "fallback" or failure is not None
        if failure is None and schedule is not None and schedule.status == "fallback":
            failure = schedule.message or "the optimizer returned its fallback plan"
        sid = schedule_id(start, fallback=fallback)
        outcome = PlanOutcome(
            schedule_id=sid,
            slot_start=start,
            status="fallback" if fallback else (schedule.status if schedule else "fallback"),
            failure=failure,
            solve_s=solve_s,
            sessions=len(problem.sessions),
            kpis=_kpis(schedule.kpis) if schedule is not None else {},
            baseline=_kpis(schedule.baseline.uncontrolled) if schedule is not None else {},
            binding=[b.model_dump(mode="json") for b in schedule.binding] if schedule else [],
            forecast_mae=mae,
            made_at=now,
            budget_s=budget,
            skipped=dict(built.skipped),
            forecast_sources={k.value: v for k, v in forecast.sources.items()},
        )
        if fallback or schedule is None:
            return self._keep(outcome)
        surplus = _surplus_kw(forecast, schedule.chargers, self._slots)
        return self._keep(outcome, schedule.chargers, {s.id for s in problem.sessions}, surplus)

    def _reserve_floors(
        self,
        zones: Sequence[PlanZone],
        sessions: Sequence[ChargingSession],
        latest: Mapping[str, Reading],
        now: datetime,
    ) -> tuple[PlanZone, ...]:
        """Zones with the power dispatch will hold for chargers the plan does not steer.

        The safety layer gives every charger its guaranteed minimum, plugged in or not, and a
        stale charger its safe power; a plan that handed that headroom to the cars would be
        cut back at every dispatch. So each zone's capacity is planned net of the floors of
        its chargers without a session and of its stale chargers' safe power.
        """
        with_session = {s.charger_id for s in sessions}
        stale = stale_chargers(self.config, {a: r.ts for a, r in latest.items()}, now)
        parents = {z.id: z.parent for z in zones}
        reserved: dict[str, float] = {z.id: 0.0 for z in zones}
        for c in self._limits:
            if c.id in stale:
                floor = min(max(c.safe_power_kw, c.guaranteed_kw), c.max_kw)
            elif c.id not in with_session:
                floor = min(c.guaranteed_kw, c.max_kw)
            else:
                continue
            cursor = c.zone
            while cursor is not None and cursor in reserved:
                reserved[cursor] += floor
                cursor = parents.get(cursor)
        out = []
        for z in zones:
            values = [z.capacity_kw] if isinstance(z.capacity_kw, int | float) else z.capacity_kw
            net = [max(0.0, float(v) - reserved[z.id]) for v in values]
            out.append(replace(z, capacity_kw=net[0] if len(net) == 1 else net))
        return tuple(out)

    def _solve(
        self, problem: optimizer.Problem, budget_s: float
    ) -> tuple[optimizer.Schedule | None, str | None, float]:
        """Solve in a worker thread joined with a timeout; (schedule, failure, seconds)."""
        if budget_s <= 0:
            return None, "no time left before the slot starts", 0.0
        if self._solving is not None and self._solving.is_alive():
            return None, "the previous solve is still running (overran its budget)", 0.0
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["schedule"] = self._solver(problem, budget_s)
            except BaseException as exc:  # reported as the run's failure, never lost
                result["error"] = exc

        began = time.monotonic()
        thread = threading.Thread(target=work, name="gridcoord-solve", daemon=True)
        self._solving = thread
        thread.start()
        thread.join(budget_s + min(SOLVE_GRACE_S, DEFAULT_MARGIN.total_seconds() / 4))
        solve_s = time.monotonic() - began
        if thread.is_alive():
            return None, f"solver overran its budget of {budget_s:.1f} s", solve_s
        if "error" in result:
            error = result["error"]
            return None, f"solver failed: {type(error).__name__}: {error}", solve_s
        schedule = result.get("schedule")
        if not isinstance(schedule, optimizer.Schedule):
            return None, f"solver returned {type(schedule).__name__}, not a schedule", solve_s
        return schedule, None, solve_s

    def _outcome_without_problem(
        self, now: datetime, start: datetime, failure: str, mae: dict[str, float]
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

    def _keep(
        self,
        outcome: PlanOutcome,
        chargers_kw: Mapping[str, list[float]] | None = None,
        session_ids: set[str] | None = None,
        surplus_kw: tuple[float, ...] = (),
    ) -> PlanOutcome:
        """Make the outcome the plan for its slots (a fallback keeps no per-slot powers)."""
        plan = _ActivePlan(
            outcome.schedule_id,
            outcome.slot_start,
            dict(chargers_kw) if chargers_kw is not None else {},
            frozenset(session_ids or ()),
            self._slots if chargers_kw is not None else 0,
            surplus_kw,
        )
        with self._lock:
            self._plans = [p for p in self._plans if p.start != plan.start][-(_PLANS_KEPT - 1) :]
            self._plans.append(plan)
            self._plans.sort(key=lambda p: p.start)
        return outcome

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

    def _forecast_inputs(self) -> ForecastInputs:
        """The fixed part of the forecast inputs: installed capacities from the config."""
        site = self.config.site
        pv_kw = sum(a.rated_kw for a in self.config.assets if a.kind is AssetKind.PV)
        wind_kw = sum(a.rated_kw for a in self.config.assets if a.kind is AssetKind.WIND)
        roots = [z.capacity_kw for z in self.config.zones if z.parent is None]
        consumers = [a.rated_kw for a in self.config.assets if a.id in self._consumer_meters]
        load_max = sum(roots) if roots else sum(consumers)
        fleet = PvFleet(site.latitude, site.longitude, pv_kw) if pv_kw > 0 else None
        return ForecastInputs(pv=fleet, wind_rated_kw=wind_kw, load_max_kw=load_max)

    # --- dispatching ---------------------------------------------------------------------

    def dispatch(self, now: datetime) -> DispatchOutcome:
        """The setpoints for ``now``: the active plan's slot, or the fallback, made safe.

        The plan used is the newest whose slots contain ``now`` and whose first slot began
        less than two planning intervals ago (a plan older than that no longer knows the
        cars that arrived since). Chargers whose session began after the plan was made get
        what their zones have left over the plan's setpoints. No plan → fair share of each
        zone's headroom among connected chargers. Stale chargers get their safe power; zones
        with a stale meter are held at their limit (DESIGN 4).
        """
        now = as_utc(now)
        planning = self.config.planning
        with self._lock:
            latest = dict(self._latest)
            open_sessions = self._tracker.open_sessions()
            plans = list(self._plans)
            previous = dict(self._previous_setpoints)
        state = zone_state(
            self.config, latest, now, timedelta(seconds=planning.zone_meter_stale_after_s)
        )
        connected = {s.charger_id for s in open_sessions}
        learnt = self._vehicle_limits(open_sessions)
        vehicle = {s.charger_id: learnt[s.id] for s in open_sessions if s.id in learnt}
        stale = {"stale_chargers": state.stale_chargers, "stale_zones": state.stale_zones}
        plan = self._plan_for(plans, now)
        result: Dispatch | None = None
        if plan is not None:
            requested = current_slot_kw(plan.chargers_kw, plan.start, self._slot_minutes, now)
            if requested is not None:
                # Cars that arrived after the plan was made compete with it for the zones
                # at their full rating (the next plan may be up to two slots away); cars past
                # the energy a default assumed for them (a guess, not their need) charge from
                # what the plan leaves; the others may take renewable surplus the plan leaves.
                fresh = connected - state.stale_chargers
                arrivals = {
                    s.charger_id for s in open_sessions if s.id not in plan.session_ids
                } & fresh
                beyond = {
                    s.charger_id
                    for s in open_sessions
                    if s.request_source is Source.DEFAULT and s.remaining_kwh <= 0
                } & fresh - arrivals
                wanted = dict(requested)
                for charger in self._limits:
                    if charger.id in arrivals:
                        full = min(charger.max_kw, vehicle.get(charger.id, math.inf))
                        wanted[charger.id] = max(wanted.get(charger.id, 0.0), full)
                surplus = plan.surplus_kw[slot_index(plan.start, now, self._slot_minutes)]
                result = self._planned(
                    wanted, beyond, fresh - arrivals - beyond, surplus, vehicle, state.limits, stale
                )
        if result is None:
            plan = None
            # Fair share (DESIGN 4): every connected car asks for what it can draw.
            asked = {
                c.id: min(c.max_kw, vehicle.get(c.id, math.inf))
                for c in self._limits
                if c.id in connected
            }
            result = apply_limits(asked, self._limits, state.limits, **stale)
        sid = (
            plan.schedule_id
            if plan is not None
            else schedule_id(floor_slot(now, self._slot_minutes), fallback=True)
        )
        until = valid_until(now, refresh_s=planning.dispatch_interval_s)
        setpoints = dict(result.setpoints_kw)
        payloads: dict[str, dict[str, object]] = {
            cid: setpoint_payload(kw, now=now, until=until, schedule_id=sid)
            for cid, kw in setpoints.items()
        }
        limited = {
            cid: f"zone:{result.zone_of_cut[cid]}"
            if why is Limiter.ZONE and cid in result.zone_of_cut
            else why.value
            for cid, why in result.limiter.items()
        }
        with self._lock:
            self._previous_setpoints = setpoints
        return DispatchOutcome(
            schedule_id=sid,
            at=now,
            valid_until=until,
            setpoints_kw=setpoints,
            payloads=payloads,
            order=sending_order(previous, setpoints),
            overloads=list(result.overloads),
            limited=limited,
            fallback=plan is None,
        )

    def _plan_for(self, plans: list[_ActivePlan], now: datetime) -> _ActivePlan | None:
        """The newest plan (not a fallback) whose slots contain ``now`` and is recent enough."""
        slot = timedelta(minutes=self._slot_minutes)
        max_age = 2 * timedelta(minutes=self.config.planning.interval_min)
        for plan in reversed(plans):
            if plan.start > now:
                continue
            # The newest plan that has begun decides; a fallback one means fair share now.
            if plan.slots == 0 or now - plan.start >= max(max_age, slot):
                return None
            return plan if now < plan.start + plan.slots * slot else None
        return None

    def _planned(
        self,
        requested: Mapping[str, float],
        beyond: set[str],
        others: set[str],
        surplus_kw: float,
        vehicle: Mapping[str, float],
        zones: list[ZoneLimit],
        stale: Mapping[str, set[str]],
    ) -> Dispatch:
        """The plan's slot, then top-ups from the headroom it leaves, then every limit again.

        Top-ups: first the cars in ``beyond`` from the zones' leftover headroom; then, in a
        slot the plan expects renewable surplus, the ``others`` from what is left of it: the
        plan is indifferent between slots without import, and energy delivered early is
        energy a car that leaves early does not miss.
        """
        setpoints = apply_limits(requested, self._limits, zones, **stale).setpoints_kw
        for group, cap in ((beyond, None), (others, surplus_kw)):
            if group and (cap is None or cap > 0):
                extra = self._top_up(setpoints, group, vehicle, zones, cap)
                setpoints = {c: kw + extra.get(c, 0.0) for c, kw in setpoints.items()}
        # Once more through every limit: the sums of the passes may round a few ulp over.
        return apply_limits(setpoints, self._limits, zones, **stale)

    def _top_up(
        self,
        setpoints: Mapping[str, float],
        group: set[str],
        vehicle: Mapping[str, float],
        zones: list[ZoneLimit],
        cap_kw: float | None,
    ) -> dict[str, float]:
        """Extra power for ``group`` within each zone's headroom left by ``setpoints`` [kW]."""
        parents = {z.id: z.parent for z in zones}
        used: dict[str, float] = {z.id: 0.0 for z in zones}
        for limit in self._limits:
            cursor = limit.zone
            while cursor is not None and cursor in used:
                used[cursor] += setpoints[limit.id]
                cursor = parents.get(cursor)
        top = "_cap" if cap_kw is not None else None
        leftover = [
            ZoneLimit(z.id, z.parent or top, max(0.0, z.headroom_kw - used[z.id])) for z in zones
        ]
        if cap_kw is not None:
            leftover.append(ZoneLimit("_cap", None, cap_kw))
        chargers = [
            ChargerLimit(
                c.id,
                c.zone or top,
                max(0.0, min(c.max_kw, vehicle.get(c.id, math.inf)) - setpoints[c.id]),
            )
            for c in self._limits
            if c.id in group
        ]
        return fair_share_kw(group, chargers, leftover).setpoints_kw


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
    # A schedule from a wrong optimizer may hold huge values: plain sum overflows to inf
    # (no surplus left) where fsum would raise.
    ev = [
        sum(
            max(0.0, v[t]) if t < len(v) and math.isfinite(v[t]) else 0.0
            for v in chargers_kw.values()
        )
        for t in range(slots)
    ]
    spare = forecast.renewable_kw - forecast.load_kw
    return tuple(max(0.0, float(spare[t]) - ev[t]) for t in range(slots))


def _hedged(session: ChargingSession, now: datetime) -> ChargingSession:
    """The session as planned: a default departure brought forward by a quarter of the stay.

    A charger-type default ("home until 07:00") is a guess; planning to finish a little before
    it leaves a margin for the car that leaves early. Departures the device or user gave are
    planned as given.
    """
    if session.departure_source is not Source.DEFAULT or session.departure <= now:
        return session
    stay = session.departure - session.plugged_in_at
    return replace(session, departure=max(now, session.departure - stay * DEFAULT_DEPARTURE_HEDGE))


def _early_preference(slots: int) -> list[float]:
    """Import weights rising by ``EARLY_PREFERENCE`` over the horizon [-].

    With a flat price the LP is indifferent between importing now or later and may leave a
    car's charging for its last slots; a car that leaves before its assumed departure (a
    charger-type default, not a promise) then goes short. The rise makes earlier import the
    cheaper of two otherwise equal plans, while a slot with renewable surplus (no import at
    all) still wins over any slot with import.
    """
    return [1.0 + EARLY_PREFERENCE * t / max(1, slots - 1) for t in range(slots)]


def _kpis(kpis: optimizer.Kpis) -> dict[str, float]:
    return {key: float(value) for key, value in kpis.model_dump().items()}
