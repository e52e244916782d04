"""Ingest benchmark: readings/s from MQTT into a store, as a ratio of the broker's own rate.

Everything real on loopback: Mosquitto, InfluxDB 1.6 or the embedded SQLite store, one or two
`gridcoord run` processes (two share the telemetry through an MQTT 5 shared subscription), and
publishers that are not ours (Debian's `mosquitto_pub -l`, one per asset, QoS 1). Payloads are
single readings or batches (a JSON array of 10 or 100 readings per message). In the same run,
for each payload shape, the reference: the broker's own QoS 1 rate from the same publishers to
one `mosquitto_sub -q 1`. Every reading carries its own timestamp, so the store's count is
exact. Throughput = readings stored / (time all were stored − first publish).

The wait for the store is by counting: the run goes on while readings are missing (still in the
broker's queue for our session, in gridcoord's memory or spool) and ends only when all are
stored or after `--deadline` seconds, which it then reports ("gave up") with the number missing;
never on a quiet period. Prints a Markdown table.

    .venv/bin/python bench/ingest.py [--readings 200000] [--batched-readings 1000000]
        [--assets 40] [--batches 1,10,100] [--cases influxdb-1.6:1,embedded:2] [--deadline 900]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import shutil
import signal
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


def payload_lines(index: int, count: int, batch: int, t0: datetime) -> str:
    """`count` readings of one asset, `batch` per message (1: a plain object per message)."""
    readings = []
    for i in range(count):
        ts_ms = int((t0 + timedelta(milliseconds=i * 10)).timestamp() * 1000)
        readings.append({"power_w": 500.0 + (i % 97) + index, "energy_wh": 1e6 + i, "ts": ts_ms})
    if batch == 1:
        lines = [json.dumps(r) for r in readings]
    else:
        lines = [json.dumps(readings[i : i + batch]) for i in range(0, count, batch)]
    return "\n".join(lines) + "\n"


def publish(broker: LocalBroker, names: list[str], bodies: list[str]) -> float:
    """One `mosquitto_pub -l -q 1` per asset (as that device's user), all at once; start time."""
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
    return started


def broker_rate(batch: int, readings: int, assets: int, workdir: Path) -> float:
    """The broker's own QoS 1 rate [messages/s]: the same publishers into one mosquitto_sub."""
    names = [f"meter-{i:04d}" for i in range(assets)]
    per_asset = readings // assets
    bodies = [payload_lines(i, per_asset, batch, datetime.now(UTC)) for i in range(assets)]
    messages = sum(body.count("\n") for body in bodies)
    city = workdir / "city.yaml"
    city.write_text(city_yaml(names), encoding="utf-8")
    broker = LocalBroker.for_config(free_port(), workdir / "mosquitto-ref", load_config(city))
    broker.start()
    out = workdir / "sub.out"
    with out.open("wb") as sink:
        sub = subprocess.Popen(
            [
                *(find_binary("mosquitto_sub"), "-p", str(broker.port), "-q", "1", "-d"),
                *("-u", broker.accounts.service_user, "-P", broker.accounts.service_password),
                *("-t", "gridcoord/telemetry/+", "-C", str(messages)),
            ],
            stdout=sink,
        )
        deadline = time.monotonic() + 10
        while b"SUBACK" not in out.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)  # mosquitto_sub offers no other readiness signal
        started = publish(broker, names, bodies)
        sub.wait(600)
        elapsed = time.monotonic() - started
    broker.stop()
    return messages / elapsed


def run_case(
    store: str,
    instances: int,
    batch: int,
    readings: int,
    assets: int,
    workdir: Path,
    deadline: float,
    profile: Path | None = None,
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
        count: Callable[[], int] = lambda: _influx_count(influx)  # noqa: E731
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
        proc.wait_connected(timeout=300)  # a loaded machine takes long to import the service
    cpu_before = sum(_cpu_s(proc) for proc in procs)
    spies = [
        _spy(proc, profile, f"{store}-{instances}-{batch}-{n}") for n, proc in enumerate(procs)
    ]
    per_asset = readings // assets
    total = per_asset * assets
    t0 = datetime.now(UTC) - timedelta(days=2)
    bodies = [payload_lines(i, per_asset, batch, t0) for i in range(assets)]
    started = publish(broker, names, bodies)
    published_s = time.monotonic() - started
    stored = count()
    # By counting, not by a quiet period: what is missing is queued somewhere until stored.
    while stored < total and time.monotonic() - started < deadline:
        time.sleep(0.5)  # the store offers no event; sample its count
        stored = count()
    done = time.monotonic()
    cpu_s = sum(_cpu_s(proc) for proc in procs) - cpu_before
    for spy in spies:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(120)
    gave_up = total - stored if stored < total else 0
    if gave_up:
        print(f"GAVE UP after {deadline:.0f} s: {gave_up} readings not yet stored", file=sys.stderr)
    stats: dict[str, int] = {}
    # Stalls have two suspects besides the store: a lost broker connection (reconnect backoff
    # up to `mqtt.reconnect_max_s`) and the store refusing writes (spool and retry backoff).
    reconnects = sum(proc.output.count("lost the broker") for proc in procs)
    # Packets the broker counted as sent that never came (`MqttSession._note_packet_id`).
    id_gaps = sum(proc.output.count("the broker skipped") for proc in procs)
    for proc in procs:
        proc.terminate(timeout=max(60.0, deadline))
        match = re.search(r"ingest drained: (\{[^}]*\})", proc.output)
        for key, value in (ast.literal_eval(match.group(1)) if match else {}).items():
            stats[key] = stats.get(key, 0) + int(value)
    stored = count()
    if influx is not None:
        influx.stop()
    broker.stop()
    return {
        "store": store,
        "instances": instances,
        "per_message": batch,
        "readings": total,
        "publish_s": round(published_s, 1),
        "ingest_s": round(done - started, 1),
        "readings_per_s": round((total - gave_up) / (done - started)),
        # CPU time of the gridcoord processes per stored reading: what a reading costs us,
        # whatever else the machine runs (the wall-clock rate above depends on the load).
        "cpu_us_per_reading": round(cpu_s / max(total - gave_up, 1) * 1e6, 1),
        "gave_up_missing": gave_up,
        "lost": total - stored,
        "spooled": stats.get("spooled", 0),
        "store_failures": stats.get("store_failures", 0),
        "reconnects": reconnects,
        "id_gaps": id_gaps,
    }


def _cpu_s(proc: GridcoordProcess) -> float:
    """User + system CPU time of one process so far [s] (Linux /proc)."""
    assert proc.process is not None
    fields = Path(f"/proc/{proc.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spy(proc: GridcoordProcess, profile: Path | None, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling one process (collapsed stacks, all threads), if asked to profile."""
    if profile is None:
        return None
    assert proc.process is not None
    profile.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--nonblocking", "--threads", "-r", "200", "-f", "raw"]
    command += ["-o", str(profile / f"{name}.txt"), "--pid", str(proc.process.pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _feed(process: subprocess.Popen[str], body: str) -> None:
    assert process.stdin is not None
    process.stdin.write(body)
    process.stdin.close()


def _influx_count(influx: InfluxdServer) -> int:
    try:
        return influx.count("telemetry", "power_w", "bench")
    except AssertionError as exc:
        if "database not found" in str(exc):
            return 0
        raise


def _sqlite_count(path: Path) -> int:
    """Stored power readings, read-only and closed at once (an open reader pins the WAL)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute(
            "SELECT count(*) FROM samples WHERE series_id IN "
            "(SELECT id FROM series WHERE field = 'power_w')"
        ).fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
    return int(row[0])


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000, help="single-reading cases")
    parser.add_argument(
        "--batched-readings", type=int, default=1_000_000, help="cases of 10 or 100 per message"
    )
    parser.add_argument("--assets", type=int, default=40)
    parser.add_argument("--batches", default="1,10,100", help="readings per message")
    parser.add_argument("--cases", default="influxdb-1.6:1,influxdb-1.6:2,embedded:1,embedded:2")
    parser.add_argument("--deadline", type=float, default=900.0, help="give up after [s]")
    parser.add_argument(
        "--profile", type=Path, help="py-spy each gridcoord process into this directory"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        # Batches need more readings for the same number of messages (and a measurable time).
        readings = args.readings if batch == 1 else args.batched_readings
        with tempfile.TemporaryDirectory(prefix="gridcoord-bench-") as tmp:
            reference = broker_rate(batch, readings, args.assets, Path(tmp))
        print(f"broker, {batch} per message: {reference:,.0f} messages/s", file=sys.stderr)
        for case in args.cases.split(","):
            store, instances = case.split(":")
            with tempfile.TemporaryDirectory(prefix="gridcoord-bench-") as tmp:
                row = run_case(
                    store,
                    int(instances),
                    batch,
                    readings,
                    args.assets,
                    Path(tmp),
                    args.deadline,
                    args.profile,
                )
            broker_readings = reference * batch
            row["broker_msgs_per_s"] = round(reference)
            row["ratio_to_broker"] = round(float(row["readings_per_s"]) / broker_readings, 3)
            rows.append(row)
            print(row, file=sys.stderr)
    load_after = os.getloadavg()
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
