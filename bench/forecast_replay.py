"""Benchmark: the forecast work of issue 12 in an in-process replay of the demo city.

The demo (`bench/forecast_demo.py`) runs the real service over MQTT and takes minutes per
simulated hour on a loaded machine; this replay drives the same `Coordinator` in-process, as
`bench/coordinator.py` does: the city's telemetry every simulated minute, a plan every quarter
hour, a dispatch every minute whose setpoints the simulated chargers obey. The week of history
the demo seeds into its store is fed to the coordinator's state instead (`CityState.warm`), and
the weather service's messages go through the service's own decoding and checks
(`decode_forecast`) instead of the broker. Per seed, two variants in the same run:

- ``before``: the nowcast alone, import weights ``early`` (main before issue 12);
- ``after``: the weather service's day-ahead forecast blended in, import weights ``net_load``.

Usage::

    .venv/bin/python bench/forecast_replay.py [--seeds 1 2 3] [--hours 24] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The repository instead of bench/: bench/optimizer.py and bench/ocpp.py would shadow packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from adapters.contract.reading import AssetKind  # noqa: E402
from adapters.contract.validation import build_reading  # noqa: E402
from gridcoord.config import Config  # noqa: E402
from gridcoord.forecast.subscription import decode_forecast  # noqa: E402
from gridcoord.planning.coordinator import Coordinator  # noqa: E402
from gridcoord.planning.planner import forecast_capacity_kw  # noqa: E402
from gridcoord.simulation import CitySimulation, demo_city  # noqa: E402
from gridcoord.simulation.weather_service import WeatherService  # noqa: E402
from gridcoord.timegrid import parse_rfc3339  # noqa: E402

START = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)  # the demo's day (gridcoord.demo.command)
FORECAST_EVERY = timedelta(hours=6)
VARIANTS = {
    "before": {"weather_service": False, "import_weights": "early"},
    "after": {"weather_service": True, "import_weights": "net_load"},
    # Ablations: each half of the change alone.
    "forecast_only": {"weather_service": True, "import_weights": "early"},
    "weights_only": {"weather_service": False, "import_weights": "net_load"},
}


def warm(coordinator: Coordinator, config: Config, seed: int, days: int = 7) -> None:
    """The past week of PV, wind and non-EV load, as the demo's store holds it."""
    layout = demo_city(seed, len([a for a in config.assets if a.kind is AssetKind.CHARGER]))
    past = CitySimulation(layout, seed, START - timedelta(days=days), controlled=False)
    now = START - timedelta(days=days)
    while now < START:
        now += timedelta(minutes=config.planning.slot_minutes)
        past.step(now)
        for asset_id, payload in past.telemetry().items():
            asset = config.asset(asset_id)
            if asset is None or asset.kind is AssetKind.CHARGER:
                continue
            values = {k: v for k, v in payload.items() if k != "ts"}
            coordinator.observe(build_reading(asset, values, ts=now, now=now))


def replay(seed: int, hours: float, chargers: int, variant: str) -> dict[str, object]:
    """One replay; the demo's JSON keys plus the wall time."""
    options = VARIANTS[variant]
    layout = demo_city(seed, chargers)
    config = Config(
        **layout.config(),
        planning={"solver_time_limit_s": 20.0, "import_weights": options["import_weights"]},
    )
    coordinator = Coordinator(config)
    began = time.monotonic()
    warm(coordinator, config, seed)
    city = CitySimulation(layout, seed, START)
    baseline = CitySimulation(layout, seed, START, controlled=False)
    weather = WeatherService(layout, seed) if options["weather_service"] else None
    capacity = forecast_capacity_kw(config)
    now = START
    while now < START + timedelta(hours=hours):
        if weather is not None and (now - START) % FORECAST_EVERY == timedelta(0):
            for topic, payload in weather.publications(now, config.mqtt.topic_prefix):
                coordinator.observe_forecast(
                    decode_forecast(
                        topic,
                        payload,
                        prefix=config.mqtt.topic_prefix,
                        now=now,
                        capacity_kw=capacity,
                    )
                )
        for asset_id, payload in city.telemetry().items():
            asset = config.asset(asset_id)
            assert asset is not None
            ts = parse_rfc3339(payload["ts"])
            values = {k: v for k, v in payload.items() if k != "ts"}
            coordinator.observe(build_reading(asset, values, ts=ts, now=ts))
        if now.minute % config.planning.interval_min == 0:
            coordinator.plan(now)
        for charger_id, setpoint in coordinator.dispatch(now).payloads.items():
            city.receive_setpoint(charger_id, setpoint)
        now += timedelta(minutes=1)
        city.step(now)
        baseline.step(now)
    return {
        **city.kpis(),
        "baseline": baseline.kpis(),
        "forecast_error": coordinator.forecast_error(),
        "wall_s": round(time.monotonic() - began, 1),
    }


def main() -> None:
    """Replay every seed in both variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--chargers", type=int, default=300)
    parser.add_argument(
        "--variants", nargs="+", default=["before", "after"], choices=list(VARIANTS)
    )
    parser.add_argument("--json", type=Path, help="also write every result here")
    args = parser.parse_args()
    print_variants(
        args.seeds,
        args.variants,
        lambda seed, variant: replay(seed, args.hours, args.chargers, variant),
        args.json,
    )


def print_variants(
    seeds: Sequence[int],
    variants: Sequence[str],
    run: Callable[[int, str], dict[str, object]],
    json_path: Path | None,
) -> None:
    """Run every seed in every variant; print the KPI table, then the forecast error per lead."""
    results: dict[str, dict[str, object]] = {}
    print(
        "| seed | variant | EV renewable | unmet [kWh] | peak import [kW] | overloads | wall [s] |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed in seeds:
        for variant in variants:
            out = run(seed, variant)
            results[f"{seed}/{variant}"] = out
            base = out["baseline"]
            assert isinstance(base, dict)
            print(
                f"| {seed} | {variant} | {out['renewable_share']:.1%} "
                f"(uncontrolled {base['renewable_share']:.1%}) | {out['unmet_kwh']:.1f} "
                f"({base['unmet_kwh']:.1f}) | {out['peak_import_kw']:.0f} "
                f"({base['peak_import_kw']:.0f}) | {out['zone_overloads']} | {out['wall_s']} |",
                flush=True,
            )
            if json_path is not None:
                json_path.write_text(json.dumps(results, indent=1))
    for key, out in results.items():
        print(f"\nforecast error {key} (MAE kW / bias kW / n per lead bucket):")
        errors = out.get("forecast_error")
        assert isinstance(errors, dict)
        for kind, by_source in errors.items():
            for source, buckets in by_source.items():
                cells = ", ".join(
                    f"{b} {v['mae_kw']:.0f}/{v['bias_kw']:+.0f}/{v['n']}"
                    for b, v in buckets.items()
                )
                print(f"  {kind:<5} {source:<9} {cells}")


if __name__ == "__main__":
    main()
