"""The Modbus assets of config/wolfsburg.yaml, served by `gridcoord simulate`, polled by
`gridcoord run`, end up in the store (the embedded one here), on free loopback ports.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gridcoord.local_broker import LocalBroker
from tests.fixtures.gridcoord_process import ROOT, GridcoordProcess
from tests.fixtures.mosquitto import service_env
from tests.fixtures.ports import free_port, wait_for_port

pytestmark = pytest.mark.integration


def _modbus_assets_of_the_example_city() -> list[dict[str, object]]:
    city = yaml.safe_load((ROOT / "config" / "wolfsburg.yaml").read_text(encoding="utf-8"))
    assets = [a for a in city["assets"] if "modbus" in a]
    kinds = {a["kind"] for a in assets}
    assert {"pv", "charger"} <= kinds, "the example city should poll a PV inverter and a charger"
    for asset in assets:
        asset.pop("zone", None)  # zones are not what this test is about
        asset["modbus"] = {**asset["modbus"], "port": free_port(), "poll_interval_s": 0.5}
    return assets


def _stored(database: Path, asset_id: str) -> set[str]:
    if not database.exists():
        return set()
    with sqlite3.connect(database) as connection:
        try:
            rows = connection.execute(
                "SELECT DISTINCT s.field FROM series s JOIN samples p ON p.series_id = s.id "
                "WHERE s.measurement = 'telemetry' AND s.tags LIKE ?",
                (f'%"{asset_id}"%',),
            ).fetchall()
        except sqlite3.OperationalError:
            return set()  # not created yet
    return {field for (field,) in rows}


def test_modbus_assets_reach_the_store_through_gridcoord_run(
    mosquitto: LocalBroker, tmp_path: Path
) -> None:
    assets = _modbus_assets_of_the_example_city()
    config = tmp_path / "city.yaml"
    config.write_text(yaml.safe_dump({"assets": assets}), encoding="utf-8")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "gridcoord", "simulate", "--config", str(config)],
        stdout=subprocess.DEVNULL,
    )
    database = tmp_path / "store.sqlite3"
    service = GridcoordProcess(
        config,
        {
            "GRIDCOORD_MQTT__HOST": "127.0.0.1",
            "GRIDCOORD_MQTT__PORT": str(mosquitto.port),
            **service_env(mosquitto),
            "GRIDCOORD_STORAGE__KIND": "embedded",
            "GRIDCOORD_STORAGE__PATH": str(database),
            "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
            "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
        },
        tmp_path / "run",
    )
    try:
        for asset in assets:
            wait_for_port(asset["modbus"]["port"], process=simulator)  # type: ignore[index]
        service.start()
        deadline = time.monotonic() + 60
        wanted = {str(a["id"]): {"power_w", "energy_wh"} for a in assets}
        while time.monotonic() < deadline:
            if all(fields <= _stored(database, a) for a, fields in wanted.items()):
                break
            time.sleep(0.2)  # polling a file with a deadline: the store has no change event
        for asset_id, fields in wanted.items():
            assert fields <= _stored(database, asset_id), f"{asset_id}:\n{service.output[-3000:]}"
        assert service.terminate() == 0
    finally:
        service.kill()
        simulator.send_signal(signal.SIGTERM)
        assert simulator.wait(timeout=60) == 0
