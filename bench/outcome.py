"""Benchmark: the demo's outcome on every season and seed — uncontrolled, coordinated, bound.

For each (season, seed) cell it runs the demo city over the demo's days
(`gridcoord.demo.command.SEASON_STARTS`) three ways and judges all three by the same KPI
definitions (`gridcoord.outcomes`):

* **uncontrolled**: every car at full power from plug-in (the demo's baseline);
* **coordinated**: the service's own planning and dispatch, driven in-process with the
  city's telemetry and setpoints the way the demo drives its service: the real `Coordinator`
  under the real `PlanningLoop` without its scheduler (`plan_once` every quarter hour,
  `dispatch_once` every other minute, which first runs a debounced event re-plan that a
  plug-in, a plug-out or a forecast asked for), the setpoints delivered through a
  `SetpointSink` into the city — the demo without MQTT and the store, so that the matrix
  fits in minutes.
  Before the start the coordinator observes the same week of PV, wind and load history the
  demo puts in its store. Where the simulated weather service exists
  (`gridcoord.simulation.weather_service`), its day-ahead forecasts reach the coordinator
  every six hours through the service's own decoding, as in the demo;
* **bound**: the perfect-foresight bound on the uncontrolled run's realised data
  (`gridcoord.demo.bound`).

Prints one markdown table (rows: cell x run; columns: every KPI), the issue's targets per
cell, and each cell's wall time beside the uncontrolled simulation's (the reference: the
machine is shared). Usage::

    .venv/bin/python bench/outcome.py [--hours 48] [--seeds 1 2 3] [--seasons winter spring summer]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The repository instead of bench/: bench/optimizer.py and bench/ocpp.py would shadow packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from adapters.contract.validation import build_reading  # noqa: E402
from adapters.mqtt.setpoints import setpoint_message  # noqa: E402
from adapters.sink import Delivery, Setpoint  # noqa: E402
from gridcoord.config import Config  # noqa: E402
from gridcoord.demo.bound import perfect_foresight  # noqa: E402
from gridcoord.demo.scenario import SEASON_STARTS  # noqa: E402
from gridcoord.planning.coordinator import Coordinator  # noqa: E402
from gridcoord.planning.loop import PlanningLoop  # noqa: E402
from gridcoord.simulation import CitySimulation, demo_city  # noqa: E402
from gridcoord.simulation.city import CityLayout  # noqa: E402
from gridcoord.timegrid import parse_rfc3339  # noqa: E402

Kpis = dict[str, float | int]
COLUMNS = (
    ("renewable_share", "renewable (surplus)", "{:.1%}"),
    ("renewable_share_prorata", "renewable (pro rata)", "{:.1%}"),
    ("unmet_kwh", "unmet kWh", "{:,.1f}"),
    ("unmet_above_floor_kwh", "unmet above floor kWh", "{:,.1f}"),
    ("requests_met_pct", "requests met %", "{:.1f}"),
    ("peak_import_kw", "peak import kW", "{:,.0f}"),
    ("zone_overloads", "overload zone-min", "{}"),
    ("zone_overloads_non_ev", "non-EV overload zone-min", "{}"),
    ("minima_over_limit", "minima over limit zone-min", "{}"),
    ("ev_kwh", "EV kWh", "{:,.0f}"),
)


def readings_of(config: Config, city: CitySimulation, chargers: bool = True) -> list[object]:
    """The city's telemetry at its `now` as validated readings (chargers optional)."""
    out = []
    charger_ids = {a.id for a in config.assets if a.kind == "charger"}
    for asset_id, payload in city.telemetry().items():
        if not chargers and asset_id in charger_ids:
            continue
        asset = config.asset(asset_id)
        assert asset is not None
        ts = parse_rfc3339(payload["ts"])
        values = {k: v for k, v in payload.items() if k != "ts"}
        out.append(build_reading(asset, values, ts=ts, now=ts))
    return out


FORECAST_EVERY = timedelta(hours=6)  # the demo's weather service issues four runs a day


def weather_feed(layout: CityLayout, seed: int, config: Config) -> Any:
    """A callable that hands the coordinator the weather service's forecasts at ``now``.

    None where this checkout has no simulated weather service (before issue 12's forecasts).
    """
    try:
        service_module = importlib.import_module("gridcoord.simulation.weather_service")
        decode = importlib.import_module("gridcoord.forecast.subscription").decode_forecast
        capacity = importlib.import_module("gridcoord.planning.planner").forecast_capacity_kw
    except (ImportError, AttributeError):
        return None
    weather = service_module.WeatherService(layout, seed)
    prefix = config.mqtt.topic_prefix
    limit = capacity(config)

    def feed(coordinator: Coordinator, now: datetime) -> None:
        for topic, payload in weather.publications(now, prefix):
            forecast = decode(topic, payload, prefix=prefix, now=now, capacity_kw=limit)
            coordinator.observe_forecast(forecast)

    return feed


class CitySink:
    """A `SetpointSink` that hands each setpoint to the simulated city as its MQTT message."""

    def __init__(self, city: CitySimulation, charger_ids: frozenset[str]) -> None:
        self.city = city
        self.charger_ids = charger_ids

    async def send(self, setpoint: Setpoint) -> Delivery:
        """Deliver one setpoint to its simulated charger."""
        self.city.receive_setpoint(setpoint.charger_id, setpoint_message(setpoint))
        return Delivery(setpoint.charger_id, "sent")


def coordinated(
    layout: CityLayout, seed: int, start: datetime, hours: float, warmup_days: int = 7
) -> tuple[Kpis, int, int]:
    """The coordinated city's KPIs, its number of fallback plans and of event re-plans."""
    config = Config(**layout.config(), planning={"solver_time_limit_s": 20.0})
    coordinator = Coordinator(config)
    step = timedelta(minutes=config.planning.slot_minutes)
    past = CitySimulation(layout, seed, start - timedelta(days=warmup_days), controlled=False)
    while past.now < start:
        past.step(past.now + step)
        for reading in readings_of(config, past, chargers=False):
            coordinator.observe(reading)  # type: ignore[arg-type]
    city = CitySimulation(layout, seed, start)
    chargers = frozenset(c.id for c in layout.chargers)
    # The demo's service: its planning loop on the simulated clock, without the scheduler.
    loop = PlanningLoop(
        config,
        coordinator,
        publish=None,
        store=lambda points: None,
        sinks=[CitySink(city, chargers)],
        clock=lambda: city.now,
    )
    end = start + timedelta(hours=hours)
    fallbacks = 0
    feed = weather_feed(layout, seed, config)
    runner = asyncio.Runner()
    try:
        while city.now < end:
            now = city.now
            if feed is not None and (now - start) % FORECAST_EVERY == timedelta(0):
                feed(coordinator, now)
            for reading in readings_of(config, city):
                coordinator.observe(reading)  # type: ignore[arg-type]
            if now.minute % config.planning.interval_min == 0:
                runner.run(loop.plan_once())
                assert loop.last_plan is not None
                fallbacks += loop.last_plan.status == "fallback"
            else:
                runner.run(loop.dispatch_once())
            dispatch = loop.last_dispatch
            assert dispatch is not None
            city.kpi.add_minima_over_limit(len(dispatch.overloads))
            city.step(now + timedelta(minutes=1))
    finally:
        runner.close()
        coordinator.close()
    return city.kpis(), fallbacks, loop.event_replans


def cell(season: str, seed: int, hours: float, chargers: int) -> dict[str, object]:
    """One (season, seed): the three runs' KPIs and wall times."""
    start = SEASON_STARTS[season]
    layout = demo_city(seed, chargers)
    began = time.perf_counter()
    baseline = CitySimulation(layout, seed, start, controlled=False)
    end = start + timedelta(hours=hours)
    while baseline.now < end:
        baseline.step(baseline.now + timedelta(minutes=1))
    uncontrolled_s = time.perf_counter() - began
    began = time.perf_counter()
    bound = perfect_foresight(layout, baseline.trace, baseline.visits(), baseline.energy_before)
    bound_s = time.perf_counter() - began
    began = time.perf_counter()
    ours, fallbacks, replans = coordinated(layout, seed, start, hours)
    coordinated_s = time.perf_counter() - began
    return {
        "season": season,
        "seed": seed,
        "uncontrolled": baseline.kpis(),
        "coordinated": ours,
        "bound": bound.kpis,
        "bound_status": bound.status,
        "fallback_plans": fallbacks,
        "event_replans": replans,
        "seconds": {
            "uncontrolled": uncontrolled_s,
            "bound": bound_s,
            "coordinated": coordinated_s,
        },
    }


def targets(result: dict[str, object]) -> dict[str, bool | None]:
    """The issue's targets for one cell: name → met (None: not applicable, no surplus at all)."""
    u, c, b = (result[k] for k in ("uncontrolled", "coordinated", "bound"))
    assert isinstance(u, dict) and isinstance(c, dict) and isinstance(b, dict)
    surplus = b["renewable_share"] > 0  # with no surplus in the run a share ratio means nothing
    return {
        ">=90% of bound": c["renewable_share"] >= 0.9 * b["renewable_share"] if surplus else None,
        ">=1.5x uncontrolled": (
            c["renewable_share"] >= 1.5 * u["renewable_share"] if surplus else None
        ),
        "unmet>floor <=1%": c["unmet_above_floor_kwh"] <= 0.01 * c["requested_kwh"],
        "unmet>floor <=uncontrolled": c["unmet_above_floor_kwh"]
        <= u["unmet_above_floor_kwh"] + 1e-6,
        "peak >=5% lower": c["peak_import_kw"] <= 0.95 * u["peak_import_kw"],
        "0 overloads": c["zone_overloads"] == 0,
    }


def table(results: list[dict[str, object]]) -> str:
    """The matrix as markdown."""
    head = "| season | seed | run | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|---|---:|---|" + "---:|" * len(COLUMNS)
    lines = [head, rule]
    for r in results:
        for run in ("uncontrolled", "coordinated", "bound"):
            kpis = r[run]
            assert isinstance(kpis, dict)
            cells = " | ".join(fmt.format(kpis[key]) for key, _, fmt in COLUMNS)
            lines.append(f"| {r['season']} | {r['seed']} | {run} | {cells} |")
    lines += [
        "",
        "| season | seed | " + " | ".join(targets(results[0])) + " | event re-plans | wall s |",
    ]
    lines.append("|---|---:|" + "---|" * len(targets(results[0])) + "---:|---|")
    for r in results:
        met = " | ".join(
            "n/a" if ok is None else "met" if ok else "**missed**" for ok in targets(r).values()
        )
        seconds = r["seconds"]
        assert isinstance(seconds, dict)
        lines.append(
            f"| {r['season']} | {r['seed']} | {met} | {r.get('event_replans', 'n/a')} "
            f"| coordinated {seconds['coordinated']:.0f}"
            f" (uncontrolled {seconds['uncontrolled']:.0f}, bound {seconds['bound']:.1f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the matrix and print its tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seasons", nargs="+", default=list(SEASON_STARTS))
    parser.add_argument("--chargers", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = []
    for season in args.seasons:
        for seed in args.seeds:
            results.append(cell(season, seed, args.hours, args.chargers))
            print(table(results[-1:]), file=sys.stderr, flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    print(
        f"outcome matrix: {args.chargers} chargers, {args.hours:g} simulated hours from each "
        f"season's Tuesday noon UTC; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load_before:.2f} before / {os.getloadavg()[0]:.2f} after"
    )
    print(table(results))


if __name__ == "__main__":
    main()
