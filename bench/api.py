"""API benchmark: dashboard endpoints and the live stream with 50 concurrent clients.

Starts a real Mosquitto and `gridcoord run` (embedded store, planning on) on a generated city of
10,000 chargers under 400 feeders, feeds telemetry for every asset, then runs N concurrent
HTTP clients that loop over the dashboard's endpoints (as a viewer, bearer token) while N more
hold the SSE stream open. Every client connects and makes one unrecorded request before the
measured window opens (a hundred clients setting up their TLS contexts and connections at once
stall the load generator's own event loop for seconds: that is not the service's latency). A
planning run is started (run-now, operator token) as the window opens, so the load includes a
plan of the whole city. A separate probe process asks `/health/live` every 50 ms on its own
connection: its figures are the service's liveness, free of the load generator's event loop.
Reports p50/p99 per endpoint, the stream's delivery lag (receive time − the event's `at`), and
the probe's figures over the window and during the planning run.

    .venv/bin/python bench/api.py [--chargers 10000] [--clients 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as paho
from argon2 import PasswordHasher
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcoord.local_broker import LocalBroker  # noqa: E402
from tests.fixtures.gridcoord_process import GridcoordProcess  # noqa: E402
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts, service_env  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

TOKEN = "bench-viewer-token"
OPERATOR_TOKEN = "bench-operator-token"
PROBE_PERIOD_S = 0.05
ENDPOINTS = [
    "/health/live",
    "/api/v1/summary",
    "/api/v1/chart",
    "/api/v1/plans?limit=12",
    "/api/v1/setpoints?limit=200",
    "/api/v1/sessions?limit=10000",
    "/api/v1/zones",
    "/api/v1/assets?limit=1000",
    "/api/v1/chargers?limit=50",  # the dashboard's table, one page
]


def city(chargers: int, feeders: int) -> tuple[str, list[str], list[str]]:
    """The config YAML, the charger ids and the meter ids."""
    lines = ["zones:", "  - {id: sub-01, capacity_kw: 200000}"]
    meters = [f"meter-f{f:03d}" for f in range(feeders)]
    for f in range(feeders):
        lines.append(
            f"  - {{id: feeder-{f:03d}, parent: sub-01, capacity_kw: 400, meter: {meters[f]}}}"
        )
    lines.append("assets:")
    for f in range(feeders):
        lines.append(f"  - {{id: {meters[f]}, kind: meter, zone: feeder-{f:03d}, rated_kw: 600}}")
    lines.append("  - {id: pv-park-01, kind: pv, zone: sub-01, rated_kw: 20000}")
    ids = [f"charger-{i:05d}" for i in range(chargers)]
    for i, cid in enumerate(ids):
        lines.append(
            f"  - {{id: {cid}, kind: charger, zone: feeder-{i % feeders:03d}, rated_kw: 11}}"
        )
    return "\n".join(lines) + "\n", ids, meters


def feed(port: int, chargers: list[str], meters: list[str], stop: threading.Event) -> None:
    """Every asset reports once, then a slice every second (a fifth of chargers plugged in)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-api-devices")
    client.username_pw_set(FIELD_USER, rig_accounts().password(FIELD_USER))
    client.connect("127.0.0.1", port)
    client.loop_start()
    step = 0
    while not stop.is_set():
        for m in meters:
            client.publish(f"gridcoord/telemetry/{m}", json.dumps({"power_w": 150_000.0}))
        client.publish(
            "gridcoord/telemetry/pv-park-01", json.dumps({"power_w": 8e6 + 1e5 * (step % 10)})
        )
        for i, cid in enumerate(chargers):
            connected = i % 5 == 0
            payload = {"power_w": 7000.0 if connected else 0.0, "connected": connected}
            client.publish(f"gridcoord/telemetry/{cid}", json.dumps(payload))
        step += 1
        stop.wait(20.0)  # a full round every 20 s keeps every charger fresh (stale after 120 s)
    client.loop_stop()
    client.disconnect()


@dataclass
class Window:
    """The measured window: opened once every client is connected, closed at `until`."""

    opened: asyncio.Event = field(default_factory=asyncio.Event)
    until: float = math.inf  # monotonic [s]
    ready: int = 0


@dataclass
class Result:
    """What one city's run measured."""

    samples: dict[str, list[float]]
    lags: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    probe: list[tuple[float, float]] = field(default_factory=list)  # (wall time, latency) [s]
    plan_window: tuple[float, float] | None = None  # the planning run (wall times) [s]
    plan_solve_s: float = math.nan
    plan_status: str = ""

    def during_plan(self) -> list[float]:
        """The probe's latencies while the planning run went on [s]."""
        if self.plan_window is None:
            return []
        start, end = self.plan_window
        return [latency for at, latency in self.probe if start <= at <= end]


async def http_client(url: str, window: Window, result: Result) -> None:
    """One HTTP client looping over the dashboard endpoints while the window is open."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        await http.get(ENDPOINTS[1])  # connected and its token verified before the window
        window.ready += 1
        await window.opened.wait()
        while time.monotonic() < window.until:
            for path in ENDPOINTS:
                began = time.perf_counter()
                try:
                    response = await http.get(path)
                except httpx.TransportError as exc:
                    result.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    result.errors.append(f"{path}: {response.status_code}")
                result.samples[path].append(elapsed)


async def sse_client(url: str, window: Window, result: Result) -> None:
    """One live-stream client recording the lag of each event behind its timestamp [s]."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", url + "/api/v1/events", headers=headers) as response,
    ):
        window.ready += 1
        if response.status_code != 200:
            result.errors.append(f"events: {response.status_code}")
            return
        async for line in response.aiter_lines():
            # Events before the window (the latest state sent at once) are not lags.
            if line.startswith("data: ") and window.opened.is_set():
                at = datetime.fromisoformat(json.loads(line[6:])["at"])
                result.lags.append((datetime.now(UTC) - at).total_seconds())
            if time.monotonic() > window.until:
                return


def probe(url: str, seconds: float, out: multiprocessing.Queue[list[tuple[float, float]]]) -> None:
    """In its own process: `/health/live` every `PROBE_PERIOD_S` for `seconds`."""
    samples: list[tuple[float, float]] = []
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/health/live")
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            began = time.perf_counter()
            http.get("/health/live")
            samples.append((time.time(), time.perf_counter() - began))
            time.sleep(PROBE_PERIOD_S)
    out.put(samples)


async def load(url: str, clients: int, seconds: float, result: Result) -> None:
    """`clients` HTTP and `clients` SSE clients and the probe for `seconds`, with a plan."""
    window = Window()

    async def open_window() -> None:
        while window.ready < 2 * clients:
            await asyncio.sleep(0.1)  # polling a count of connected clients: nothing to await
        spawn = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[list[tuple[float, float]]] = spawn.Queue()
        prober = spawn.Process(target=probe, args=(url, seconds, queue), daemon=True)
        prober.start()
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        async with httpx.AsyncClient(base_url=url, headers=operator, timeout=60) as http:
            (await http.post("/api/v1/plans/run")).raise_for_status()
            window.until = time.monotonic() + seconds
            window.opened.set()
            result.probe = await asyncio.to_thread(queue.get, True, seconds + 120)
            await asyncio.to_thread(prober.join, 10)

    await asyncio.gather(
        open_window(),
        *(http_client(url, window, result) for _ in range(clients)),
        *(sse_client(url, window, result) for _ in range(clients)),
    )


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def plan_run(lines: list[str], after: float) -> tuple[tuple[float, float], float, str] | None:
    """The planning run the window started: (start, end) wall times, solve time, status.

    From the service's log lines ("planning run <id>: <status> in <s> s"), whose timestamps
    are UTC with offset; the end is when the line was logged, the start that minus the run's
    own duration is unknown, so the window is taken from the run-now request to the log line.
    """
    for line in lines:
        if "planning run " not in line or ": " not in line:
            continue
        stamp = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        if stamp < after:
            continue
        words = line.split("planning run ", 1)[1].split()
        status = words[1].rstrip(",") if len(words) > 1 else "?"
        solve = float(words[3]) if len(words) > 3 and words[2] == "in" else math.nan
        return (after, stamp), solve, status
    return None


def run_case(chargers_n: int, feeders: int, clients: int, seconds: float) -> Result:
    """One service on a generated city under load."""
    result = Result({p: [] for p in ENDPOINTS})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text, chargers, meters = city(chargers_n, feeders)
        (work / "city.yaml").write_text(text)
        broker = LocalBroker(free_port(), work / "mosquitto", rig_accounts())
        broker.start()
        api_port = free_port()
        hasher = PasswordHasher()
        tokens = [
            {"name": "bench", "role": "viewer", "hash": hasher.hash(TOKEN)},
            {"name": "bench-operator", "role": "operator", "hash": hasher.hash(OPERATOR_TOKEN)},
        ]
        env = {
            "GRIDCOORD_MQTT__HOST": "127.0.0.1",
            "GRIDCOORD_MQTT__PORT": str(broker.port),
            **service_env(broker),
            "GRIDCOORD_STORAGE__PATH": str(work / "store.sqlite3"),
            "GRIDCOORD_STORAGE__SPOOL_DIR": str(work / "spool"),
            "GRIDCOORD_API__PORT": str(api_port),
            "GRIDCOORD_API__STATE_DIR": str(work / "api"),
            "GRIDCOORD_API__TOKENS": json.dumps(tokens),
        }
        process = GridcoordProcess(work / "city.yaml", env, work).start()
        stop = threading.Event()
        try:
            process.wait_for_log("dashboard and API at", timeout=120)
            process.wait_connected(timeout=60)
            feeder = threading.Thread(
                target=feed, args=(broker.port, chargers, meters, stop), daemon=True
            )
            feeder.start()
            url = f"http://127.0.0.1:{api_port}"
            # Wait until the service has seen every asset and made its first plan.
            deadline = time.monotonic() + 300
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=auth, timeout=60) as h:
                while time.monotonic() < deadline:
                    summary = h.get("/api/v1/summary").json()
                    online = summary["totals"]["online"]
                    if online >= len(chargers) + len(meters) and summary["last_plan"]:
                        break
                    time.sleep(0.5)  # polling a figure with a deadline: no event to await
            began = time.time()
            asyncio.run(load(url, clients, seconds, result))
            found = plan_run(list(process.lines), began)
            if found is not None:
                result.plan_window, result.plan_solve_s, result.plan_status = found
            if result.errors:
                problems = [line for line in process.lines if " ERROR " in line]
                print("service errors:", problems[-5:], file=sys.stderr)
            return result
        finally:
            stop.set()
            process.terminate()
            broker.stop()


def main() -> None:
    """Start the service on a generated city, load it, print the latency table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--feeders", type=int, default=400)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--no-reference", action="store_true", help="Skip the 100-charger reference city."
    )
    args = parser.parse_args()
    small = (
        Result({p: [] for p in ENDPOINTS})
        if args.no_reference
        else run_case(100, 4, args.clients, args.seconds)
    )
    big = run_case(args.chargers, args.feeders, args.clients, args.seconds)
    machine = platform.processor() or platform.machine()
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"API benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load_avg}"
    )
    print(
        f"{args.clients} HTTP clients looping over the endpoints + {args.clients} SSE clients, "
        f"{args.seconds:.0f} s per city; errors: {len(small.errors)} (reference), "
        f"{len(big.errors)}"
    )
    for label, r in (("reference", small), ("city", big)):
        if r.plan_window is not None:
            start, end = r.plan_window
            print(
                f"planning run in the window ({label}): {r.plan_status}, solve "
                f"{r.plan_solve_s:.2f} s, run-now to logged {end - start:.1f} s"
            )
    print()
    print(
        f"| endpoint | p50 [ms] {args.chargers} chargers | p99 [ms] | requests "
        "| p50 [ms] 100 chargers (reference) | p99 [ms] | ratio of p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [(f"`{p}`", big.samples[p], small.samples[p]) for p in ENDPOINTS]
    rows.append(("SSE delivery lag", big.lags, small.lags))
    rows.append(
        (
            "`/health/live`, probe process",
            [v for _, v in big.probe],
            [v for _, v in small.probe],
        )
    )
    rows.append(("… probe during the planning run", big.during_plan(), small.during_plan()))
    for name, values, reference in rows:
        print(
            f"| {name} | {pct(values, 0.5) * 1000:.1f} | {pct(values, 0.99) * 1000:.1f} | "
            f"{len(values)} | {pct(reference, 0.5) * 1000:.1f} | "
            f"{pct(reference, 0.99) * 1000:.1f} | {pct(values, 0.5) / pct(reference, 0.5):.1f} |"
        )
    for label, errors in (("reference", small.errors), ("city", big.errors)):
        if errors:
            print(f"\nfirst errors ({label}):", errors[:5])


if __name__ == "__main__":
    main()
