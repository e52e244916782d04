"""The dispatch policy's cut ranks (who gives way in a full zone), a new car's pace, and the
renewable surplus its top-ups take (measured now, not forecast).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.config import Config
from gridcoord.dispatch import charger_limits
from gridcoord.outcomes import ActivePlan
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.dispatch_policy import (
    GUESS_RANK,
    PROBE_RANK,
    TIGHT_RANK,
    DispatchPolicy,
    cut_ranks,
    flexible_chargers,
    hold_back_kw,
    paced_kw,
    surplus_left_kw,
)
from gridcoord.planning.planner import another_chunk
from gridcoord.planning.state import StateImage
from gridcoord.sessions import ChargingSession, Source
from tests.unit.gridcoord.planning.test_coordinator import assert_within_limits, city, feed

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
# test_coordinator's two transformers with 10 kW of meter load each: their ratings less it.
HEADROOM = {"feeder": 50.0, "lt-1": 30.0, "lt-2": 30.0}


def fed_city() -> tuple[Config, StateImage]:
    """test_coordinator's city, a car at every charger, frozen a minute after its readings."""
    config = city()
    coordinator = Coordinator(config)
    feed(coordinator, NOW)
    return config, coordinator.image(NOW + timedelta(minutes=1))


def flat_plan(kw: dict[str, float], session_ids: frozenset[str]) -> ActivePlan:
    """A plan from ``NOW`` giving each charger the same power in all four slots, no surplus."""
    return ActivePlan("plan", NOW, {c: [v] * 4 for c, v in kw.items()}, session_ids, 4, (0.0,) * 4)


def session(charger: str, hours_left: float, need_kwh: float) -> ChargingSession:
    return ChargingSession(
        id=f"{charger}@x",
        charger_id=charger,
        plugged_in_at=NOW - timedelta(hours=1),
        departure=NOW + timedelta(hours=hours_left),
        departure_source=Source.DEVICE,
        requested_kwh=need_kwh,
        request_source=Source.DEVICE,
        delivered_kwh=0.0,
        power_kw=0.0,
        last_seen=NOW,
    )


def test_the_most_slack_gives_way_first() -> None:
    sessions = [
        session("home", 12.0, 15.0),  # 11 kW x 12 h / 15 kWh: 8.8x its charging time
        session("work", 4.0, 20.0),  # 2.2x
        session("public", 1.0, 10.0),  # 1.1x: a short public stay
        session("full", 1.0, 0.0),  # nothing needed
        session("gone", -1.0, 5.0),  # past its departure and still here: tightest
    ]
    power = {s.charger_id: 11.0 for s in sessions}
    ranks = cut_ranks(sessions, power, NOW)
    assert ranks == {"home": 0, "work": 1, "public": 2, "gone": 2}


def test_a_guess_ranks_below_every_need_and_a_probe_above() -> None:
    # Issue 12: a car past a default need is planned for another chunk, a guess, cut first;
    # a car in its probe is cut last, so that it can show its own limit.
    guessed = replace(session("guess", 12.0, 0.0), request_source=Source.DEFAULT)
    sessions = [guessed, session("home", 12.0, 15.0), session("new", 12.0, 15.0)]
    power = {s.charger_id: 11.0 for s in sessions}
    assert cut_ranks(sessions, power, NOW, probes={"new"}) == {
        "guess": GUESS_RANK,
        "home": 0,
        "new": PROBE_RANK,
    }
    assert GUESS_RANK < 0 < TIGHT_RANK < PROBE_RANK


SLOT = timedelta(minutes=15)


def test_a_new_car_is_paced_to_meet_its_need_by_its_departure() -> None:
    # 20 kWh in half of the 4 h left (PACE_MARGIN 2).
    assert paced_kw(session("c", 4.0, 20.0), NOW, 11.0, SLOT) == pytest.approx(10.0)
    assert paced_kw(session("c", 4.0, 20.0), NOW, 11.0, SLOT, margin=1.0) == pytest.approx(5.0)
    assert paced_kw(session("c", 1.0, 20.0), NOW, 11.0, SLOT) == 11.0  # cannot: its rating
    assert paced_kw(session("c", 0.2, 1.0), NOW, 11.0, SLOT) == 11.0  # leaves within a slot
    assert paced_kw(session("c", -1.0, 5.0), NOW, 11.0, SLOT) == 11.0  # overdue
    assert paced_kw(session("c", 4.0, 0.0), NOW, 11.0, SLOT) == 0.0  # nothing needed


def test_a_default_departure_is_paced_as_the_planner_hedges_it() -> None:
    # Plugged in an hour ago until 3 h from now (a default): planned a quarter of the 4 h
    # stay early, 2 h from now; 10 kWh in half of that.
    guessed = replace(session("c", 3.0, 10.0), departure_source=Source.DEFAULT)
    assert paced_kw(guessed, NOW, 11.0, SLOT) == pytest.approx(10.0)


@given(
    hours=st.floats(-5, 48),
    need=st.floats(0, 200),
    full=st.floats(0, 350),
    margin=st.floats(1, 4),
)
def test_the_pace_is_within_the_rating_and_meets_the_need_when_it_can(
    hours: float, need: float, full: float, margin: float
) -> None:
    kw = paced_kw(session("c", hours, need), NOW, full, SLOT, margin=margin)
    assert 0.0 <= kw <= full
    if need > 0 and hours * 3600 > SLOT.total_seconds():
        # Delivered at this pace to the departure: the need with its margin, or all the
        # rating allows.
        expected = min(margin * need, full * hours)
        assert kw * hours == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_the_top_up_takes_the_surplus_measured_now() -> None:
    # Measured: what the charging leaves of it, whatever the plan expected.
    assert surplus_left_kw(0.0, 120.0, 50.0) == 70.0  # the forecast saw none: 70 kW free
    assert surplus_left_kw(300.0, 40.0, 50.0) == 0.0  # the forecast's surplus is not there
    assert surplus_left_kw(300.0, -80.0, 0.0) == 0.0  # the city imports
    # Nothing measured (no non-EV load reading yet): the plan's expected leftover.
    assert surplus_left_kw(30.0, None, 50.0) == 30.0
    assert surplus_left_kw(math.nan, None, 0.0) == 0.0


@given(
    plan_left=st.floats(allow_nan=True, allow_infinity=True),
    measured=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    ev=st.floats(0, 1e6),
)
def test_the_surplus_left_is_finite_and_never_more_than_the_measurement_leaves(
    plan_left: float, measured: float | None, ev: float
) -> None:
    left = surplus_left_kw(plan_left, measured, ev)
    assert math.isfinite(left) and left >= 0.0
    if measured is not None and math.isfinite(measured):
        assert left == max(0.0, measured - ev)
    elif math.isfinite(plan_left):
        assert left == max(0.0, plan_left)


def test_a_dispatch_tops_up_from_the_measured_surplus_within_every_limit() -> None:
    # A November evening: the plan forecasts no PV. The same image with a measured surplus
    # (a forecast that erred) lets the cars take it; with none, or an import, only the plan's
    # slot is dispatched.
    config, image = fed_city()
    # A plan that knows every car and gives each 2 kW in this slot, expecting no surplus.
    plan = flat_plan({f"c{i}": 2.0 for i in range(6)}, frozenset(s.id for s in image.sessions))
    policy = DispatchPolicy(config)
    unknown = policy.decide(replace(image, spare_kw=None), [plan])
    importing = policy.decide(replace(image, spare_kw=-50.0), [plan])
    sunny = policy.decide(replace(image, spare_kw=25.0), [plan])
    assert unknown.setpoints_kw == importing.setpoints_kw == {f"c{i}": 2.0 for i in range(6)}
    # 12 kW planned, 13 kW of the 25 kW measured is left: the cars take it.
    assert sum(sunny.setpoints_kw.values()) == pytest.approx(25.0)
    assert all(sunny.setpoints_kw[c] >= 2.0 for c in unknown.setpoints_kw)
    # Much more than the zones have room for: the top-ups stop at their headroom.
    windy = policy.decide(replace(image, spare_kw=500.0), [plan])
    assert sum(windy.setpoints_kw.values()) == pytest.approx(50.0)
    assert_within_limits(config, windy, HEADROOM)


def test_charging_that_counted_on_a_missing_surplus_waits_where_the_car_can_wait() -> None:
    # Issue 12 (summer, seed 1): a night's plans counted on wind the meters then saw weaker;
    # the cars charged from the grid, and the burst that came an hour later found them full.
    planned = {"home": 10.0, "work": 10.0, "public": 10.0}
    flexible = {"home", "work"}
    # 30 kW counted on 30 kW of forecast surplus; 10 kW measured: 20 kW would be imported.
    assert hold_back_kw(planned, flexible, 30.0, 10.0) == {"home": 0.0, "work": 0.0}
    # 25 kW measured: 5 kW missing, the flexible cars give a quarter each.
    assert hold_back_kw(planned, flexible, 30.0, 25.0) == pytest.approx({"home": 7.5, "work": 7.5})
    # Only the surplus the plan counted on is held back: of 30 kW planned on 12 kW of
    # forecast surplus, 18 kW was import the plan chose (a deadline, the evening's cheapest
    # hour); with 6 kW measured only 6 kW wait.
    held = hold_back_kw(planned, flexible, 12.0, 6.0)
    assert math.fsum(planned.values()) - math.fsum(held.values()) - 10.0 == pytest.approx(6.0)
    # The surplus is there, or the plan forecast none: nothing waits.
    assert hold_back_kw(planned, flexible, 30.0, 30.0) == {}
    assert hold_back_kw(planned, flexible, -40.0, -80.0) == {}
    # The tight car never waits, even when nobody else can.
    assert hold_back_kw(planned, set(), 30.0, 0.0) == {}


@settings(max_examples=200, deadline=None)
@given(
    planned=st.dictionaries(
        st.sampled_from("abcdef"),
        st.one_of(st.floats(-5.0, 50.0), st.just(math.nan), st.just(math.inf)),
        max_size=6,
    ),
    flexible=st.sets(st.sampled_from("abcdef")),
    forecast=st.floats(allow_nan=True),
    measured=st.floats(allow_nan=True),
)
def test_what_waits_is_never_more_than_the_missing_surplus(
    planned: dict[str, float], flexible: set[str], forecast: float, measured: float
) -> None:
    held = hold_back_kw(planned, flexible, forecast, measured)
    assert set(held) <= flexible & set(planned)
    for c, kw in held.items():
        assert 0.0 <= kw <= planned[c]
    if not held:
        return
    drawing = math.fsum(kw for kw in planned.values() if math.isfinite(kw) and kw > 0)
    counted = min(drawing, max(0.0, forecast))
    waited = math.fsum(planned[c] - kw for c, kw in held.items())
    missing = counted - max(0.0, measured)
    assert waited <= missing + 1e-9
    # Every flexible car gives back alike: all the missing power, or all it planned.
    flexible_kw = math.fsum(planned[c] for c in held)
    assert waited == pytest.approx(min(missing, flexible_kw))


def test_only_a_car_whose_driver_gave_departure_and_need_waits_and_only_with_slack() -> None:
    sessions = [
        session("home", 12.0, 15.0),  # 11 kW x 12 h / 15 kWh: 8.8x its charging time
        session("work", 4.0, 20.0),  # 2.2x
        session("public", 1.0, 10.0),  # 1.1x: tight
        session("full", 5.0, 0.0),  # nothing needed
    ]
    ranks = cut_ranks(sessions, {s.charger_id: 11.0 for s in sessions}, NOW)
    assert flexible_chargers(sessions, ranks) == {"home", "work"}
    # A guess of either (the charger type's default) never waits, whatever its slack.
    guessed = [
        replace(sessions[0], departure_source=Source.DEFAULT),
        replace(sessions[1], request_source=Source.DEFAULT),
    ]
    assert flexible_chargers(guessed, ranks) == set()
    # A car in its probe, or one no rank is known for, does not wait either.
    probing = cut_ranks(sessions, {s.charger_id: 11.0 for s in sessions}, NOW, {"home"})
    assert flexible_chargers(sessions, probing) == {"work"}
    assert flexible_chargers(sessions, {}) == set()


def test_a_dispatch_holds_back_what_counted_on_a_surplus_the_meters_do_not_see() -> None:
    config, image = fed_city()
    ids = frozenset(s.id for s in image.sessions)
    plan = replace(flat_plan({f"c{i}": 2.0 for i in range(6)}, ids), spare_kw=(12.0,) * 4)
    policy = DispatchPolicy(config)
    # The drivers at c0-c3 gave departure (in 10 h) and need, and their cars are past their
    # probe (plugged in an hour ago: a car in its probe draws its rating); c4 and c5 are
    # guesses.
    told = {
        s.id: replace(
            s,
            plugged_in_at=NOW - timedelta(hours=1),
            departure=NOW + timedelta(hours=10),
            departure_source=Source.DEVICE,
            requested_kwh=20.0,
            request_source=Source.DEVICE,
        )
        for s in image.sessions
        if s.charger_id in {"c0", "c1", "c2", "c3"}
    }
    image = replace(image, sessions=tuple(told.get(s.id, s) for s in image.sessions))
    power = {c.id: c.max_kw for c in charger_limits(config)}
    flexible = flexible_chargers(image.sessions, cut_ranks(image.sessions, power, image.at))
    assert flexible == {"c0", "c1", "c2", "c3"}
    sunny = policy.decide(replace(image, spare_kw=12.0), [plan])
    cloudy = policy.decide(replace(image, spare_kw=0.0), [plan])
    assert sunny.setpoints_kw == {f"c{i}": 2.0 for i in range(6)}
    # 12 kW counted on the forecast surplus and none measured: the flexible cars wait.
    waited = math.fsum(sunny.setpoints_kw[c] - cloudy.setpoints_kw[c] for c in flexible)
    assert waited == pytest.approx(min(12.0, 2.0 * len(flexible)))
    for c in set(sunny.setpoints_kw) - flexible:
        assert cloudy.setpoints_kw[c] == sunny.setpoints_kw[c]
    # A plan that kept no forecast holds nothing back.
    blind = policy.decide(replace(image, spare_kw=0.0), [replace(plan, spare_kw=())])
    assert blind.setpoints_kw == sunny.setpoints_kw
    assert_within_limits(config, cloudy, HEADROOM)


def test_a_default_need_met_is_planned_for_another_chunk_until_the_car_is_full() -> None:
    # Issue 12: a home car that wanted 32 kWh got the 15 kWh default and then nothing.
    met = replace(session("c", 8.0, 15.0), request_source=Source.DEFAULT, delivered_kwh=15.2)
    assert another_chunk(met, False).remaining_kwh == pytest.approx(15.0)
    assert another_chunk(met, True) == met  # it showed it is full: nothing more
    reported = replace(met, request_source=Source.DEVICE)
    assert another_chunk(reported, False) == reported  # a need given is the need
    under = replace(met, delivered_kwh=10.0)
    assert another_chunk(under, False) == under  # the default is still to come


def test_cars_that_showed_they_are_full_leave_the_surplus_to_the_cars_that_draw() -> None:
    # Issue 12 (winter, seed 4): cars that had stopped drawing were allowed their rating and
    # counted as charging against the measured surplus; 170 kWh of an 805 kWh midday surplus
    # went unused while cars with a need were plugged in beside them.
    config, image = fed_city()
    by_charger = {s.charger_id: s for s in image.sessions}
    # c4 is planned and full; c5's need is met, so the plan left it out, and it is full.
    met = replace(by_charger["c5"], delivered_kwh=by_charger["c5"].requested_kwh)
    sessions = tuple(met if s.charger_id == "c5" else s for s in image.sessions)
    full = frozenset({by_charger["c4"].id, met.id})
    planned = frozenset(s.id for s in sessions if s.charger_id != "c5")
    plan = flat_plan({f"c{i}": 2.0 for i in range(6)}, planned)
    policy = DispatchPolicy(config)
    sunny = replace(image, sessions=sessions, spare_kw=25.0)
    before = policy.decide(sunny, [plan])
    after = policy.decide(replace(sunny, vehicle_full=full), [plan])
    drawing = [f"c{i}" for i in range(4)]
    # Not known full: c4's 2 kW and c5's full rating (a met guess) count against the 25 kW.
    assert math.fsum(before.setpoints_kw[c] for c in drawing) < 25.0 - 1.0
    # Known full: the cars that draw take all 25 kW; the full ones only what is left over.
    assert math.fsum(after.setpoints_kw[c] for c in drawing) == pytest.approx(25.0)
    assert_within_limits(config, after, HEADROOM)
    # Nothing left over (a full feeder): the full cars get no top-up, c4 keeps its plan's slot
    # (the next plan drops it), c5 asks for nothing.
    tight = policy.decide(replace(sunny, vehicle_full=full, spare_kw=500.0), [plan])
    assert math.fsum(tight.setpoints_kw[c] for c in drawing) == pytest.approx(48.0)
    assert (tight.setpoints_kw["c4"], tight.setpoints_kw["c5"]) == pytest.approx((2.0, 0.0))
    assert_within_limits(config, tight, HEADROOM)


@settings(max_examples=60, deadline=None)
@given(
    full=st.lists(st.booleans(), min_size=6, max_size=6),
    planned=st.lists(st.floats(0.0, 60.0), min_size=6, max_size=6),
    spare=st.one_of(st.none(), st.floats(-200.0, 2_000.0)),
)
def test_whichever_cars_are_full_every_limit_holds(
    full: list[bool], planned: list[float], spare: float | None
) -> None:
    config, image = fed_city()
    by_charger = {s.charger_id: s for s in image.sessions}
    idle = frozenset(by_charger[f"c{i}"].id for i, f in enumerate(full) if f)
    plan = flat_plan(
        {f"c{i}": kw for i, kw in enumerate(planned)}, frozenset(s.id for s in image.sessions)
    )
    outcome = DispatchPolicy(config).decide(
        replace(image, vehicle_full=idle, spare_kw=spare), [plan]
    )
    assert_within_limits(config, outcome, HEADROOM)
