"""One running `gridcoord run` per test module: real Mosquitto, embedded store, the HTTP API.

Tokens: a viewer and an operator from the environment (GRIDCOORD_API__TOKENS, inline argon2
hashes), an admin whose hash comes from a file. The hashes use argon2's lowest cost settings to
keep the tests quick; production hashes come from `gridcoord api-token`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from argon2 import PasswordHasher
from paho.mqtt.enums import CallbackAPIVersion

from gridcoord.local_broker import LocalBroker, find_mosquitto
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts
from tests.fixtures.ports import free_port

CITY = """\
zones:
  - {id: sub-01, capacity_kw: 100, meter: meter-sub-01}
  - {id: lt-01, parent: sub-01, capacity_kw: 40, meter: meter-lt-01}
assets:
  - {id: meter-sub-01, kind: meter, zone: sub-01, rated_kw: 150}
  - {id: meter-lt-01, kind: meter, zone: lt-01, rated_kw: 60}
  - {id: pv-roof-01, kind: pv, zone: lt-01, rated_kw: 30}
  - {id: charger-001, kind: charger, zone: lt-01, rated_kw: 11, charger: {type: public}}
  - {id: charger-002, kind: charger, zone: lt-01, rated_kw: 11,
     charger: {type: home, guaranteed_kw: 4.2}}
  - {id: charger-009, kind: charger, zone: lt-01, rated_kw: 11, charger: {type: public}}
"""
TOKENS = {"viewer": "viewer-token-1", "operator": "operator-token-1", "admin": "admin-token-1"}


@dataclass
class RunningService:
    """A started service and handles on it."""

    process: GridcoordProcess
    url: str
    mqtt_port: int
    workdir: Path
    publisher: paho.Client
    setpoints: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def client(self, role: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def publish(self, asset_id: str, payload: dict[str, object] | bytes) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.publisher.publish(f"gridcoord/telemetry/{asset_id}", body, qos=1).wait_for_publish(60)

    def report(self) -> None:
        """One round of telemetry from every device but charger-009 (never reports: stale)."""
        self.publish("pv-roof-01", {"power_w": 9_000.0})
        self.report_chargers_and_meters()

    def report_chargers_and_meters(self) -> None:
        self.publish("meter-sub-01", {"power_w": 50_000.0})
        self.publish("meter-lt-01", {"power_w": 20_000.0})
        self.publish("charger-001", {"power_w": 7_000.0, "connected": True})
        self.publish("charger-002", {"power_w": 4_000.0, "connected": True})

    def wait_setpoint(
        self, charger: str, predicate: Callable[[dict[str, object]], bool], timeout: float = 60.0
    ) -> dict[str, object]:
        """The first setpoint for ``charger`` (from now on) that satisfies ``predicate``."""
        with self.changed:
            start = len(self.setpoints.get(charger, []))
            found: list[dict[str, object]] = []

            def ready() -> bool:
                found[:] = [p for p in self.setpoints.get(charger, [])[start:] if predicate(p)]
                return bool(found)

            assert self.changed.wait_for(ready, timeout), (
                f"no matching setpoint for {charger}: {self.setpoints.get(charger, [])[-3:]}"
            )
            return found[0]


def hashed(token: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(token)


def start_service(
    tmp: Path, *, mqtt_port: int, api_port: int, extra_env: dict[str, str] | None = None
) -> GridcoordProcess:
    accounts = rig_accounts()
    config = tmp / "city.yaml"
    config.write_text(CITY)
    (tmp / "admin.hash").write_text(hashed(TOKENS["admin"]) + "\n")
    tokens = [
        {"name": "viewer-1", "role": "viewer", "hash": hashed(TOKENS["viewer"])},
        {"name": "operator-1", "role": "operator", "hash": hashed(TOKENS["operator"])},
        {"name": "admin-1", "role": "admin", "hash_file": str(tmp / "admin.hash")},
    ]
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(mqtt_port),
        "GRIDCOORD_MQTT__USERNAME": accounts.service_user,
        "GRIDCOORD_MQTT__PASSWORD": accounts.service_password,
        "GRIDCOORD_STORAGE__KIND": "embedded",
        "GRIDCOORD_STORAGE__PATH": str(tmp / "store.sqlite3"),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
        "GRIDCOORD_API__PORT": str(api_port),
        "GRIDCOORD_API__STATE_DIR": str(tmp / "api"),
        "GRIDCOORD_API__SSE_INTERVAL_S": "0.5",
        "GRIDCOORD_API__TOKENS": json.dumps(tokens),
        "GRIDCOORD_PLANNING__DISPATCH_INTERVAL_S": "5",
    }
    env.update(extra_env or {})
    return GridcoordProcess(config, env, tmp).start()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make test` (installs it as root)")
    tmp = tmp_path_factory.mktemp("api")
    broker = LocalBroker(free_port(), tmp / "mosquitto", rig_accounts())
    broker.start()
    api_port = free_port()
    process = start_service(tmp, mqtt_port=broker.port, api_port=api_port)
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="api-test-devices")
    running = RunningService(process, f"http://127.0.0.1:{api_port}", broker.port, tmp, publisher)

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with running.changed:
            charger = msg.topic.rsplit("/", 1)[1]
            running.setpoints.setdefault(charger, []).append(json.loads(msg.payload))
            running.changed.notify_all()

    publisher.on_message = on_message
    publisher.username_pw_set(FIELD_USER, broker.accounts.password(FIELD_USER))
    publisher.connect("127.0.0.1", broker.port)
    publisher.subscribe("gridcoord/setpoint/#", qos=1)
    publisher.loop_start()
    try:
        process.wait_for_log(r"dashboard and API at", timeout=60)
        process.wait_connected()
        running.report()
        yield running
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        code = process.terminate()
        broker.stop()
        assert code == 0, process.output[-3000:]
