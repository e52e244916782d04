"""Ingest hot path in one process, µs per reading: decode + validate, then reading → line protocol.

No broker, no store: the pure-Python work one message costs gridcoord between paho handing it
over and the store's HTTP write, for a single reading and for batches of 10 and 100 (the
payloads of `bench/ingest.py`). Meant for A/B comparisons in one session on a loaded machine:
run it against another checkout with ``PYTHONPATH=/that/checkout`` and alternate the runs.
Times are this thread's CPU time (not wall time: on a shared machine the wait for a core
is not our cost), best of ``--repeat`` rounds of ``--messages`` readings each.

    .venv/bin/python bench/hotpath.py [--messages 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

import gridcoord
from adapters.contract.reading import Reading
from adapters.mqtt.telemetry import TelemetryDecoder
from gridcoord.config import load_config
from gridcoord.storage import points as points_module


def _to_lines() -> Callable[[list[Reading]], list[str]]:
    """The reading → line path of the checkout imported (direct if it has one, else `Point`)."""
    direct = getattr(points_module, "telemetry_lines", None)
    if direct is not None:
        return direct  # type: ignore[no-any-return]
    to_point = points_module.reading_to_point
    return lambda readings: [to_point(r).to_line() for r in readings]


def main() -> None:
    """Print µs per reading for each payload shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="readings per round")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        city = Path(tmp) / "city.yaml"
        city.write_text(
            "zones:\n  - {id: lt-01, capacity_kw: 630}\nassets:\n"
            "  - {id: meter-0001, kind: meter, zone: lt-01, rated_kw: 30}\n",
            encoding="utf-8",
        )
        decoder = TelemetryDecoder(load_config(city))
    to_lines = _to_lines()
    now = datetime.now(UTC)
    t0 = now - timedelta(days=2)
    topic = "gridcoord/telemetry/meter-0001"
    print(f"checkout: {Path(gridcoord.__file__).parents[1]}, load {os.getloadavg()[0]:.1f}")
    for batch in (1, 10, 100):
        readings = [
            {
                "power_w": 500.0 + (i % 97),
                "energy_wh": 1e6 + i,
                "ts": int((t0 + timedelta(milliseconds=10 * i)).timestamp() * 1000),
            }
            for i in range(args.messages)
        ]
        if batch == 1:
            payloads = [orjson.dumps(r) for r in readings]
        else:
            payloads = [
                orjson.dumps(readings[i : i + batch]) for i in range(0, len(readings), batch)
            ]
        decode_best = lines_best = float("inf")
        for _ in range(args.repeat):
            began = time.thread_time()
            decoded = [decoder.decode_message(topic, p, now=now).readings for p in payloads]
            middle = time.thread_time()
            for message in decoded:
                to_lines(message)
            ended = time.thread_time()
            decode_best = min(decode_best, middle - began)
            lines_best = min(lines_best, ended - middle)
        per = 1e6 / args.messages
        print(
            f"{batch:>3} per message: decode+validate {decode_best * per:6.2f} µs/reading, "
            f"→ lines {lines_best * per:6.2f} µs/reading, "
            f"total {(decode_best + lines_best) * per:6.2f}"
        )


if __name__ == "__main__":
    main()
