"""`gridcoord demo [--hours H] [--speed S] [--season S] [--seed N] [--json]` (DESIGN 3.1).

Starts a local mosquitto, runs the simulated city and the real service over it on a
simulated clock (`gridcoord.demo.run`), prints one KPI line per planning run and, at the end,
the KPIs of three rows: uncontrolled charging, the coordinated city, and the perfect-foresight
bound on the same realised data (`gridcoord.demo.bound`). SIGINT/SIGTERM end a run without
``--hours`` cleanly: the tick under way finishes, the store is flushed, exit 0. The simulated
city runs in a child process (`gridcoord.demo.city_process`); if it dies, the demo says so and
exits 1. A dashboard port taken by another demo: see `gridcoord.demo.dashboard`.

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
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from gridcoord.config import Config
from gridcoord.demo.broker import start_broker
from gridcoord.demo.city_process import CityProcessError
from gridcoord.demo.dashboard import DashboardPortError
from gridcoord.demo.run import DemoResult, DemoRun, DemoSettings
from gridcoord.demo.scenario import DEFAULT_SEASON, DEFAULT_SEED, SEASON_STARTS
from gridcoord.local_broker import find_mosquitto
from gridcoord.service import StartupError

MAX_HOURS = 24.0 * 7  # the bound's solve covers the whole run; a week fits its slot limit
MAX_SEED = 2**31 - 1
DATA_DIR = Path("var/demo")


def demo_command(
    hours: float | None,
    speed: float,
    json_output: bool,
    season: str = DEFAULT_SEASON,
    seed: int = DEFAULT_SEED,
) -> int:
    """Run the demo; 0 after ``hours`` or a stop signal, 2 for bad options, 1 if no broker."""
    if hours is not None and not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        print(
            f"demo: --hours must be a positive number of at most {MAX_HOURS:g}, got {hours}",
            file=sys.stderr,
        )
        return 2
    if season not in SEASON_STARTS:
        print(
            f"demo: --season must be one of {', '.join(SEASON_STARTS)}, got {season!r}",
            file=sys.stderr,
        )
        return 2
    if not 0 <= seed <= MAX_SEED:
        print(f"demo: --seed must be in 0..{MAX_SEED}, got {seed}", file=sys.stderr)
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
    settings = DemoSettings(
        start=SEASON_STARTS[season], hours=hours, speed=speed, seed=seed, season=season
    )
    # One demo per process: `gridcoord run`'s collector settings apply (gridcoord/heap.py).
    demo_run = DemoRun(settings, store_path, say, settle_heap=True)
    config_path = write_config(demo_run.config, DATA_DIR / "gridcoord-demo.yaml")
    try:
        broker = start_broker(DATA_DIR, demo_run.config)
    except (RuntimeError, ValueError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    say(
        f"gridcoord demo: {settings.chargers} chargers in a simulated Wolfsburg-like city "
        f"({season}, seed {seed}), "
        f"broker {broker.name} on 127.0.0.1:{broker.port}, embedded store {store_path} "
        f"(its configuration: {config_path}); "
        f"{'until Ctrl-C' if hours is None else f'{hours:g} simulated hours'} at "
        f"{'full speed' if speed == 0 else f'{speed:g}x'}"
    )
    try:
        result = demo_run.run(stop, broker.port, broker.accounts)
    except (CityProcessError, DashboardPortError, StartupError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
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


# The final table's rows: key, label, format.
ROWS = (
    ("renewable_share", "renewable share of EV energy (surplus)", "{:.1%}"),
    ("renewable_share_prorata", "renewable share of EV energy (pro rata)", "{:.1%}"),
    ("unmet_kwh", "unmet energy [kWh]", "{:,.1f}"),
    ("unmet_above_floor_kwh", "unmet above the physical floor [kWh]", "{:,.1f}"),
    ("requests_met_pct", "requests met by departure [%]", "{:.1f}"),
    ("peak_import_kw", "peak import [kW]", "{:,.0f}"),
    ("zone_overloads", "zone overloads, charging [zone-min]", "{}"),
    ("zone_overloads_non_ev", "zone overloads, non-EV load [zone-min]", "{}"),
    ("minima_over_limit", "minima above a zone limit [zone-min]", "{}"),
    ("ev_kwh", "EV energy delivered in the run [kWh]", "{:,.0f}"),
)


def summary(result: DemoResult) -> str:
    """The final KPIs in three columns (uncontrolled, coordinated, bound), for people."""
    columns: list[tuple[str, Mapping[str, float | int] | None]] = [
        ("uncontrolled", result.baseline),
        ("coordinated", result.controlled),
        ("bound", result.bound.kpis if result.bound is not None else None),
    ]
    header = f"{'':40}" + "".join(f"{name:>14}" for name, _ in columns)
    lines = [
        f"after {result.simulated_hours:g} simulated hours, {result.plans} planning runs "
        f"({result.fallback_plans} fallback):",
        header,
    ]
    for key, label, fmt in ROWS:
        cells = "".join(
            f"{fmt.format(kpis[key]) if kpis is not None else '-':>14}" for _, kpis in columns
        )
        lines.append(f"{label:40}{cells}")
    b, c = result.baseline, result.controlled
    lines.append(
        f"(requested {c['requested_kwh']:,.0f} kWh, of which {c['floor_kwh']:,.1f} kWh beyond "
        "what the chargers and vehicles could deliver in the stays: the physical floor)"
    )
    if result.bound is not None:
        share = result.bound.kpis["renewable_share"]
        # One decimal: the outcome target is 90 % of the bound, and 89.9 % rounded reads as met.
        ratio = f"{c['renewable_share'] / share:.1%}" if share > 0 else "-"
        vs = f"{c['renewable_share'] / b['renewable_share']:.2f}x" if b["renewable_share"] else "-"
        lines.append(
            f"(coordinated renewable share: {ratio} of the bound's, {vs} uncontrolled; the "
            f"bound is one {result.bound.status} solve on the realised weather, loads and "
            f"departures, {result.bound.slot_minutes}-minute slots, "
            f"{result.bound.solve_s:.1f} s)"
        )
    if result.floor_overloads:
        lines.append(
            f"({result.floor_overloads} zone-minutes in which §14a guaranteed minima alone "
            "exceeded a transformer's headroom: reported; see the log)"
        )
    if result.late_ticks:
        lines.append(f"({result.late_ticks} ticks waited past their deadline for MQTT messages)")
    return "\n".join(lines)
