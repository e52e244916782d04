"""Control on events and per substation, against a real Mosquitto with the real `Service`.

- A plug-in is dispatched within seconds, not at the next refresh: the periodic dispatch is
  set ten minutes apart, and the test waits for the setpoint message itself (no sleeps).
- `planning.roots`: two instances, one per substation of a two-substation city, send between
  them exactly the setpoints one instance planning the whole city sends.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.contract.reading import Reading
from gridcoord.config import Config
from gridcoord.local_broker import LocalBroker
from gridcoord.service import Service
from gridcoord.service_thread import ServiceThread
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts
from tests.fixtures.service_thread import Watcher

pytestmark = pytest.mark.integration

_RIG = rig_accounts()
SERVICE_LOGIN = {"username": _RIG.service_user, "password": _RIG.service_password}


class Devices:
    """The field devices: one MQTT client publishing telemetry (QoS 1, waited for)."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"devices-{id(self)}")
        self.client.username_pw_set(FIELD_USER, _RIG.password(FIELD_USER))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, asset: str, body: dict[str, Any]) -> None:
        topic = f"gridcoord/telemetry/{asset}"
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def storage(tmp_path: Path, name: str) -> dict[str, Any]:
    return {
        "kind": "embedded",
        "path": tmp_path / f"{name}.sqlite3",
        "spool_dir": tmp_path / f"{name}-spool",
        "flush_interval_s": 0.05,
    }


# --- a plug-in is dispatched at once ------------------------------------------------------


def test_a_plug_in_gets_its_setpoint_within_seconds(tmp_path: Path, mosquitto: LocalBroker) -> None:
    config = Config(
        zones=[{"id": "lt-plug", "capacity_kw": 60.0, "meter": "meter-plug"}],
        assets=[
            {"id": "meter-plug", "kind": "meter", "zone": "lt-plug", "rated_kw": 100.0},
            {"id": "charger-plug-1", "kind": "charger", "zone": "lt-plug", "rated_kw": 11.0},
            {
                "id": "charger-plug-2",
                "kind": "charger",
                "zone": "lt-plug",
                "rated_kw": 11.0,
                "charger": {"type": "home", "guaranteed_kw": 4.2},
            },
        ],
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, **SERVICE_LOGIN},
        storage=storage(tmp_path, "store"),
        # The periodic refresh ten minutes apart and plans once an hour: only the plug-in's
        # own dispatch can answer within the test's time.
        planning={"dispatch_interval_s": 600, "interval_min": 60},
        api={"enabled": False, "state_dir": tmp_path / "api"},
    )
    fatal: list[str] = []
    service = Service(config, on_fatal=fatal.append)
    seen = threading.Condition()
    idle: set[str] = set()

    def listen(reading: Reading) -> None:
        with seen:
            if reading.fields.get("connected") is False:
                idle.add(reading.asset_id)
            seen.notify_all()

    service.add_reading_listener(listen)
    setpoints = Watcher(mosquitto.port, "gridcoord/setpoint/+")
    devices = Devices(mosquitto.port)
    runner = ServiceThread(service).start()
    try:
        planning = service.planning
        assert planning is not None and planning.running
        now = datetime.now(UTC)
        devices.publish("meter-plug", {"power_w": 10_000.0, "ts": now.isoformat()})
        for charger in ("charger-plug-1", "charger-plug-2"):
            devices.publish(charger, {"power_w": 0.0, "connected": False, "ts": now.isoformat()})
        with seen:
            assert seen.wait_for(lambda: len(idle) == 2, 20), idle
        # The start's plan and dispatch are over (both chargers have a setpoint, 0 kW: no car,
        # no minimum); what comes next can only be the plug-in's own dispatch.
        # (Unique ids: the broker may hold other tests' retained setpoints.)
        setpoints.wait_for(2)
        assert planning.last_dispatch is not None
        assert set(planning.last_dispatch.setpoints_kw.values()) == {0.0}
        before = len(setpoints.messages)
        plugged = datetime.now(UTC)
        for charger in ("charger-plug-1", "charger-plug-2"):
            body = {"power_w": 0.0, "connected": True, "ts": plugged.isoformat()}
            devices.publish(charger, body)

        def answered(charger: str) -> dict[str, Any] | None:
            for topic, payload in setpoints.messages[before:]:
                sent = datetime.fromisoformat(str(payload["ts"]))
                after = sent >= plugged.replace(microsecond=0)
                if topic.endswith(charger) and after and float(payload["max_power_w"]) > 0:
                    return payload
            return None

        with setpoints.changed:
            assert setpoints.changed.wait_for(
                lambda: answered("charger-plug-1") and answered("charger-plug-2"), 30
            ), setpoints.messages[before:]
        # The car without a minimum gets power at once; the §14a car at least its 4.2 kW.
        first, second = answered("charger-plug-1"), answered("charger-plug-2")
        assert first is not None and second is not None
        assert float(second["max_power_w"]) >= 4200.0
        assert planning.events["plugged_in"] == 2
    finally:
        runner.stop()
        setpoints.close()
        devices.close()


# --- planning per substation ----------------------------------------------------------------

T0 = datetime(2031, 3, 4, 17, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def two_substations() -> dict[str, Any]:
    """Two substations, each with two transformers, a PV roof and chargers (one tight zone)."""
    zones: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    for sub in ("a", "b"):
        zones.append({"id": f"sub-{sub}", "capacity_kw": 200.0, "meter": f"meter-sub-{sub}"})
        assets.append(
            {"id": f"meter-sub-{sub}", "kind": "meter", "zone": f"sub-{sub}", "rated_kw": 300.0}
        )
        assets.append({"id": f"pv-{sub}", "kind": "pv", "zone": f"sub-{sub}", "rated_kw": 50.0})
        for lt, capacity in ((1, 80.0), (2, 15.0)):
            zone = f"lt-{sub}{lt}"
            zones.append({"id": zone, "parent": f"sub-{sub}", "capacity_kw": capacity})
            for n in range(3):
                charger: dict[str, Any] = {"type": "public"}
                if n == 0:
                    charger = {"type": "home", "guaranteed_kw": 4.2}
                assets.append(
                    {
                        "id": f"charger-{sub}{lt}{n}",
                        "kind": "charger",
                        "zone": zone,
                        "rated_kw": 11.0,
                        "charger": charger,
                    }
                )
    return {"zones": zones, "assets": assets}


def readings_at(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for sub in ("a", "b"):
        out.append((f"meter-sub-{sub}", {"power_w": 60_000.0}))
        out.append((f"pv-{sub}", {"power_w": 20_000.0 if sub == "a" else 5_000.0}))
        for lt in (1, 2):
            for n in range(3):
                # Every car but the last of each transformer is plugged in and needs more than
                # it can get before it leaves: the plan must give it all it can.
                plugged = n < 2
                body: dict[str, Any] = {"power_w": 0.0, "connected": plugged}
                if plugged:
                    body |= {
                        "session_energy_wh": 0.0,
                        "energy_request_wh": 40_000.0,
                        "departure": (T0 + timedelta(hours=2)).isoformat(),
                    }
                out.append((f"charger-{sub}{lt}{n}", body))
    return [(asset, {**body, "ts": now.isoformat()}) for asset, body in out]


def test_two_instances_one_per_substation_send_what_one_instance_sends(
    tmp_path: Path, mosquitto: LocalBroker
) -> None:
    clock = FakeClock(T0)
    fatal: list[str] = []
    city = two_substations()
    common = {
        **city,
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, **SERVICE_LOGIN},
    }
    services = {
        name: Service(
            Config(
                **common,
                storage=storage(tmp_path, name),
                planning={"roots": roots, "solver_time_limit_s": 30},
                api={"enabled": False, "state_dir": tmp_path / f"api-{name}"},
            ),
            clock=clock,
            scheduled=False,
            client_id_suffix=f"-{name}",
            on_fatal=fatal.append,
        )
        for name, roots in (("a", ["sub-a"]), ("b", ["sub-b"]), ("all", []))
    }
    counts = dict.fromkeys(services, 0)
    arrived = threading.Condition()
    expected = len(readings_at(T0))

    def listener(name: str) -> Any:
        def listen(reading: Reading) -> None:
            if reading.ts == clock.now:
                with arrived:
                    counts[name] += 1
                    arrived.notify_all()

        return listen

    for name, service in services.items():
        service.add_reading_listener(listener(name))
    runners = {name: ServiceThread(s).start() for name, s in services.items()}
    devices = Devices(mosquitto.port)
    try:
        for when in (T0, T0 + timedelta(minutes=16)):
            clock.now = when
            with arrived:
                for name in counts:
                    counts[name] = 0
            for asset, body in readings_at(when):
                devices.publish(asset, body)
            with arrived:
                assert arrived.wait_for(lambda: all(c >= expected for c in counts.values()), 20), (
                    counts
                )
            for name, runner in runners.items():
                planning = services[name].planning
                assert planning is not None
                runner.call(planning.plan_once if when == T0 else planning.dispatch_once)
        dispatches = {name: services[name].last_dispatch for name in services}
        a, b, whole = dispatches["a"], dispatches["b"], dispatches["all"]
        assert a is not None and b is not None and whole is not None
        assert not whole.fallback and not a.fallback and not b.fallback
        # Each instance commands only its own substation's chargers...
        assert set(a.setpoints_kw) == {c for c in whole.setpoints_kw if c.startswith("charger-a")}
        assert set(b.setpoints_kw) == {c for c in whole.setpoints_kw if c.startswith("charger-b")}
        # ...and between them what one instance planning the whole city sends: per charger
        # where the optimum is unique (roomy transformers, empty chargers), per transformer
        # where it is full (how 15 kW are split between two cars that both need more is a tie
        # the import weights may break either way).
        union = a.setpoints_kw | b.setpoints_kw
        assert union.keys() == whole.setpoints_kw.keys()
        for charger, kw in whole.setpoints_kw.items():
            if charger[-2] == "1" or charger.endswith("2"):
                assert math.isclose(union[charger], kw, rel_tol=1e-6, abs_tol=1e-6), (
                    charger,
                    union,
                )
        for zone in ("a2", "b2"):
            ids = [c for c in union if c.startswith(f"charger-{zone}")]
            total = math.fsum(union[c] for c in ids)
            assert math.isclose(total, math.fsum(whole.setpoints_kw[c] for c in ids), abs_tol=1e-6)
        # The tight transformers are full, the roomy ones give every car its rating.
        assert union["charger-a10"] == union["charger-a11"] == 11.0
        assert union["charger-a20"] + union["charger-a21"] == pytest.approx(15.0)
        assert union["charger-a12"] == 0.0  # no car, no minimum
    finally:
        devices.close()
        for runner in runners.values():
            runner.stop()
