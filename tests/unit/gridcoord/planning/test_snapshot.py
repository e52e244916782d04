"""A planning snapshot taken from the simulated city: readings → sessions, headroom, forecast →
the optimizer's problem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.contract.reading import Reading
from adapters.contract.validation import build_reading
from gridcoord.config import Config
from gridcoord.forecast import ForecastInputs, PvFleet, build_forecast
from gridcoord.planning.problem_builder import build_problem
from gridcoord.planning.snapshot import take_snapshot
from gridcoord.sessions import SessionTracker
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.timegrid import horizon_slots, parse_rfc3339

START = datetime(2026, 10, 24, 15, 0, tzinfo=UTC)  # Saturday evening before the DST change


def test_snapshot_of_the_simulated_city() -> None:
    layout = demo_city(seed=2, chargers=40, feeders=2, transformers_per_feeder=2)
    config = Config(**layout.config())
    sim = CitySimulation(layout, 2, START, controlled=False)
    tracker = SessionTracker({c.id: c.type for c in layout.chargers})
    latest: dict[str, Reading] = {}
    load_history = []
    now = START
    for _ in range(120):
        now += timedelta(minutes=1)
        sim.step(now)
        for asset_id, payload in sim.telemetry().items():
            asset = config.asset(asset_id)
            assert asset is not None
            ts = parse_rfc3339(payload["ts"])
            values = {k: v for k, v in payload.items() if k != "ts"}
            reading = build_reading(asset, values, ts=ts, now=ts)
            latest[asset_id] = reading
            tracker.update(reading)
        load_w = sum(float(latest[x.id].fields["power_w"]) for x in layout.loads)
        load_history.append((now, load_w / 1000.0))

    starts = horizon_slots(now, timedelta(hours=24))  # crosses 25 Oct 03:00 CEST → 02:00 CET
    inputs = ForecastInputs(
        pv=PvFleet(layout.latitude, layout.longitude, sum(p.rated_kw for p in layout.pv)),
        wind_rated_kw=layout.wind_farm.rated_kw,
        load_max_kw=10_000.0,
        load_history=load_history,
    )
    forecast = build_forecast(inputs, starts, 15, now)
    snapshot = take_snapshot(config, latest, tracker.open_sessions(), forecast, now)
    built = build_problem(snapshot)
    problem = built.problem.model_dump(mode="json", exclude_none=True)

    assert problem["slots"] == 96 and problem["start"] == "2026-10-24T17:15:00Z"
    assert len(problem["chargers"]) == 40
    assert len(problem["sessions"]) + len(built.skipped) == len(tracker.open_sessions()) > 0
    capacities = {z["id"]: z["capacity_kw"] for z in problem["zones"]}
    rating = {z.id: z.rating_kw for z in layout.zones}
    for zone_id, series in capacities.items():
        assert len(series) == 96
        assert all(0.0 <= v <= rating[zone_id] for v in series)
    # The evening's household load leaves a transformer less than its rating.
    assert capacities["lt-01"][0] < rating["lt-01"]
