"""Benchmark: the demo city with and without the forecast work of issue 12, in one run.

Runs `gridcoord.demo.run.DemoRun` (the real service over the real broker, as `gridcoord demo
--speed 0 --json`) for each seed in two variants one after the other, and prints a table of
the demo's KPIs and the forecast error per lead time:

- ``before``: no day-ahead forecast (the nowcast alone), import weights ``early``;
- ``after``: the simulated weather service's day-ahead forecast blended with the nowcast,
  import weights ``net_load``.

Usage::

    .venv/bin/python bench/forecast_demo.py [--seeds 1 2 3] [--hours 24] [--json OUT]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

# The repository instead of bench/: bench/optimizer.py and bench/ocpp.py would shadow packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.forecast_replay import print_variants  # noqa: E402
from gridcoord.demo.broker import start_broker  # noqa: E402
from gridcoord.demo.run import DemoRun, DemoSettings  # noqa: E402
from gridcoord.demo.scenario import DEMO_START  # noqa: E402

VARIANTS = {
    "before": {"weather_service": False, "import_weights": "early"},
    "after": {"weather_service": True, "import_weights": "net_load"},
}


def run_one(seed: int, hours: float, variant: str) -> dict[str, object]:
    """One demo run; its ``--json`` object plus the wall time."""
    directory = Path(tempfile.mkdtemp(prefix=f"gc-fc-{variant}-{seed}-"))
    try:
        settings = DemoSettings(start=DEMO_START, hours=hours, seed=seed, **VARIANTS[variant])
        demo = DemoRun(settings, directory / "store.sqlite3", lambda _line: None)
        # Any free port for the dashboard: several benchmark or demo runs may be under way.
        api = demo.config.api.model_copy(update={"port": 0, "state_dir": directory / "api"})
        demo.config = demo.config.model_copy(update={"api": api})
        broker = start_broker(directory, demo.config)
        began = time.monotonic()
        try:
            result = demo.run(threading.Event(), broker.port, broker.accounts)
        finally:
            broker.stop()
        return {**result.as_json(), "wall_s": round(time.monotonic() - began, 1)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    """Run every seed in both variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", type=Path, help="also write every result here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print_variants(
        args.seeds,
        args.variants,
        lambda seed, variant: run_one(seed, args.hours, variant),
        args.json,
    )


if __name__ == "__main__":
    main()
