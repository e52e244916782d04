"""What a planning run and a dispatch produced, and how the city's outcome is judged.

Plain immutable values, shared by the planner (`gridcoord.planning`), the planning loop and
the storage code that turns them into points (`gridcoord.storage.outcomes`); this module
imports nothing of the service but the safety layer's overload record.

It is also the one home of the **outcome KPIs** (docs/coordination.md, "Outcome KPIs"): the
demo's controlled city, its uncontrolled baseline and the perfect-foresight bound are all
judged by `KpiAccumulator` (energy, per simulated step) and `SessionRecord` (each charging
session against its request and its physical floor), and `OUTCOME_KPI_KEYS` names what
``gridcoord demo --json`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridcoord.dispatch import ZoneShortfall


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
    shortfalls
        zones whose floors (connected chargers' guaranteed minima, stale chargers'
        safe power) alone exceed them: the zone limit won, the floors were scaled down
        (an alarm for grid planning).
    limited
        charger id → what decided its setpoint (``plan``, ``charger_max``,
        ``invalid``, ``stale``, ``guaranteed``, ``zone:<id>``).
    fallback
        True when no (valid) optimised plan was dispatched.
    zone_rules
        rule → zones where it bit in this dispatch: ``zone_cut`` (a zone's
        headroom cut setpoints above their floors), ``minima_scaled`` (the zone limit won
        over guaranteed minima).
    connected
        chargers with a car plugged in (they hold their guaranteed minimum).
    """

    schedule_id: str
    at: datetime
    valid_until: datetime
    setpoints_kw: dict[str, float]
    payloads: dict[str, dict[str, object]]
    order: list[str]
    shortfalls: list[ZoneShortfall]
    limited: dict[str, str]
    fallback: bool = False
    zone_rules: dict[str, int] = field(default_factory=dict)
    connected: frozenset[str] = frozenset()

    @property
    def overloads(self) -> list[ZoneShortfall]:
        """The former name of `shortfalls` (the zone limit now wins: nothing overloads)."""
        return self.shortfalls


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
    spare_kw
        the forecast the plan was made on: PV + wind − non-EV load per slot, before any
        charging [kW] (empty where unknown: the dispatch then holds nothing back).
    """

    schedule_id: str
    start: datetime
    chargers_kw: Mapping[str, list[float]]
    session_ids: frozenset[str]
    slots: int
    surplus_kw: tuple[float, ...] = ()
    spare_kw: tuple[float, ...] = ()


# The keys of ``gridcoord demo --json`` and of its ``baseline`` and ``bound`` objects.
OUTCOME_KPI_KEYS = (
    "renewable_share",
    "renewable_share_prorata",
    "unmet_kwh",
    "unmet_above_floor_kwh",
    "requests_met_pct",
    "peak_import_kw",
    "zone_overloads",
    "zone_overloads_non_ev",
    "minima_over_limit",
    "requested_kwh",
    "floor_kwh",
    "ev_kwh",
)
# A request counts as met when at most this much of it is missing [kWh] (rounding of the
# solver's energy units and of the simulation's steps, far below any real shortfall).
MET_TOLERANCE_KWH = 0.01


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One charging session as the outcome KPIs judge it.

    Attributes
    ----------
    request_kwh
        energy the vehicle asked for over its whole stay [kWh].
    delivered_kwh
        energy it got, including what it got before the run began [kWh].
    rate_kw
        the most it can draw: min(charger rating, vehicle limit) [kW].
    stay_h
        plug-in to plug-out [h].
    left_h
        time from the end of the run to its departure [h]; 0 when it left within the run.
    """

    request_kwh: float
    delivered_kwh: float
    rate_kw: float
    stay_h: float
    left_h: float = 0.0

    @property
    def departed(self) -> bool:
        """Whether the session ended within the run (and is judged on its request)."""
        return self.left_h <= 0.0

    @property
    def floor_kwh(self) -> float:
        """What no plan could deliver: the request beyond ``rate_kw`` x ``stay_h`` [kWh]."""
        return max(0.0, self.request_kwh - self.rate_kw * self.stay_h)

    @property
    def unmet_kwh(self) -> float:
        """The request not delivered [kWh].

        For a car still plugged in at the end, only the shortfall that is already certain:
        what it would still miss at full power until its departure.
        """
        missing = self.request_kwh - self.delivered_kwh
        return max(0.0, missing - self.rate_kw * max(0.0, self.left_h))

    @property
    def unmet_above_floor_kwh(self) -> float:
        """Unmet energy a plan could have delivered [kWh] (never negative)."""
        return max(0.0, self.unmet_kwh - self.floor_kwh)

    @property
    def met(self) -> bool:
        """Whether the request was met by departure (within `MET_TOLERANCE_KWH`)."""
        return self.request_kwh - self.delivered_kwh <= MET_TOLERANCE_KWH


def session_kpis(sessions: Iterable[SessionRecord]) -> dict[str, float]:
    """The per-session KPIs over a run's sessions.

    Returns
    -------
    ``unmet_kwh``, ``unmet_above_floor_kwh``, ``floor_kwh``, ``requested_kwh`` over every
    session (a car still plugged in at the end contributes its certain shortfall), and
    ``requests_met_pct``: the share of sessions that departed within the run with their
    request met [%] (100 when none departed).
    """
    records = list(sessions)
    departed = [r for r in records if r.departed]
    met = sum(1 for r in departed if r.met)
    return {
        "unmet_kwh": math.fsum(r.unmet_kwh for r in records),
        "unmet_above_floor_kwh": math.fsum(r.unmet_above_floor_kwh for r in records),
        "floor_kwh": math.fsum(r.floor_kwh for r in records),
        "requested_kwh": math.fsum(r.request_kwh for r in records),
        "requests_met_pct": 100.0 * met / len(departed) if departed else 100.0,
    }


class KpiAccumulator:
    """The energy KPIs of a city over the steps of a run.

    Parameters
    ----------
    zone_ratings
        zone id → rating [kW]; a step with a zone's net load above it counts as one
        overload (one zone-minute at the demo's one-minute steps): an EV overload
        (``zone_overloads``) where EVs under the zone drew power in the step, a non-EV one
        (``zone_overloads_non_ev``) where the non-EV load alone was above the rating with no
        charging under the zone — what no schedule can avoid, an alarm for grid planning.
    """

    def __init__(self, zone_ratings: Mapping[str, float]) -> None:
        self._ratings = dict(zone_ratings)
        self.ev_kwh = 0.0
        self.renewable_ev_kwh = 0.0
        self.prorata_ev_kwh = 0.0
        self.peak_import_kw = 0.0
        self.zone_overloads = 0
        self.zone_overloads_non_ev = 0
        self.minima_over_limit = 0

    def add(
        self,
        hours: float,
        ev_kw: float,
        base_kw: float,
        renewable_kw: float,
        zone_kw: Mapping[str, float],
        zone_base_kw: Mapping[str, float] | None = None,
    ) -> None:
        """Record one step of ``hours`` [h] with average EV, non-EV and renewable power [kW].

        ``zone_kw`` is each zone's net load including the EVs [kW], ``zone_base_kw`` the same
        without them; where it is not given (or lacks a zone) every overload counts as an EV
        overload.
        """
        self.ev_kwh += ev_kw * hours
        # Surplus share: renewables serve the non-EV load first; EV charging gets what is left.
        surplus = max(0.0, renewable_kw - base_kw)
        self.renewable_ev_kwh += min(ev_kw, surplus) * hours
        # Pro-rata share: every kWh consumed in the step is as renewable as the step's mix,
        # so moving load into a windy night counts even when wind does not exceed base load.
        total = base_kw + ev_kw
        mix = min(1.0, renewable_kw / total) if total > 0 else 0.0
        self.prorata_ev_kwh += ev_kw * mix * hours
        self.peak_import_kw = max(self.peak_import_kw, base_kw + ev_kw - renewable_kw)
        for zone, kw in zone_kw.items():
            if kw <= self._ratings.get(zone, math.inf) + 1e-9:
                continue
            base = None if zone_base_kw is None else zone_base_kw.get(zone)
            # Charging in the zone (EV power above rounding) makes it the EVs' overload.
            if base is not None and kw - base <= 1e-6:
                self.zone_overloads_non_ev += 1
            else:
                self.zone_overloads += 1

    def add_minima_over_limit(self, zones: int) -> None:
        """Count ``zones`` zone-steps in which guaranteed minima alone exceeded a zone's limit.

        Fed by the dispatch's overload records (`DispatchOutcome.overloads`): which rule
        decided there is the safety layer's (docs/coordination.md, "Guaranteed minima").
        """
        self.minima_over_limit += zones

    def result(self, sessions: Iterable[SessionRecord] = ()) -> dict[str, float | int]:
        """Every KPI of `OUTCOME_KPI_KEYS`, the sessions' from ``sessions``."""
        share = self.renewable_ev_kwh / self.ev_kwh if self.ev_kwh > 0 else 0.0
        prorata = self.prorata_ev_kwh / self.ev_kwh if self.ev_kwh > 0 else 0.0
        per_session = session_kpis(sessions)
        out: dict[str, float | int] = {
            "renewable_share": share,
            "renewable_share_prorata": prorata,
            "unmet_kwh": per_session["unmet_kwh"],
            "unmet_above_floor_kwh": per_session["unmet_above_floor_kwh"],
            "requests_met_pct": per_session["requests_met_pct"],
            "peak_import_kw": self.peak_import_kw,
            "zone_overloads": self.zone_overloads,
            "zone_overloads_non_ev": self.zone_overloads_non_ev,
            "minima_over_limit": self.minima_over_limit,
            "requested_kwh": per_session["requested_kwh"],
            "floor_kwh": per_session["floor_kwh"],
            "ev_kwh": self.ev_kwh,
        }
        return out
