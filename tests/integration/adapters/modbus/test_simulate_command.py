"""`gridcoord simulate --config FILE`: serves the config's Modbus assets, stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ports import find_binary, free_port, wait_for_port

pytestmark = pytest.mark.integration


def test_simulate_serves_the_modbus_assets_until_sigterm(tmp_path: Path) -> None:
    pv_port, charger_port = free_port(), free_port()
    config = tmp_path / "city.yaml"
    config.write_text(
        f"""\
assets:
  - id: pv-mb-01
    kind: pv
    rated_kw: 30
    modbus: {{host: 127.0.0.1, port: {pv_port}, unit_id: 1, register_map: sunspec}}
  - id: meter-mb-01
    kind: meter
    rated_kw: 100
    modbus: {{host: 127.0.0.1, port: {pv_port}, unit_id: 2, register_map: sunspec}}
  - id: charger-mb-01
    kind: charger
    rated_kw: 11
    modbus: {{host: 127.0.0.1, port: {charger_port}, unit_id: 255, register_map: keba-p30}}
  - id: pv-mqtt-01
    kind: pv
    rated_kw: 5
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gridcoord", "simulate", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(pv_port, process=process)
        wait_for_port(charger_port, process=process)
        mbpoll = find_binary("mbpoll")
        for unit, model in (("1", "103"), ("2", "203")):
            out = subprocess.run(
                [
                    mbpoll,
                    "-m",
                    "tcp",
                    "-p",
                    str(pv_port),
                    "-a",
                    unit,
                    "-r",
                    "40001",
                    "-c",
                    "4",
                    "-1",
                    "127.0.0.1",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert "[40001]: \t21365" in out and "[40003]: \t1" in out
            out = subprocess.run(
                [
                    mbpoll,
                    "-m",
                    "tcp",
                    "-p",
                    str(pv_port),
                    "-a",
                    unit,
                    "-r",
                    "40071",
                    "-1",
                    "127.0.0.1",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert f"[40071]: \t{model}" in out
        out = subprocess.run(
            [
                mbpoll,
                "-m",
                "tcp",
                "-p",
                str(charger_port),
                "-a",
                "255",
                "-t",
                "4:int",
                "-B",
                "-r",
                "1041",
                "-1",
                "127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "[1041]: \t230" in out
    finally:
        process.send_signal(signal.SIGTERM)
        out_b, err_b = process.communicate(timeout=60)
    assert process.returncode == 0, err_b.decode()
    assert f"on 127.0.0.1:{pv_port}" in out_b.decode()


def test_simulate_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "assets:\n  - {id: pv-1, kind: pv, rated_kw: 3,"
        " modbus: {host: 127.0.0.1, register_map: no-such-map}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gridcoord", "simulate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no such built-in map" in result.stderr and "Traceback" not in result.stderr


def test_simulate_refuses_two_assets_on_one_unit(tmp_path: Path) -> None:
    config = tmp_path / "twice.yaml"
    config.write_text(
        "assets:\n"
        "  - {id: pv-1, kind: pv, rated_kw: 3, modbus: {host: 127.0.0.1, port: 1502,"
        " unit_id: 3, register_map: sunspec}}\n"
        "  - {id: pv-2, kind: pv, rated_kw: 3, modbus: {host: 127.0.0.1, port: 1502,"
        " unit_id: 3, register_map: sunspec}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gridcoord", "simulate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "assets[1].modbus.unit_id" in result.stderr
    assert "127.0.0.1:1502 unit 3 is already asset 'pv-1' (assets[0])" in result.stderr
    assert "Traceback" not in result.stderr
