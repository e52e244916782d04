"""API benchmark: dashboard endpoints and the live stream with 50 concurrent clients.

Starts a real Mosquitto and `gridcoord run` (embedded store, planning on) on a generated city of
10,000 chargers under 400 feeders, feeds telemetry for every asset, then runs N concurrent
HTTP clients that loop over the dashboard's endpoints (as a viewer, bearer token) while N more
hold the SSE stream open. Reports p50/p99 latency per endpoint and the stream's delivery lag
(receive time − the event's `at`), with `/health/live` under the same load as the reference.

    .venv/bin/python bench/api.py [--chargers 10000] [--clients 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
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
from tests.fixtures.ports import free_port  # noqa: E402

TOKEN = "bench-viewer-token"
ENDPOINTS = [
    "/health/live",
    "/api/v1/summary",
    "/api/v1/chart",
    "/api/v1/plans?limit=12",
    "/api/v1/setpoints?limit=200",
    "/api/v1/sessions?limit=10000",
    "/api/v1/zones",
    "/api/v1/assets?limit=1000",
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


async def http_client(
    url: str, until: float, samples: dict[str, list[float]], errors: list[str]
) -> None:
    """One HTTP client looping over the dashboard endpoints until `until`; latencies [s]."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        while time.monotonic() < until:
            for path in ENDPOINTS:
                began = time.perf_counter()
                try:
                    response = await http.get(path)
                except httpx.TransportError as exc:
                    errors.append(f"{path}: {type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    errors.append(f"{path}: {response.status_code}")
                samples[path].append(elapsed)


async def sse_client(url: str, until: float, lags: list[float], errors: list[str]) -> None:
    """One live-stream client recording the lag of each event behind its timestamp [s]."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", url + "/api/v1/events", headers=headers) as response,
    ):
        if response.status_code != 200:
            errors.append(f"events: {response.status_code}")
            return
        first = True
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                if not first:  # the first is the latest state, sent at once: not a lag
                    at = datetime.fromisoformat(json.loads(line[6:])["at"])
                    lags.append((datetime.now(UTC) - at).total_seconds())
                first = False
            if time.monotonic() > until:
                return


async def load(
    url: str, clients: int, seconds: float
) -> tuple[dict[str, list[float]], list[float], list[str]]:
    """Run `clients` HTTP and `clients` SSE clients for `seconds`; their samples and errors."""
    samples: dict[str, list[float]] = {p: [] for p in ENDPOINTS}
    lags: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(http_client(url, until, samples, errors) for _ in range(clients)),
        *(sse_client(url, until, lags, errors) for _ in range(clients)),
    )
    return samples, lags, errors


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_case(
    chargers_n: int, feeders: int, clients: int, seconds: float
) -> tuple[dict[str, list[float]], list[float], list[str]]:
    """One service on a generated city under load; latencies per endpoint and stream lags."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text, chargers, meters = city(chargers_n, feeders)
        (work / "city.yaml").write_text(text)
        broker = LocalBroker(free_port(), work / "mosquitto")
        broker.start()
        api_port = free_port()
        hashed = PasswordHasher().hash(TOKEN)
        env = {
            "GRIDCOORD_MQTT__HOST": "127.0.0.1",
            "GRIDCOORD_MQTT__PORT": str(broker.port),
            "GRIDCOORD_STORAGE__PATH": str(work / "store.sqlite3"),
            "GRIDCOORD_STORAGE__SPOOL_DIR": str(work / "spool"),
            "GRIDCOORD_API__PORT": str(api_port),
            "GRIDCOORD_API__STATE_DIR": str(work / "api"),
            "GRIDCOORD_API__TOKENS": json.dumps(
                [{"name": "bench", "role": "viewer", "hash": hashed}]
            ),
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
            # Wait until the service has seen every asset.
            deadline = time.monotonic() + 180
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=auth, timeout=60) as h:
                while time.monotonic() < deadline:
                    online = h.get("/api/v1/summary").json()["totals"]["online"]
                    if online >= len(chargers) + len(meters):
                        break
                    time.sleep(0.5)  # polling a figure with a deadline: no event to await
            result = asyncio.run(load(url, clients, seconds))
            if result[2]:
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
    empty: tuple[dict[str, list[float]], list[float], list[str]] = (
        {p: [] for p in ENDPOINTS},
        [],
        [],
    )
    small = empty if args.no_reference else run_case(100, 4, args.clients, args.seconds)
    big = run_case(args.chargers, args.feeders, args.clients, args.seconds)
    machine = platform.processor() or platform.machine()
    print(
        f"API benchmark — {datetime.now(UTC):%Y-%m-%d}, {machine}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{args.clients} HTTP clients looping over the endpoints + {args.clients} SSE clients, "
        f"{args.seconds:.0f} s per city; errors: {len(small[2])} (reference), {len(big[2])}"
    )
    print()
    print(
        f"| endpoint | p50 [ms] {args.chargers} chargers | p99 [ms] | requests "
        "| p50 [ms] 100 chargers (reference) | p99 [ms] | ratio of p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [(f"`{p}`", big[0][p], small[0][p]) for p in ENDPOINTS]
    rows.append(("SSE delivery lag", big[1], small[1]))
    for name, values, reference in rows:
        print(
            f"| {name} | {pct(values, 0.5) * 1000:.1f} | {pct(values, 0.99) * 1000:.1f} | "
            f"{len(values)} | {pct(reference, 0.5) * 1000:.1f} | "
            f"{pct(reference, 0.99) * 1000:.1f} | {pct(values, 0.5) / pct(reference, 0.5):.1f} |"
        )
    for label, errors in (("reference", small[2]), ("city", big[2])):
        if errors:
            print(f"\nfirst errors ({label}):", errors[:5])


if __name__ == "__main__":
    main()
