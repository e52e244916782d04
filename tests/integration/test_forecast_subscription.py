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

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridcoord.broker.acl import FORECASTER_USER, OPERATOR_USER
from gridcoord.config import Config
from gridcoord.local_broker import LocalBroker
from gridcoord.service import Service
from gridcoord.timegrid import next_slot_start, to_rfc3339

pytestmark = pytest.mark.integration


def city(broker: LocalBroker, tmp_path: Path) -> Config:
    return Config(
        mqtt={
            "host": "127.0.0.1",
            "port": broker.port,
            "client_id": "gc-forecast",
            "username": broker.accounts.service_user,
            "password": broker.accounts.service_password,
        },
        storage={"path": tmp_path / "store.sqlite3", "spool_dir": tmp_path / "spool"},
        zones=[{"id": "lt-1", "capacity_kw": 100.0}],
        assets=[
            {"id": "pv-1", "kind": "pv", "zone": "lt-1", "rated_kw": 50.0},
            {"id": "charger-1", "kind": "charger", "zone": "lt-1", "rated_kw": 11.0},
        ],
        planning={"solver_time_limit_s": 5.0},
        api={"port": 0, "state_dir": tmp_path / "api"},  # any free port: no clash on 8080
    )


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
