"""`gridcoord run` takes external forecasts from `<prefix>/forecast/<kind>` into its plans."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from gridcoord.broker.acl import FORECASTER_USER, OPERATOR_USER
from gridcoord.config import Config
from gridcoord.local_broker import LocalBroker, find_mosquitto
from gridcoord.service import Service
from gridcoord.timegrid import next_slot_start, to_rfc3339
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration


def city_settings(tmp_path: Path) -> dict[str, Any]:
    return {
        "storage": {"path": tmp_path / "store.sqlite3", "spool_dir": tmp_path / "spool"},
        "zones": [{"id": "lt-1", "capacity_kw": 100.0}],
        "assets": [
            {"id": "pv-1", "kind": "pv", "zone": "lt-1", "rated_kw": 50.0},
            {"id": "charger-1", "kind": "charger", "zone": "lt-1", "rated_kw": 11.0},
        ],
        "planning": {"solver_time_limit_s": 5.0},
        "api": {"port": 0, "state_dir": tmp_path / "api"},  # any free port: no clash on 8080
    }


def city(broker: LocalBroker, tmp_path: Path) -> Config:
    mqtt = {
        "host": "127.0.0.1",
        "port": broker.port,
        "client_id": "gc-forecast",
        "username": broker.accounts.service_user,
        "password": broker.accounts.service_password,
    }
    return Config(**city_settings(tmp_path), mqtt=mqtt)


def publish(broker: LocalBroker, topic: str, payload: bytes) -> None:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="forecaster")
    client.username_pw_set(FORECASTER_USER, broker.accounts.password(FORECASTER_USER))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def running(
    broker_city: tuple[LocalBroker, Config],
) -> Iterator[tuple[Service, asyncio.AbstractEventLoop]]:
    _, config = broker_city
    service = Service(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(service.serve(),))
    thread.start()
    try:
        yield service, loop
    finally:
        loop.call_soon_threadsafe(service.request_stop)
        thread.join(60)
        loop.close()


@pytest.fixture
def broker_city(mosquitto: LocalBroker, tmp_path: Path) -> tuple[LocalBroker, Config]:
    return mosquitto, city(mosquitto, tmp_path)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_retained_forecast_reaches_the_next_plan_and_a_bad_one_is_rejected(
    broker_city: tuple[LocalBroker, Config],
    running: tuple[Service, asyncio.AbstractEventLoop],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gridcoord")
    broker, _ = broker_city
    service, loop = running
    rejected: queue.Queue[bytes] = queue.Queue()
    watcher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="watcher")
    watcher.on_message = lambda _c, _u, message: rejected.put(message.payload)
    watcher.on_connect = lambda c, *_: c.subscribe("gridcoord/rejected/#", qos=1)
    watcher.username_pw_set(OPERATOR_USER, broker.accounts.password(OPERATOR_USER))
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    now = datetime.now(UTC)
    forecast = {
        "kind": "pv",
        "issued_at": to_rfc3339(now),
        "start": to_rfc3339(next_slot_start(now)),
        "values_kw": [20.0] * 96,
    }
    try:
        wait_for(lambda: service.session is not None and service.session.connected, "connect")
        publish(broker, "gridcoord/forecast/pv", json.dumps(forecast).encode())
        publish(broker, "gridcoord/forecast/wind", json.dumps(forecast).encode())
        notice = json.loads(rejected.get(timeout=60))
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    assert notice == {
        "reason": "bad_forecast",
        "topic": "gridcoord/forecast/wind",
        "detail": "kind: pv on the topic of wind",
    }
    wait_for(
        lambda: any("external pv forecast" in r.getMessage() for r in caplog.records), "forecast"
    )
    planning = service.planning
    assert planning is not None
    asyncio.run_coroutine_threadsafe(planning.plan_once(), loop).result(60)
    plan = planning.last_plan
    assert plan is not None
    # Every slot of the horizon the forecast covers comes from it, none from the model.
    assert plan.forecast_sources["pv"] == "external"


def publish_as(
    broker: LocalBroker, user: str, topic: str, payload: bytes
) -> paho.ReasonCode | None:
    """Publish at QoS 1 over MQTT 5 as `user`; the broker's PUBACK reason code."""
    acked: queue.Queue[object] = queue.Queue()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"as-{user}",
        protocol=paho.MQTTv5,
    )
    client.on_publish = lambda _c, _u, _mid, code, _p: acked.put(code)
    client.username_pw_set(user, broker.accounts.password(user))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True)
        code = acked.get(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
    assert code is None or isinstance(code, paho.ReasonCode)
    return code


@pytest.fixture
def city_broker(tmp_path: Path) -> Iterator[tuple[LocalBroker, Config]]:
    """A broker with the accounts and ACL `gridcoord broker-config` derives from the city."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make test` (installs it as root)")
    port = free_port()
    draft = city_on(port, tmp_path)
    broker = LocalBroker.for_config(port, tmp_path / "mosquitto", draft)
    broker.start()
    mqtt = draft.mqtt.model_copy(
        update={
            "username": broker.accounts.service_user,
            "password": SecretStr(broker.accounts.service_password),
        }
    )
    try:
        yield broker, draft.model_copy(update={"mqtt": mqtt})
    finally:
        broker.stop()


def city_on(port: int, tmp_path: Path) -> Config:
    base = city_settings(tmp_path)
    base["mqtt"] = {"host": "127.0.0.1", "port": port, "client_id": "gc-forecast-acl"}
    return Config(**base)


def test_only_the_forecast_account_may_publish_and_the_next_plan_blends_its_forecast(
    city_broker: tuple[LocalBroker, Config],
) -> None:
    broker, config = city_broker
    service = Service(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(service.serve(),))
    thread.start()
    try:
        check_forecast_account(broker, service, loop)
    finally:
        loop.call_soon_threadsafe(service.request_stop)
        thread.join(60)
        loop.close()


def check_forecast_account(
    broker: LocalBroker, service: Service, loop: asyncio.AbstractEventLoop
) -> None:
    taken: queue.Queue[object] = queue.Queue()
    service.add_forecast_listener(taken.put)
    rejected: queue.Queue[bytes] = queue.Queue()
    watcher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="watcher")
    watcher.on_message = lambda _c, _u, message: rejected.put(message.payload)
    watcher.on_connect = lambda c, *_: c.subscribe("gridcoord/rejected/#", qos=1)
    watcher.username_pw_set(OPERATOR_USER, broker.accounts.password(OPERATOR_USER))
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    now = datetime.now(UTC)

    def forecast(value: float) -> bytes:
        document = {
            "kind": "pv",
            "issued_at": to_rfc3339(now),
            "start": to_rfc3339(next_slot_start(now)),
            "values_kw": [value] * 96,
        }
        return json.dumps(document).encode()

    try:
        wait_for(lambda: service.session is not None and service.session.connected, "connect")
        # 1000 kW from a city with 50 kW of PV: a unit error, rejected with the field named.
        publish_as(broker, FORECASTER_USER, "gridcoord/forecast/pv", forecast(1000.0))
        notice = json.loads(rejected.get(timeout=30))
        assert notice["reason"] == "bad_forecast"
        assert notice["detail"] == "values_kw[0]: 1000 kW is above 1.5 x the installed 50 kW"
        assert publish_as(broker, FORECASTER_USER, "gridcoord/forecast/pv", forecast(20.0)) in (
            None,
            paho.ReasonCode(paho.PacketTypes.PUBACK, "Success"),
        )
        accepted = taken.get(timeout=30)
        # A charger's account may not publish forecasts: the broker refuses it outright.
        code = publish_as(broker, "charger-1", "gridcoord/forecast/pv", forecast(40.0))
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    assert code is not None and code.getName() == "Not authorized"
    assert getattr(accepted, "values_kw", None) == (20.0,) * 96
    planning = service.planning
    assert planning is not None and service.coordinator is not None
    asyncio.run_coroutine_threadsafe(planning.plan_once(), loop).result(60)
    used = service.coordinator.last_forecast
    assert used is not None
    ahead = used.day_ahead["pv"]
    assert ahead[0] == 20.0 and abs(used.pv_kw[-1] - 20.0) < 0.1  # a day ahead: the forecast
    assert taken.empty()  # nothing from the charger ever reached the service


def test_a_forecast_retained_before_the_start_reaches_the_first_plan(
    city_broker: tuple[LocalBroker, Config],
) -> None:
    broker, config = city_broker
    now = datetime.now(UTC)
    document = {
        "kind": "pv",
        "issued_at": to_rfc3339(now),
        "start": to_rfc3339(next_slot_start(now)),
        "values_kw": [30.0] * 96,
    }
    publish_as(broker, FORECASTER_USER, "gridcoord/forecast/pv", json.dumps(document).encode())
    service = Service(config)
    taken: queue.Queue[object] = queue.Queue()
    service.add_forecast_listener(taken.put)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(service.serve(),))
    thread.start()
    try:
        # The retained message comes with the subscription, before the planner exists.
        taken.get(timeout=30)
        wait_for(service.started.is_set, "the service to start")
        planning = service.planning
        assert planning is not None and service.coordinator is not None
        asyncio.run_coroutine_threadsafe(planning.plan_once(), loop).result(60)
        used = service.coordinator.last_forecast
        assert used is not None and "pv" in used.day_ahead
        assert used.day_ahead["pv"][0] == 30.0
    finally:
        loop.call_soon_threadsafe(service.request_stop)
        thread.join(60)
        loop.close()
