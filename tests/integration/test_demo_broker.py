"""The demo's fallback broker (amqtt in-process) is closed like Mosquitto: the same generated
`passwd` and `acl`, no anonymous login, each device held to its own topics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridcoord.config import Config
from gridcoord.demo.broker import InProcessBroker
from tests.fixtures.mqtt_client import TestClient

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[InProcessBroker]:
    config = Config(
        assets=[
            {"id": "meter-0001", "kind": "meter", "rated_kw": 30},
            {"id": "charger-001", "kind": "charger", "rated_kw": 11},
        ],
    )
    running = InProcessBroker(tmp_path / "amqtt", config)
    yield running
    running.stop()


def login(broker: InProcessBroker, user: str | None, password: str | None) -> TestClient:
    return TestClient(broker.port, user, password, mqtt5=False)


def test_anonymous_and_wrong_passwords_are_refused(broker: InProcessBroker) -> None:
    for user, password in [(None, None), ("meter-0001", "wrong"), ("nobody", "x")]:
        client = login(broker, user, password)
        try:
            assert client.connect(timeout=5.0) != 0, user
        finally:
            client.close()


def test_a_device_reaches_only_its_own_topics(broker: InProcessBroker) -> None:
    accounts = broker.accounts
    clients = [
        login(broker, name, accounts.password(name))
        for name in ("operator", "charger-001", "meter-0001", "gridcoord")
    ]
    operator, charger, meter, gridcoord = clients
    try:
        for client in clients:
            assert client.connect() == 0
        operator.subscribe("#")
        charger.subscribe("gridcoord/setpoint/charger-001")
        meter.publish("gridcoord/setpoint/charger-001", json.dumps({"max_power_w": 150000}))
        meter.publish("gridcoord/telemetry/charger-001", b'{"power_w": 1}')
        meter.publish("gridcoord/telemetry/meter-0001", b'{"power_w": 2}')
        gridcoord.publish("gridcoord/setpoint/charger-001", b'{"max_power_w": 3}')
        assert charger.wait_for_message("gridcoord/setpoint/charger-001", b'{"max_power_w": 3}')
        assert operator.wait_for_message("gridcoord/telemetry/meter-0001", b'{"power_w": 2}')
        assert operator.wait_for_message("gridcoord/setpoint/charger-001", b'{"max_power_w": 3}')
        assert charger.received("gridcoord/setpoint/charger-001") == [b'{"max_power_w": 3}']
        assert operator.topics() == {
            "gridcoord/telemetry/meter-0001",
            "gridcoord/setpoint/charger-001",
        }
        assert operator.received("gridcoord/setpoint/charger-001") == [b'{"max_power_w": 3}']
    finally:
        for client in clients:
            client.close()
