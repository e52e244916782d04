"""The dispatch policy's cut ranks (who gives way in a full zone) and a new car's pace."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.planning.dispatch_policy import (
    GUESS_RANK,
    PROBE_RANK,
    TIGHT_RANK,
    cut_ranks,
    paced_kw,
)
from gridcoord.planning.planner import another_chunk
from gridcoord.sessions import ChargingSession, Source

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


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


def test_a_default_need_met_is_planned_for_another_chunk_until_the_car_is_full() -> None:
    # Issue 12: a home car that wanted 32 kWh got the 15 kWh default and then nothing.
    met = replace(session("c", 8.0, 15.0), request_source=Source.DEFAULT, delivered_kwh=15.2)
    assert another_chunk(met, False, 15.0).remaining_kwh == pytest.approx(15.0)
    assert another_chunk(met, True, 15.0) == met  # it showed it is full: nothing more
    reported = replace(met, request_source=Source.DEVICE)
    assert another_chunk(reported, False, 15.0) == reported  # a need given is the need
    under = replace(met, delivered_kwh=10.0)
    assert another_chunk(under, False, 15.0) == under  # the default is still to come
