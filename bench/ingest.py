"""Ingest benchmark: sustained readings/s from MQTT into InfluxDB 1.6 and the embedded store.

Starts a real Mosquitto and InfluxDB 1.6 on loopback, one or two `gridcoord run` processes
(two share the telemetry through an MQTT 5 shared subscription), and publishers that are not
ours (Debian's `mosquitto_pub -l`, one per asset, QoS 1). Every reading carries its own
timestamp, so the store's count is exact. Throughput = readings stored / (last stored − first
published); loss = published − stored after the run drained. Prints a Markdown table.

    .venv/bin/python bench/ingest.py [--readings 600000] [--assets 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcoord.config import load_config  # noqa: E402
from gridcoord.local_broker import LocalBroker  # noqa: E402
from tests.fixtures.gridcoord_process import GridcoordProcess  # noqa: E402
from tests.fixtures.influx import InfluxdServer  # noqa: E402
from tests.fixtures.ports import find_binary, free_port  # noqa: E402


def city_yaml(assets: list[str]) -> str:
    """A configuration with one transformer and a meter per asset id."""
    lines = ["zones:", "  - {id: lt-01, capacity_kw: 630}", "assets:"]
    lines += [f"  - {{id: {a}, kind: meter, zone: lt-01, rated_kw: 30}}" for a in assets]
    return "\n".join(lines) + "\n"


def payload_lines(index: int, count: int, t0: datetime) -> str:
    """`count` contract payloads for one meter, one per line (for `mosquitto_pub -l`)."""
    out = []
    for i in range(count):
        ts_ms = int((t0 + timedelta(milliseconds=i * 10)).timestamp() * 1000)
        out.append(
            json.dumps({"power_w": 500.0 + (i % 97) + index, "energy_wh": 1e6 + i, "ts": ts_ms})
        )
    return "\n".join(out) + "\n"


def run_case(
    store: str, instances: int, readings: int, assets: int, workdir: Path
) -> dict[str, float | int | str]:
    """Publish `readings` readings to `instances` gridcoord processes; one table row."""
    names = [f"meter-{i:04d}" for i in range(assets)]
    city = workdir / "city.yaml"
    city.write_text(city_yaml(names), encoding="utf-8")
    broker = LocalBroker.for_config(free_port(), workdir / "mosquitto", load_config(city))
    broker.start()
    influx: InfluxdServer | None = None
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(broker.port),
        "GRIDCOORD_MQTT__USERNAME": broker.accounts.service_user,
        "GRIDCOORD_MQTT__PASSWORD": broker.accounts.service_password,
        "GRIDCOORD_PLANNING__ENABLED": "false",  # ingest alone
    }
    if store == "influxdb-1.6":
        (workdir / "influxd").mkdir()
        influx = InfluxdServer(directory=workdir / "influxd", port=free_port())
        influx.start()
        env |= {
            "GRIDCOORD_STORAGE__KIND": "influxdb",
            "GRIDCOORD_INFLUXDB__API": "v1",
            "GRIDCOORD_INFLUXDB__URL": influx.url,
            "GRIDCOORD_INFLUXDB__DATABASE": "bench",
        }
        count: Callable[[], int] = lambda: influx.count("telemetry", "power_w", "bench")  # noqa: E731
    else:
        db = workdir / "embedded.sqlite3"
        env |= {"GRIDCOORD_STORAGE__KIND": "embedded", "GRIDCOORD_STORAGE__PATH": str(db)}
        count = lambda: _sqlite_count(db)  # noqa: E731
    if instances > 1:
        env["GRIDCOORD_MQTT__SHARED_GROUP"] = "bench"
    procs = []
    for n in range(instances):
        proc = GridcoordProcess(
            city,
            env
            | {
                "GRIDCOORD_MQTT__CLIENT_ID": f"bench-{n}",
                "GRIDCOORD_STORAGE__SPOOL_DIR": str(workdir / f"spool-{n}"),
            },
            workdir / f"gc-{n}",
        )
        procs.append(proc.start())
    for proc in procs:
        proc.wait_connected()
    per_asset = readings // assets
    total = per_asset * assets
    t0 = datetime.now(UTC) - timedelta(days=2)
    bodies = [payload_lines(i, per_asset, t0) for i in range(assets)]
    pub = find_binary("mosquitto_pub")
    started = time.monotonic()
    publishers = [
        subprocess.Popen(
            [
                *(pub, "-p", str(broker.port), "-q", "1", "-t", f"gridcoord/telemetry/{name}"),
                *("-l", "-u", name, "-P", broker.accounts.password(name)),
            ],
            stdin=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    feeders = [
        threading.Thread(target=_feed, args=(p, body))
        for p, body in zip(publishers, bodies, strict=True)
    ]
    for feeder in feeders:
        feeder.start()
    for feeder in feeders:
        feeder.join()
    for p in publishers:
        p.wait()
    published_s = time.monotonic() - started
    stored, last_change, last = 0, time.monotonic(), -1
    while stored < total and time.monotonic() - last_change < 30:
        time.sleep(0.5)  # the store offers no event; sample its count
        stored = count()
        if stored != last:
            last, last_change = stored, time.monotonic()
    elapsed = last_change - started
    rejected = 0
    for proc in procs:
        proc.terminate()
        match = proc.wait_for_log(r"ingest drained: \{'accepted': (\d+)")
        rejected += 0 if match else 1
    stored = count()
    if influx is not None:
        influx.stop()
    broker.stop()
    return {
        "store": store,
        "instances": instances,
        "readings": total,
        "publish_s": round(published_s, 1),
        "ingest_s": round(elapsed, 1),
        "readings_per_s": round(stored / elapsed),
        "lost": total - stored,
    }


def _feed(process: subprocess.Popen[str], body: str) -> None:
    assert process.stdin is not None
    process.stdin.write(body)
    process.stdin.close()


def _sqlite_count(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            row = db.execute(
                "SELECT count(*) FROM samples JOIN series ON series.id = samples.series_id "
                "WHERE series.field = 'power_w'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=600_000)
    parser.add_argument("--assets", type=int, default=40)
    parser.add_argument("--cases", default="influxdb-1.6:1,influxdb-1.6:2,embedded:1,embedded:2")
    args = parser.parse_args()
    rows = []
    for case in args.cases.split(","):
        store, instances = case.split(":")
        with tempfile.TemporaryDirectory(prefix="gridcoord-bench-") as tmp:
            rows.append(run_case(store, int(instances), args.readings, args.assets, Path(tmp)))
        print(rows[-1], file=sys.stderr)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
