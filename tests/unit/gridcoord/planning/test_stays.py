"""Departure defaults learnt per charger type from completed sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.contract.reading import AssetKind, ChargerType, Reading
from gridcoord.config import Config
from gridcoord.planning.state import CityState
from gridcoord.planning.stays import MAX_STAY_H, MIN_STAY_H, StayLearner

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_the_median_is_offered_only_after_enough_stays_and_bounded() -> None:
    learner = StayLearner(min_sessions=3)
    learner.add(ChargerType.PUBLIC, 1.0)
    learner.add(ChargerType.PUBLIC, 2.0)
    assert learner.median_h(ChargerType.PUBLIC) is None  # the configured default until then
    learner.add(ChargerType.PUBLIC, 1.4)
    assert learner.median_h(ChargerType.PUBLIC) == 1.4
    assert learner.median_h(ChargerType.HOME) is None
    for stay in (1e9, float("nan"), -3.0, 0.0):
        learner.add(ChargerType.WORKPLACE, stay)
    assert learner.counts()["workplace"] == 3  # NaN says nothing; the rest clipped
    extremes = StayLearner(1)
    extremes.add(ChargerType.HOME, 1e9)
    assert extremes.median_h(ChargerType.HOME) == MAX_STAY_H
    extremes.add(ChargerType.PUBLIC, 0.0)
    assert extremes.median_h(ChargerType.PUBLIC) == MIN_STAY_H


def config(min_sessions: int) -> Config:
    return Config(
        zones=[{"id": "z", "capacity_kw": 100.0}],
        assets=[
            {
                "id": f"c{i}",
                "kind": "charger",
                "zone": "z",
                "rated_kw": 22.0,
                "charger": {"type": "public"},
            }
            for i in range(4)
        ]
        + [
            {
                "id": "h",
                "kind": "charger",
                "zone": "z",
                "rated_kw": 11.0,
                "charger": {"type": "home"},
            }
        ],
        planning={"learned_departure_sessions": min_sessions},
    )


def charger(asset: str, ts: datetime, connected: bool) -> Reading:
    return Reading(asset, AssetKind.CHARGER, "z", ts, {"connected": connected, "power_w": 0.0})


def test_completed_public_stays_become_the_default_departure_and_are_stored() -> None:
    state = CityState(config(min_sessions=3))
    for i, minutes in enumerate((60, 84, 120)):  # median 84 min = 1.4 h
        state.observe(charger(f"c{i}", T0, True))
        state.observe(charger(f"c{i}", T0 + timedelta(minutes=minutes), False))
    assert state.learned_stays_h() == {"public": 1.4}
    points = state.take_stay_points()
    assert [p.fields["stay_h"] for p in points] == [1.0, 1.4, 2.0]
    assert {p.tags["charger_type"] for p in points} == {"public"}
    assert state.take_stay_points() == []
    # A new public session now leaves after 1.4 h, not the configured 2 h.
    later = T0 + timedelta(hours=3)
    state.observe(charger("c3", later, True))
    image = state.freeze(later)
    (session,) = [s for s in image.sessions if s.charger_id == "c3"]
    assert session.departure == later + timedelta(hours=1.4)


def test_a_type_with_a_local_departure_keeps_its_rule_and_warm_stays_count() -> None:
    state = CityState(config(min_sessions=1))
    assert state.warm_stays(ChargerType.HOME, [3.0, 3.0]) == 2
    state.observe(charger("h", T0, True))
    (session,) = state.freeze(T0).sessions
    # 08:00 UTC = 09:00 local: the next 07:00 local at least 4 h later, not plug-in + 3 h.
    assert session.departure == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert state.warm_stays(ChargerType.PUBLIC, [0.5]) == 1
    state.observe(charger("c0", T0, True))
    image = state.freeze(T0)
    (public,) = [s for s in image.sessions if s.charger_id == "c0"]
    assert public.departure == T0 + timedelta(hours=0.5)
