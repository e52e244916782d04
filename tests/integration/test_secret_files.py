"""Secrets from files against a real Mosquitto and InfluxDB 1.6 with authentication on.

`gridcoord run` reads the broker password and the InfluxDB password from owner-only files
(`GRIDCOORD_*_FILE`), connects and stores a reading with them; with a wrong password it says
so. Neither password ever appears in its output (issue 15, item 3).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridcoord.broker.files import Accounts
from gridcoord.local_broker import LocalBroker
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.influx import InfluxdServer
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts
from tests.fixtures.ports import find_binary, free_port
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration

BROKER_PASSWORD = "brk-91c2e7-from-a-file-only"
INFLUX_PASSWORD = "ifx-5d03aa-from-a-file-only"
CITY = "assets:\n  - {id: meter-0001, kind: meter, rated_kw: 30}\n"


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """Mosquitto with a password file and no anonymous access."""
    rig = rig_accounts()
    accounts = Accounts(rig.users, {**rig.passwords, "gridcoord": BROKER_PASSWORD}, "gridcoord")
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", accounts)
    broker.start()
    yield broker
    broker.stop()


def _secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _run(tmp_path: Path, broker: LocalBroker, env: dict[str, str]) -> GridcoordProcess:
    city = tmp_path / "city.yaml"
    city.write_text(CITY, encoding="utf-8")
    base = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(broker.port),
        "GRIDCOORD_MQTT__USERNAME": "gridcoord",
        "GRIDCOORD_MQTT__PASSWORD_FILE": str(_secret(tmp_path / "mqtt-pw", BROKER_PASSWORD)),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
        "GRIDCOORD_PLANNING__ENABLED": "false",
    }
    return GridcoordProcess(city, {**base, **env}, tmp_path / "gc").start()


def _publish(broker: LocalBroker, payload: dict[str, float]) -> None:
    subprocess.run(
        [
            find_binary("mosquitto_pub"),
            *("-h", "127.0.0.1", "-p", str(broker.port), "-u", FIELD_USER),
            *("-P", broker.accounts.password(FIELD_USER)),
            *("-q", "1", "-t", "gridcoord/telemetry/meter-0001"),
            *("-m", json.dumps(payload)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_passwords_from_files_reach_broker_and_store_and_never_the_log(
    tmp_path: Path,
    auth_broker: LocalBroker,
    influxd_factory: Callable[..., InfluxdServer],
) -> None:
    influx = influxd_factory(admin=("gridcoord", INFLUX_PASSWORD))
    influx.query("CREATE DATABASE city")
    proc = _run(
        tmp_path,
        auth_broker,
        {
            "GRIDCOORD_STORAGE__KIND": "influxdb",
            "GRIDCOORD_INFLUXDB__URL": influx.url,
            "GRIDCOORD_INFLUXDB__API": "v1",
            "GRIDCOORD_INFLUXDB__DATABASE": "city",
            "GRIDCOORD_INFLUXDB__USERNAME": "gridcoord",
            "GRIDCOORD_INFLUXDB__PASSWORD_FILE": str(
                _secret(tmp_path / "influx-pw", INFLUX_PASSWORD)
            ),
        },
    )
    try:
        proc.wait_connected()
        _publish(auth_broker, {"power_w": 4321})
        wait_until(lambda: influx.count("telemetry", "power_w", "city") >= 1, "the stored reading")
        assert proc.terminate() == 0, proc.output
    finally:
        proc.kill()
    assert BROKER_PASSWORD not in proc.output and INFLUX_PASSWORD not in proc.output


def test_a_wrong_password_from_a_file_is_reported_without_echoing_it(
    tmp_path: Path, auth_broker: LocalBroker
) -> None:
    wrong = "wrong-" + BROKER_PASSWORD
    proc = _run(
        tmp_path,
        auth_broker,
        {
            "GRIDCOORD_MQTT__PASSWORD_FILE": str(_secret(tmp_path / "wrong-pw", wrong)),
            "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
        },
    )
    try:
        proc.wait_for_log(r"broker refused the connection")
        assert proc.terminate() == 0
    finally:
        proc.kill()
    assert wrong not in proc.output and BROKER_PASSWORD not in proc.output
