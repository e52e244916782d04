"""`gridcoord demo [--hours H] [--speed S] [--json]` (DESIGN 3.1): the simulated city end to end.

Starts a local mosquitto, runs the simulated city and the real service over it on a
simulated clock (`gridcoord.demo.run`), prints one KPI line per planning run and, at the end,
the KPIs against uncontrolled charging. SIGINT/SIGTERM end a run without ``--hours``
cleanly: the tick under way finishes, the store is flushed, exit 0.

The demo needs a `mosquitto` binary (the service's MQTT client speaks MQTT 5): without one
it says how to install it and exits 1.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from gridcoord.config import Config
from gridcoord.demo.broker import start_broker
from gridcoord.demo.run import DemoResult, DemoRun, DemoSettings
from gridcoord.local_broker import find_mosquitto

# A fixed day, so that the demo's figures are reproducible: a Tuesday in January from noon UTC,
# through the winter evening peak (when uncontrolled charging overloads transformers) and a
# windy night, to the next noon.
DEMO_START = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
DATA_DIR = Path("var/demo")


def demo_command(hours: float | None, speed: float, json_output: bool) -> int:
    """Run the demo; 0 after ``hours`` or a stop signal, 2 for bad options, 1 if no broker."""
    if hours is not None and not (math.isfinite(hours) and hours > 0):
        print(f"demo: --hours must be a positive number, got {hours}", file=sys.stderr)
        return 2
    if not (math.isfinite(speed) and speed >= 0):
        print(f"demo: --speed must be >= 0 (0 = as fast as possible), got {speed}", file=sys.stderr)
        return 2
    if find_mosquitto() is None:
        print(
            "demo: the demo runs the real service, which needs a mosquitto broker (MQTT 5). "
            "Install mosquitto (Debian: apt-get install mosquitto).",
            file=sys.stderr,
        )
        return 1
    from gridcoord.logging_setup import configure

    configure(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    # HiGHS prints a banner to file descriptor 1 from C code. The demo's own output goes to
    # the real stdout (kept as a duplicate) and fd 1 goes to stderr meanwhile, so that stdout
    # carries only the KPI lines, or with --json only the JSON object.
    sys.stdout.flush()
    real_stdout = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    out = sys.stderr if json_output else real_stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    store_path = DATA_DIR / "gridcoord-demo.sqlite3"
    # Each demo starts afresh: an empty store and spool, no retained setpoints of a last run.
    for old in DATA_DIR.glob("gridcoord-demo.sqlite3*"):
        old.unlink()
    shutil.rmtree(DATA_DIR / "spool", ignore_errors=True)
    (DATA_DIR / "mosquitto" / "mosquitto.db").unlink(missing_ok=True)
    settings = DemoSettings(start=DEMO_START, hours=hours, speed=speed)
    demo_run = DemoRun(settings, store_path, say)
    config_path = write_config(demo_run.config, DATA_DIR / "gridcoord-demo.yaml")
    try:
        broker = start_broker(DATA_DIR, demo_run.config)
    except (RuntimeError, ValueError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    say(
        f"gridcoord demo: {settings.chargers} chargers in a simulated Wolfsburg-like city, "
        f"broker {broker.name} on 127.0.0.1:{broker.port}, embedded store {store_path} "
        f"(its configuration: {config_path}); "
        f"{'until Ctrl-C' if hours is None else f'{hours:g} simulated hours'} at "
        f"{'full speed' if speed == 0 else f'{speed:g}x'}"
    )
    try:
        result = demo_run.run(stop, broker.port, broker.accounts)
    finally:
        broker.stop()
    print(json.dumps(result.as_json()) if json_output else summary(result), file=real_stdout)
    real_stdout.flush()
    return 0


def write_config(config: Config, path: Path) -> Path:
    """The demo city's configuration as YAML, for the commands that read its store afterwards.

    ``gridcoord export-open-data --config var/demo/gridcoord-demo.yaml ...`` exports the demo
    run; the broker section is left out (the demo's broker lives only as long as the demo),
    and the file holds no secret.
    """
    import yaml

    data = config.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data.pop("mqtt", None)
    storage = data.setdefault("storage", {})
    storage["path"] = str(config.storage.path.resolve())
    storage["spool_dir"] = str(config.storage.spool_dir.resolve())
    path.write_text(
        "# Written by `gridcoord demo`: the simulated city of the last demo run.\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return path


def summary(result: DemoResult) -> str:
    """The final KPIs against the uncontrolled baseline, as a table for people."""
    c, b = result.controlled, result.baseline
    formats = {
        "renewable_share": "{:.1%}",
        "unmet_kwh": "{:,.1f}",
        "peak_import_kw": "{:,.0f}",
        "zone_overloads": "{}",
    }
    names = {
        "renewable_share": "renewable share of EV energy",
        "unmet_kwh": "unmet energy [kWh]",
        "peak_import_kw": "peak import (feeder load) [kW]",
        "zone_overloads": "zone overloads [zone-minutes]",
    }
    rows = [(names[k], fmt.format(c[k]), fmt.format(b[k])) for k, fmt in formats.items()]
    lines = [
        f"after {result.simulated_hours:g} simulated hours, {result.plans} planning runs "
        f"({result.fallback_plans} fallback):",
        f"{'':32}{'coordinated':>14}{'uncontrolled':>14}",
        *(f"{name:32}{ours:>14}{theirs:>14}" for name, ours, theirs in rows),
    ]
    if result.floor_overloads:
        lines.append(
            f"({result.floor_overloads} zone-minutes in which §14a guaranteed minima alone "
            "exceeded a transformer's headroom: setpoints reserved, reported; see the log)"
        )
    if result.late_ticks:
        lines.append(f"({result.late_ticks} ticks waited past their deadline for MQTT messages)")
    return "\n".join(lines)
