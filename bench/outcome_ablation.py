"""Where the coordinated city's renewable gap to the bound comes from (issue 12).

The perfect-foresight bound (`gridcoord.demo.bound`) knows four things the service does not:
the weather, every car's departure and need, the non-EV load, and every minute (it solves at
1-minute slots; the planner plans quarter hours). This bench re-runs `bench/outcome.py`'s
coordinated city with more and more of that handed to the planner, one cell per process:

- ``base``: the service as it is (the outcome bench's coordinated run);
- ``renewables``: the weather service's day-ahead forecast replaced by the realised 15-minute
  means of PV and wind, and the nowcast switched off (a perfect weather forecast);
- ``+stays``: on top, every car reports its departure and need (in the demo city half do);
- ``+load``: on top, the planner's non-EV load forecast is the realised 15-minute means.

Beside them, the bound solved at the planner's 15-minute slots instead of 1 minute: what a
perfect 15-minute plan alone could reach. Each variant is `coordinated ÷ bound` on the
renewable (surplus) share, the pro-rata share where a cell has no surplus; unmet energy above
the floor and peak import ride along. The variants monkeypatch the simulation and the planner
in their own process; they are a measurement, not a product path.

usage: python bench/outcome_ablation.py --hours 24 --seasons summer spring --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("base", "renewables", "+stays", "+load")
_CHARGERS = 300


def _outcome_bench() -> Any:
    """bench/outcome.py as a module (bench/ on sys.path would shadow the ocpp package)."""
    spec = importlib.util.spec_from_file_location("outcome_bench", REPO / "bench" / "outcome.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _realised(layout: Any, seed: int, start: datetime, minutes: int) -> dict[datetime, tuple]:
    """(PV, wind, non-EV load) [kW] of the uncontrolled city per minute, two days past the end."""
    from gridcoord.simulation import CitySimulation

    city = CitySimulation(layout, seed, start, controlled=False)
    pv_ids = [p.id for p in layout.pv]
    out: dict[datetime, tuple] = {}
    end = start + timedelta(minutes=minutes + 48 * 60)
    while city.now < end:
        t = city.telemetry()
        out[city.now] = (
            sum(t[i]["power_w"] for i in pv_ids) / 1000,
            t[layout.wind_id]["power_w"] / 1000,
            sum(t[load.id]["power_w"] for load in layout.loads) / 1000,
        )
        city.step(city.now + timedelta(minutes=1))
    return out


def _slot_mean(real: dict[datetime, tuple], start: datetime, minutes: int, k: int) -> float | None:
    values = [real.get(start + timedelta(minutes=m)) for m in range(minutes)]
    return None if any(v is None for v in values) else sum(v[k] for v in values) / minutes  # type: ignore[index]


def _perfect_weather(real: dict[datetime, tuple]) -> None:
    import numpy as np

    import gridcoord.planning.planner as planner
    import gridcoord.simulation.weather_service as service
    from gridcoord.forecast.external import ForecastKind

    forecast = service.WeatherService.forecast

    def realised(self: Any, issued_at: datetime) -> dict[str, Any]:
        out = forecast(self, issued_at)
        first, pv = out["pv"]
        wind = np.array(out["wind"][1], dtype=float)
        pv = np.array(pv, dtype=float)
        for i in range(len(pv)):
            slot = first + timedelta(minutes=15 * i)
            p, w = _slot_mean(real, slot, 15, 0), _slot_mean(real, slot, 15, 1)
            if p is not None and w is not None:
                pv[i], wind[i] = p, w
        return {"pv": (first, pv), "wind": (first, wind)}

    service.WeatherService.forecast = realised  # type: ignore[method-assign]
    build = planner.build_forecast
    off = {ForecastKind.PV: 0.0, ForecastKind.WIND: 0.0, ForecastKind.LOAD: 0.0}

    def day_ahead_only(*args: Any, **kwargs: Any) -> Any:
        return build(*args, **{**kwargs, "nowcast_tau_h": off})

    planner.build_forecast = day_ahead_only


def _every_car_reports() -> None:
    import gridcoord.simulation.stepper as stepper

    visits_on = stepper.visits_on

    def reporting(*args: Any, **kwargs: Any) -> list[Any]:
        return [dataclasses.replace(v, reports_departure=True) for v in visits_on(*args, **kwargs)]

    stepper.visits_on = reporting


def _perfect_load(real: dict[datetime, tuple]) -> None:
    import numpy as np

    import gridcoord.planning.planner as planner

    build = planner.build_forecast

    def realised(inputs: Any, starts: Any, slot_minutes: int, *args: Any, **kwargs: Any) -> Any:
        forecast = build(inputs, starts, slot_minutes, *args, **kwargs)
        load = np.array(forecast.load_kw, dtype=float)
        for i, slot in enumerate(starts):
            value = _slot_mean(real, slot, slot_minutes, 2)
            if value is not None:
                load[i] = value
        return dataclasses.replace(forecast, load_kw=load)

    planner.build_forecast = realised


def run_cell(season: str, seed: int, hours: float, variant: str) -> dict[str, Any]:
    """One variant of one cell in this process (it patches modules: call it once per process).

    Parameters
    ----------
    season, seed, hours
        the outcome cell.
    variant
        one of `VARIANTS`; each includes the ones before it but ``base``.

    Returns
    -------
    dict
        share key, coordinated, bound and uncontrolled shares, the 15-minute bound's share
        (``base`` only), unmet above the floor [kWh], requested [kWh], peak import [kW].
    """
    outcome = _outcome_bench()
    import gridcoord.demo.bound as bound_module
    from gridcoord.demo.scenario import SEASON_STARTS
    from gridcoord.simulation import CitySimulation, demo_city

    start = SEASON_STARTS[season]
    layout = demo_city(seed, _CHARGERS)
    minutes = round(hours * 60)
    end = start + timedelta(minutes=minutes)
    city = CitySimulation(layout, seed, start, controlled=False)
    while city.now < end:
        city.step(city.now + timedelta(minutes=1))
    record = (layout, list(city.trace), city.visits(), dict(city.energy_before))
    uncontrolled = city.kpis()
    bound = bound_module.perfect_foresight(*record).kpis
    key = "renewable_share" if bound["renewable_share"] > 0 else "renewable_share_prorata"
    bound_15 = None
    if variant == "base":
        finest = bound_module.SLOT_CHOICES_MIN
        bound_module.SLOT_CHOICES_MIN = (15,)
        bound_15 = bound_module.perfect_foresight(*record).kpis[key]
        bound_module.SLOT_CHOICES_MIN = finest
    steps: list[Callable[[], None]] = []
    if variant != "base":
        real = _realised(layout, seed, start, minutes)
        steps.append(lambda: _perfect_weather(real))
        if variant in ("+stays", "+load"):
            steps.append(_every_car_reports)
        if variant == "+load":
            steps.append(lambda: _perfect_load(real))
    for step in steps:
        step()
    ours, _, _ = outcome.coordinated(layout, seed, start, hours)
    return {
        "key": key,
        "coordinated": ours[key],
        "bound": bound[key],
        "uncontrolled": uncontrolled[key],
        "bound_15": bound_15,
        "unmet_above_floor_kwh": ours["unmet_above_floor_kwh"],
        "requested_kwh": ours["requested_kwh"],
        "peak_import_kw": ours["peak_import_kw"],
    }


def _child(season: str, seed: int, hours: float, variant: str) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", season, str(seed), str(hours), variant]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{season}/{seed} {variant}: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run the variants of every cell, two processes at a time, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seasons", nargs="+", default=["winter", "spring", "summer"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--child", nargs=4, metavar=("SEASON", "SEED", "HOURS", "VARIANT"))
    args = parser.parse_args()
    if args.child:
        season, seed, hours, variant = args.child
        print(json.dumps(run_cell(season, int(seed), float(hours), variant)))
        return
    cells = [(s, n) for s in args.seasons for n in args.seeds]
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            (s, n, v): pool.submit(_child, s, n, args.hours, v) for s, n in cells for v in VARIANTS
        }
        results = {k: f.result() for k, f in futures.items()}
    print(
        f"outcome ablation: {_CHARGERS} chargers, {args.hours:g} h from each season's start; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"load {load_before:.2f} before / {os.getloadavg()[0]:.2f} after, "
        f"{time.perf_counter() - began:.0f} s"
    )
    print()
    head = "| cell | share | " + " | ".join(VARIANTS) + " | bound at 15 min | unmet >floor kWh |"
    print(head)
    print("|---|---|" + "---:|" * (len(VARIANTS) + 2))
    for s, n in cells:
        base = results[(s, n, "base")]
        ratios = " | ".join(
            f"{results[(s, n, v)]['coordinated'] / base['bound']:.1%}" for v in VARIANTS
        )
        unmet = " / ".join(f"{results[(s, n, v)]['unmet_above_floor_kwh']:.1f}" for v in VARIANTS)
        kind = "surplus" if base["key"] == "renewable_share" else "pro rata"
        print(f"| {s}/{n} | {kind} | {ratios} | {base['bound_15'] / base['bound']:.1%} | {unmet} |")


if __name__ == "__main__":
    main()
