"""Storage benchmark: points/s each store takes in batches, and what the disk spool costs.

Starts a real InfluxDB 1.6 and VictoriaMetrics on loopback (the test fixtures' servers) and
writes telemetry points like the ingest pipeline does (batches of 5,000, one writer thread):

* ``influx-v1`` — `InfluxV1Store` → influxd 1.6 ``/write``;
* ``influx-v2`` — `InfluxV2Store` (influxdb-client, sync) → VictoriaMetrics ``/api/v2/write``;
* ``embedded`` — `EmbeddedStore` (SQLite, WAL, synchronous=FULL);
* ``spool`` — `Spool.append` (fsync'd) of the same batches, then peek + acknowledge all of them.

Times include serialising the points (line protocol or SQLite rows). The spool line gives the
bytes per point on disk, from which the outage a spool bound covers at 20,000 points/s follows.
``--outage-min 10`` instead spools a whole 10 min store outage at 20,000 points/s into a spool
of the default 1 GiB bound and replays it (the reliability bar of DESIGN 5). Prints a Markdown
table.

    .venv/bin/python bench/storage.py [--points 200000] [--batch 5000] [--outage-min 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcoord.storage.embedded import EmbeddedStore  # noqa: E402
from gridcoord.storage.influx_v1 import InfluxV1Store  # noqa: E402
from gridcoord.storage.influx_v2 import InfluxV2Store  # noqa: E402
from gridcoord.storage.points import Point  # noqa: E402
from gridcoord.storage.spool import Spool  # noqa: E402
from tests.fixtures.influx import InfluxdServer, VictoriaMetricsServer  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

RATE = 20_000  # the ingest quality bar [points/s]


def telemetry(count: int, assets: int = 2000) -> list[Point]:
    """Recent points of a city's meters, one per asset per second, with noisy (random) values.

    Random values matter for the spool's size: real measurements compress far less than a ramp.
    """
    noise = random.Random(42)
    t0 = (time.time_ns() // 1_000_000_000 - count // assets - 60) * 1_000_000_000
    return [
        Point(
            "telemetry",
            {"asset_id": f"meter-{i % assets:04d}", "kind": "meter", "zone": f"lt-{i % 40:02d}"},
            {"power_w": noise.uniform(-5000.0, 30000.0), "energy_wh": 1.0e6 + i * 0.37},
            t0 + (i // assets) * 1_000_000_000,
        )
        for i in range(count)
    ]


def timed(write: Callable[[Sequence[Point]], None], points: list[Point], batch: int) -> float:
    """Wall time to write `points` in batches of `batch` [s]."""
    started = time.perf_counter()
    for first in range(0, len(points), batch):
        write(points[first : first + batch])
    return time.perf_counter() - started


def outage(minutes: float, batch: int) -> None:
    """Spool a whole store outage at the ingest bar's rate, then replay it; print one table."""
    total = int(minutes * 60 * RATE)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp), max_bytes=1 << 30)  # the default storage.spool_max_bytes
        template = telemetry(batch)
        started = time.perf_counter()
        for first in range(0, total, batch):
            # New times, the same random values: each batch is compressed on its own, so its
            # size is that of fresh random values (5,000 points are a quarter second at 20,000/s).
            shift = (first // batch + 1) * 250_000_000
            spool.append(
                [Point(p.measurement, p.tags, p.fields, p.ts_ns + shift) for p in template]
            )
        append_s = time.perf_counter() - started
        used = spool.bytes_used
        started = time.perf_counter()
        replayed = 0
        while (points := spool.peek_oldest()) is not None:
            replayed += len(points)
            spool.ack_oldest()
        replay_s = time.perf_counter() - started
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after\n"
    )
    print("| outage | points | spool size | of 1 GiB | append points/s | replay points/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| {minutes:g} min at {RATE}/s | {replayed:,} | {used / 2**20:,.0f} MiB | "
        f"{used / 2**30:.0%} | {total / append_s:,.0f} | {replayed / replay_s:,.0f} |"
    )


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--outage-min",
        type=float,
        default=None,
        help="instead: spool an outage of this many minutes at 20,000 points/s, then replay it",
    )
    args = parser.parse_args()
    if args.outage_min is not None:
        outage(args.outage_min, args.batch)
        return
    points = telemetry(args.points)
    rows: list[tuple[str, float, str]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "influxd").mkdir()
        (root / "vm").mkdir()
        influxd = InfluxdServer(directory=root / "influxd", port=free_port())
        victoria = VictoriaMetricsServer(directory=root / "vm", port=free_port())
        influxd.start()
        victoria.start()
        try:
            v1 = InfluxV1Store(influxd.url, "bench")
            v1.write(points[:1])  # creates the database outside the timing
            seconds = timed(v1.write, points, args.batch)
            stored = influxd.count("telemetry", "power_w", "bench")
            rows.append(("influx-v1 → influxd 1.6", seconds, f"{stored} stored"))
            v1.close()

            v2 = InfluxV2Store(victoria.url, None, "org", "bucket", "bench")
            seconds = timed(v2.write, points, args.batch)
            stored = sum(
                len(s["values"])
                for s in victoria.wait_for_samples(
                    '{__name__="telemetry_power_w"}', args.points, timeout=60
                )
            )
            rows.append(("influx-v2 → VictoriaMetrics", seconds, f"{stored} stored"))
            v2.close()
        finally:
            influxd.stop()
            victoria.stop()

        embedded = EmbeddedStore(root / "bench.sqlite3")
        seconds = timed(embedded.write, points, args.batch)
        rows.append(("embedded SQLite", seconds, ""))
        embedded.close()

        spool = Spool(root / "spool", max_bytes=1 << 40)
        seconds = timed(spool.append, points, args.batch)
        per_point = spool.bytes_used / len(points)
        covered_min = (1 << 30) / per_point / RATE / 60
        rows.append(
            (
                "spool append (fsync)",
                seconds,
                f"{per_point:.1f} B/point: 1 GiB holds {covered_min:.0f} min at {RATE}/s",
            )
        )
        started = time.perf_counter()
        replayed = 0
        while (batch := spool.peek_oldest()) is not None:
            replayed += len(batch)
            spool.ack_oldest()
        rows.append(("spool peek + ack", time.perf_counter() - started, f"{replayed} replayed"))

    print(
        f"\n{platform.node()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after; "
        f"{args.points} points in batches of {args.batch}\n"
    )
    print("| path | seconds | points/s | notes |")
    print("|---|---:|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.2f} | {args.points / seconds:,.0f} | {note} |")


if __name__ == "__main__":
    main()
