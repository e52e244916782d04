"""Benchmark: reading a city-sized configuration file, bounded reader against PyYAML.

Writes a file of N assets in compact flow style (about 4 MB for 95,000) and times, each in a
fresh subprocess so peak memory is its own: PyYAML's C loader (`yaml.load(CSafeLoader)`, what
the loader used before), our bounded reader (`adapters.safe_yaml.parse`) and the whole
`load_config`. Prints a table. Usage::

    .venv/bin/python bench/config_load.py [--assets 95000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "pyyaml CSafeLoader (reference)": "import yaml; yaml.load(text, Loader=yaml.CSafeLoader)",
    "safe_yaml.parse": "from adapters.safe_yaml import parse; parse(text)",
    "load_config (parse + validate)": (
        "from gridcoord.config import load_config; load_config(path)"
    ),
}

SCRIPT = """
import json, resource, sys, time
from pathlib import Path
path = Path(sys.argv[1]); text = path.read_text(encoding="utf-8")
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"s": elapsed, "mb": peak}}))
"""


def measure(body: str, path: Path) -> dict[str, float]:
    """Seconds and peak resident MB of one case in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(body=body), str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    values: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def main() -> None:
    """Print the table of load times and peak memory per file size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=95_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "city.yaml"
        rows = [f"  - {{id: m{i}, kind: meter, rated_kw: 1}}\n" for i in range(args.assets)]
        path.write_text("assets:\n" + "".join(rows), encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.assets:,} assets, {size_mb:.2f} MB; median of {args.repeat} runs")
        print("| case | s | ratio to reference | peak MB |")
        print("|---|---:|---:|---:|")
        reference = None
        # Interleaved so a busy machine slows every case alike.
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
        for _ in range(args.repeat):
            for name, body in CASES.items():
                runs[name].append(measure(body, path))
        for name in CASES:
            seconds = statistics.median(r["s"] for r in runs[name])
            peak = max(r["mb"] for r in runs[name])
            reference = reference or seconds
            print(f"| {name} | {seconds:.2f} | {seconds / reference:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
