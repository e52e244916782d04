"""The service fails loudly: an unreachable broker is logged at once and makes ready false;
`--version`, `--log-level` and `--log-format json` on the command line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import gridcoord
from tests.fixtures.gridcoord_process import ROOT, GridcoordProcess
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gridcoord", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"gridcoord {gridcoord.__version__}"


def test_unreachable_broker_logged_at_once_and_not_ready(tmp_path: Path) -> None:
    dead_port, api_port = free_port(), free_port()
    config = tmp_path / "city.yaml"
    config.write_text("assets: []\n")
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(dead_port),
        "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_API__PORT": str(api_port),
        "GRIDCOORD_API__STATE_DIR": str(tmp_path / "api"),
    }
    process = GridcoordProcess(config, env, tmp_path)
    process.start()
    try:
        # Said while the service keeps starting (the API comes up beside it), not after a hang.
        process.wait_for_log(rf"cannot reach the broker at 127\.0\.0\.1:{dead_port}")
        process.wait_for_log("dashboard and API at")
        ready = httpx.get(f"http://127.0.0.1:{api_port}/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"] != "ok"
        assert httpx.get(f"http://127.0.0.1:{api_port}/health/live").status_code == 200
    finally:
        assert process.terminate() == 0, process.output[-2000:]


def test_log_format_json_and_a_busy_api_port(tmp_path: Path) -> None:
    """`--log-format json`: every record one JSON object with a UTC offset; a taken API port is
    a clear startup error (exit 1), no traceback.
    """
    config = tmp_path / "city.yaml"
    config.write_text("assets: []\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        busy = sock.getsockname()[1]
        env = {
            "GRIDCOORD_MQTT__HOST": "127.0.0.1",
            "GRIDCOORD_MQTT__PORT": str(free_port()),
            "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
            "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
            "GRIDCOORD_API__PORT": str(busy),
            "GRIDCOORD_API__STATE_DIR": str(tmp_path / "api"),
        }
        command = ["--log-level", "debug", "--log-format", "json", "run", "-c", str(config)]
        run = subprocess.run(
            [sys.executable, "-m", "gridcoord", *command],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, **env},
            timeout=60,
        )
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert lines, run.stderr
    assert all({"ts", "level", "logger", "message"} <= set(entry) for entry in lines)
    assert all(entry["ts"].endswith("+00:00") for entry in lines)
    assert any(entry["level"] == "debug" for entry in lines)
    assert any(f"cannot listen on 127.0.0.1:{busy}" in entry["message"] for entry in lines)
    assert "Traceback" not in run.stderr
