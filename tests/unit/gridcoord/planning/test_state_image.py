"""The frozen state image: a planning run and a dispatch read only what was frozen.

Pure logic, no services: the city of `test_coordinator`, the real optimizer, and solvers that
change the live state while they solve.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

import optimizer
from adapters.contract.reading import AssetKind
from gridcoord.config import Config
from gridcoord.outcomes import ActivePlan
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.dispatch_policy import DispatchPolicy
from gridcoord.planning.planner import Planner
from gridcoord.planning.state import CityState
from gridcoord.storage.outcomes import plan_points, setpoint_points
from gridcoord.timegrid import to_rfc3339
from tests.unit.gridcoord.planning.test_coordinator import NOW, city, feed, reading


def test_an_image_does_not_change_after_the_freeze() -> None:
    state = CityState(city())
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        state.observe(reading(meter, AssetKind.METER, NOW, power_w=10_000.0))
    state.observe(reading("c1", AssetKind.CHARGER, NOW, power_w=0.0, connected=True))
    image = state.freeze(NOW, histories=True)
    assert [s.charger_id for s in image.sessions] == ["c1"]

    later = NOW + timedelta(minutes=1)
    state.note_setpoints({"c1": 22.0})
    state.observe(reading("c1", AssetKind.CHARGER, later, power_w=3_700.0, connected=True))
    state.observe(reading("c2", AssetKind.CHARGER, later, power_w=0.0, connected=True))
    state.observe(reading("meter-lt-1", AssetKind.METER, later, power_w=30_000.0))

    assert [s.charger_id for s in image.sessions] == ["c1"]
    assert image.latest["meter-lt-1"].ts == NOW and "c2" not in image.latest
    assert dict(image.vehicle_max_kw) == {} and dict(image.previous_setpoints_kw) == {}
    with pytest.raises(TypeError):
        image.latest["c2"] = image.latest["c1"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.sessions = ()  # type: ignore[misc]

    now = state.freeze(later)
    assert [s.charger_id for s in now.sessions] == ["c1", "c2"]
    [c1] = [s for s in now.sessions if s.charger_id == "c1"]
    assert now.vehicle_max_kw[c1.id] == pytest.approx(3.7)  # as drawn: the plan counts on it
    assert now.load_history == ()  # histories only when asked for


def test_an_image_holds_the_measured_spare_renewable_power() -> None:
    # The test city has no consumer meters: its non-EV load is the root meter's net load
    # plus the generation it nets out minus the charging (as its load history).
    state = CityState(city())
    state.observe(reading("pv-1", AssetKind.PV, NOW, power_w=20_000.0))
    assert state.freeze(NOW).spare_kw is None  # no load measured yet: unknown, not 0
    state.observe(reading("c1", AssetKind.CHARGER, NOW, power_w=5_000.0, connected=True))
    state.observe(reading("meter-feeder", AssetKind.METER, NOW, power_w=10_000.0))
    # load = 10 + 20 - 5 = 25 kW; spare = 20 - 25 = -5 kW
    assert state.freeze(NOW).spare_kw == pytest.approx(-5.0)
    state.observe(reading("pv-1", AssetKind.PV, NOW, power_w=40_000.0))
    state.observe(reading("meter-feeder", AssetKind.METER, NOW, power_w=-10_000.0))
    assert state.freeze(NOW).spare_kw == pytest.approx(15.0)  # load 25 kW, PV 40 kW


def test_with_consumer_meters_the_spare_power_is_generation_minus_their_load() -> None:
    config = Config(
        zones=[{"id": "lt", "capacity_kw": 100.0, "meter": "meter-lt"}],
        assets=[
            {"id": "meter-lt", "kind": "meter", "zone": "lt", "rated_kw": 100.0},
            {"id": "houses", "kind": "meter", "zone": "lt", "rated_kw": 100.0},
            {"id": "shop", "kind": "meter", "zone": "lt", "rated_kw": 100.0},
            {"id": "pv-1", "kind": "pv", "zone": "lt", "rated_kw": 50.0},
            {"id": "wind-1", "kind": "wind", "zone": "lt", "rated_kw": 50.0},
        ],
    )
    state = CityState(config)
    state.observe(reading("meter-lt", AssetKind.METER, NOW, power_w=-5_000.0))
    assert state.freeze(NOW).spare_kw is None  # a zone meter is no consumer's load
    state.observe(reading("houses", AssetKind.METER, NOW, power_w=30_000.0))
    state.observe(reading("shop", AssetKind.METER, NOW, power_w=10_000.0))
    state.observe(reading("pv-1", AssetKind.PV, NOW, power_w=25_000.0))
    state.observe(reading("wind-1", AssetKind.WIND, NOW, power_w=20_000.0))
    assert state.freeze(NOW).spare_kw == pytest.approx(5.0)  # 45 kW against 40 kW


def c1_draws(state: CityState, t: datetime, watts: float) -> frozenset[str]:
    """c1 reports a plugged-in car drawing ``watts`` at ``t``: the sessions known full after."""
    state.observe(reading("c1", AssetKind.CHARGER, t, power_w=watts, connected=True))
    return state.freeze(t).vehicle_full


def test_a_car_that_stops_drawing_while_allowed_more_is_full_until_it_draws_again() -> None:
    state = CityState(city())
    t = NOW
    c1_draws(state, t, 0.0)
    state.note_setpoints({"c1": 11.0})
    t += timedelta(minutes=1)
    assert c1_draws(state, t, 0.0) == frozenset()  # never drew yet: not full, idle
    for kw, full in ((7.4, False), (0.0, True), (0.5, True), (7.4, False)):
        t += timedelta(minutes=1)
        assert bool(c1_draws(state, t, kw * 1000)) is full, kw
    state.note_setpoints({"c1": 1.0})  # allowed too little to tell
    t += timedelta(minutes=1)
    assert c1_draws(state, t, 0.0) == frozenset()


def test_a_car_that_never_draws_while_allowed_more_is_full_after_a_probe() -> None:
    # Issue 12: cars plugged in full before the service saw them draw were never known full;
    # each was allowed 22 kW, counted as charging against the measured surplus.
    state = CityState(city())
    t = NOW
    c1_draws(state, t, 0.0)
    state.note_setpoints({"c1": 11.0})
    seen = []
    for _ in range(7):
        t += timedelta(minutes=1)
        seen.append(bool(c1_draws(state, t, 0.0)))
    # Idle from the first reading after the setpoint (NOW + 1 min): full 5 minutes later.
    assert seen == [False, False, False, False, False, True, True]
    t += timedelta(minutes=1)  # it draws after all (a timer in the car): not full
    assert c1_draws(state, t, 3_000.0) == frozenset()


def test_a_car_allowed_too_little_to_draw_starts_its_wait_again() -> None:
    state = CityState(city())
    t = NOW
    c1_draws(state, t, 0.0)
    for allowed in (11.0, 11.0, 11.0, 0.5, 11.0, 11.0, 11.0, 11.0, 11.0):
        state.note_setpoints({"c1": allowed})
        t += timedelta(minutes=1)
        full = c1_draws(state, t, 0.0)
    # Five minutes allowed 11 kW since the 0.5 kW minute, not eight: not yet full.
    assert full == frozenset()
    state.note_setpoints({"c1": 11.0})
    t += timedelta(minutes=1)
    assert len(c1_draws(state, t, 0.0)) == 1


def test_a_plan_is_made_from_the_image_whatever_arrives_during_the_solve() -> None:
    config = city()
    coordinator = Coordinator(config)
    solved: list[int] = []

    def meddling(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
        # Cars arrive and a meter jumps while the solver runs: the run must not see them.
        late = NOW + timedelta(seconds=30)
        for i in (3, 4, 5):
            coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, late, power_w=0.0,
                                        connected=True))  # fmt: skip
        solved.append(len(problem.sessions))
        return optimizer.solve(problem, time_limit_s=time_limit_s)

    coordinator = Coordinator(config, solver=meddling)
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        coordinator.observe(reading(meter, AssetKind.METER, NOW, power_w=10_000.0))
    for i in (0, 1, 2):
        coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, NOW, power_w=0.0,
                                    connected=True))  # fmt: skip
    outcome = coordinator.plan(NOW)
    assert solved == [3] and outcome.sessions == 3 and outcome.status == "optimal"
    [kept] = coordinator.plans()
    assert len(kept.session_ids) == 3
    # The next dispatch sees the late cars as arrivals the plan does not know.
    dispatch = coordinator.dispatch(NOW + timedelta(minutes=15))
    assert {"c3", "c4", "c5"} <= {c for c, kw in dispatch.setpoints_kw.items() if kw > 0}


def test_dispatch_is_a_function_of_the_image_and_the_plans() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    coordinator.plan(NOW)
    at = NOW + timedelta(minutes=16)
    feed(coordinator, at)
    image = coordinator.image(at)
    plans = coordinator.plans()
    policy = DispatchPolicy(config)
    first = policy.decide(image, plans)
    # Live state moves on (every car unplugs); the same image gives the same setpoints.
    for i in range(6):
        coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, at + timedelta(seconds=5),
                                    power_w=0.0, connected=False))  # fmt: skip
    assert policy.decide(image, plans) == first
    assert sum(first.setpoints_kw.values()) > 0
    assert coordinator.image(at + timedelta(seconds=6)).sessions == ()


def test_the_planner_alone_turns_an_image_into_a_plan() -> None:
    config = city()
    state = CityState(config)
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        state.observe(reading(meter, AssetKind.METER, NOW, power_w=10_000.0))
    state.observe(reading("c1", AssetKind.CHARGER, NOW, power_w=0.0, connected=True))
    outcome, active = Planner(config).plan(state.freeze(NOW, close_silent=True, histories=True))
    assert outcome.status == "optimal" and outcome.sessions == 1
    assert active.schedule_id == outcome.schedule_id and active.start == outcome.slot_start
    assert active.slots == len(active.chargers_kw["c1"]) > 0
    [point] = plan_points(outcome)
    assert point.fields["sessions"] == 1.0 and point.tags == {"schedule_id": outcome.schedule_id}


def test_setpoint_points_carry_every_charger_in_watts() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    dispatch = coordinator.dispatch(NOW)
    points = setpoint_points(dispatch)
    assert [p.tags["asset_id"] for p in points] == sorted(dispatch.setpoints_kw)
    for p in points:
        assert p.fields["max_power_w"] == dispatch.setpoints_kw[p.tags["asset_id"]] * 1000.0
        assert p.tags["schedule_id"] == dispatch.schedule_id


def test_a_tight_planned_car_takes_the_headroom_the_plan_leaves_before_the_others() -> None:
    # Issue 12: plans left a short stay short where its feeder was forecast full; the
    # measured zone had room. lt-1: 40 kW rating, 10 kW of other load: 30 kW of headroom.
    config = city()
    state = CityState(config)
    plugged = NOW - timedelta(hours=1)
    for ts in (plugged, NOW):
        for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
            state.observe(reading(meter, AssetKind.METER, ts, power_w=10_000.0))
        # c1 (22 kW): 10 kWh in 40 minutes, tight; c2 (11 kW): 20 kWh in 10 hours.
        for charger, kwh, left in (
            ("c1", 10.0, timedelta(minutes=40)),
            ("c2", 20.0, timedelta(hours=10)),
        ):
            state.observe(reading(charger, AssetKind.CHARGER, ts, power_w=0.0, connected=True,
                                  session_energy_wh=0.0, energy_request_wh=kwh * 1000,
                                  departure=to_rfc3339(NOW + left)))  # fmt: skip
    image = state.freeze(NOW)
    plan = ActivePlan(
        "p",
        NOW,
        {"c1": [2.0] * 96, "c2": [5.0] * 96},
        frozenset(s.id for s in image.sessions),
        96,
        (0.0,) * 96,
    )
    out = DispatchPolicy(config).decide(image, [plan])
    # lt-1's 30 kW less c2's 5 and the silent c0's 4.2 kW held: 20.8 kW, all of it to c1.
    assert out.setpoints_kw["c1"] == pytest.approx(20.8)
    assert out.setpoints_kw["c2"] == pytest.approx(5.0)  # as planned: it has time
