"""Benchmark: the coordinator on the demo city, without MQTT — observe, plan, dispatch costs.

Drives `gridcoord.planning.coordinator.Coordinator` with the simulated city's telemetry every
simulated minute, a plan every quarter hour and a dispatch every minute, and prints a table of
the time each call takes. Usage::

    .venv/bin/python bench/coordinator.py [--hours 6] [--chargers 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The repository first: bench/optimizer.py would otherwise shadow the optimizer package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.contract.validation import build_reading
from gridcoord.config import Config
from gridcoord.planning.coordinator import Coordinator
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.timegrid import parse_rfc3339

START = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--chargers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    layout = demo_city(args.seed, args.chargers)
    config = Config(**layout.config(), planning={"solver_time_limit_s": 20.0})
    coordinator = Coordinator(config)
    city = CitySimulation(layout, args.seed, START)
    observe_s: list[float] = []
    plan_s: list[float] = []
    solve_s: list[float] = []
    dispatch_s: list[float] = []
    readings = 0
    now = START
    while now < START + timedelta(hours=args.hours):
        batch = []
        for asset_id, payload in city.telemetry().items():
            asset = config.asset(asset_id)
            assert asset is not None
            ts = parse_rfc3339(payload["ts"])
            values = {k: v for k, v in payload.items() if k != "ts"}
            batch.append(build_reading(asset, values, ts=ts, now=ts))
        began = time.perf_counter()
        for reading in batch:
            coordinator.observe(reading)
        observe_s.append((time.perf_counter() - began) / len(batch))
        readings += len(batch)
        if now.minute % 15 == 0:
            began = time.perf_counter()
            outcome = coordinator.plan(now)
            plan_s.append(time.perf_counter() - began)
            solve_s.append(outcome.solve_s)
        began = time.perf_counter()
        dispatch = coordinator.dispatch(now)
        dispatch_s.append(time.perf_counter() - began)
        for charger_id, setpoint in dispatch.payloads.items():
            city.receive_setpoint(charger_id, setpoint)
        now += timedelta(minutes=1)
        city.step(now)

    def row(name: str, values: list[float], unit: float, label: str) -> str:
        return (
            f"| {name} | {len(values)} | {statistics.mean(values) * unit:.2f} {label} | "
            f"{statistics.median(values) * unit:.2f} {label} | {max(values) * unit:.2f} {label} |"
        )

    load = os.getloadavg()[0]
    print(
        f"coordinator on the demo city: {args.chargers} chargers, {len(config.assets)} assets, "
        f"{args.hours:g} simulated hours, {readings} readings; load average {load:.2f}"
    )
    print("| call | count | mean | median | max |")
    print("|---|---:|---:|---:|---:|")
    print(row("observe (per reading)", observe_s, 1e6, "µs"))
    print(row("plan (whole run)", plan_s, 1.0, "s"))
    print(row("  of which solve", solve_s, 1.0, "s"))
    print(row("dispatch", dispatch_s, 1e3, "ms"))


if __name__ == "__main__":
    main()
