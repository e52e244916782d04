"""The perfect-foresight bound: one exact solve on the realised data, judged like the city."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.config import ChargerType
from gridcoord.demo.bound import perfect_foresight, slot_minutes_for
from gridcoord.outcomes import KpiAccumulator
from gridcoord.simulation import CitySimulation, EvVisit, WindFarm, demo_city
from gridcoord.simulation.city import CityLayout, SimCharger, SimZone
from gridcoord.simulation.stepper import TraceStep

T0 = datetime(2026, 4, 21, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RATING_KW = 30.0
LAYOUT = CityLayout(
    52.4,
    10.8,
    (SimZone("z", None, RATING_KW, "meter-z"),),
    (
        SimCharger("c1", "z", ChargerType.HOME, 11.0, 0.0, 0.0),
        SimCharger("c2", "z", ChargerType.WORKPLACE, 22.0, 0.0, 0.0),
        SimCharger("c3", "z", ChargerType.PUBLIC, 22.0, 0.0, 0.0),
    ),
    (),
    (),
    "wind",
    "z",
    WindFarm(turbines=1),
)


def trace_of(rows: list[tuple[float, float, float]]) -> list[TraceStep]:
    return [
        TraceStep(T0 + i * MINUTE, T0 + (i + 1) * MINUTE, base, renewable, {"z": zone})
        for i, (base, renewable, zone) in enumerate(rows)
    ]


def test_the_bound_takes_the_surplus_and_meets_every_request_by_hand() -> None:
    # 60 minutes; renewable surplus of 11 kW only in the last 30. One car, 5.5 kWh wanted,
    # at 11 kW: it can take all of it from the surplus if it waits; uncontrolled it would not.
    rows = [(20.0, 0.0, 20.0)] * 30 + [(20.0, 31.0, -11.0)] * 30
    visit = EvVisit("c1", T0, T0 + timedelta(hours=1), 5.5, 11.0, True)
    bound = perfect_foresight(LAYOUT, trace_of(rows), [visit], {})
    assert bound.status == "optimal" and bound.slot_minutes == 1
    kpis = bound.kpis
    assert kpis["ev_kwh"] == pytest.approx(5.5, abs=1e-6)
    assert kpis["renewable_share"] == pytest.approx(1.0, abs=1e-6)
    assert kpis["unmet_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert kpis["requests_met_pct"] == 100.0 and kpis["zone_overloads"] == 0
    # A car in progress at the start is owed only its true remainder.
    early = EvVisit("c2", T0 - timedelta(hours=1), T0 + timedelta(minutes=30), 12.0, 22.0, True)
    both = perfect_foresight(LAYOUT, trace_of(rows), [visit, early], {early: 7.0}).kpis
    assert both["ev_kwh"] == pytest.approx(5.5 + 5.0, abs=1e-6)
    assert both["requested_kwh"] == pytest.approx(17.5)


def test_slot_length_fits_the_optimizer() -> None:
    assert slot_minutes_for(24 * 60) == 1
    assert slot_minutes_for(48 * 60) == 2
    assert slot_minutes_for(7 * 24 * 60) == 5


visits = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.integers(0, 40),  # arrival minute
        st.integers(5, 40),  # stay [min]
        st.floats(0.5, 12.0),  # request [kWh]
        st.sampled_from([3.7, 11.0, 22.0]),  # vehicle limit [kW]
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.0, 40.0), st.floats(0.0, 60.0), st.floats(0.0, RATING_KW)),
        min_size=60,
        max_size=60,
    ),
    raw=visits,
    fractions=st.lists(st.floats(0.0, 1.0), min_size=60 * 6, max_size=60 * 6),
)
def test_no_feasible_schedule_takes_more_renewable_energy_than_the_bound(
    rows: list[tuple[float, float, float]],
    raw: list[tuple[str, int, int, float, float]],
    fractions: list[float],
) -> None:
    # Visits on one charger must not overlap (a charger holds one car).
    taken: dict[str, int] = {}
    chosen = []
    for charger, arrive, stay, kwh, vehicle in sorted(raw, key=lambda v: v[1]):
        if arrive < taken.get(charger, 0):
            continue
        taken[charger] = arrive + stay
        arrival, departure = T0 + arrive * MINUTE, T0 + (arrive + stay) * MINUTE
        chosen.append(EvVisit(charger, arrival, departure, kwh, vehicle, True))
    trace = trace_of(rows)
    bound = perfect_foresight(LAYOUT, trace, chosen, {})
    assert bound.kpis["zone_overloads"] == 0
    assert bound.kpis["unmet_above_floor_kwh"] >= 0.0
    # Any feasible schedule: each car a random fraction of its rate per minute, then scaled
    # into the zone's headroom and cut at its request.
    max_kw = {c.id: c.max_kw for c in LAYOUT.chargers}
    left = [v.energy_kwh for v in chosen]
    kpi = KpiAccumulator({"z": RATING_KW})
    for minute, step in enumerate(trace):
        want = np.array(
            [
                fractions[minute * 6 + i] * min(max_kw[v.charger_id], v.max_kw)
                if v.arrival <= step.start and step.end <= v.departure
                else 0.0
                for i, v in enumerate(chosen)
            ]
        )
        headroom = max(0.0, RATING_KW - step.zone_kw["z"])
        if want.sum() > headroom:
            want *= headroom / want.sum()
        power = np.minimum(want, np.array(left) * 60.0)
        left = [x - p / 60.0 for x, p in zip(left, power, strict=True)]
        kpi.add(1 / 60, float(power.sum()), step.base_kw, step.renewable_kw, {})
    bound_renewable = bound.kpis["renewable_share"] * bound.kpis["ev_kwh"]
    assert kpi.renewable_ev_kwh <= bound_renewable + 1e-6
    # ... and it delivers at least as much (least unmet energy comes first).
    assert kpi.ev_kwh <= bound.kpis["ev_kwh"] + 1e-6


def test_the_bound_of_a_real_run_beats_uncontrolled_on_renewables() -> None:
    layout = demo_city(seed=2, chargers=40, feeders=1, transformers_per_feeder=2)
    sim = CitySimulation(layout, 2, T0, controlled=False)
    for minute in range(1, 6 * 60 + 1):
        sim.step(T0 + minute * MINUTE)
    uncontrolled = sim.kpis()
    bound = perfect_foresight(layout, sim.trace, sim.visits(), sim.energy_before)
    assert bound.status == "optimal"
    b = bound.kpis
    assert b["zone_overloads"] == 0
    assert b["renewable_share"] * b["ev_kwh"] >= (
        uncontrolled["renewable_share"] * uncontrolled["ev_kwh"] - 1e-6
    )
    assert b["unmet_above_floor_kwh"] <= uncontrolled["unmet_above_floor_kwh"] + 0.05
    assert b["requested_kwh"] == pytest.approx(uncontrolled["requested_kwh"])
