"""Dispatch benchmark: the safety layer and the forecast on a city-sized instance.

The safety layer runs every minute for every charger (setpoints are refreshed each minute), so
it must take a small fraction of that. A city of N chargers under F feeders of S substations,
a random plan (some values hostile: NaN, negative, huge), 5 % stale chargers, 2 % stale
feeder meters, §14a minima on a third of the chargers. Also times `build_forecast` for a 96-slot
horizon with 4 weeks of 15-minute load history.

Also steps the demo city (300 chargers) through a simulated day in 1-minute steps with its
telemetry: how fast `gridcoord demo --speed 0` can go before MQTT and the store.

Usage: ``python bench/dispatch.py [--chargers 1000 10000 50000] [--repeat 5] [--seed 1]
[--city-hours 24]``.
Prints a Markdown table (median of the repeats).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridcoord.dispatch import ChargerLimit, ZoneLimit, apply_limits
from gridcoord.forecast import ForecastInputs, PvFleet, build_forecast
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.timegrid import horizon_slots


def city(
    chargers: int, seed: int
) -> tuple[list[ChargerLimit], list[ZoneLimit], dict[str, float], set[str], set[str]]:
    """A random city of `chargers` chargers under feeders and substations, and its requests."""
    rng = np.random.default_rng(seed)
    substations = max(1, chargers // 2500)
    feeders = max(1, chargers // 25)
    zones = [ZoneLimit(f"sub-{i}", None, 2500.0 * 11 * 0.3) for i in range(substations)]
    zones += [
        ZoneLimit(f"feeder-{i}", f"sub-{i % substations}", float(rng.uniform(50, 200)))
        for i in range(feeders)
    ]
    limits = [
        ChargerLimit(
            f"c-{i}",
            f"feeder-{i % feeders}",
            float(rng.choice([3.7, 11.0, 22.0])),
            float(rng.choice([0.0, 1.4, 4.2])),
            4.2 if rng.random() < 0.33 else 0.0,
        )
        for i in range(chargers)
    ]
    plan = {c.id: float(rng.uniform(0, 25)) for c in limits}
    for key in rng.choice(len(limits), size=chargers // 50, replace=False):
        plan[f"c-{key}"] = float(rng.choice([np.nan, -5.0, 1e12]))
    stale_c = {f"c-{i}" for i in rng.choice(chargers, size=chargers // 20, replace=False)}
    stale_z = {
        f"feeder-{i}" for i in rng.choice(feeders, size=max(1, feeders // 50), replace=False)
    }
    return limits, zones, plan, stale_c, stale_z


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls [s]."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--city-hours", type=float, default=24.0, help="0 to skip the city")
    args = parser.parse_args()

    print("| what | size | median s | per charger µs |")
    print("|---|---:|---:|---:|")
    for n in args.chargers:
        limits, zones, plan, stale_c, stale_z = city(n, args.seed)
        run = partial(
            apply_limits, plan, limits, zones, stale_chargers=stale_c, stale_zones=stale_z
        )
        seconds = timed(run, args.repeat)
        per_charger_us = seconds / n * 1e6
        print(
            f"| apply_limits | {n} chargers, {len(zones)} zones | {seconds:.3f} "
            f"| {per_charger_us:.1f} |"
        )

    now = datetime(2026, 11, 24, 11, 3, tzinfo=UTC)
    history = [
        (now - timedelta(minutes=15 * i), 500.0 + 100 * np.sin(i / 10)) for i in range(4 * 7 * 96)
    ]
    inputs = ForecastInputs(
        pv=PvFleet(52.42, 10.79, 20_000.0),
        wind_rated_kw=23_500.0,
        load_max_kw=100_000.0,
        pv_measured=history[:12],
        wind_measured=history[:96],
        load_history=history,
    )
    starts = horizon_slots(now, timedelta(hours=24))
    seconds = timed(partial(build_forecast, inputs, starts, 15, now), args.repeat)
    print(f"| build_forecast | 96 slots, {len(history)} load points | {seconds:.3f} | |")
    if args.city_hours > 0:
        layout = demo_city(args.seed, chargers=300)
        begin = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
        steps = int(args.city_hours * 60)

        def run_city() -> None:
            sim = CitySimulation(layout, args.seed, begin, controlled=False)
            for minute in range(1, steps + 1):
                sim.step(begin + timedelta(minutes=minute))
                sim.telemetry()

        seconds = timed(run_city, 1)
        print(
            f"| CitySimulation step + telemetry | 300 chargers, {args.city_hours:g} h "
            f"in 1-min steps | {seconds:.3f} | |"
        )
    load = os.getloadavg()[0]
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f}, {datetime.now(UTC):%Y-%m-%d}"
    )


if __name__ == "__main__":
    main()
