"""Optimizer benchmark: generated city instances, PuLP path vs HiGHS alone on the same LP.

A city of 10,000 chargers under 400 feeders of one substation, 96 quarter-hour slots, per-slot
feeder headroom, sessions with windows of 1–12 h and 0–60 kWh. For each size it reports model
build, solve and extraction time and peak memory, separately for

* ``pulp``  — `optimizer.solve`'s path: PuLP model → PuLP's HiGHS (highspy, in memory);
* ``highs`` — the same LP (`optimizer.layout`) passed to highspy as arrays.

Usage: ``python bench/optimizer.py [--sessions 1000 5000 20000] [--variants pulp highs]
[--time-limit 600] [--seed 1]``. Each variant runs in a fresh process so that peak memory
(ru_maxrss) is its own. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer import Problem


def city_problem(
    sessions: int,
    *,
    chargers: int = 10_000,
    feeders: int = 400,
    slots: int = 96,
    seed: int = 1,
    substation_kw: float = 70_000.0,
) -> dict[str, Any]:
    """A generated city (problem JSON as a dict): one substation, `feeders` feeders below it."""
    rng = np.random.default_rng(seed)
    hour = np.arange(slots) * 24.0 / slots
    pv = np.clip(np.sin((hour - 6.0) / 12.0 * np.pi), 0.0, None) * 30_000.0
    wind = 8_000.0 + 4_000.0 * np.sin(hour / 24.0 * 2 * np.pi + rng.uniform(0, 6.28))
    renewable = pv + wind
    base = 20_000.0 + 8_000.0 * np.exp(-(((hour - 19.0) / 3.0) ** 2))
    weight = 0.25 + 0.1 * np.exp(-(((hour - 19.0) / 3.0) ** 2)) - 0.08 * (pv / pv.max())
    # Substation EV headroom: what its transformer has left over the base load.
    substation = np.clip(substation_kw - base, 5_000.0, None)
    zones: list[dict[str, Any]] = [
        {"id": "substation", "capacity_kw": substation.round(1).tolist()}
    ]
    per_feeder = chargers / feeders
    for f in range(feeders):
        headroom = per_feeder * 11.0 * rng.uniform(0.25, 0.8)
        dip = 1.0 - 0.5 * np.exp(-(((hour - rng.uniform(17, 21)) / 2.0) ** 2))
        zones.append(
            {
                "id": f"feeder-{f:03d}",
                "parent": "substation",
                "capacity_kw": (headroom * dip).round(1).tolist(),
            }
        )
    charger_list = [
        {
            "id": f"cp-{c:05d}",
            "zone": f"feeder-{c % feeders:03d}",
            "max_kw": float(rng.choice([11.0, 11.0, 22.0])),
        }
        for c in range(chargers)
    ]
    session_list = []
    for s in range(sessions):
        length = int(rng.integers(4, 49))  # 1–12 h of quarter hours
        arrival = int(rng.integers(0, slots - 1))
        departure = min(slots, arrival + length)
        vehicle = rng.choice([3.7, 7.4, 11.0, 11.0, 22.0, 0.0])
        session: dict[str, Any] = {
            "id": f"s-{s:05d}",
            "charger": f"cp-{int(rng.integers(0, chargers)):05d}",
            "arrival_slot": arrival,
            "departure_slot": departure,
            "energy_kwh": round(float(rng.uniform(0.0, 60.0)), 2),
        }
        if vehicle > 0:
            session["max_kw"] = float(vehicle)
        session_list.append(session)
    return {
        "slot_minutes": 15,
        "slots": slots,
        "start": "2026-03-29T00:00:00+01:00",
        "renewable_kw": renewable.round(1).tolist(),
        "base_load_kw": base.round(1).tolist(),
        "import_weight": weight.round(4).tolist(),
        "zones": zones,
        "chargers": charger_list,
        "sessions": session_list,
    }


def run_variant(
    variant: str,
    sessions: int,
    seed: int,
    time_limit_s: float,
    substation_kw: float,
    highs_solver: str,
) -> dict[str, Any]:
    """Time one variant on one instance in this process; returns its figures."""
    from optimizer.compiled import compile_problem
    from optimizer.highs_direct import solve_layout
    from optimizer.layout import build_layout
    from optimizer.lp import build_model, solve_model

    data = city_problem(sessions, seed=seed, substation_kw=substation_kw)
    if variant == "end2end":
        return _end_to_end(data, sessions, time_limit_s)
    problem = Problem.model_validate(data)
    options = {"solver": highs_solver}
    t0 = time.perf_counter()
    compiled = compile_problem(problem)
    layout = build_layout(compiled)
    t1 = time.perf_counter()
    figures: dict[str, Any] = {"variant": variant, "sessions": sessions}
    if variant == "pulp":
        model = build_model(compiled, layout)
        t2 = time.perf_counter()
        result = solve_model(model, time_limit_s, options)
        # PuLP's solve() both hands the model to highspy and reads values back: split it.
        t3 = time.perf_counter()
        power = (
            layout.power_from_columns(result.values, compiled)
            if result.values is not None
            else None
        )
        t4 = time.perf_counter()
        figures["build_s"] = t2 - t0
        figures["solve_s"] = t3 - t2
        figures["extract_s"] = t4 - t3
    else:
        t2 = time.perf_counter()
        result = solve_layout(layout, time_limit_s, options)
        t3 = time.perf_counter()
        power = (
            layout.power_from_columns(result.values, compiled)
            if result.values is not None
            else None
        )
        t4 = time.perf_counter()
        figures["build_s"] = t1 - t0
        figures["solve_s"] = t3 - t2
        figures["extract_s"] = t4 - t3
    figures["status"] = result.status
    figures["columns"] = layout.n_cols
    figures["rows"] = layout.n_rows
    figures["nonzeros"] = len(layout.entry_row)
    if power is not None:
        from optimizer.kpis import score

        kpis = score(compiled, power)
        figures["unmet_kwh"] = kpis.unmet_kwh
        figures["import_cost"] = kpis.import_cost
        figures["violation"] = compiled.max_violation(power)
    figures["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return figures


def _end_to_end(data: dict[str, Any], sessions: int, time_limit_s: float) -> dict[str, Any]:
    """`gridcoord optimize` without the file: validate, `optimizer.solve`, serialise."""
    from optimizer import solve

    t0 = time.perf_counter()
    problem = Problem.model_validate(data)
    t1 = time.perf_counter()
    schedule = solve(problem, time_limit_s=time_limit_s)
    t2 = time.perf_counter()
    text = schedule.model_dump_json()
    t3 = time.perf_counter()
    return {
        "variant": "end2end",
        "sessions": sessions,
        "build_s": t1 - t0,  # validation
        "solve_s": t2 - t1,  # solve(): LP, baselines, explanation
        "extract_s": t3 - t2,  # JSON
        "status": schedule.status,
        "columns": 0,
        "rows": 0,
        "unmet_kwh": schedule.unmet_kwh_total,
        "import_cost": schedule.import_cost,
        "json_mb": len(text) / 1e6,
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main() -> None:
    """Run every (size, variant) in its own process and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1_000, 5_000, 20_000])
    parser.add_argument("--variants", nargs="+", default=["pulp", "highs", "end2end"])
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--substation-kw",
        type=float,
        default=70_000.0,
        help="substation rating [kW]; its EV headroom is this minus the base load (48000: "
        "a substation that binds all day)",
    )
    parser.add_argument("--highs-solver", default="choose", help="HiGHS 'solver' option")
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "SESSIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = run_variant(
            args.one[0],
            int(args.one[1]),
            args.seed,
            args.time_limit,
            args.substation_kw,
            args.highs_solver,
        )
        print(json.dumps(figures))
        return
    print(
        f"# substation {args.substation_kw:.0f} kW · HiGHS solver {args.highs_solver} · "
        f"{platform.node()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · load {os.getloadavg()[0]:.2f} · "
        f"{datetime.now(UTC).isoformat(timespec='minutes')}"
    )
    print(
        "| sessions | variant | columns | rows | build s | solve s | extract s | total s "
        "| peak MB | status | unmet kWh | import cost |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for sessions in args.sessions:
        for variant in args.variants:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    variant,
                    str(sessions),
                    "--seed",
                    str(args.seed),
                    "--time-limit",
                    str(args.time_limit),
                    "--substation-kw",
                    str(args.substation_kw),
                    "--highs-solver",
                    args.highs_solver,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(f"| {sessions} | {variant} | failed: {out.stderr.strip()[-200:]} |")
                continue
            f = json.loads(out.stdout.strip().splitlines()[-1])
            total = f["build_s"] + f["solve_s"] + f["extract_s"]
            print(
                f"| {sessions} | {variant} | {f['columns']} | {f['rows']} | {f['build_s']:.2f} "
                f"| {f['solve_s']:.2f} | {f['extract_s']:.2f} | {total:.2f} "
                f"| {f['peak_mem_mb']:.0f} | {f['status']} "
                f"| {f.get('unmet_kwh', float('nan')):.3f} "
                f"| {f.get('import_cost', float('nan')):.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
