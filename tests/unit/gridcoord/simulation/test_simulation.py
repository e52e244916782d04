"""The demo city's models: deterministic in (seed, time), physically plausible, and chargers
that never draw more than their setpoint while it is valid, nor their fail-safe power after.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.config import ChargerType
from gridcoord.dispatch import setpoint_payload, valid_until
from gridcoord.forecast import PvFleet, clear_sky_kw
from gridcoord.simulation import (
    EvVisit,
    SimulatedCharger,
    WindFarm,
    bdew_dynamisation,
    clear_sky_index,
    commercial_kw,
    household_kw,
    pv_kw,
    visits_on,
    wind_kw,
    wind_speed_ms,
)
from gridcoord.simulation.weather import daily_cloudiness, synoptic_wind_ms
from gridcoord.timegrid import local_day_slots

BERLIN = ZoneInfo("Europe/Berlin")
FLEET = PvFleet(latitude=52.42, longitude=10.79, rated_kw=20_000.0)
T0 = datetime(2026, 6, 22, 10, 0, tzinfo=UTC)


def test_pv_is_clear_sky_under_clouds_and_deterministic() -> None:
    slots = local_day_slots(date(2026, 6, 22))
    out = pv_kw(FLEET, slots, seed=7)
    clear = clear_sky_kw(FLEET, slots)
    assert np.all(out <= clear + 1e-9) and np.all(out >= 0.2 * clear - 1e-9)
    assert out.tolist() == pv_kw(FLEET, slots, seed=7).tolist()
    assert out.tolist() != pv_kw(FLEET, slots, seed=8).tolist()
    assert all(0.2 <= clear_sky_index(3, t) <= 1.0 for t in slots)


def test_wind_farm_uses_the_published_e82_curve() -> None:
    farm = WindFarm(turbines=1, availability=1.0)
    assert farm.rated_kw == pytest.approx(2350.0)  # ENERCON E-82 E2 curve peaks at 2,350 kW
    out = farm.output_kw([0.0, 2.0, 8.0, 10.0, 14.0, 24.9, 25.1])
    assert out.tolist() == pytest.approx([0.0, 3.0, 815.0, 1580.0, 2350.0, 2350.0, 0.0])
    # Between curve points the output is interpolated.
    assert farm.output_kw([8.5])[0] == pytest.approx((815.0 + 1180.0) / 2)


def test_wind_is_plausible_and_deterministic() -> None:
    farm = WindFarm()
    slots = [T0 + timedelta(minutes=15 * i) for i in range(96 * 14)]
    speeds = np.array([wind_speed_ms(1, t) for t in slots])
    assert speeds.min() >= 0 and 4.0 < speeds.mean() < 10.0 and speeds.max() < 20.0
    out = wind_kw(farm, slots[:96], seed=1)
    assert np.all(out >= 0) and np.all(out <= farm.rated_kw)
    assert out.tolist() == wind_kw(farm, slots[:96], seed=1).tolist()


def test_household_profile_is_h0_like() -> None:
    winter = local_day_slots(date(2026, 1, 14))  # a Wednesday
    profile = [household_kw(t) for t in winter]
    berlin_hours = [t.astimezone(BERLIN).hour for t in winter]
    evening = np.mean([p for p, h in zip(profile, berlin_hours, strict=True) if h in (18, 19)])
    night = np.mean([p for p, h in zip(profile, berlin_hours, strict=True) if h in (2, 3)])
    assert evening > 2.5 * night
    assert bdew_dynamisation(1) == pytest.approx(1.24, abs=0.01)
    assert bdew_dynamisation(180) == pytest.approx(0.80, abs=0.01)
    summer = np.mean([household_kw(t) for t in local_day_slots(date(2026, 7, 15))])
    assert summer < 0.8 * np.mean(profile)


def test_commercial_profile_is_busy_on_weekday_working_hours() -> None:
    monday_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    sunday_10 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert commercial_kw(monday_10) > 3 * commercial_kw(sunday_10)


def test_ev_visits_are_shaped_by_charger_type() -> None:
    days = [date(2026, 11, 2) + timedelta(days=i) for i in range(56)]  # eight weeks from Monday
    home = [v for d in days for v in visits_on("home-1", ChargerType.HOME, d, seed=1)]
    work = [v for d in days for v in visits_on("work-1", ChargerType.WORKPLACE, d, seed=1)]
    public = [v for d in days for v in visits_on("pub-1", ChargerType.PUBLIC, d, seed=1)]
    assert 20 < len(home) < 50
    assert np.median([v.arrival.astimezone(BERLIN).hour for v in home]) in range(16, 21)
    assert all(v.departure.astimezone(BERLIN).hour in range(4, 12) for v in home)
    assert all(v.arrival.astimezone(BERLIN).weekday() < 5 for v in work)
    assert np.median([(v.departure - v.arrival).total_seconds() / 3600 for v in work]) > 6
    assert len(public) > len(home)
    assert np.median([(v.departure - v.arrival).total_seconds() / 3600 for v in public]) < 3
    for visits in (home, work, public):
        for v in visits:
            hours = (v.departure - v.arrival).total_seconds() / 3600
            assert 0 < v.energy_kwh <= min(60.0, 0.9 * v.max_kw * hours) + 1e-9
            assert v.max_kw > 0
        assert all(v.departure > v.arrival for v in visits)
    # One charger's visits never overlap, and the same seed gives the same city.
    ordered = sorted(public, key=lambda v: v.arrival)
    assert all(a.departure <= b.arrival for a, b in itertools.pairwise(ordered))
    assert visits_on("pub-1", ChargerType.PUBLIC, days[3], 1) == visits_on(
        "pub-1", ChargerType.PUBLIC, days[3], 1
    )


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_ev_visits_on_dst_days(day: date) -> None:
    for kind in ChargerType:
        for i in range(20):
            for v in visits_on(f"c-{i}", kind, day, seed=5):
                assert v.arrival.tzinfo is not None and v.departure > v.arrival


def visit(kwh: float = 30.0, vehicle_kw: float = 22.0, hours: float = 8.0) -> EvVisit:
    return EvVisit("c1", T0, T0 + timedelta(hours=hours), kwh, vehicle_kw, True)


def test_charger_obeys_its_setpoint_then_falls_back() -> None:
    c = SimulatedCharger("c1", max_kw=22.0, failsafe_kw=4.2)
    c.plug_in(visit())
    assert c.limit_kw(T0) == 4.2  # no setpoint yet: fail-safe
    until = valid_until(T0, 60.0, 2)  # three minutes
    assert c.receive_setpoint(setpoint_payload(11.0, now=T0, until=until, schedule_id="s1"))
    energy = c.advance(T0, T0 + timedelta(minutes=10))
    # 3 minutes at 11 kW, then 7 minutes at the fail-safe 4.2 kW.
    assert energy == pytest.approx(11.0 * 3 / 60 + 4.2 * 7 / 60)
    assert c.power_kw == pytest.approx(4.2)
    tele = c.telemetry(T0 + timedelta(minutes=10))
    assert tele["connected"] is True
    assert tele["session_energy_wh"] == pytest.approx(energy * 1000)
    assert tele["energy_request_wh"] == 30000.0


def test_charger_stops_when_full_and_unplugs_at_departure() -> None:
    c = SimulatedCharger("c1", max_kw=11.0, failsafe_kw=11.0)
    c.plug_in(visit(kwh=5.0, hours=2.0))
    assert c.advance(T0, T0 + timedelta(hours=1)) == pytest.approx(5.0)
    assert c.power_kw == 0.0
    c.advance(T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert c.visit is None and c.telemetry(T0)["connected"] is False
    assert c.finished[0][1] == pytest.approx(5.0)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"max_power_w": "11000", "valid_until": "2026-06-22T10:03:00Z"},
        {"max_power_w": -1.0, "valid_until": "2026-06-22T10:03:00Z"},
        {"max_power_w": float("nan"), "valid_until": "2026-06-22T10:03:00Z"},
        {"max_power_w": True, "valid_until": "2026-06-22T10:03:00Z"},
        {"max_power_w": 1000.0, "valid_until": "soon"},
        {"max_power_w": 1000.0, "valid_until": "2026-06-22T10:03:00"},
    ],
)
def test_malformed_setpoints_are_ignored(payload: dict[str, Any]) -> None:
    c = SimulatedCharger("c1", max_kw=22.0, failsafe_kw=2.0)
    assert not c.receive_setpoint(payload)
    assert c.rejected_setpoints == 1 and c.limit_kw(T0) == 2.0


@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),  # minutes until the next event
            st.one_of(st.none(), st.floats(0, 30)),  # a new setpoint [kW], or none
            st.integers(10, 600),  # its validity [s]
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 10),  # fail-safe [kW]
    st.floats(1, 30),  # vehicle limit [kW]
)
@settings(max_examples=150, deadline=None)
def test_draw_never_exceeds_the_limit_in_force(
    events: list[tuple[int, float | None, int]], failsafe: float, vehicle_kw: float
) -> None:
    c = SimulatedCharger("c1", max_kw=22.0, failsafe_kw=failsafe)
    c.plug_in(visit(kwh=100.0, vehicle_kw=vehicle_kw, hours=12.0))
    now = T0
    for minutes, setpoint, validity in events:
        if setpoint is not None:
            c.receive_setpoint(
                setpoint_payload(
                    setpoint,
                    now=now,
                    until=now + timedelta(seconds=validity),
                    schedule_id="s",
                )
            )
        # Step minute by minute and check the average draw of every minute against the
        # largest limit in force during it (the limit can change at valid_until).
        for _ in range(minutes):
            nxt = now + timedelta(minutes=1)
            limits = [c.limit_kw(now), c.limit_kw(nxt - timedelta(microseconds=1))]
            energy = c.advance(now, nxt)
            assert energy * 60 <= max(limits) + 1e-9
            assert c.power_kw <= min(22.0, vehicle_kw, max(limits)) + 1e-9
            now = nxt


def test_weather_follows_the_seasons() -> None:
    # Northern Germany: windier and greyer in winter, calmer and brighter in summer.
    def month(m: int) -> list[datetime]:
        first = datetime(2026, m, 1, 11, 0, tzinfo=UTC)
        return [first + timedelta(hours=6 * i) for i in range(4 * 28)]

    for seed in (1, 2):
        january, july = month(1), month(7)
        wind_jan = np.mean([wind_speed_ms(seed, t) for t in january])
        wind_jul = np.mean([wind_speed_ms(seed, t) for t in july])
        assert wind_jan > 7.0 > 6.0 > wind_jul
        cloud_jan = np.mean([daily_cloudiness(seed, t) for t in january])
        cloud_jul = np.mean([daily_cloudiness(seed, t) for t in july])
        assert cloud_jan > 0.6 > cloud_jul
        # What a weather model sees is the wind without its gusts.
        assert all(abs(wind_speed_ms(seed, t) - synoptic_wind_ms(seed, t)) <= 1.0 for t in july)
