"""The MQTT setpoint sink against a real Mosquitto: retained, QoS 1, the DESIGN 3.2 payload."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.client import MqttSession
from adapters.mqtt.setpoints import MqttSetpointSink
from adapters.mqtt.settings import Mqtt
from adapters.sink import Setpoint
from gridcoord.broker.acl import OPERATOR_USER, BrokerUser, operator_rules, service_rules
from gridcoord.broker.files import Accounts
from gridcoord.local_broker import LocalBroker
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def retained(broker: LocalBroker, topic: str) -> paho.MQTTMessage:
    """What a charger subscribing now receives first on its setpoint topic."""
    received: queue.Queue[paho.MQTTMessage] = queue.Queue()
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="charger")
    client.on_message = lambda _c, _u, message: received.put(message)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.username_pw_set(OPERATOR_USER, broker.accounts.password(OPERATOR_USER))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        return received.get(timeout=60)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def city_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """An authenticated broker for the topic prefix `city`."""
    users = (
        BrokerUser("gridcoord", service_rules("city")),
        BrokerUser(OPERATOR_USER, operator_rules()),
    )
    accounts = Accounts(users, {"gridcoord": "gc-city-pw", OPERATOR_USER: "op-city-pw"})
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", accounts)
    broker.start()
    yield broker
    broker.stop()


def test_setpoints_are_retained_qos1_contract_messages(city_broker: LocalBroker) -> None:
    mosquitto = city_broker
    accounts = mosquitto.accounts
    settings = Mqtt(
        port=mosquitto.port,
        client_id="gc-sink-test",
        topic_prefix="city",
        username=accounts.service_user,
        password=accounts.service_password,
    )
    session = MqttSession(settings, ["city/none"], lambda message: None)
    session.start()
    assert session.wait_connected(60)

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        session.publish(topic, payload, qos=qos, retain=retain)

    sink = MqttSetpointSink(publish, ["charger-7"], prefix="city")
    until = NOW + timedelta(minutes=3)

    async def send(power_w: float) -> str:
        setpoint = Setpoint("charger-7", power_w, until, "2026-11-24T17:15Z-1", NOW)
        return (await sink.send(setpoint)).state

    try:
        assert asyncio.run(send(7400.0)) == "sent"
        assert asyncio.run(send(3700.0)) == "sent"  # replaces the retained one
        unknown = Setpoint("charger-8", 1.0, until, "s", NOW)
        assert asyncio.run(sink.send(unknown)).state == "failed"
    finally:
        session.stop()
    message = retained(mosquitto, "city/setpoint/charger-7")
    assert message.retain and message.qos == 1
    assert json.loads(message.payload) == {
        "ts": NOW.isoformat().replace("+00:00", "Z"),
        "max_power_w": 3700.0,
        "valid_until": until.isoformat().replace("+00:00", "Z"),
        "schedule_id": "2026-11-24T17:15Z-1",
    }
