"""The real `Service` in-process, on a fake clock, driven like the demo drives it.

Real Mosquitto and the embedded store; the test is the field devices (a plain MQTT client)
and the clock. No log matching: the test reads the service's own state and the store.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.contract.reading import Reading
from gridcoord.config import Api, Config
from gridcoord.local_broker import LocalBroker
from gridcoord.service import Service, StartupError
from gridcoord.service_thread import ServiceThread
from gridcoord.storage.base import StoreUnavailable
from gridcoord.storage.embedded import EmbeddedStore
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts
from tests.fixtures.service_thread import Watcher

_RIG = rig_accounts()
SERVICE_LOGIN = {"username": _RIG.service_user, "password": _RIG.service_password}

pytestmark = pytest.mark.integration

# Far from the wall clock on purpose: only the injected clock can make these times.
T0 = datetime(2031, 3, 4, 17, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def city(port: int, tmp_path: Path) -> Config:
    return Config(
        zones=[{"id": "lt-01", "capacity_kw": 30.0, "meter": "meter-lt-01"}],
        assets=[
            {"id": "meter-lt-01", "kind": "meter", "zone": "lt-01", "rated_kw": 100.0},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 22.0},
            {"id": "charger-002", "kind": "charger", "zone": "lt-01", "rated_kw": 22.0},
        ],
        mqtt={"host": "127.0.0.1", "port": port, **SERVICE_LOGIN},
        storage={
            "kind": "embedded",
            "path": tmp_path / "store.sqlite3",
            "spool_dir": tmp_path / "spool",
            "flush_interval_s": 0.05,
        },
    )


def publish_round(port: int, now: datetime) -> None:
    """The meter and two plugged-in cars report at ``now`` (QoS 1, waited for)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="devices")
    client.username_pw_set(FIELD_USER, _RIG.password(FIELD_USER))
    client.connect("127.0.0.1", port)
    client.loop_start()
    messages = [("meter-lt-01", {"power_w": 10_000.0})] + [
        (
            c,
            {
                "power_w": 0.0,
                "connected": True,
                "session_energy_wh": 0.0,
                "energy_request_wh": 20_000.0,
            },
        )
        for c in ("charger-001", "charger-002")
    ]
    for asset, body in messages:
        payload = json.dumps({**body, "ts": now.isoformat()})
        client.publish(f"gridcoord/telemetry/{asset}", payload, qos=1).wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def test_a_driven_service_plans_and_dispatches_on_its_injected_clock(
    tmp_path: Path, mosquitto: LocalBroker
) -> None:
    clock = FakeClock(T0)
    service = Service(city(mosquitto.port, tmp_path), clock=clock, scheduled=False)
    seen: list[Reading] = []
    arrived = threading.Condition()

    def listen(reading: Reading) -> None:  # on paho's thread
        with arrived:
            seen.append(reading)
            arrived.notify_all()

    service.add_reading_listener(listen)
    setpoints = Watcher(mosquitto.port, "gridcoord/setpoint/+")
    runner = ServiceThread(service).start()
    try:
        assert service.planning is not None and service.last_plan is None
        publish_round(mosquitto.port, T0)
        with arrived:
            assert arrived.wait_for(lambda: len(seen) >= 3, 10), seen
        assert {r.asset_id for r in seen} == {"meter-lt-01", "charger-001", "charger-002"}

        image = service.city_state()
        assert image is not None and image.at == T0
        assert {s.charger_id for s in image.sessions} == {"charger-001", "charger-002"}

        runner.call(service.planning.plan_once)
        plan = service.last_plan
        assert plan is not None and plan.made_at == T0 and plan.sessions == 2
        assert plan.schedule_id == "2031-03-04T17:15:00Z"
        # Its dispatch followed at once: fair share now (the plan starts at 17:15).
        dispatch = service.last_dispatch
        assert dispatch is not None and dispatch.at == T0 and dispatch.fallback
        messages = dict(setpoints.wait_for(2))
        for charger in ("charger-001", "charger-002"):
            payload = messages[f"gridcoord/setpoint/{charger}"]
            assert payload["ts"] == "2031-03-04T17:00:00Z"
            assert payload["valid_until"] == "2031-03-04T17:03:00Z"
        # The meter's 10 kW leave 20 kW of the zone's 30: shared between the two cars.
        assert sum(dispatch.setpoints_kw.values()) == pytest.approx(20.0)

        clock.now = T0 + timedelta(minutes=16)
        publish_round(mosquitto.port, clock.now)
        runner.call(service.planning.dispatch_once)
        later = service.last_dispatch
        assert later is not None and later.schedule_id == plan.schedule_id and not later.fallback
        setpoints.wait_for(4)
    finally:
        runner.stop()
        setpoints.close()

    store = EmbeddedStore(tmp_path / "store.sqlite3")
    window = (T0 - timedelta(minutes=1), T0 + timedelta(hours=1))
    # The quarter-hour run at T0 came within the new cars' probe: the plug-ins' re-plan ran
    # once the probe was over, with the dispatch at 17:16.
    assert [ts for ts, _ in store.series("plan", "solve_s", {}, *window)] == [
        T0,
        T0 + timedelta(minutes=16),
    ]
    stored = store.series("setpoint", "max_power_w", {"asset_id": "charger-001"}, *window)
    assert [ts for ts, _ in stored] == [T0, T0 + timedelta(minutes=16)]
    meter = store.series("telemetry", "power_w", {"asset_id": "meter-lt-01"}, *window)
    assert meter == [(T0, 10_000.0), (T0 + timedelta(minutes=16), 10_000.0)]
    store.close()


def test_a_service_that_cannot_start_says_why(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    config = city(1, tmp_path)
    config = Config(
        **{**config.model_dump(), "storage": {"kind": "embedded", "path": blocked / "s.db"}}
    )
    with pytest.raises(RuntimeError, match="did not start") as failed:
        ServiceThread(Service(config, scheduled=False)).start(timeout_s=10)
    assert isinstance(failed.value.__cause__, OSError | StoreUnavailable), failed.value.__cause__


def test_a_startup_error_reaches_the_driver_as_itself(
    tmp_path: Path, mosquitto: LocalBroker
) -> None:
    """A taken API port is the user's to fix: the driver gets the one-line `StartupError`
    (the demo prints it as `demo: api: cannot listen on …`), not a wrapped RuntimeError.
    """
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = held.getsockname()[1]
        config = city(mosquitto.port, tmp_path).model_copy(
            update={"api": Api(host="127.0.0.1", port=busy, state_dir=tmp_path / "api")}
        )
        service = Service(config, clock=FakeClock(T0), scheduled=False)
        with pytest.raises(StartupError, match=f"api: cannot listen on 127.0.0.1:{busy}"):
            ServiceThread(service).start()
