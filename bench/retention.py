"""Retention benchmark: raw points/s the retention job aggregates and deletes, per store.

A city of household meters (one sample a minute each) over one day, 40 days in the past, on
the embedded store and on a real InfluxDB 1.6 (the test fixture's server). Reference, in the
same run and on the same store: writing those points. Prints a Markdown table with the job's
rate and its ratio to the write rate.

    .venv/bin/python bench/retention.py [--meters 500] [--hours 24]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcoord.config import Config  # noqa: E402
from gridcoord.privacy.retention import RetentionJob  # noqa: E402
from gridcoord.storage.base import Store  # noqa: E402
from gridcoord.storage.embedded import EmbeddedStore  # noqa: E402
from gridcoord.storage.influx_v1 import InfluxV1Store  # noqa: E402
from gridcoord.storage.points import Point, datetime_to_ns  # noqa: E402
from tests.fixtures.influx import InfluxdServer, start_server  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)


def city(meters: int) -> Config:
    """A city of ``meters`` household meters in 20 low-voltage zones."""
    zones = [{"id": f"lt-{z:02d}", "capacity_kw": 500} for z in range(20)]
    assets = [
        {"id": f"meter-{m:05d}", "kind": "meter", "zone": f"lt-{m % 20:02d}", "rated_kw": 30}
        for m in range(meters)
    ]
    return Config.model_validate({"zones": zones, "assets": assets})


def points(meters: int, hours: int) -> list[Point]:
    """One ``power_w`` sample a minute per meter over ``hours``, 40 days before the job's now."""
    out = []
    for minute in range(hours * 60):
        ns = datetime_to_ns(START + timedelta(minutes=minute))
        for m in range(meters):
            tags = {"asset_id": f"meter-{m:05d}", "kind": "meter", "zone": f"lt-{m % 20:02d}"}
            out.append(Point("telemetry", tags, {"power_w": 100.0 + (m * 7 + minute) % 900}, ns))
    return out


def measure(name: str, store: Store, config: Config, raw: list[Point]) -> tuple[str, ...]:
    """Write the points (the reference), run the job, return the table row."""
    began = time.perf_counter()
    for first in range(0, len(raw), 5000):
        store.write(raw[first : first + 5000])
    write_s = time.perf_counter() - began
    began = time.perf_counter()
    report = RetentionJob(store, config, lambda: START + timedelta(days=40)).run()
    job_s = time.perf_counter() - began
    store.close()
    write_rate, job_rate = len(raw) / write_s, len(raw) / job_s
    return (
        name,
        f"{len(raw):,}",
        f"{write_rate:,.0f}",
        f"{job_rate:,.0f}",
        f"{report.aggregates:,}",
        f"{job_rate / write_rate:.2f}",
    )


def main() -> None:
    """Run both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=500)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    config = city(args.meters)
    raw = points(args.meters, args.hours)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("embedded", EmbeddedStore(Path(tmp) / "bench.sqlite3"), config, raw))
        server = start_server(InfluxdServer, Path(tmp) / "influxd")
        try:
            store = InfluxV1Store(server.url, "bench", timeout_s=120)
            rows.append(measure("influx-v1 1.6", store, config, raw))
        finally:
            server.stop()
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"{args.meters} meters, one sample a minute, {args.hours} h")
    print()
    print("| store | raw points | write [points/s] | retention job [points/s] | aggregates "
          "| job / write |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
