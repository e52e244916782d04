"""The perfect-foresight bound of a demo run: one exact solve on what really happened.

After a run, the uncontrolled baseline's record holds the realised data the service could only
forecast: renewable output, base load and every zone's net load without EVs minute by minute
(`TraceStep`), and every visit with its true arrival, departure, request and vehicle limit.
`perfect_foresight` puts all of it into one optimizer problem over the whole run (DESIGN 3.5;
the exact network path: least unmet energy first, then least import) and replays the schedule
minute by minute through the same KPI definitions as the controlled city and the baseline
(`gridcoord.outcomes`), so the three rows compare like with like.

What the bound knows that no real controller can: the weather, the loads and every departure
and request in advance. What it shares with the city: the chargers' and vehicles' limits and
every zone's headroom in every minute (the smallest headroom of the slot's minutes, so the
replay never overloads). It has no §14a minima (they are a rule, not physics). Its
renewable energy is the most any feasible schedule of the same sessions could take from the
surplus (the solver maximises the free surplus before anything else); among schedules that do
so it charges the rest where the net load is lowest, which is a tie-break, not a bound on peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from gridcoord.outcomes import KpiAccumulator
from gridcoord.simulation.city import CityLayout
from gridcoord.simulation.ev import EvVisit
from gridcoord.simulation.stepper import TraceStep, session_record, zone_ancestors
from optimizer import Charger, Problem, Session, Zone, solve
from optimizer.problem import MAX_SLOTS

# Slot lengths tried, finest first [min]: the finest whose slots fit the optimizer's limit.
SLOT_CHOICES_MIN = (1, 2, 3, 5, 10, 15, 30, 60)
SOLVE_BUDGET_S = 120.0


@dataclass(frozen=True, slots=True)
class Bound:
    """The bound's KPIs and how they were obtained.

    Attributes
    ----------
    kpis
        the outcome KPIs of the replayed schedule (`gridcoord.outcomes.OUTCOME_KPI_KEYS`).
    status
        the solver's status (``optimal`` unless the budget ran out).
    slot_minutes
        slot length of the solve [min].
    solve_s
        wall time of the solve [s].
    """

    kpis: dict[str, float | int]
    status: str
    slot_minutes: int
    solve_s: float


def slot_minutes_for(minutes: float) -> int:
    """The finest slot length [min] at which a run of ``minutes`` fits `MAX_SLOTS` slots."""
    for choice in SLOT_CHOICES_MIN:
        if math.ceil(minutes / choice) <= MAX_SLOTS:
            return choice
    raise ValueError(f"a run of {minutes:.0f} minutes is too long for the bound")


def perfect_foresight(
    layout: CityLayout,
    trace: Sequence[TraceStep],
    visits: Sequence[EvVisit],
    energy_before: dict[EvVisit, float],
    time_limit_s: float = SOLVE_BUDGET_S,
) -> Bound:
    """Solve the run's realised data at once and judge the schedule like the city.

    Parameters
    ----------
    layout
        the city.
    trace
        the run's steps, in order, contiguous (the baseline's `CitySimulation.trace`).
    visits
        every visit plugged in during the run (`CitySimulation.visits`).
    energy_before
        energy of the visits in progress at the start [kWh].
    time_limit_s
        the solver's budget [s].
    """
    if not trace:
        raise ValueError("the bound needs at least one simulated step")
    start, end = trace[0].start, trace[-1].end
    minutes = (end - start).total_seconds() / 60.0
    slot_min = slot_minutes_for(minutes)
    slot = timedelta(minutes=slot_min)
    slots = math.ceil(minutes / slot_min - 1e-9)
    index = [min(slots - 1, int((s.start - start) / slot)) for s in trace]

    ratings = {z.id: z.rating_kw for z in layout.zones}
    renewable = np.zeros(slots)
    base = np.zeros(slots)
    weight_h = np.zeros(slots)
    headroom = {z: np.full(slots, math.inf) for z in ratings}
    for step, k in zip(trace, index, strict=True):
        hours = (step.end - step.start).total_seconds() / 3600.0
        renewable[k] += step.renewable_kw * hours
        base[k] += step.base_kw * hours
        weight_h[k] += hours
        for zone, kw in step.zone_kw.items():
            headroom[zone][k] = min(headroom[zone][k], ratings[zone] - kw)
    renewable /= np.maximum(weight_h, 1e-12)
    base /= np.maximum(weight_h, 1e-12)
    net = base - renewable
    # Import is cheapest where the net load is lowest: only the order matters to the solver.
    spread = float(net.max() - net.min()) or 1.0
    weight = 1.0 + (net - net.min()) / spread

    chargers = {c.id: c for c in layout.chargers}
    sessions: list[Session] = []
    by_id: dict[str, EvVisit] = {}
    for n, visit in enumerate(visits):
        first = max(visit.arrival, start)
        a = math.ceil((first - start) / slot - 1e-9)
        d = min(slots, math.floor((visit.departure - start) / slot + 1e-9))
        remaining = visit.energy_kwh - energy_before.get(visit, 0.0)
        if d <= a or remaining <= 0.0:
            continue
        sid = f"s{n}"
        by_id[sid] = visit
        sessions.append(
            Session(
                id=sid,
                charger=visit.charger_id,
                arrival_slot=a,
                departure_slot=d,
                energy_kwh=float(remaining),
                max_kw=float(visit.max_kw),
            )
        )
    problem = Problem(
        slot_minutes=slot_min,
        slots=slots,
        start=start,
        renewable_kw=[float(x) for x in renewable],
        base_load_kw=[float(x) for x in base],
        import_weight=[float(x) for x in weight],
        zones=[
            Zone(
                id=z.id,
                parent=z.parent,
                capacity_kw=[float(max(0.0, x)) for x in headroom[z.id]],
            )
            for z in layout.zones
        ],
        chargers=[Charger(id=c.id, zone=c.zone, max_kw=c.max_kw) for c in layout.chargers],
        sessions=sessions,
    )
    schedule = solve(problem, time_limit_s=time_limit_s)

    # Replay step by step (minutes in the demo): each slot's power held through its steps.
    ancestors = zone_ancestors(layout)
    plans = [(by_id[sid], plan.power_kw) for sid, plan in schedule.sessions.items()]
    power = np.array([p for _, p in plans], dtype=np.float64).reshape(len(plans), slots)
    ev_slot = power.sum(axis=0)
    zone_ev = {z: np.zeros(slots) for z in ratings}
    for row, (visit, _) in enumerate(plans):
        for zone in ancestors[chargers[visit.charger_id].zone]:
            zone_ev[zone] += power[row]
    kpi = KpiAccumulator(ratings)
    for step, k in zip(trace, index, strict=True):
        hours = (step.end - step.start).total_seconds() / 3600.0
        zone_kw = {z: kw + zone_ev[z][k] for z, kw in step.zone_kw.items()}
        kpi.add(hours, float(ev_slot[k]), step.base_kw, step.renewable_kw, zone_kw, step.zone_kw)
    got = power @ weight_h  # energy per plan [kWh]: power x the hours its slot was stepped
    delivered = {visit: float(got[row]) for row, (visit, _) in enumerate(plans)}
    records = [
        session_record(
            visit,
            chargers[visit.charger_id].max_kw,
            energy_before.get(visit, 0.0) + delivered.get(visit, 0.0),
            end,
        )
        for visit in visits
    ]
    return Bound(kpi.result(records), schedule.status, slot_min, schedule.solve_seconds)
