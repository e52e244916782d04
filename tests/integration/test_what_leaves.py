"""What leaves the process (issue 15, item 4): no secret, idToken or free text anywhere.

`gridcoord run` as a subprocess with everything a deployment has: an authenticated Mosquitto
(password from a file), an API token, an OCPP 2.0.1 station (ocpp-rpc on Node) starting a
transaction with an RFID idToken, and a meter that sends a free-text field, once beside valid
numbers and once in place of one. Then the service's whole output, every API answer (errors
included) and every file it wrote (store, WAL, spool, API state) are searched for the secrets,
the idToken and the free text.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridcoord.api.auth import new_token
from gridcoord.broker.acl import OPERATOR_USER
from gridcoord.broker.files import Accounts
from gridcoord.local_broker import LocalBroker
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts
from tests.fixtures.ocpp_station import NodeStation
from tests.fixtures.ports import find_binary, free_port
from tests.fixtures.service_thread import Watcher

pytestmark = pytest.mark.integration

BROKER_PASSWORD = "brk-4f1e9a-leak-probe"
OCPP_PASSWORD = "ocpp-77d2c1-leak-probe"
ID_TOKEN = "RFID-SECRET-0042"  # what tests/fixtures/ocpp_station/station.js sends
FREE_TEXT = "Familie Mustermann Hauptstr 5"
WRONG_TOKEN = "wrong-token-3c9a0e-leak-probe"


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    rig = rig_accounts()
    accounts = Accounts(rig.users, {**rig.passwords, "gridcoord": BROKER_PASSWORD}, "gridcoord")
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", accounts)
    broker.start()
    yield broker
    broker.stop()


def _private(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _publish(broker: LocalBroker, payload: str) -> None:
    subprocess.run(
        [
            find_binary("mosquitto_pub"),
            *("-h", "127.0.0.1", "-p", str(broker.port), "-u", FIELD_USER),
            *("-P", broker.accounts.password(FIELD_USER)),
            *("-q", "1", "-t", "gridcoord/telemetry/meter-0001", "-m", payload),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", errors="replace")


def test_no_secret_id_token_or_free_text_leaves_the_process(
    tmp_path: Path,
    auth_broker: LocalBroker,
    node_stations: Callable[[dict[str, Any]], NodeStation],
) -> None:
    token, token_hash = new_token()
    workdir = tmp_path / "gc"
    workdir.mkdir()
    city: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": auth_broker.port, "username": "gridcoord"},
        "storage": {"kind": "embedded", "path": "store.sqlite3", "spool_dir": "spool",
                    "flush_interval_s": 0.2},
        "planning": {"dispatch_interval_s": 1, "solver_time_limit_s": 10},
        "api": {"tokens": [{"name": "control-room", "role": "operator", "hash": token_hash}]},
        "ocpp": {"port": 9000, "credentials_file": "ocpp.csv", "heartbeat_interval_s": 60},
        "zones": [{"id": "lt-01", "capacity_kw": 50}],
        "assets": [
            {"id": "meter-0001", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
            {"id": "charger-ocpp-201", "kind": "charger", "zone": "lt-01", "rated_kw": 22,
             "ocpp": {"station_id": "cs-201", "version": "2.0.1"}},
        ],
    }  # fmt: skip
    _private(workdir / "ocpp.csv", f"cs-201,{OCPP_PASSWORD}\n")
    config = tmp_path / "city.yaml"
    config.write_text(yaml.safe_dump(city), encoding="utf-8")
    password_file = _private(tmp_path / "mqtt-pw", BROKER_PASSWORD + "\n")
    env = {"GRIDCOORD_MQTT__PASSWORD_FILE": str(password_file)}
    proc = GridcoordProcess(config, env, workdir).start()
    answers: list[str] = []
    try:
        proc.wait_connected()
        api = proc.wait_for_log(r"dashboard and API at (http://127\.0\.0\.1:\d+)/").group(1)
        ocpp_port = int(proc.wait_for_log(r"OCPP central system on ws://127.0.0.1:(\d+)").group(1))
        station = node_stations({"endpoint": f"ws://127.0.0.1:{ocpp_port}", "identity": "cs-201",
                                 "password": OCPP_PASSWORD, "version": "2.0.1"})  # fmt: skip
        station.wait(lambda e: e["event"] == "booted")
        station.wait(lambda e: e["event"] == "meter")
        # Subscribed before the first publish (a subscriber started alongside missed some).
        watcher = Watcher(auth_broker.port, "gridcoord/rejected/#",
                          auth_broker.accounts.password(OPERATOR_USER))  # fmt: skip
        try:
            _publish(auth_broker, json.dumps({"power_w": 1200, "note": FREE_TEXT}))
            _publish(auth_broker, json.dumps({"power_w": FREE_TEXT}))
            _publish(auth_broker, json.dumps({"power_w": 900, "ts": FREE_TEXT}))
            _publish(auth_broker, "{" + FREE_TEXT)  # not JSON at all
            published = watcher.wait_for(3, timeout=90)  # the three rejections
        finally:
            watcher.close()
        assert [topic for topic, _ in published] == ["gridcoord/rejected/meter-0001"] * 3
        # As published: `ensure_ascii=False` keeps any leaked text searchable below.
        rejections = "\n".join(
            f"{topic} {json.dumps(body, ensure_ascii=False)}" for topic, body in published
        )
        answers.append(rejections)
        station.wait(lambda e: e["event"] == "profile" and e["status"] == "Accepted")

        paths = [
            "/api/v1/summary", "/api/v1/assets", "/api/v1/assets/meter-0001",
            "/api/v1/assets/charger-ocpp-201", "/api/v1/zones", "/api/v1/sessions",
            "/api/v1/plans", "/api/v1/setpoints", "/api/v1/rejections", "/api/v1/ingest",
            "/api/v1/audit", "/api/v1/overrides", "/health/ready", "/metrics",
            "/api/v1/openapi.json",
        ]  # fmt: skip
        for path in paths:
            status, body = _get(api + path, token)
            assert status == 200, (path, status, body[:300])
            answers.append(body)
        # Error answers: a wrong token, a free-text asset id, a free-text query value.
        for path, use in (
            ("/api/v1/assets", WRONG_TOKEN),
            (f"/api/v1/assets/{urllib.request.quote(FREE_TEXT)}", token),
            (f"/api/v1/assets?limit={urllib.request.quote(FREE_TEXT)}", token),
        ):
            status, body = _get(api + path, use)
            assert status >= 400, (path, status)
            answers.append(body)
        assert proc.terminate() == 0, proc.output[-3000:]
    finally:
        proc.kill()

    secrets = {
        "broker password": BROKER_PASSWORD,
        "OCPP password": OCPP_PASSWORD,
        "API token": token,
        "wrong API token": WRONG_TOKEN,
        "idToken": ID_TOKEN,
        "free text": FREE_TEXT,
        "free text (part)": "Mustermann",
    }
    files = {
        p: p.read_bytes()
        for p in workdir.rglob("*")
        if p.is_file() and p.name != "ocpp.csv"  # the credentials file is the one place it is
    }
    assert any(p.name == "store.sqlite3" for p in files)
    for what, secret in secrets.items():
        assert secret not in proc.output, f"{what} in the service's output"
        for answer in answers:
            assert secret not in answer, f"{what} in an API answer: {answer[:300]}"
        for path, data in files.items():
            assert secret.encode() not in data, f"{what} in {path.relative_to(workdir)}"
