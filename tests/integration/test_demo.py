"""`gridcoord demo` as a user runs it: a subprocess, real brokers, KPIs at the end (DESIGN 3.1)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridcoord.local_broker import find_mosquitto

pytestmark = pytest.mark.integration

KEYS = {"renewable_share", "unmet_kwh", "peak_import_kw", "zone_overloads"}


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gridcoord", "demo", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_kpis(kpis: object) -> None:
    assert isinstance(kpis, dict) and set(kpis) == KEYS
    assert 0.0 <= kpis["renewable_share"] <= 1.0
    assert kpis["unmet_kwh"] >= 0.0 and kpis["peak_import_kw"] >= 0.0
    assert isinstance(kpis["zone_overloads"], int) and kpis["zone_overloads"] >= 0


def test_demo_with_mosquitto_prints_kpis_against_the_baseline(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make test` (installs it as root)")
    process = demo(tmp_path, "--hours", "2", "--speed", "0", "--json")
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-2000:]
    result = json.loads(out)  # stdout is exactly the JSON object
    assert set(result) == KEYS | {"baseline", "forecast_error"}
    # The simulated weather service's forecast reached the plans and was judged by lead time.
    wind = result["forecast_error"]["wind"]
    assert set(wind) == {"blended", "day_ahead", "nowcast"}
    assert wind["day_ahead"]["0-1h"]["n"] > 0 and wind["blended"]["1-3h"]["mae_kw"] >= 0
    check_kpis({k: result[k] for k in KEYS})
    check_kpis(result["baseline"])
    assert result["zone_overloads"] <= result["baseline"]["zone_overloads"]
    # The run's story went to stderr: the broker, the dashboard, eight planning runs, no fallback.
    assert "broker mosquitto" in err and "dashboard at http://127.0.0.1:" in err
    assert err.count(" plan optimal ") + err.count(" plan time_limit ") == 8, err[-2000:]
    # Telemetry, setpoints and plans reached the embedded store.
    import sqlite3

    db = sqlite3.connect(tmp_path / "var" / "demo" / "gridcoord-demo.sqlite3")
    measurements = {row[0] for row in db.execute("SELECT DISTINCT measurement FROM series")}
    assert measurements == {"telemetry", "setpoint", "plan"}


def test_demo_without_hours_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = demo(tmp_path, "--speed", "3000")
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if " plan " in line or not line:
            break
    assert any(" plan " in line for line in lines), lines
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert "simulated hours" in out and "uncontrolled" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--hours", "-1"], "--hours must be a positive number"), (["--speed", "-2"], "--speed")],
)
def test_bad_options_are_refused_without_a_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    process = demo(tmp_path, *args)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert message in err and "Traceback" not in err
