"""`privacy-retention` and `export-open-data` as a user runs them: exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.influx import VictoriaMetricsServer

CITY = """\
zones: [{id: lt-01, capacity_kw: 100}]
assets:
  - {id: meter-0001, kind: meter, zone: lt-01, rated_kw: 30}
storage: {kind: embedded, path: store.sqlite3, spool_dir: spool}
"""


def gridcoord(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOORD_")}
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def city(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(CITY, encoding="utf-8")
    old = datetime.now(UTC) - timedelta(days=45)
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    tags = {"asset_id": "meter-0001", "kind": "meter", "zone": "lt-01"}
    store.write([Point("telemetry", tags, {"power_w": 500.0}, datetime_to_ns(old))])
    store.close()
    return path


def test_retention_dry_run_then_run(tmp_path: Path, city: Path) -> None:
    dry = gridcoord(tmp_path, "privacy-retention", "--config", str(city), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["assets"] == 1 and report["aggregates"] == 1
    done = gridcoord(tmp_path, "privacy-retention", "--config", str(city))
    assert done.returncode == 0, done.stderr
    assert "aggregated and deleted" in done.stdout and "of 1 assets (1 aggregates)" in done.stdout
    again = gridcoord(tmp_path, "privacy-retention", "--config", str(city), "--json")
    assert json.loads(again.stdout)["windows"] == []


def test_retention_on_victoria_metrics_says_why_and_exits_1(
    tmp_path: Path, city: Path, victoria_server: VictoriaMetricsServer
) -> None:
    env = {
        "GRIDCOORD_STORAGE__KIND": "influxdb",
        "GRIDCOORD_INFLUXDB__URL": victoria_server.url,
        "GRIDCOORD_INFLUXDB__API": "v2",
    }
    result = gridcoord(tmp_path, "privacy-retention", "--config", str(city), env=env)
    assert result.returncode == 1
    assert "InfluxQL" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-13-01", "2026-12-01", "must be dates"),
        ("2026-12-02", "2026-12-01", "on or after"),
        ("2025-01-01", "2026-12-01", "at most 366 days"),
    ],
)
def test_export_refuses_bad_dates_with_exit_2(
    tmp_path: Path, city: Path, first: str, last: str, message: str
) -> None:
    args = ("--config", str(city), "--from", first, "--to", last, "--out", "out")
    result = gridcoord(tmp_path, "export-open-data", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
