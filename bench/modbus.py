"""Modbus benchmark: how many simulated devices one poller process keeps up with.

Starts `gridcoord simulate` (a separate process, so the simulators do not share the poller's
core) serving N devices behind G simulated gateways (host:port, N/G unit ids each): half SunSpec
inverters (discovery, then one request per poll), half generic chargers (two requests per
poll). This process then runs the real `ModbusPoller` on the same assets and, after every device
has delivered once (SunSpec discovery done) and one more interval has passed (the burst of
first contacts settles), counts readings over a measurement window.

Reported: device polls/s against the target (N / interval), the spread of each device's
interval between readings (lateness beyond the configured interval), the poll-cycle latency
(one connection's pass over its due devices), failed polls, and CPU of both processes.

    .venv/bin/python bench/modbus.py [--devices 1000] [--gateways 20] [--interval 5] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.contract.reading import Reading  # noqa: E402
from adapters.contract.validation import Reason  # noqa: E402
from adapters.modbus.poller import ModbusPoller  # noqa: E402
from gridcoord.config import load_config  # noqa: E402
from tests.fixtures.ports import free_port, wait_for_port  # noqa: E402


def city_yaml(devices: int, gateways: int, interval: float) -> tuple[str, list[int]]:
    """A configuration of `devices` Modbus meters behind `gateways` ports, and the ports."""
    ports: list[int] = []
    while len(ports) < gateways:  # free_port() may hand out the same free port twice
        port = free_port()
        if port not in ports:
            ports.append(port)
    lines = ["assets:"]
    for i in range(devices):
        port, unit = ports[i % gateways], i // gateways + 1
        common = (
            f"host: 127.0.0.1, port: {port}, unit_id: {unit}, poll_interval_s: {interval}, "
            "timeout_s: 2"
        )
        if i % 2 == 0:
            lines.append(
                f"  - {{id: pv-{i:05d}, kind: pv, rated_kw: 30, "
                f"modbus: {{{common}, register_map: sunspec}}}}"
            )
        else:
            lines.append(
                f"  - {{id: charger-{i:05d}, kind: charger, rated_kw: 11, "
                f"modbus: {{{common}, register_map: generic-charger}}}}"
            )
    return "\n".join(lines) + "\n", ports


def cpu_seconds(pid: int) -> float:
    """Utime + stime of a process from /proc [s]."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (NaN for none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(config: Path, seconds: float, sim_pid: int) -> dict[str, float]:
    """Poll the configured devices for `seconds` and summarise the poll intervals seen."""
    settings = load_config(config)
    arrivals: dict[str, list[float]] = defaultdict(list)
    failures: list[Reason] = []

    def sink(reading: Reading) -> None:
        arrivals[reading.asset_id].append(time.monotonic())

    def on_reject(asset_id: str, reason: Reason, detail: str) -> None:
        failures.append(reason)

    poller = ModbusPoller(settings.assets, sink, on_reject)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    devices = len(poller.asset_ids)
    warm_start = time.monotonic()
    while len(arrivals) < devices and time.monotonic() < warm_start + 120:
        await asyncio.sleep(0.1)
    warm, warm_s = len(arrivals), time.monotonic() - warm_start
    # Let the burst of first contacts (discovery, charger configuration) settle: one interval.
    await asyncio.sleep(max(a.modbus.poll_interval_s for a in settings.assets if a.modbus))
    poller.sweep_seconds.clear()
    failed_before = len(failures)
    t0, cpu0, sim0 = time.monotonic(), time.process_time(), cpu_seconds(sim_pid)
    await asyncio.sleep(seconds)
    t1, cpu1, sim1 = time.monotonic(), time.process_time(), cpu_seconds(sim_pid)
    sweeps = list(poller.sweep_seconds)
    stop.set()
    await task
    in_window = sum(1 for times in arrivals.values() for t in times if t0 <= t < t1)
    gaps = [
        b - a
        for times in arrivals.values()
        for a, b in itertools.pairwise(times)
        if t0 <= a and b < t1
    ]
    return {
        "devices": devices,
        "warm": warm,
        "warm_s": warm_s,
        "polls_per_s": in_window / (t1 - t0),
        "gap_p50": statistics.median(gaps) if gaps else float("nan"),
        "gap_p99": percentile(gaps, 0.99),
        "gap_max": max(gaps) if gaps else float("nan"),
        "sweep_p50": percentile(sweeps, 0.5),
        "sweep_p99": percentile(sweeps, 0.99),
        "sweep_max": max(sweeps) if sweeps else float("nan"),
        "failed": len(failures) - failed_before,
        "poller_cpu": (cpu1 - cpu0) / (t1 - t0),
        "sim_cpu": (sim1 - sim0) / (t1 - t0),
    }


def main() -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval [s]")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window [s]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench-city.yaml"
        text, ports = city_yaml(args.devices, args.gateways, args.interval)
        config.write_text(text, encoding="utf-8")
        sim = subprocess.Popen(
            [sys.executable, "-m", "gridcoord", "simulate", "--config", str(config)],
            stdout=subprocess.DEVNULL,
        )
        try:
            for port in ports:
                wait_for_port(port, timeout=60, process=sim)
            load = os.getloadavg()[0]
            result = asyncio.run(measure(config, args.seconds, sim.pid))
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=30)
    target = args.devices / args.interval
    print(
        f"Modbus poller — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load avg {load:.2f} at start"
    )
    print()
    print(
        "| devices | gateways | interval | polls/s (target) | interval p50 / p99 / max "
        "| poll-cycle p50 / p99 / max | failed polls | CPU poller / simulators |"
    )
    print("|---|---|---|---|---|---|---|---|")
    r = result
    print(
        f"| {int(r['devices'])} | {args.gateways} | {args.interval:g} s "
        f"| {r['polls_per_s']:.1f} ({target:.0f}) "
        f"| {r['gap_p50']:.2f} / {r['gap_p99']:.2f} / {r['gap_max']:.2f} s "
        f"| {r['sweep_p50'] * 1000:.0f} / {r['sweep_p99'] * 1000:.0f} / "
        f"{r['sweep_max'] * 1000:.0f} ms "
        f"| {int(r['failed'])} | {r['poller_cpu']:.0%} / {r['sim_cpu']:.0%} |"
    )
    warm_s = r["warm_s"]
    print()
    print(
        f"warm-up: {int(r['warm'])} of {int(r['devices'])} devices delivered within "
        f"{warm_s:.1f} s (SunSpec discovery included)"
    )
    ok = r["polls_per_s"] >= 0.98 * target and r["gap_p99"] <= 1.2 * args.interval
    print()
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
