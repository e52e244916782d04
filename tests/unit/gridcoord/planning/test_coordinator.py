"""The coordinator: readings → plans → safe setpoints, with the clock and the solver injected.

No services: the real optimizer solves small problems; tests inject failing, slow or hostile
solvers where the point is what happens when the solver misbehaves.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimizer
from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import Config
from gridcoord.planning.coordinator import Coordinator, PlanOutcome
from gridcoord.planning.dispatch_policy import PROBE
from gridcoord.storage.outcomes import plan_points, setpoint_points
from gridcoord.timegrid import floor_slot, local_day_slots, next_slot_start, to_rfc3339

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def city(**planning: Any) -> Config:
    """Two transformers under a feeder; chargers with and without a guaranteed minimum."""
    return Config(
        zones=[
            {"id": "feeder", "capacity_kw": 60.0, "meter": "meter-feeder"},
            {"id": "lt-1", "parent": "feeder", "capacity_kw": 40.0, "meter": "meter-lt-1"},
            {"id": "lt-2", "parent": "feeder", "capacity_kw": 40.0, "meter": "meter-lt-2"},
        ],
        assets=[
            {"id": "meter-feeder", "kind": "meter", "zone": "feeder", "rated_kw": 200.0},
            {"id": "meter-lt-1", "kind": "meter", "zone": "lt-1", "rated_kw": 100.0},
            {"id": "meter-lt-2", "kind": "meter", "zone": "lt-2", "rated_kw": 100.0},
            {"id": "pv-1", "kind": "pv", "zone": "lt-1", "rated_kw": 30.0},
            *(
                {
                    "id": f"c{i}",
                    "kind": "charger",
                    "zone": "lt-1" if i < 3 else "lt-2",
                    "rated_kw": 22.0 if i % 2 else 11.0,
                    "charger": {
                        "type": "home" if i < 4 else "public",
                        "safe_power_kw": 1.4,
                        "guaranteed_kw": 4.2 if i == 0 else 0.0,
                    },
                }
                for i in range(6)
            ),
        ],
        planning={"solver_time_limit_s": 5.0, **planning},
    )


def reading(asset: str, kind: AssetKind, ts: datetime, **fields: Any) -> Reading:
    return Reading(asset, kind, None, ts, fields)


def feed(coordinator: Coordinator, now: datetime, *, meters_kw: float = 10.0) -> None:
    """One round of fresh telemetry: every charger has a car, meters see some load."""
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        coordinator.observe(reading(meter, AssetKind.METER, now, power_w=meters_kw * 1000.0))
    coordinator.observe(reading("pv-1", AssetKind.PV, now, power_w=0.0))
    for i in range(6):
        coordinator.observe(
            reading(f"c{i}", AssetKind.CHARGER, now, power_w=0.0, connected=True,
                    session_energy_wh=0.0)
        )  # fmt: skip


def assert_within_limits(
    config: Config, outcome: Any, headroom: dict[str, float], stale_meters: Collection[str] = ()
) -> None:
    """Every setpoint within its charger's rating and every measured zone within its headroom.

    A zone whose meter is stale holds its floors (stale chargers' safe power, minima) and no
    more: its load is unknown, which is no measured shortage.
    """
    ratings = {a.id: a.rated_kw for a in config.assets if a.kind is AssetKind.CHARGER}
    assert set(outcome.setpoints_kw) == set(ratings)
    for cid, kw in outcome.setpoints_kw.items():
        assert math.isfinite(kw) and 0.0 <= kw <= ratings[cid], (cid, kw)
        assert outcome.payloads[cid]["max_power_w"] == kw * 1000.0
    parents = {z.id: z.parent for z in config.zones}
    for zone in config.zones:
        members = []
        for a in config.assets:
            cursor = a.zone if a.kind is AssetKind.CHARGER else None
            while cursor is not None and cursor != zone.id:
                cursor = parents[cursor]
            if cursor == zone.id:
                members.append(outcome.setpoints_kw[a.id])
        if zone.id not in stale_meters:
            assert math.fsum(members) <= headroom[zone.id], (zone.id, members)


def test_a_plan_is_solved_and_dispatched_within_every_limit() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    outcome = coordinator.plan(NOW)
    assert outcome.status == "optimal" and outcome.failure is None
    assert outcome.slot_start == NOW + timedelta(minutes=15)
    assert outcome.schedule_id == "2026-11-24T17:15:00Z"
    assert outcome.sessions == 6 and outcome.kpis["unmet_kwh"] >= 0.0
    assert "unmet_kwh" in outcome.baseline
    [point] = plan_points(outcome)
    assert point.measurement == "plan" and point.tags == {"schedule_id": outcome.schedule_id}
    assert point.fields["status"] == "optimal"

    later = NOW + timedelta(minutes=16)
    feed(coordinator, later)
    dispatch = coordinator.dispatch(later)
    assert dispatch.schedule_id == outcome.schedule_id and not dispatch.fallback
    assert dispatch.valid_until == later + timedelta(minutes=3)
    # Headroom now: rating minus the meters' 10 kW of non-EV load.
    assert_within_limits(config, dispatch, {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0})
    assert sum(dispatch.setpoints_kw.values()) > 0.0
    points = setpoint_points(dispatch)
    assert {p.tags["asset_id"] for p in points} == set(dispatch.setpoints_kw)
    assert all(p.measurement == "setpoint" for p in points)


def test_dispatch_before_any_plan_is_the_fair_share_fallback() -> None:
    coordinator = Coordinator(city())
    feed(coordinator, NOW)
    dispatch = coordinator.dispatch(NOW)
    assert dispatch.fallback and dispatch.schedule_id == "2026-11-24T17:00:00Z/fallback"
    # lt-1's 30 kW shared by its three cars in proportion to their ratings (11, 22, 11).
    assert dispatch.setpoints_kw["c1"] == pytest.approx(2 * dispatch.setpoints_kw["c2"])
    assert math.fsum(dispatch.setpoints_kw[c] for c in ("c0", "c1", "c2")) <= 30.0


def failing_solver(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
    raise RuntimeError("HiGHS crashed")


def test_a_failing_solver_falls_back_and_says_so() -> None:
    config = city()
    coordinator = Coordinator(config, solver=failing_solver)
    feed(coordinator, NOW)
    outcome = coordinator.plan(NOW)
    assert outcome.status == "fallback"
    assert outcome.failure is not None and "HiGHS crashed" in outcome.failure
    assert outcome.schedule_id.endswith("/fallback")
    assert plan_points(outcome)[0].fields["failure"] == outcome.failure
    later = NOW + timedelta(minutes=15)
    feed(coordinator, later)
    dispatch = coordinator.dispatch(later)
    assert dispatch.fallback and dispatch.schedule_id == "2026-11-24T17:15:00Z/fallback"
    assert_within_limits(config, dispatch, {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0})
    assert sum(dispatch.setpoints_kw.values()) > 40.0  # the fallback does charge the cars


def test_an_overrunning_solver_is_abandoned_before_the_slot_starts() -> None:
    release = threading.Event()
    budgets: list[float] = []

    def slow(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
        budgets.append(time_limit_s)
        release.wait(30)  # ignores its limit, as a hung solver would
        return optimizer.solve(problem, time_limit_s=1.0)

    coordinator = Coordinator(city(), solver=slow)
    feed(coordinator, NOW)
    # 21.5 s before the boundary: the budget is what is left after the 20 s margin.
    now = next_slot_start(NOW) - timedelta(seconds=21.5)
    began = time.monotonic()
    outcome = coordinator.plan(now)
    took = time.monotonic() - began
    try:
        assert budgets and 0.0 < budgets[0] <= 1.5
        assert outcome.status == "fallback" and outcome.failure is not None
        assert "overran" in outcome.failure
        assert took < 21.5  # control came back before the slot started
        # While the abandoned solve still runs, no second one is started.
        second = coordinator.plan(now + timedelta(seconds=0.5))
        assert second.status == "fallback" and "still running" in (second.failure or "")
        assert len(budgets) == 1
    finally:
        release.set()


def test_no_time_left_goes_straight_to_the_fallback() -> None:
    calls: list[float] = []

    def solver(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
        calls.append(time_limit_s)
        return optimizer.solve(problem, time_limit_s=time_limit_s)

    coordinator = Coordinator(city(), solver=solver)
    feed(coordinator, NOW)
    outcome = coordinator.plan(next_slot_start(NOW) - timedelta(seconds=5))
    assert outcome.status == "fallback" and outcome.failure == "no time left before the slot starts"
    assert calls == []


def test_a_stale_charger_gets_its_safe_power() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    coordinator.plan(NOW)
    later = NOW + timedelta(minutes=20)
    feed(coordinator, later)
    # c4 went silent 3 minutes ago (its stale limit is 120 s); the others are fresh.
    silent = later + timedelta(minutes=3)
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        coordinator.observe(reading(meter, AssetKind.METER, silent, power_w=10_000.0))
    for i in (0, 1, 2, 3, 5):
        coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, silent, connected=True,
                                    power_w=0.0))  # fmt: skip
    dispatch = coordinator.dispatch(silent)
    assert dispatch.setpoints_kw["c4"] == 1.4
    assert dispatch.limited["c4"] == "stale"
    assert_within_limits(config, dispatch, {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0})


def test_a_stale_zone_meter_holds_the_zone_at_its_limit() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    coordinator.plan(NOW)
    later = NOW + timedelta(minutes=20)
    feed(coordinator, later)
    # lt-1's meter falls silent; everything else keeps reporting.
    silent = later + timedelta(minutes=3)
    for meter in ("meter-feeder", "meter-lt-2"):
        coordinator.observe(reading(meter, AssetKind.METER, silent, power_w=10_000.0))
    for i in range(6):
        coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, silent, connected=True,
                                    power_w=0.0))  # fmt: skip
    dispatch = coordinator.dispatch(silent)
    # No headroom beyond the floors: c0 keeps its guaranteed 4.2 kW, c1 and c2 get nothing.
    assert dispatch.setpoints_kw["c0"] == 4.2
    assert dispatch.setpoints_kw["c1"] == dispatch.setpoints_kw["c2"] == 0.0
    # An unknown load is no measured shortage: the minimum stays, no shortfall (the stale
    # meter is its own alarm).
    assert dispatch.shortfalls == []
    assert sum(dispatch.setpoints_kw[c] for c in ("c3", "c4", "c5")) > 0.0


@st.composite
def hostile_schedules(draw: st.DrawFn) -> dict[str, list[float]]:
    values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0.0, max_value=50.0),
    )
    return {f"c{i}": draw(st.lists(values, min_size=0, max_size=120)) for i in range(6)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=hostile_schedules(),
    meters=st.lists(st.floats(min_value=-50.0, max_value=150.0), min_size=3, max_size=3),
    fresh=st.lists(st.booleans(), min_size=9, max_size=9),
    minutes=st.integers(min_value=0, max_value=40),
)
def test_no_setpoint_above_any_limit(
    plan: dict[str, list[float]], meters: list[float], fresh: list[bool], minutes: int
) -> None:
    """Whatever the solver says and whatever the state, the limits hold (DESIGN 4)."""
    config = city()

    def hostile(problem: optimizer.Problem, time_limit_s: float) -> optimizer.Schedule:
        schedule = optimizer.fallback_schedule(problem)
        return schedule.model_copy(update={"status": "optimal", "chargers": plan})

    coordinator = Coordinator(config, solver=hostile)
    feed(coordinator, NOW)
    coordinator.plan(NOW)
    now = NOW + timedelta(minutes=15 + minutes)
    names = ["meter-feeder", "meter-lt-1", "meter-lt-2"]
    for name, kw, ok in zip(names, meters, fresh[:3], strict=True):
        if ok:
            coordinator.observe(reading(name, AssetKind.METER, now, power_w=kw * 1000.0))
    for i, ok in enumerate(fresh[3:]):
        if ok:
            coordinator.observe(reading(f"c{i}", AssetKind.CHARGER, now, power_w=3000.0,
                                        connected=True))  # fmt: skip
    dispatch = coordinator.dispatch(now)
    # The headroom the safety layer had to respect: rating − (meter − fresh EV draw), 0 when
    # the meter is stale; recomputed here from the test's own inputs.
    ev = {z: 0.0 for z in ("feeder", "lt-1", "lt-2")}
    for i, ok in enumerate(fresh[3:]):
        if ok:
            zone = "lt-1" if i < 3 else "lt-2"
            ev[zone] += 3.0
            ev["feeder"] += 3.0
    ratings = {"feeder": 60.0, "lt-1": 40.0, "lt-2": 40.0}
    headroom = {}
    for (zone, rating), kw, ok in zip(ratings.items(), meters, fresh[:3], strict=True):
        # The meter's power as its reading carries it (W) and the coordinator reads it back
        # (kW): `kw * 1000 / 1000` may differ from `kw` by an ulp, and so may the headroom.
        non_ev = max(0.0, (kw * 1000.0) / 1000.0 - ev[zone])
        headroom[zone] = min(rating, max(0.0, rating - non_ev)) if ok else 0.0
    stale_meters = {zone for zone, ok in zip(ratings, fresh[:3], strict=True) if not ok}
    assert_within_limits(config, dispatch, headroom, stale_meters)
    short = {o.zone for o in dispatch.shortfalls}
    for i, ok in enumerate(fresh[3:]):
        if not ok:
            # A stale charger holds its safe power, unless a measured zone above it is too
            # small even for that: then the zone limit wins (and raises the alarm).
            zone = "lt-1" if i < 3 else "lt-2"
            safe = 4.2 if i == 0 else 1.4
            kw = dispatch.setpoints_kw[f"c{i}"]
            assert kw == safe if not short & {zone, "feeder"} else kw <= safe


def quarter_hours(day: date) -> Iterator[datetime]:
    yield from local_day_slots(day, "Europe/Berlin")


@pytest.mark.parametrize(("day", "count"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100)])
def test_planning_across_the_dst_days(day: date, count: int) -> None:
    """Every quarter hour around the change of a 23 h and a 25 h local day is planned and
    dispatched from its own plan: the plan made at a boundary covers the slots from the next
    one on. The run covers local midnight to 04:00 UTC, the change (01:00 UTC) inside it; the
    rest of the day is like any other and cost a minute and a half per day under load.
    """
    day_slots = list(quarter_hours(day))
    assert len(day_slots) == count
    slots = [s for s in day_slots if s < datetime(day.year, day.month, day.day, 4, tzinfo=UTC)]
    assert len(slots) == {92: 20, 100: 24}[count]  # 5 h and 6 h of real time
    config = city(horizon_h=6.0)
    coordinator = Coordinator(config, solver=lambda p, t: optimizer.solve(p, time_limit_s=t))
    outcomes: list[PlanOutcome] = []
    feed(coordinator, slots[0] - timedelta(minutes=15))
    outcomes.append(coordinator.plan(slots[0] - timedelta(minutes=15)))
    for start in slots:
        feed(coordinator, start)
        outcomes.append(coordinator.plan(start))
        for minute in (0, 7, 14):
            now = start + timedelta(minutes=minute)
            feed(coordinator, now)
            dispatch = coordinator.dispatch(now)
            assert dispatch.schedule_id == to_rfc3339(floor_slot(now)), now
            assert not dispatch.fallback
    assert all(o.status == "optimal" for o in outcomes)
    planned = [o.slot_start for o in outcomes]
    assert planned[:-1] == slots and planned[-1] == slots[-1] + timedelta(minutes=15)
    # Forecast errors are measured from the second run on.
    assert "load" in outcomes[2].forecast_mae


def test_observe_is_safe_from_many_threads() -> None:
    coordinator = Coordinator(city())

    def writer(offset: int) -> None:
        for k in range(200):
            ts = NOW + timedelta(seconds=k, microseconds=offset)
            coordinator.observe(reading("pv-1", AssetKind.PV, ts, power_w=1000.0 * offset))
            coordinator.observe(reading(f"c{offset}", AssetKind.CHARGER, ts, connected=True,
                                        power_w=2000.0))  # fmt: skip

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcome = coordinator.plan(NOW + timedelta(minutes=4))
    assert outcome.sessions == 6


def test_a_plan_too_old_is_not_dispatched() -> None:
    coordinator = Coordinator(city())
    feed(coordinator, NOW)
    outcome = coordinator.plan(NOW)
    late = outcome.slot_start + timedelta(minutes=31)  # two planning runs missed
    feed(coordinator, late)
    dispatch = coordinator.dispatch(late)
    assert dispatch.fallback and dispatch.schedule_id.endswith("/fallback")


def test_naive_times_are_refused_clearly() -> None:
    coordinator = Coordinator(city())
    with pytest.raises(ValueError, match="naive"):
        coordinator.dispatch(datetime(2026, 11, 24, 17, 0))


def test_a_car_arriving_after_the_plan_charges_at_once_at_its_pace() -> None:
    config = city()
    coordinator = Coordinator(config)
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        coordinator.observe(reading(meter, AssetKind.METER, NOW, power_w=10_000.0))
    outcome = coordinator.plan(NOW)  # nobody plugged in yet
    assert outcome.status == "optimal" and outcome.sessions == 0
    later = NOW + timedelta(minutes=20)
    feed(coordinator, later)  # now every charger has a car the plan does not know
    dispatch = coordinator.dispatch(later)
    assert not dispatch.fallback
    assert_within_limits(config, dispatch, {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0})
    # Its first minutes at full power (what a car draws then tells its own limit): the
    # feeder's 50 kW are all taken.
    assert math.fsum(dispatch.setpoints_kw.values()) == pytest.approx(50.0)
    # Then each asks for the power that meets its default need (15 kWh) in half the time to
    # its departure as planned (hedged a quarter of the stay early): home until 07:00 Berlin
    # (06:00 UTC) from 17:20 UTC → 02:50 UTC, 9.5 h at 17:20; public 2 h → 1.5 h, at most
    # its rating. lt-1 (c0-c2, home) does not bind and neither does the feeder, so c0's
    # §14a minimum (4.2 kW) does not apply to its 3.2 kW; lt-2 (c3 home, c4 and c5 public:
    # 35.6 kW asked) is cut to its 30 kW.
    paced = later + PROBE + timedelta(minutes=1)
    feed(coordinator, paced)
    dispatch = coordinator.dispatch(paced)
    sp = dispatch.setpoints_kw
    assert_within_limits(config, dispatch, {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0})
    home = 2.0 * 15.0 / (9.5 - (paced - later).total_seconds() / 3600.0)
    assert [sp["c0"], sp["c1"], sp["c2"]] == pytest.approx([home] * 3)
    assert sp["c0"] < 4.2
    assert sp["c3"] + sp["c4"] + sp["c5"] == pytest.approx(30.0)
    # With the old rule the minimum holds everywhere.
    old = Coordinator(city(guaranteed_minimum="always"))
    for meter in ("meter-feeder", "meter-lt-1", "meter-lt-2"):
        old.observe(reading(meter, AssetKind.METER, NOW, power_w=10_000.0))
    old.plan(NOW)
    feed(old, later)
    feed(old, paced)
    assert old.dispatch(paced).setpoints_kw["c0"] == 4.2


def test_an_external_forecast_is_used_and_recorded() -> None:
    from gridcoord.forecast import parse_external

    coordinator = Coordinator(city())
    feed(coordinator, NOW)
    start = next_slot_start(NOW)
    coordinator.observe_forecast(
        parse_external(
            {
                "kind": "pv",
                "issued_at": to_rfc3339(NOW),
                "start": to_rfc3339(start),
                "slot_minutes": 15,
                "values_kw": [25.0] * 200,
            }
        )
    )
    outcome = coordinator.plan(NOW)
    assert outcome.forecast_sources == {"pv": "external", "wind": "model", "load": "model"}


def test_histories_stay_bounded() -> None:
    from gridcoord.planning.history import BucketSeries, RunningTotal

    series = BucketSeries(timedelta(minutes=1), timedelta(hours=2))
    total = RunningTotal()
    for minute in range(3 * 24 * 60):
        ts = NOW + timedelta(minutes=minute)
        series.add(ts, total.update(f"pv-{minute % 7}", 1.0))
    assert len(series) <= 2 * 60 + 16
    points = series.series()
    assert points[-1] == (NOW + timedelta(minutes=3 * 24 * 60 - 1), 7.0)
    series.add(NOW, 100.0)  # far older than the window: ignored
    assert series.series()[0][0] > NOW


def test_a_car_slower_than_its_charger_does_not_hold_back_its_zone() -> None:
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    before = coordinator.dispatch(NOW)  # fair share of lt-1's 30 kW
    assert before.setpoints_kw["c1"] > 3.7 * 1.1 + 0.5
    # After the other cars' probe (in theirs they would be cut last).
    later = NOW + PROBE + timedelta(minutes=1)
    feed(coordinator, later)
    # c1's car draws 3.7 kW (one phase) although it may draw over 10 kW.
    coordinator.observe(reading("c1", AssetKind.CHARGER, later + timedelta(seconds=1),
                                power_w=3700.0, connected=True))  # fmt: skip
    after = coordinator.dispatch(later + timedelta(seconds=2))
    # It asks for what it can draw plus a margin to grow (the feeder then scales all).
    assert 3.7 < after.setpoints_kw["c1"] <= 3.7 * 1.1 + 0.5
    # What it cannot use goes to the other cars of its transformer, still within 30 kW.
    assert after.setpoints_kw["c0"] > before.setpoints_kw["c0"]
    assert after.setpoints_kw["c2"] > before.setpoints_kw["c2"]
    assert math.fsum(after.setpoints_kw[c] for c in ("c0", "c1", "c2")) <= 30.0
    # ...and the plan knows the car's limit too, as the car drew it: a plan counting on the
    # dispatch's margin to grow would pack its energy into too few slots.
    coordinator.plan(later + timedelta(seconds=3))
    solved = coordinator._planner.last_solved
    assert solved is not None
    [c1_session] = [s for s in solved[0].sessions if s.charger == "c1"]
    assert c1_session.max_kw == pytest.approx(3.7)
    plan_time = NOW + timedelta(minutes=15)
    feed(coordinator, plan_time)
    assert coordinator.dispatch(plan_time).setpoints_kw["c1"] <= 3.7 * 1.1 + 0.5 + 1e-9


def _same_objectives_as_a_cold_solve(coordinator: Coordinator) -> None:
    """The last plan's schedule has the objectives `optimizer.solve` finds for its problem."""
    solved = coordinator._planner.last_solved
    assert solved is not None
    problem, schedule = solved
    cold = optimizer.solve(problem, time_limit_s=30)
    assert schedule.status == cold.status == "optimal"
    total = max(1.0, math.fsum(s.energy_kwh for s in problem.sessions))
    assert schedule.unmet_kwh_total == pytest.approx(
        cold.unmet_kwh_total, rel=1e-6, abs=1e-6 * total
    )
    assert schedule.import_cost == pytest.approx(cold.import_cost, rel=1e-6, abs=1e-6)


def test_re_plans_start_warm_from_the_last_optimum_and_equal_a_cold_solve() -> None:
    coordinator = Coordinator(city())
    try:
        feed(coordinator, NOW)
        assert coordinator.plan(NOW).status == "optimal"
        assert coordinator.solver_starts == {"cold": 1}
        _same_objectives_as_a_cold_solve(coordinator)
        incremental = coordinator._planner._incremental
        # LEMON's basis (when OR-Tools answered the cold solve first, it is built after).
        assert incremental is not None and incremental.ready(timeout_s=60)

        # A car leaves: an event re-plan on the same slots, zones and chargers.
        later = NOW + timedelta(minutes=3)
        feed(coordinator, later, meters_kw=14.0)
        coordinator.observe(
            reading("c4", AssetKind.CHARGER, later, power_w=0.0, connected=False,
                    session_energy_wh=0.0)
        )  # fmt: skip
        assert coordinator.plan(later, event=True).status == "optimal"
        assert coordinator.solver_starts == {"cold": 1, "warm": 1}
        _same_objectives_as_a_cold_solve(coordinator)

        # The next quarter hour: the horizon moves on by one slot, still the same network.
        nxt = NOW + timedelta(minutes=15)
        assert incremental.ready(timeout_s=60)
        feed(coordinator, nxt, meters_kw=12.0)
        assert coordinator.plan(nxt).status == "optimal"
        assert coordinator.solver_starts == {"cold": 1, "warm": 2}
        _same_objectives_as_a_cold_solve(coordinator)
    finally:
        coordinator.close()
    assert not incremental.ready()  # closed: its LEMON child is gone


def test_a_failing_incremental_solve_is_solved_cold_by_the_production_solver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: optimizer.IncrementalSolver, problem: Any, time_limit_s: float) -> Any:
        raise RuntimeError("the LEMON child vanished")

    monkeypatch.setattr(optimizer.IncrementalSolver, "solve", broken)
    coordinator = Coordinator(city())
    try:
        feed(coordinator, NOW)
        outcome = coordinator.plan(NOW)
        assert outcome.status == "optimal" and outcome.failure is None
        assert coordinator.solver_starts == {"solve": 1}
        _same_objectives_as_a_cold_solve(coordinator)
    finally:
        coordinator.close()
