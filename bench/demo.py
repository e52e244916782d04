"""Benchmark: `gridcoord demo --speed 0` end to end — wall and CPU seconds, against a reference.

Runs the whole demo (the real service, mosquitto, the simulated city, the baseline and the
bound) as a child process, ``--hours`` simulated hours at full speed, and measures its wall
time and its CPU time (user + system of the demo and everything it waited for: mosquitto,
the solver children). With ``--reference DIR`` (another checkout of the repository, e.g. the
commit before a change) the reference and this tree run alternately, round by round, in the
same session, and the table gives each run's ratio to the reference's mean: on a shared,
noisy machine ratios measured side by side mean more than seconds. The KPIs of each run
(``--json``, without the forecast error) are compared with the first run's. Usage::

    .venv/bin/python bench/demo.py [--hours 24 48] [--rounds 1] [--reference DIR]
        [--candidate DIR] [--seed 1]

Each run starts in its own temporary directory (its ``var/demo``) with the HTTP API on a free
port, so a demo or another benchmark elsewhere on the machine does not collide with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One demo run's cost and KPIs."""

    tree: str
    hours: float
    wall_s: float
    cpu_s: float
    load: float
    kpis: dict[str, object]


def run_demo(tree: Path, label: str, hours: float, seed: int) -> Run:
    """One ``gridcoord demo --hours H --speed 0 --json`` of the source tree ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), GRIDCOORD_API__PORT="0")
    command = [sys.executable, "-m", "gridcoord", "demo", "--hours", f"{hours:g}"]
    command += ["--speed", "0", "--seed", str(seed), "--json"]
    with tempfile.TemporaryDirectory(prefix="gridcoord-bench-demo-") as cwd:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        wall = time.monotonic() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{label}: the demo exited {done.returncode}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(done.stdout)
    result.pop("forecast_error", None)  # statistics of the forecasts, not outcome KPIs
    return Run(label, hours, wall, cpu, os.getloadavg()[0], result)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[24.0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reference", type=Path, help="another checkout to compare with")
    parser.add_argument(
        "--candidate", type=Path, default=ROOT, help="the checkout measured (default: this one)"
    )
    args = parser.parse_args()
    trees = [("this", args.candidate.resolve())]
    if args.reference is not None:
        trees.insert(0, ("reference", args.reference.resolve()))
    print(f"# gridcoord demo --speed 0, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    print("| hours | tree | wall [s] | CPU [s] | wall / ref | CPU / ref | load | KPIs as run 1 |")
    print("|---|---|---|---|---|---|---|---|")
    for hours in args.hours:
        runs: list[Run] = []
        for _ in range(args.rounds):
            for label, tree in trees:
                runs.append(run_demo(tree, label, hours, args.seed))
        reference = [r for r in runs if r.tree == trees[0][0]]
        ref_wall = statistics.fmean(r.wall_s for r in reference)
        ref_cpu = statistics.fmean(r.cpu_s for r in reference)
        for r in runs:
            same = "yes" if r.kpis == runs[0].kpis else "no"
            print(
                f"| {hours:g} | {r.tree} | {r.wall_s:.1f} | {r.cpu_s:.1f} | "
                f"{r.wall_s / ref_wall:.2f} | {r.cpu_s / ref_cpu:.2f} | {r.load:.2f} | {same} |",
                flush=True,
            )
        for r in runs[1:]:
            if r.kpis != runs[0].kpis:
                changed = {
                    k: (runs[0].kpis.get(k), v)
                    for k, v in r.kpis.items()
                    if runs[0].kpis.get(k) != v
                }
                print(f"# {r.tree} {hours:g} h: KPIs differing from run 1: {changed}")


if __name__ == "__main__":
    main()
