"""OCPP benchmark: N stations connected to one central system over loopback.

This process runs the real `OcppServer`; a second process (so the stations do not share this
one's event loop) connects N OCPP 2.0.1 stations built on the `ocpp` package's ChargePoint,
each booting and starting a transaction. Then one "plan": a setpoint for every station sent
at once through `OcppServer.send` (TxProfile, fail-safe TxDefaultProfile, GetCompositeSchedule
read back), timed until the last station's delivery is read back.

References, measured in the same run: the memory of N bare websockets connections to a bare
websockets server (what the transport alone costs), and a websocket ping round trip to all N
stations at once (the loop's floor for one message to every station).

    .venv/bin/python bench/ocpp.py [--stations 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the `ocpp` package: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from adapters.ocpp.server import OcppServer  # noqa: E402
from adapters.sink import Setpoint  # noqa: E402
from gridcoord.config import Config  # noqa: E402

PASSWORD = "bench-password-0123456789"


def rss_bytes() -> int:
    """Resident memory of this process [bytes]."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def raise_fd_limit() -> None:
    """Allow as many open sockets as the hard limit does."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def station_ids(n: int) -> list[str]:
    """The benchmark's station identities."""
    return [f"cs-{i:05d}" for i in range(n)]


# -- the stations' process ----------------------------------------------------------------


async def run_stations(port: int, n: int, bare: bool) -> None:
    """The stations' process: connect N stations (bare websockets or OCPP), then wait."""
    from websockets.asyncio.client import connect

    from tests.fixtures.ocpp_client import basic_auth, open_station

    raise_fd_limit()
    keep: list[Any] = []
    gate = asyncio.Semaphore(100)  # connections opening at once

    async def one(station_id: str) -> None:
        async with gate:
            if bare:
                keep.append(
                    await connect(
                        f"ws://127.0.0.1:{port}/{station_id}",
                        open_timeout=120,
                        additional_headers=basic_auth(station_id, PASSWORD),
                    )
                )
                return
            station, task, _ = await open_station(port, station_id, PASSWORD, response_timeout=120)
            keep.append((station, task))
            await station.boot()
            await station.start_transaction(f"tx-{station_id}", 0.0)

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in station_ids(n)))
    print(json.dumps({"ready": n, "connect_s": time.perf_counter() - started}), flush=True)
    cpu = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not bare:
        accepted = sum(1 for station, _ in keep if "TxProfile" in station.held.profiles)
        print(json.dumps({"accepted_tx": accepted, "cpu_s": time.process_time() - cpu}), flush=True)


# -- the central system's process ---------------------------------------------------------


def start_stations(port: int, n: int, bare: bool) -> subprocess.Popen[str]:
    """Start the stations' process."""
    args = [sys.executable, __file__, "--serve-stations", str(port), "--stations", str(n)]
    return subprocess.Popen(
        args + (["--bare"] if bare else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def read_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The next JSON line the stations' process prints."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the stations' process ended early")
    return dict(json.loads(line))


async def bare_reference(n: int) -> float:
    """Bytes of this process per bare websockets connection."""
    from websockets.asyncio.server import serve

    async def hold(connection: Any) -> None:
        await connection.wait_closed()

    before = rss_bytes()
    # The transport settings of OcppServer (no permessage-deflate, small receive queue).
    async with serve(hold, "127.0.0.1", 0, max_size=65536, max_queue=4, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proc = start_stations(port, n, bare=True)
        await asyncio.to_thread(read_json, proc)
        after = rss_bytes()
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        await asyncio.to_thread(proc.wait)
    return (after - before) / n


async def ocpp_run(n: int, workdir: Path) -> dict[str, Any]:
    """Connect N OCPP stations, ping them, send them one plan; the figures."""
    credentials = workdir / "ocpp.csv"
    credentials.write_text("".join(f"{s},{PASSWORD}\n" for s in station_ids(n)))
    credentials.chmod(0o600)
    config = Config(
        ocpp={"port": 0, "credentials_file": str(credentials)},  # the default 10 s call timeout
        assets=[
            {
                "id": f"charger-{i:05d}",
                "kind": "charger",
                "rated_kw": 22,
                "charger": {"safe_power_kw": 4.2},
                "ocpp": {"station_id": s},
            }
            for i, s in enumerate(station_ids(n))
        ],
    )
    assert config.ocpp is not None
    readings = Counter[str]()
    server = OcppServer(
        config.ocpp,
        config.assets,
        submit=lambda r: readings.update(["ok"]),
        reject=lambda *a: readings.update(["rejected"]),
    )
    before = rss_bytes()
    await server.start()
    proc = start_stations(server.port, n, bare=False)
    ready = await asyncio.to_thread(read_json, proc)
    connected_rss = rss_bytes()
    assert len(server.connections) == n, len(server.connections)

    started = time.perf_counter()
    pongs = await asyncio.gather(*(s._connection.ping() for s in server.connections.values()))
    await asyncio.gather(*pongs)
    ping_s = time.perf_counter() - started

    now = datetime.now(UTC)
    until = now + timedelta(minutes=15)
    setpoints = [Setpoint(c, 7000.0, until, "bench", now) for c in sorted(server.charger_ids)]
    started, cpu = time.perf_counter(), time.process_time()
    deliveries = await asyncio.gather(*(server.send(sp) for sp in setpoints))
    plan_s, plan_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    states = Counter(d.state for d in deliveries)
    assert proc.stdin is not None
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    final = await asyncio.to_thread(read_json, proc)
    await server.close()
    await asyncio.to_thread(proc.wait)
    return {
        "connect_s": ready["connect_s"],
        "rss_per_connection": (connected_rss - before) / n,
        "ping_s": ping_s,
        "plan_s": plan_s,
        "states": dict(states),
        "accepted_tx": final["accepted_tx"],
        "plan_cpu_s": plan_cpu_s,
        "stations_cpu_s": final["cpu_s"],
        "readings": dict(readings),
    }


def main() -> None:
    """Run both measurements in fresh processes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--serve-stations", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=["bare", "ocpp"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.stations
    if args.serve_stations is not None:
        asyncio.run(run_stations(args.serve_stations, n, args.bare))
        return
    raise_fd_limit()
    if args.measure == "bare":
        print(json.dumps({"bare": asyncio.run(bare_reference(n))}))
        return
    if args.measure == "ocpp":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(ocpp_run(n, Path(tmp)))))
        return
    # Each measurement in a fresh process: RSS deltas must not reuse another run's heap.
    measured = {}
    for what in ("bare", "ocpp"):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", what, "--stations", str(n)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        measured[what] = json.loads(out.strip().splitlines()[-1])
    bare, result = measured["bare"]["bare"], measured["ocpp"]
    print(
        f"OCPP central system, {n} stations over loopback — {platform.node()}, "
        f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}"
    )
    print(f"{'measure':<52} {'value':>12}")
    rows = [
        ("stations connected, booted, transaction started [s]", f"{result['connect_s']:.1f}"),
        ("memory per OCPP connection [KiB]", f"{result['rss_per_connection'] / 1024:.1f}"),
        ("  reference: bare websockets connection [KiB]", f"{bare / 1024:.1f}"),
        ("  ratio", f"{result['rss_per_connection'] / bare:.2f}"),
        ("plan → last station's profile read back [s]", f"{result['plan_s']:.2f}"),
        ("  reference: websocket ping to all stations [s]", f"{result['ping_s']:.2f}"),
        ("  ratio", f"{result['plan_s'] / result['ping_s']:.1f}"),
        ("  (3 OCPP round trips per station: Tx, TxDefault, composite)", ""),
        ("  CPU of the central system during the plan [s]", f"{result['plan_cpu_s']:.1f}"),
        ("  CPU per station delivery [ms]", f"{result['plan_cpu_s'] / n * 1000:.2f}"),
        ("  CPU of the stations' process (ping + plan) [s]", f"{result['stations_cpu_s']:.1f}"),
        ("deliveries by state", json.dumps(result["states"])),
        ("stations holding the TxProfile", str(result["accepted_tx"])),
        ("readings from boot/transaction", json.dumps(result["readings"])),
    ]
    for name, value in rows:
        print(f"{name:<52} {value:>12}")


if __name__ == "__main__":
    main()
