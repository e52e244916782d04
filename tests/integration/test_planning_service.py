"""`gridcoord run` closes the loop: telemetry in → planning run → setpoints out, within limits.

Real Mosquitto, the real service as a subprocess, the embedded store; simulated chargers are
MQTT clients of the test that obey the setpoints they receive (gridcoord.simulation).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridcoord.local_broker import LocalBroker
from gridcoord.simulation.charger import SimulatedCharger
from gridcoord.storage.embedded import EmbeddedStore
from tests.fixtures.gridcoord_process import ROOT, GridcoordProcess
from tests.fixtures.influx import InfluxdServer
from tests.fixtures.mosquitto import FIELD_USER, service_env

pytestmark = pytest.mark.integration

# One 40 kW transformer with a meter; three 11 kW chargers (one with a §14a minimum) and a
# fourth that never reports (stale: it must get its safe power). The devices report once, so
# their telemetry stays fresh for half an hour: a slow machine must not make them stale.
CITY = """\
zones:
  - {id: lt-01, capacity_kw: 40, meter: meter-lt-01}
assets:
  - {id: meter-lt-01, kind: meter, zone: lt-01, rated_kw: 60}
  - {id: pv-roof-01, kind: pv, zone: lt-01, rated_kw: 30}
  - {id: charger-001, kind: charger, zone: lt-01, rated_kw: 11,
     charger: {type: public, stale_after_s: 1800}}
  - {id: charger-002, kind: charger, zone: lt-01, rated_kw: 11,
     charger: {type: public, stale_after_s: 1800}}
  - {id: charger-003, kind: charger, zone: lt-01, rated_kw: 11,
     charger: {type: home, guaranteed_kw: 4.2, stale_after_s: 1800}}
  - {id: charger-004, kind: charger, zone: lt-01, rated_kw: 11,
     charger: {type: public, safe_power_kw: 3.7}}
"""
CHARGERS = ["charger-001", "charger-002", "charger-003"]


class FieldDevices:
    """The test's MQTT devices: chargers that obey setpoints, a zone meter, a PV roof."""

    def __init__(self, broker: LocalBroker) -> None:
        self.chargers = {c: SimulatedCharger(id=c, max_kw=11.0, failsafe_kw=0.0) for c in CHARGERS}
        self.setpoints: dict[str, list[dict[str, object]]] = {}
        self.plan_summaries: list[dict[str, object]] = []
        self.changed = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="field-devices")
        self.client.on_message = self._on_message
        self.client.username_pw_set(FIELD_USER, broker.accounts.password(FIELD_USER))
        subscribed = threading.Event()
        # Subscribe on every (re)connect: a reconnect under load must not leave it deaf.
        self.client.on_connect = lambda c, *_: c.subscribe(
            [("gridcoord/setpoint/+", 1), ("gridcoord/plan/latest", 1)]
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert subscribed.wait(60), "field devices not subscribed"

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        payload = json.loads(msg.payload)
        with self.changed:
            if msg.topic == "gridcoord/plan/latest":
                self.plan_summaries.append(payload)
            else:
                charger = msg.topic.rsplit("/", 1)[1]
                self.setpoints.setdefault(charger, []).append(payload)
                if charger in self.chargers:
                    self.chargers[charger].receive_setpoint(payload)
            self.changed.notify_all()

    def report(self, now: datetime) -> None:
        """Publish one round of telemetry (QoS 1, waited for)."""
        messages = [
            ("gridcoord/telemetry/meter-lt-01", {"power_w": 12_000.0}),
            ("gridcoord/telemetry/pv-roof-01", {"power_w": 9_000.0}),
        ]
        for charger_id, charger in self.chargers.items():
            draw_kw = charger.limit_kw(now)
            messages.append(
                (
                    f"gridcoord/telemetry/{charger_id}",
                    {
                        "power_w": draw_kw * 1000.0,
                        "connected": True,
                        "session_energy_wh": 500.0,
                        "energy_request_wh": 20_000.0,
                        "departure": (now + timedelta(hours=3)).isoformat(),
                    },
                )
            )
        for topic, body in messages:
            self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(60)

    def wait_for(self, predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), (self.plan_summaries, self.setpoints)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def running(
    tmp_path: Path, mosquitto: LocalBroker
) -> Iterator[tuple[GridcoordProcess, FieldDevices]]:
    city = tmp_path / "city.yaml"
    city.write_text(CITY, encoding="utf-8")
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(mosquitto.port),
        **service_env(mosquitto),
        "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
        "GRIDCOORD_PLANNING__DISPATCH_INTERVAL_S": "2",
        "GRIDCOORD_PLANNING__SOLVER_TIME_LIMIT_S": "10",
        # One-minute slots: a plan starts at the next slot boundary, so the test sees it
        # dispatched within a minute instead of a quarter hour.
        "GRIDCOORD_PLANNING__SLOT_MINUTES": "1",
        "GRIDCOORD_PLANNING__INTERVAL_MIN": "1",
        "GRIDCOORD_PLANNING__HORIZON_H": "2",
        "GRIDCOORD_PLANNING__ZONE_METER_STALE_AFTER_S": "1800",
    }
    devices = FieldDevices(mosquitto)
    proc = GridcoordProcess(city, env, tmp_path / "gc").start()
    try:
        proc.wait_connected()
        yield proc, devices
    finally:
        devices.close()
        proc.kill()


def plan_with_sessions(devices: FieldDevices, proc: GridcoordProcess) -> dict[str, object]:
    """Report telemetry, trigger a planning run (SIGUSR1), and wait for a solved plan that saw
    the cars. In the last 20 s of a one-minute slot a run has no time budget and rightly falls
    back; the next minute's scheduled run then solves.
    """
    import signal

    devices.report(datetime.now(UTC))
    assert proc.process is not None
    proc.process.send_signal(signal.SIGUSR1)
    seen = 0
    for _ in range(10):
        devices.wait_for(lambda seen=seen: len(devices.plan_summaries) > seen)
        seen = len(devices.plan_summaries)
        latest = devices.plan_summaries[-1]
        if latest["sessions"] == len(CHARGERS) and latest["status"] != "fallback":
            return latest
    raise AssertionError(devices.plan_summaries)


def test_planning_run_sends_setpoints_within_every_limit(
    tmp_path: Path, running: tuple[GridcoordProcess, FieldDevices]
) -> None:
    proc, devices = running
    summary = plan_with_sessions(devices, proc)
    assert summary["status"] in ("optimal", "time_limit") and summary["failure"] is None
    schedule_id = str(summary["schedule_id"])
    # Wait for a dispatch of that plan (from its first slot on) to reach every charger.
    devices.wait_for(
        lambda: all(
            any(p["schedule_id"] == schedule_id for p in devices.setpoints.get(c, []))
            for c in [*CHARGERS, "charger-004"]
        ),
    )
    latest = {c: devices.setpoints[c][-1] for c in [*CHARGERS, "charger-004"]}
    for payload in latest.values():
        assert 0.0 <= float(payload["max_power_w"]) <= 11_000.0  # type: ignore[arg-type]
        # Expiry after the setpoint was issued, within minutes (not "after the test's clock":
        # a loaded machine may read it seconds later).
        until = datetime.fromisoformat(str(payload["valid_until"]))
        issued = datetime.fromisoformat(str(payload["ts"]))
        assert timedelta(0) < until - issued <= timedelta(minutes=5)
    # The stale charger gets exactly its safe power; the §14a minimum is never cut.
    assert latest["charger-004"]["max_power_w"] == 3700.0
    assert float(latest["charger-003"]["max_power_w"]) >= 4200.0  # type: ignore[arg-type]
    # The zone: 40 kW rating, 12 kW metered while the chargers drew nothing, so 28 kW of
    # headroom; the setpoints together stay inside it.
    total_w = sum(float(p["max_power_w"]) for p in latest.values())  # type: ignore[arg-type]
    assert total_w <= 28_000.0 + 1e-6
    # The simulated chargers then draw no more than their setpoints.
    now = datetime.now(UTC)
    for charger_id, charger in devices.chargers.items():
        assert charger.limit_kw(now) * 1000.0 <= float(latest[charger_id]["max_power_w"]) + 1e-9  # type: ignore[arg-type]
    # Plans and setpoints are in the store (DESIGN 3.4).
    assert proc.terminate() == 0
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    assert store.series("setpoint", "max_power_w", {"asset_id": "charger-001"}, start, end)
    assert store.series("plan", "solve_s", {}, start, end)
    store.close()


def test_sigterm_during_planning_exits_cleanly_with_buffers_drained(
    running: tuple[GridcoordProcess, FieldDevices],
) -> None:
    import signal

    proc, devices = running
    devices.report(datetime.now(UTC))
    assert proc.process is not None
    proc.process.send_signal(signal.SIGUSR1)
    assert proc.terminate() == 0
    drained = proc.wait_for_log(r"ingest drained: \{'accepted': (\d+), 'written': (\d+)")
    assert drained.group(1) == drained.group(2)
    assert "Traceback" not in proc.output, proc.output


def test_example_city_plans_and_dispatches_into_influxdb(
    tmp_path: Path,
    mosquitto: LocalBroker,
    influxd_server: InfluxdServer,
    influx_database: str,
) -> None:
    """The example city with real Mosquitto and InfluxDB 1.6: a plan and every charger's
    setpoint are stored, and InfluxDB takes every field (no type conflicts, nothing refused).
    """
    example = ROOT / "config" / "wolfsburg.yaml"
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(mosquitto.port),
        **service_env(mosquitto),
        "GRIDCOORD_STORAGE__KIND": "influxdb",
        "GRIDCOORD_INFLUXDB__API": "v1",
        "GRIDCOORD_INFLUXDB__URL": influxd_server.url,
        "GRIDCOORD_INFLUXDB__DATABASE": influx_database,
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
    }
    proc = GridcoordProcess(example, env, tmp_path / "gc").start()
    try:
        proc.wait_connected()
        proc.wait_for_log(r"planning run \S+: (optimal|time_limit)")
        assert proc.terminate() == 0
        drained = proc.wait_for_log(r"'dead_lettered': (\d+)")
        assert drained.group(1) == "0", proc.output[-3000:]
    finally:
        proc.kill()
    chargers = sum(1 for line in example.read_text().splitlines() if "kind: charger" in line)
    setpoints = influxd_server.query(
        'SELECT count("max_power_w") FROM "setpoint" GROUP BY "asset_id"', influx_database
    )
    assert len(setpoints) == chargers, influxd_server.query("SHOW MEASUREMENTS", influx_database)
    assert influxd_server.query('SELECT * FROM "plan"', influx_database)
