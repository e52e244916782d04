"""The open-data export of a short real demo run (issue 15: "opens in a spreadsheet").

`gridcoord demo` runs one simulated hour on Mosquitto and the embedded store and leaves its
city's configuration beside the store; `gridcoord export-open-data` then exports that day.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyld import jsonld

from gridcoord.local_broker import find_mosquitto
from gridcoord.open_data.tables import ZONE_COLUMNS

pytestmark = pytest.mark.integration


def gridcoord(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOORD_")}
    env.update(GRIDCOORD_DEMO_BROKER="mosquitto", GRIDCOORD_API__PORT="0")
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_demo_run_exports_to_csv_and_dcat_metadata(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make test` (installs it as root)")
    # The winter scenario: a Tuesday from 2026-01-20 12:00 UTC (gridcoord/demo/scenario.py).
    demo = gridcoord(
        tmp_path,
        "demo",
        "--hours",
        "1",
        "--speed",
        "0",
        "--season",
        "winter",
        "--json",
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    config = tmp_path / "var" / "demo" / "gridcoord-demo.yaml"
    out = tmp_path / "open-data"
    args = ("--config", str(config), "--from", "2026-01-20", "--to", "2026-01-20")
    export = gridcoord(tmp_path, "export-open-data", *args, "--out", str(out), timeout=120)
    assert export.returncode == 0, export.stderr
    assert "Traceback" not in export.stderr

    with (out / "zones.csv").open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == [c.name for c in ZONE_COLUMNS]
        zones = list(reader)
    # The demo's warm-up history and the simulated hour: every slot up to 13:00 UTC.
    assert len({r["slot_start"] for r in zones}) >= 52
    assert all(int(r["households"]) >= 10 for r in zones)
    assert any(float(r["ev_energy_kwh"]) > 0 for r in zones)
    assert any(float(r["renewable_generation_kwh"]) > 0 for r in zones)
    with (out / "charge_point_status.csv").open(encoding="utf-8", newline="") as file:
        statuses = {r["status"] for r in csv.DictReader(file)}
    assert "OCCUPIED" in statuses

    [dataset] = jsonld.expand(
        json.loads((out / "metadata.jsonld").read_text(encoding="utf-8")),
        {"base": "https://opendata.example/"},
    )
    distributions = dataset["http://www.w3.org/ns/dcat#distribution"]
    assert len(distributions) == 3

    again = gridcoord(tmp_path, "export-open-data", *args, "--out", str(tmp_path / "again"),
                      timeout=120)  # fmt: skip
    assert again.returncode == 0
    for name in ("zones.csv", "charge_points.csv", "charge_point_status.csv", "metadata.jsonld"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
