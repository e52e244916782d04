"""The forecasts on the demo city's own weather and loads: better than naive guesses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from gridcoord.forecast import ForecastInputs, PvFleet, build_forecast, forecast_errors
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.timegrid import horizon_slots


def test_pv_and_load_forecasts_beat_naive_ones_on_the_simulated_city() -> None:
    city = demo_city(seed=1, chargers=4, feeders=1, transformers_per_feeder=2)
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    sim = CitySimulation(city, 1, start, controlled=False)
    pv_ids = [p.id for p in city.pv]
    load_ids = [load.id for load in city.loads]
    series: dict[str, list[tuple[datetime, float]]] = {"pv": [], "wind": [], "load": []}
    now = start
    while now < start + timedelta(days=15):
        now += timedelta(minutes=15)
        sim.step(now)
        t = sim.telemetry()
        series["pv"].append((now, sum(t[i]["power_w"] for i in pv_ids) / 1000))
        series["wind"].append((now, t[city.wind_id]["power_w"] / 1000))
        series["load"].append((now, sum(t[i]["power_w"] for i in load_ids) / 1000))

    plan_at = start + timedelta(days=14, hours=9)  # 11:00 local, two weeks of history
    history = {k: [(a, b) for a, b in v if a <= plan_at] for k, v in series.items()}
    starts = horizon_slots(plan_at, timedelta(hours=12))
    pv_fleet = PvFleet(city.latitude, city.longitude, sum(p.rated_kw for p in city.pv))
    inputs = ForecastInputs(
        pv=pv_fleet,
        wind_rated_kw=city.wind_farm.rated_kw,
        load_max_kw=10_000.0,
        pv_measured=history["pv"],
        wind_measured=history["wind"],
        load_history=history["load"],
    )
    forecast = build_forecast(inputs, starts, 15, plan_at)
    ours = forecast_errors(starts, forecast.by_kind(), series, 15)
    mean_load = float(np.mean([v for _, v in history["load"]]))
    naive = forecast_errors(
        starts,
        {"pv": np.zeros(len(starts)), "load": np.full(len(starts), mean_load)},
        series,
        15,
    )
    assert ours["pv"] is not None and naive["pv"] is not None
    assert ours["load"] is not None and naive["load"] is not None
    assert ours["pv"] < 0.5 * naive["pv"]
    assert ours["load"] < 0.5 * naive["load"]
    assert ours["wind"] is not None  # measured, not judged: wind is weather's to decide
