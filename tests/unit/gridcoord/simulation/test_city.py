"""The demo city: a valid configuration, telemetry the validation accepts, consistent meters,
setpoints obeyed (or ignored by the baseline), and KPIs that add up.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from adapters.contract.validation import build_reading
from gridcoord.config import ChargerType, Config
from gridcoord.dispatch import setpoint_payload, valid_until
from gridcoord.simulation.city import demo_city
from gridcoord.simulation.stepper import CitySimulation
from gridcoord.timegrid import parse_rfc3339

LAYOUT = demo_city(seed=3, chargers=120, feeders=2, transformers_per_feeder=3)
START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 17:00 in Berlin: cars arriving home


def test_layout_is_a_valid_configuration() -> None:
    config = Config(**LAYOUT.config())
    chargers = [a for a in config.assets if a.kind == "charger"]
    assert len(chargers) == 120
    assert len(config.zones) == 1 + 2 + 6
    mix = Counter(a.charger.type for a in chargers if a.charger is not None)
    assert mix[ChargerType.HOME] > mix[ChargerType.WORKPLACE] > mix[ChargerType.PUBLIC] > 0
    assert all(a.id.startswith(("charger-", "meter-", "pv-", "wind-")) for a in config.assets)
    assert demo_city(seed=3, chargers=120, feeders=2, transformers_per_feeder=3) == LAYOUT
    assert demo_city(seed=4, chargers=120, feeders=2, transformers_per_feeder=3) != LAYOUT


def test_telemetry_passes_validation_and_meters_add_up() -> None:
    config = Config(**LAYOUT.config())
    sim = CitySimulation(LAYOUT, 3, START)
    for minute in range(1, 31):
        sim.step(START + timedelta(minutes=minute))
    telemetry = sim.telemetry()
    assert set(telemetry) == {a.id for a in config.assets}
    for asset_id, payload in telemetry.items():
        asset = config.asset(asset_id)
        assert asset is not None
        values = {k: v for k, v in payload.items() if k != "ts"}
        ts = parse_rfc3339(payload["ts"])
        build_reading(asset, values, ts=ts, now=ts)  # raises Rejected if implausible
    # The substation meter sees every load and charger minus all generation.
    consumers = [a.id for a in config.assets if a.kind in ("charger",)] + [
        load.id for load in LAYOUT.loads
    ]
    generators = [p.id for p in LAYOUT.pv] + [LAYOUT.wind_id]
    expected = math.fsum(telemetry[a]["power_w"] for a in consumers) - math.fsum(
        telemetry[g]["power_w"] for g in generators
    )
    assert telemetry["meter-sub-1"]["power_w"] == pytest.approx(expected)
    assert any(p["connected"] for a, p in telemetry.items() if a.startswith("charger-"))


def test_controlled_chargers_obey_and_the_baseline_does_not() -> None:
    controlled = CitySimulation(LAYOUT, 3, START)
    baseline = CitySimulation(LAYOUT, 3, START, controlled=False)
    now = START
    for _ in range(60):
        until = valid_until(now)
        for cid in controlled.chargers:
            payload = setpoint_payload(0.0, now=now, until=until, schedule_id="zero")
            assert controlled.receive_setpoint(cid, payload)
            assert not baseline.receive_setpoint(cid, payload)
        now += timedelta(minutes=1)
        controlled.step(now)
        baseline.step(now)
    assert all(c.delivered_total_kwh == 0.0 for c in controlled.chargers.values())
    assert sum(c.delivered_total_kwh for c in baseline.chargers.values()) > 10.0
    assert not controlled.receive_setpoint("charger-9999", {"max_power_w": 1.0})
    assert controlled.kpi.ev_kwh == 0.0 < baseline.kpi.ev_kwh


def test_the_same_seed_replays_the_same_city() -> None:
    runs = []
    for _ in range(2):
        sim = CitySimulation(LAYOUT, 3, START, controlled=False)
        for minute in range(0, 121, 5):
            sim.step(START + timedelta(minutes=minute))
        runs.append((sim.telemetry(), sim.kpis()))
    assert runs[0] == runs[1]


def test_cars_in_progress_at_the_start_arrive_with_their_energy_so_far() -> None:
    # Cars plugged in before the start keep their true request and departure and bring what
    # they got since plug-in at full rate: no start-up artefact of 0 kWh in a shortened stay.
    sim = CitySimulation(LAYOUT, 3, START, controlled=False)
    assert sim.energy_before, "some cars are plugged in at 17:00"
    for visit, before in sim.energy_before.items():
        charger = sim.chargers[visit.charger_id]
        assert charger.visit == visit  # plugged in from the first instant
        hours = (START - visit.arrival).total_seconds() / 3600.0
        rate = min(charger.max_kw, visit.max_kw)
        assert before == pytest.approx(min(visit.energy_kwh, rate * hours))
        assert charger.telemetry(START)["session_energy_wh"] == pytest.approx(1000 * before)
    assert sim.kpi.ev_kwh == 0.0  # energy before the run is not the run's


def test_sessions_still_plugged_in_are_judged_on_their_certain_shortfall() -> None:
    sim = CitySimulation(LAYOUT, 3, START)  # controlled, never sent a setpoint: fail-safe power
    end = START + timedelta(hours=3)
    for minute in range(1, 181):
        sim.step(START + timedelta(minutes=minute))
    records = sim.session_records()
    assert len(records) == len(sim.visits())
    still = [r for r in records if not r.departed]
    assert still and any(r.departed for r in records)
    for r in still:
        assert r.unmet_kwh == pytest.approx(
            max(0.0, r.request_kwh - r.delivered_kwh - r.rate_kw * r.left_h)
        )
    assert sim.now == end


def test_a_day_uncontrolled_overloads_a_transformer_somewhere() -> None:
    # The demo city is built so that coordination matters on a winter evening.
    city = demo_city(seed=1)
    sim = CitySimulation(city, 1, datetime(2026, 11, 24, 15, 0, tzinfo=UTC), controlled=False)
    for minute in range(0, 6 * 60 + 1, 2):
        sim.step(datetime(2026, 11, 24, 15, 0, tzinfo=UTC) + timedelta(minutes=minute))
    assert sim.kpis()["zone_overloads"] > 0
