"""The planning snapshot → DESIGN 3.5 problem dict: slot indices, needs, series, headroom."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimizer
from gridcoord.planning.problem_builder import (
    PlanCharger,
    PlanZone,
    Snapshot,
    build_problem,
    zone_headroom_series,
)
from gridcoord.sessions import ChargingSession, Source
from gridcoord.timegrid import local_day_slots

START = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # local midnight of the 100-slot day


def session(
    sid: str,
    charger: str,
    departure: datetime,
    requested: float = 20.0,
    delivered: float = 5.0,
    unplugged: datetime | None = None,
) -> ChargingSession:
    return ChargingSession(
        id=sid,
        charger_id=charger,
        plugged_in_at=START - timedelta(hours=3),
        departure=departure,
        departure_source=Source.DEFAULT,
        requested_kwh=requested,
        request_source=Source.DEFAULT,
        delivered_kwh=delivered,
        power_kw=0.0,
        last_seen=START - timedelta(minutes=1),
        unplugged_at=unplugged,
    )


CHARGERS = [PlanCharger("c1", "feeder", 11.0), PlanCharger("c2", None, 22.0)]
ZONES = [PlanZone("sub", None, 100.0), PlanZone("feeder", "sub", [40.0] * 100)]


def snapshot(**changes: object) -> Snapshot:
    base: dict[str, object] = {
        "start": START,
        "slot_minutes": 15,
        "slots": 100,
        "sessions": [
            session("s-home", "c1", START + timedelta(hours=8, minutes=10)),
            session("s-late", "c2", START - timedelta(hours=1)),  # departure passed, still here
            session("s-long", "c2", START + timedelta(days=3)),
            session("s-done", "c1", START + timedelta(hours=2), requested=5.0, delivered=6.0),
            session("s-ghost", "c9", START + timedelta(hours=2)),
            session("s-gone", "c1", START + timedelta(hours=2), unplugged=START),
        ],
        "chargers": CHARGERS,
        "zones": ZONES,
        "renewable_kw": [50.0] * 100,
        "base_load_kw": 30.0,
        "vehicle_max_kw": {"s-home": 7.4, "s-long": math.nan},
    }
    base.update(changes)
    return Snapshot(**base)  # type: ignore[arg-type]


def as_json(problem: optimizer.Problem) -> dict[str, Any]:
    """The problem as DESIGN 3.5 JSON (what `gridcoord optimize` reads)."""
    return problem.model_dump(mode="json", exclude_none=True)


def test_problem_matches_the_contract() -> None:
    built = build_problem(snapshot())
    assert isinstance(built.problem, optimizer.Problem)
    p = as_json(built.problem)
    json.dumps(p, allow_nan=False)
    assert (p["slot_minutes"], p["slots"], p["start"]) == (15, 100, "2026-10-24T22:00:00Z")
    by_id = {s["id"]: s for s in p["sessions"]}
    assert set(by_id) == {"s-home", "s-late", "s-long"}
    # 8 h 10 min after the start: 15 kWh fit the 32 whole slots before the departure's at
    # 7.4 kW, so its slot (the car there for ten of its minutes) is not planned.
    assert by_id["s-home"] == {
        "id": "s-home",
        "charger": "c1",
        "arrival_slot": 0,
        "departure_slot": 32,
        "energy_kwh": 15.0,
        "max_kw": 7.4,
    }
    assert by_id["s-late"]["departure_slot"] == 1
    assert by_id["s-long"]["departure_slot"] == 100 and "max_kw" not in by_id["s-long"]
    assert built.skipped == {
        "s-done": "no energy needed",
        "s-ghost": "unknown charger 'c9'",
        "s-gone": "not plugged in",
    }
    assert p["zones"] == [
        {"id": "sub", "capacity_kw": 100.0},
        {"id": "feeder", "parent": "sub", "capacity_kw": [40.0] * 100},
    ]
    assert p["chargers"] == [
        {"id": "c1", "zone": "feeder", "max_kw": 11.0},
        {"id": "c2", "max_kw": 22.0},
    ]
    assert p["base_load_kw"] == 30.0 and p["import_weight"] == 1.0


@pytest.mark.parametrize(
    ("minutes", "need_kwh", "vehicle_kw", "departure_slot"),
    [
        (40, 4.0, None, 2),  # 4 kWh fit the two whole slots at 11 kW: the partial one not
        (40, 6.0, None, 3),  # 6 kWh do not (5.5 kWh): the last ten minutes are planned too
        (40, 4.0, 7.4, 3),  # at the car's 7.4 kW two slots give 3.7 kWh: the partial one too
        (45, 6.0, None, 3),  # on the slot grid: no partial slot, nothing dropped
        (10, 1.0, None, 1),  # within the first slot: slot 0 as before
    ],
)
def test_a_partial_last_slot_is_planned_only_when_the_need_needs_it(
    minutes: int, need_kwh: float, vehicle_kw: float | None, departure_slot: int
) -> None:
    # Issue 12: energy planned into the slot the car leaves in arrives only in part (a short
    # public stay lost 1-3 kWh so when that slot was the cheapest of its stay).
    leave = START + timedelta(minutes=minutes)
    built = build_problem(
        snapshot(
            sessions=[session("s", "c1", leave, requested=need_kwh, delivered=0.0)],
            vehicle_max_kw={} if vehicle_kw is None else {"s": vehicle_kw},
        )
    )
    assert built.problem.sessions[0].departure_slot == departure_slot


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"renewable_kw": [1.0] * 99}, "renewable_kw: 99 values for 100 slots"),
        ({"base_load_kw": -1.0}, "base_load_kw: must be finite and >= 0"),
        ({"import_weight": [1.0] * 99 + [0.0]}, r"import_weight\[99\]: must be finite and > 0"),
        ({"zones": [PlanZone("z", None, [math.nan] * 100)]}, r"zone 'z' capacity_kw\[0\]"),
        ({"start": START + timedelta(minutes=5)}, "not on the slot grid"),
        ({"slot_minutes": 7}, "divide 60"),
        ({"slots": 0}, "slots must be > 0"),
    ],
)
def test_bad_snapshot_names_the_element(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_problem(snapshot(**changes))


def test_problem_round_trips_through_the_optimizer_json() -> None:
    model = build_problem(snapshot()).problem
    assert optimizer.Problem.model_validate(as_json(model)) == model
    assert model.slots == 100 and len(model.sessions) == 3


def test_zone_headroom_follows_the_load_forecast() -> None:
    # Zone rated 100 kW carrying 40 kW of non-EV load now while the city draws 1000 kW.
    out = zone_headroom_series(100.0, 40.0, [1000.0, 1500.0, 500.0, 100.0, 4000.0], 1000.0)
    assert out == pytest.approx([60.0, 40.0, 80.0, 80.0, 0.0])  # never below half of now
    assert zone_headroom_series(100.0, None, [1.0, 2.0], 1.0) == [0.0, 0.0]  # stale meter
    assert zone_headroom_series(100.0, 40.0, [5.0], 0.0) == [60.0]  # no city load: persistence


@pytest.mark.parametrize(
    ("day", "slots", "departure_slot"),
    [
        # 00:00 → 06:00 local is 5 real hours on the spring day and 7 on the autumn day.
        (date(2026, 3, 29), 92, 20),
        (date(2026, 10, 25), 100, 28),
        (date(2026, 6, 1), 96, 24),
    ],
)
def test_planning_a_local_day_across_dst(day: date, slots: int, departure_slot: int) -> None:
    grid = local_day_slots(day)
    leave = datetime.combine(day, time(6, 0), tzinfo=ZoneInfo("Europe/Berlin"))
    built = build_problem(
        snapshot(
            start=grid[0],
            slots=len(grid),
            sessions=[session("s", "c1", leave.astimezone(UTC))],
            zones=[PlanZone("sub", None, 100.0), PlanZone("feeder", "sub", [40.0] * len(grid))],
            renewable_kw=[0.0] * len(grid),
        )
    )
    assert built.problem.slots == slots
    assert built.problem.sessions[0].departure_slot == departure_slot


@given(
    st.lists(
        st.tuples(
            st.floats(-48, 96),  # departure, hours from the start
            st.floats(0, 100),  # requested [kWh]
            st.floats(0, 120),  # delivered [kWh]
            st.sampled_from(["c1", "c2", "c9"]),
        ),
        max_size=20,
    ),
    st.sampled_from([(15, 92), (15, 96), (15, 100), (60, 24), (5, 288)]),
)
@settings(max_examples=100, deadline=None)
def test_every_built_session_respects_the_contract(
    items: list[tuple[float, float, float, str]], grid: tuple[int, int]
) -> None:
    minutes, count = grid
    sessions = [
        session(f"s{i}", charger, START + timedelta(hours=h), requested, delivered)
        for i, (h, requested, delivered, charger) in enumerate(items)
    ]
    built = build_problem(
        snapshot(
            slot_minutes=minutes,
            slots=count,
            sessions=sessions,
            # Scalar capacities fit every grid; the chargers' zone must exist (the optimizer
            # checks it).
            zones=[PlanZone("sub", None, 100.0), PlanZone("feeder", "sub", 40.0)],
            renewable_kw=0.0,
        )
    )
    leaves = {s.id: s.departure for s in sessions}
    rating = {c.id: c.max_kw for c in CHARGERS}
    for s in built.problem.sessions:
        assert 0 <= s.arrival_slot < s.departure_slot <= count
        # The departure's slot is left out only when the need fits the whole slots before it.
        end = min(count, math.ceil((leaves[s.id] - START) / timedelta(minutes=minutes)))
        if s.departure_slot < max(1, end):
            assert s.energy_kwh <= rating[s.charger] * s.departure_slot * minutes / 60.0
        assert s.energy_kwh > 0 and math.isfinite(s.energy_kwh)
        assert s.charger in {"c1", "c2"}
    assert len(built.problem.sessions) + len(built.skipped) == len(sessions)
