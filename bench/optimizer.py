"""Optimizer benchmark: generated city families, every solve path side by side on the same instance.

A city of chargers (3.7-50 kW) under feeders of one substation, a 24 h horizon, sessions with
windows of 1-12 h and 0-60 kWh, vehicle limits on 30 % of them, headroom varying slot to slot.
Families (each with a seed, never one tuned instance):

* ``default``     substation 70 MW rating, feeders at 25-80 % of their chargers' sum;
* ``substation``  substation rating 48 MW: it binds in every slot;
* ``feeders``     feeders at 10-30 %: they bind, the substation does not;
* ``flat``        one import weight for the whole day;
* ``shared``      four sessions per charger, overlapping: the chargers bind;
* ``hourly``      60-minute slots;  ``5min``  5-minute slots.

Paths (each in a fresh process, so that its peak memory is its own; the forked solver child's
peak is added):

* ``network``  `optimizer.solve` end to end (validation, network, the LEMON/OR-Tools race,
  baselines, explanation, JSON): the production path; ``network-lemon`` / ``network-ortools``
  the same with that solver leading the race whatever `optimizer.leader` says;
* ``lp``       `optimizer.solve(method="lp")` end to end: PuLP + HiGHS, the general model;
* ``ortools``, ``lemon``: the two exact flow solvers alone on the same network;
* ``highs``    the LP alone in highspy (dual simplex unless ``--highs-solver``).

Usage: ``python bench/optimizer.py [--families default substation ...] [--sessions 2000 20000]
[--paths network lp ...] [--time-limit 120] [--seed 1]``. Prints a Markdown table with each
path's time and objectives as ratios to the first path listed (the reference).
"""

from __future__ import annotations

import argparse
import contextlib
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

FAMILIES = ("default", "substation", "feeders", "flat", "shared", "hourly", "5min")
PATHS = (
    "network",
    "network-lemon",
    "network-ortools",
    "lp",
    "ortools",
    "lemon",
    "highs",
    "incremental",
)


def small_changes(data: dict[str, Any], seed: int) -> list[tuple[str, dict[str, Any]]]:
    """A sequence of small changes to a city, each applied to the previous problem.

    A car leaves; a car arrives on a charger no session uses; the renewable forecast drops
    20 % in the afternoon; one feeder's headroom drops to 60 %; the import weights of the
    evening hours rise 10 %; a car's energy request changes.
    """
    rng = np.random.default_rng(seed)
    steps: list[tuple[str, dict[str, Any]]] = []
    current = json.loads(json.dumps(data))

    def step(label: str) -> dict[str, Any]:
        nonlocal current
        current = json.loads(json.dumps(current))
        steps.append((label, current))
        return current

    d = step("a car leaves")
    del d["sessions"][int(rng.integers(0, len(d["sessions"])))]
    d = step("a car arrives")
    used = {s["charger"] for s in d["sessions"]}
    free = [c["id"] for c in d["chargers"] if c["id"] not in used]
    slots = d["slots"]
    arrival = int(rng.integers(0, slots // 2))
    d["sessions"].append(
        {
            "id": "s-arrived",
            "charger": free[int(rng.integers(0, len(free)))] if free else d["chargers"][0]["id"],
            "arrival_slot": arrival,
            "departure_slot": min(slots, arrival + slots // 4),
            "energy_kwh": 30.0,
        }
    )
    d = step("forecast update")
    d["renewable_kw"] = [
        x * (0.8 if slots // 2 <= t < 3 * slots // 4 else 1.0)
        for t, x in enumerate(d["renewable_kw"])
    ]
    d = step("one feeder's headroom")
    zone = d["zones"][1 + int(rng.integers(0, len(d["zones"]) - 1))]
    zone["capacity_kw"] = [round(0.6 * x, 1) for x in zone["capacity_kw"]]
    d = step("import weights")
    if isinstance(d["import_weight"], list):
        d["import_weight"] = [
            round(w * (1.1 if t >= 3 * slots // 4 else 1.0), 4)
            for t, w in enumerate(d["import_weight"])
        ]
    else:
        d["import_weight"] = [
            d["import_weight"] * (1.1 if t >= 3 * slots // 4 else 1.0) for t in range(slots)
        ]
    d = step("energy request")
    d["sessions"][int(rng.integers(0, len(d["sessions"])))]["energy_kwh"] = 55.0
    return steps


def run_incremental(family: str, sessions: int, seed: int, time_limit_s: float) -> dict[str, Any]:
    """`IncrementalSolver` over `small_changes`, each re-plan checked against a cold `solve`."""
    from optimizer import IncrementalSolver, solve

    data = family_problem(family, sessions, seed)
    t0 = time.perf_counter()
    problem = Problem.model_validate(data)
    rows = []
    with IncrementalSolver() as planner:
        schedule = planner.solve(problem, time_limit_s=time_limit_s)
        cold_s = time.perf_counter() - t0
        for label, changed in small_changes(data, seed):
            t1 = time.perf_counter()
            problem = Problem.model_validate(changed)
            t2 = time.perf_counter()
            cpu = _cpu_seconds(planner)
            schedule = planner.solve(problem, time_limit_s=time_limit_s)
            t3 = time.perf_counter()
            cpu = _cpu_seconds(planner) - cpu
            reference = solve(problem, time_limit_s=time_limit_s)
            t4 = time.perf_counter()
            rows.append(
                {
                    "change": label,
                    "start": planner.last_start,
                    "status": schedule.status,
                    "validate_s": t2 - t1,
                    "replan_s": t3 - t2,
                    "cpu_s": cpu,
                    "cold_s": t4 - t3,
                    "d_unmet": schedule.unmet_kwh_total - reference.unmet_kwh_total,
                    "cost_ratio": schedule.import_cost / reference.import_cost
                    if reference.import_cost
                    else 1.0,
                    "load": os.getloadavg()[0],
                }
            )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"first_s": cold_s, "steps": rows, "peak_mb": own / 1024.0}


def city_problem(
    sessions: int,
    *,
    chargers: int = 10_000,
    feeders: int = 400,
    slots: int = 96,
    seed: int = 1,
    substation_kw: float = 70_000.0,
    feeder_share: tuple[float, float] = (0.25, 0.8),
    flat_weight: bool = False,
    scale: float = 1.0,
) -> dict[str, Any]:
    """A generated city (problem JSON as a dict) over 24 h in `slots` slots.

    Parameters
    ----------
    substation_kw : substation rating [kW]; its EV headroom is this minus the base load.
    feeder_share : range of a feeder's headroom as a share of its chargers' summed rating.
    flat_weight : one import weight for every slot instead of a price-like curve.
    scale : city size relative to the 20,000-session city: scales generation, base load and
        the substation rating.
    """
    rng = np.random.default_rng(seed)
    slot_minutes = 1440 // slots
    hour = np.arange(slots) * 24.0 / slots
    pv = np.clip(np.sin((hour - 6.0) / 12.0 * np.pi), 0.0, None) * 30_000.0
    wind = 8_000.0 + 4_000.0 * np.sin(hour / 24.0 * 2 * np.pi + rng.uniform(0, 6.28))
    renewable = (pv + wind) * scale
    base = (20_000.0 + 8_000.0 * np.exp(-(((hour - 19.0) / 3.0) ** 2))) * scale
    weight = 0.25 + 0.1 * np.exp(-(((hour - 19.0) / 3.0) ** 2)) - 0.08 * (pv / pv.max())
    substation = np.clip(substation_kw * scale - base, 5_000.0 * scale, None)
    substation *= rng.uniform(0.6, 1.0, slots)
    zones: list[dict[str, Any]] = [
        {"id": "substation", "capacity_kw": substation.round(1).tolist()}
    ]
    ratings = rng.choice([3.7, 7.4, 11.0, 11.0, 22.0, 50.0], size=chargers)
    feeder_of = np.arange(chargers) % feeders
    for f in range(feeders):
        rated = float(ratings[feeder_of == f].sum())
        headroom = rated * rng.uniform(*feeder_share)
        dip = 1.0 - 0.5 * np.exp(-(((hour - rng.uniform(17, 21)) / 2.0) ** 2))
        vary = rng.uniform(0.6, 1.0, slots)  # headroom varies slot to slot (60-100 %)
        zones.append(
            {
                "id": f"feeder-{f:04d}",
                "parent": "substation",
                "capacity_kw": (headroom * dip * vary).round(1).tolist(),
            }
        )
    charger_list = [
        {"id": f"cp-{c:05d}", "zone": f"feeder-{feeder_of[c]:04d}", "max_kw": float(ratings[c])}
        for c in range(chargers)
    ]
    per_hour = slots / 24.0
    session_list = []
    for s in range(sessions):
        length = max(1, round(rng.uniform(1.0, 12.0) * per_hour))
        arrival = int(rng.integers(0, slots))
        departure = min(slots, arrival + length)
        session: dict[str, Any] = {
            "id": f"s-{s:06d}",
            "charger": f"cp-{int(rng.integers(0, chargers)):05d}",
            "arrival_slot": arrival,
            "departure_slot": departure,
            "energy_kwh": round(float(rng.uniform(0.0, 60.0)), 2),
        }
        if rng.uniform() < 0.3:
            session["max_kw"] = float(rng.choice([3.7, 7.4, 11.0]))
        session_list.append(session)
    return {
        "slot_minutes": slot_minutes,
        "slots": slots,
        "start": "2026-03-29T00:00:00+01:00",
        "renewable_kw": renewable.round(1).tolist(),
        "base_load_kw": base.round(1).tolist(),
        "import_weight": 0.3 if flat_weight else weight.round(4).tolist(),
        "zones": zones,
        "chargers": charger_list,
        "sessions": session_list,
    }


def family_problem(family: str, sessions: int, seed: int) -> dict[str, Any]:
    """The instance of `family` with `sessions` sessions (chargers = sessions / 2)."""
    chargers = max(10, sessions // 2)
    feeders = max(2, sessions // 50)
    kwargs: dict[str, Any] = {"chargers": chargers, "feeders": feeders, "seed": seed}
    kwargs["scale"] = sessions / 20_000  # generation, base load and substation grow with it
    if family == "substation":
        kwargs["substation_kw"] = 48_000.0
    elif family == "feeders":
        kwargs["feeder_share"] = (0.1, 0.3)
    elif family == "flat":
        kwargs["flat_weight"] = True
    elif family == "shared":
        kwargs["chargers"] = max(5, sessions // 4)
    elif family == "hourly":
        kwargs["slots"] = 24
    elif family == "5min":
        kwargs["slots"] = 288
    return city_problem(sessions, **kwargs)


def run_path(
    path: str, family: str, sessions: int, seed: int, time_limit_s: float
) -> dict[str, Any]:
    """Time one path on one instance in this process; returns its figures."""
    from optimizer import solve
    from optimizer.compiled import compile_problem
    from optimizer.kpis import score

    data = family_problem(family, sessions, seed)
    cpu0 = _process_cpu()
    t0 = time.perf_counter()
    problem = Problem.model_validate(data)
    figures: dict[str, Any] = {}
    if path.startswith("network") or path == "lp":
        if path.startswith("network-"):
            import optimizer.solve

            forced = path.removeprefix("network-")
            optimizer.solve.choose_leader = lambda compiled: forced  # type: ignore[assignment,return-value]
        method = "lp" if path == "lp" else "network"
        sampler = _MemorySampler()
        t1 = time.perf_counter()
        schedule = solve(problem, time_limit_s=time_limit_s, method=method)
        t2 = time.perf_counter()
        figures["sampled_mb"] = sampler.stop()
        schedule.model_dump_json()
        t3 = time.perf_counter()
        figures.update(
            status=schedule.status,
            solve_s=t2 - t1,
            total_s=t3 - t0,
            unmet_kwh=schedule.unmet_kwh_total,
            import_cost=schedule.import_cost,
            peak_import_kw=schedule.kpis.peak_import_kw,
        )
    else:
        compiled = compile_problem(problem)
        t1 = time.perf_counter()
        if path == "highs":
            from optimizer.highs_direct import solve_layout
            from optimizer.layout import build_layout

            layout = build_layout(compiled)
            result = solve_layout(layout, time_limit_s, {})
            power = (
                layout.power_from_columns(result.values, compiled)
                if result.values is not None
                else np.zeros((compiled.n_sessions, compiled.slots))
            )
            status = result.status
        else:
            from optimizer.flow_solvers import lemon_flow, ortools_flow
            from optimizer.network import build_network

            network = build_network(compiled)
            flow = ortools_flow(network) if path == "ortools" else lemon_flow(network)
            power = network.power_from_flow(flow, compiled.n_sessions, compiled.slots)
            status = "optimal"
        t2 = time.perf_counter()
        kpis = score(compiled, power)
        figures.update(
            status=status,
            solve_s=t2 - t1,
            total_s=t2 - t0,
            unmet_kwh=kpis.unmet_kwh,
            import_cost=kpis.import_cost,
            peak_import_kw=kpis.peak_import_kw,
            violation=compiled.max_violation(power),
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures["cpu_s"] = _process_cpu() - cpu0  # from validation on, solver children included
    figures["peak_mb"] = (own + child) / 1024.0  # [KiB] → MB; the child shares pages: high
    return figures


def _run_in_subprocess(
    path: str, family: str, sessions: int, seed: int, time_limit_s: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--one",
        path,
        family,
        str(sessions),
        "--seed",
        str(seed),
        "--time-limit",
        str(time_limit_s),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"status": f"failed: {done.stderr.strip()[-160:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run every (family, size, path) in its own process and print a Markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--sessions", type=int, nargs="+", default=[2_000])
    parser.add_argument(
        "--paths", nargs="+", default=["lp", "network", "ortools", "lemon"], choices=PATHS
    )
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", nargs=3, metavar=("PATH", "FAMILY", "SESSIONS"), help="internal")
    args = parser.parse_args()
    if args.one:
        path, family, sessions = args.one
        if path == "incremental":
            result = run_incremental(family, int(sessions), args.seed, args.time_limit)
        else:
            result = run_path(path, family, int(sessions), args.seed, args.time_limit)
        print(json.dumps(result))
        return
    print(
        f"# {platform.node()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · load {os.getloadavg()[0]:.1f} at start · seed {args.seed} · "
        f"time limit {args.time_limit:g} s · {datetime.now(UTC).isoformat(timespec='minutes')}"
    )
    reference = args.paths[0]
    print(
        f"| family | sessions | path | status | total s | solve s | cpu s | × {reference} time "
        f"| peak MB (max RSS sum / RSS+USS sampled) | unmet kWh | Δ unmet vs {reference} "
        f"| import cost | cost / {reference} "
        "| peak import kW | load |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for family in args.families:
        for sessions in args.sessions:
            ref: dict[str, Any] | None = None
            for path in args.paths:
                f = _run_in_subprocess(path, family, sessions, args.seed, args.time_limit)
                if path == "incremental":
                    _print_incremental(family, sessions, f)
                    continue
                load = os.getloadavg()[0]
                if "total_s" not in f:
                    print(f"| {family} | {sessions} | {path} | {f['status']} |")
                    continue
                ref = ref if ref is not None else f
                time_ratio = f["total_s"] / ref["total_s"]
                d_unmet = f["unmet_kwh"] - ref["unmet_kwh"]
                cost_ratio = f["import_cost"] / ref["import_cost"] if ref["import_cost"] else 1.0
                print(
                    f"| {family} | {sessions} | {path} | {f['status']} | {f['total_s']:.2f} "
                    f"| {f['solve_s']:.2f} | {f.get('cpu_s', float('nan')):.2f} | {time_ratio:.2f} "
                    f"| {f['peak_mb']:.0f} / {f.get('sampled_mb', float('nan')):.0f} "
                    f"| {f['unmet_kwh']:.3f} | {d_unmet:+.2e} | {f['import_cost']:.3f} "
                    f"| {cost_ratio:.8f} | {f['peak_import_kw']:.0f} | {load:.1f} |",
                    flush=True,
                )


class _MemorySampler:
    """Peak of this process's RSS plus its children's *private* memory (USS), sampled.

    A forked child's max RSS counts every page it shares with the parent copy-on-write (on
    Linux ru_maxrss of a child of a 700 MB process is ≥ 700 MB), so the sum of max RSS
    overstates; RSS + the children's unique set size, every 20 ms, is what the machine holds.
    """

    def __init__(self) -> None:
        import threading

        import psutil

        self._me = psutil.Process()
        self._peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._done.wait(0.02):
            try:
                total = self._me.memory_info().rss
                for child in self._me.children():
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        total += child.memory_full_info().uss
            except psutil.Error:
                continue
            self._peak = max(self._peak, total)

    def stop(self) -> float:
        """The peak [MB]."""
        self._done.set()
        self._thread.join()
        return self._peak / 1e6


def _process_cpu() -> float:
    """CPU time [s] of this process and its reaped children (every solver child is reaped)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _cpu_seconds(planner: Any) -> float:
    """CPU time [s] of this process, its reaped children and the planner's LEMON child.

    On a shared machine the CPU a re-plan needs is steadier than its wall time.
    """
    import psutil

    total = _process_cpu()
    state = getattr(planner, "_state", None)
    worker = getattr(state, "worker", None)
    if worker is not None and worker.alive:
        try:
            own = psutil.Process(worker.pid).cpu_times()
            total += own.user + own.system
        except psutil.NoSuchProcess:
            pass
    return total


def _print_incremental(family: str, sessions: int, f: dict[str, Any]) -> None:
    if "steps" not in f:
        print(f"| {family} | {sessions} | incremental | {f['status']} |")
        return
    print(
        f"| {family} | {sessions} | incremental: first solve (cold) | | {f['first_s']:.2f} "
        f"| | | {f['peak_mb']:.0f} |"
    )
    for row in f["steps"]:
        print(
            f"| {family} | {sessions} | re-plan after: {row['change']} ({row['start']}) "
            f"| {row['status']} | {row['replan_s']:.3f} | cpu {row['cpu_s']:.3f}, "
            f"cold solve {row['cold_s']:.2f} "
            f"| {row['replan_s'] / row['cold_s']:.3f} | | | {row['d_unmet']:+.2e} | "
            f"| {row['cost_ratio']:.8f} | validate {row['validate_s']:.2f} | {row['load']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
