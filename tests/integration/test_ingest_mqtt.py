"""End to end: an MQTT client that is not ours → `gridcoord run` → InfluxDB / VictoriaMetrics.

Every test runs the real service as a subprocess against a real Mosquitto and a real store,
configured by the environment variables of DESIGN 3.6.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.influx import InfluxdServer, VictoriaMetricsServer
from tests.fixtures.ingest_rig import T0, Rig, eventually, mosquitto_pub, payloads
from tests.fixtures.mosquitto import FIELD_USER

pytestmark = pytest.mark.integration


def test_mosquitto_pub_reading_lands_in_influxdb_v1(rig: Rig) -> None:
    proc = rig.start()
    reading = {
        "power_w": 7400,
        "connected": True,
        "session_energy_wh": 1500,
        "ts": T0.isoformat(),
        "vehicle_id": "WVW-secret",
    }
    mosquitto_pub(rig.broker, "gridcoord/telemetry/charger-001", [json.dumps(reading)])
    assert rig.wait_stored(1) == 1
    rows = rig.influx.rows('SELECT * FROM "telemetry"', rig.database)
    assert len(rows) == 1
    row = rows[0]
    assert row["asset_id"] == "charger-001" and row["kind"] == "charger" and row["zone"] == "lt-01"
    assert row["power_w"] == 7400.0 and row["connected"] is True
    assert row["session_energy_wh"] == 1500.0
    assert row["time"] == int(T0.timestamp()) * 1_000_000_000
    assert "vehicle_id" not in row
    assert proc.terminate() == 0
    assert "WVW-secret" not in proc.output


def test_v2_write_path_through_influxdb_client_into_victoriametrics(
    rig: Rig, victoria_server: VictoriaMetricsServer
) -> None:
    proc = rig.start(
        GRIDCOORD_INFLUXDB__API="v2",
        GRIDCOORD_INFLUXDB__URL=victoria_server.url,
        GRIDCOORD_INFLUXDB__TOKEN="test-token-not-logged",
        GRIDCOORD_INFLUXDB__BUCKET="gridcoord",
        GRIDCOORD_INFLUXDB__ORG="stadtwerk",
    )
    mosquitto_pub(rig.broker, "gridcoord/telemetry/pv-0003", payloads(3, 0, 25))
    series = victoria_server.wait_for_samples(
        '{__name__="telemetry_power_w",asset_id="pv-0003"}', 25
    )
    assert sum(len(s["values"]) for s in series) == 25
    assert series[0]["metric"]["kind"] == "pv" and series[0]["metric"]["zone"] == "lt-01"
    assert proc.terminate() == 0
    assert "test-token-not-logged" not in proc.output


def test_store_outage_mid_stream_loses_nothing(
    rig: Rig, influxd_factory: Callable[[], InfluxdServer]
) -> None:
    rig.influx = influxd_factory()  # a private server this test may stop
    proc = rig.start()
    sent = rig.publish_all(0, 200)
    assert rig.wait_stored(sent) == sent
    rig.influx.stop()
    sent += rig.publish_all(200, 300)
    proc.wait_for_log(r"store unavailable")
    rig.influx.start()
    sent += rig.publish_all(500, 200)
    assert rig.wait_stored(sent, timeout=90) == sent
    assert proc.terminate() == 0
    assert "spool replayed" in proc.output


def test_broker_restart_loses_no_qos1_reading(rig: Rig) -> None:
    # Acks follow the 2 s flush, so gridcoord still holds unacknowledged messages at the restart.
    proc = rig.start(GRIDCOORD_STORAGE__FLUSH_INTERVAL_S="2")
    sent = rig.publish_all(0, 300)
    rig.broker.stop()
    rig.broker.start()
    mark = len(proc.lines)
    proc.wait_for_log(r"connected to broker .*session resumed", after=mark)
    sent += rig.publish_all(300, 100)
    assert rig.wait_stored(sent) == sent
    assert proc.terminate() == 0


def test_readings_published_while_gridcoord_is_down_are_delivered(rig: Rig) -> None:
    first = rig.start()
    sent = rig.publish_all(0, 100)
    assert first.terminate() == 0
    sent += rig.publish_all(100, 150)  # nobody connected: the broker queues them
    second = rig.start()
    assert rig.wait_stored(sent) == sent
    assert second.terminate() == 0


def test_sigterm_drains_buffers_and_exits_zero(rig: Rig) -> None:
    proc = rig.start(GRIDCOORD_STORAGE__FLUSH_INTERVAL_S="30")
    sent = rig.publish_all(0, 50)
    assert proc.terminate() == 0
    drained = proc.wait_for_log(r"ingest drained: \{'accepted': (\d+), 'written': (\d+)")
    accepted, written = int(drained.group(1)), int(drained.group(2))
    assert written == accepted
    # Whatever was accepted is stored; the rest is still queued in the broker for the next start.
    assert rig.stored() == accepted
    again = rig.start()
    assert rig.wait_stored(sent) == sent
    assert again.terminate() == 0


def test_two_instances_share_the_telemetry_and_store_each_reading_once(rig: Rig) -> None:
    one = rig.start("a", GRIDCOORD_MQTT__SHARED_GROUP="ingest", GRIDCOORD_MQTT__CLIENT_ID="gc-a")
    two = rig.start("b", GRIDCOORD_MQTT__SHARED_GROUP="ingest", GRIDCOORD_MQTT__CLIENT_ID="gc-b")
    sent = rig.publish_all(0, 200)
    assert rig.wait_stored(sent) == sent
    accepted = []
    for proc in (one, two):
        assert proc.terminate() == 0
        match = proc.wait_for_log(r"ingest drained: \{'accepted': (\d+)")
        accepted.append(int(match.group(1)))
    assert sum(accepted) == sent, accepted  # each reading reached exactly one instance
    assert min(accepted) > 0, accepted  # and the broker really split the load


HOSTILE: list[tuple[str, bytes, str]] = [
    ("gridcoord/telemetry/pv-0001", b"{not json", "invalid_json"),
    ("gridcoord/telemetry/pv-0001", b"\xff\xfe", "not_utf8"),
    ("gridcoord/telemetry/pv-0001", b'{"power_w": NaN}', "not_finite"),
    ("gridcoord/telemetry/pv-0001", b'{"power_w": "high"}', "wrong_type"),
    ("gridcoord/telemetry/pv-0001", b'{"power_w": 1e7}', "out_of_range"),
    (
        "gridcoord/telemetry/pv-0001",
        b'{"power_w": 1, "ts": "2001-01-01T00:00:00Z"}',
        "bad_timestamp",
    ),
    ("gridcoord/telemetry/pv-0001", b"[1]", "not_object"),
    ("gridcoord/telemetry/pv-0001", b"x" * 20000, "oversized"),
    ("gridcoord/telemetry/nobody-here", b'{"power_w": 1}', "unknown_asset"),
]


def test_hostile_payloads_are_rejected_with_reasons_and_valid_ones_keep_flowing(rig: Rig) -> None:
    proc = rig.start(GRIDCOORD_MQTT__REJECTED_PER_S="1000000")
    notices: list[tuple[str, dict[str, str]]] = []
    got_all = threading.Event()
    observer = paho.Client(CallbackAPIVersion.VERSION2, client_id="observer")

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        notices.append((message.topic, json.loads(message.payload)))
        if len(notices) >= len(HOSTILE):
            got_all.set()

    observer.on_message = on_message
    observer.username_pw_set(FIELD_USER, rig.broker.accounts.password(FIELD_USER))
    observer.connect("127.0.0.1", rig.broker.port)
    observer.subscribe("gridcoord/rejected/#", qos=1)
    observer.loop_start()
    try:
        sent = rig.publish_all(0, 20)
        for topic, payload, _ in HOSTILE:
            observer.publish(topic, payload, qos=1).wait_for_publish(60)
        sent += rig.publish_all(20, 20)
        assert got_all.wait(30), notices
    finally:
        observer.loop_stop()
        observer.disconnect()
    reasons = sorted(n["reason"] for _, n in notices)
    assert reasons == sorted(reason for *_, reason in HOSTILE)
    topics = {t for t, _ in notices}
    assert "gridcoord/rejected/pv-0001" in topics and "gridcoord/rejected/nobody-here" in topics
    assert rig.wait_stored(sent) == sent
    assert proc.process is not None and proc.process.poll() is None  # still running
    assert proc.terminate() == 0


def test_crash_before_the_store_write_loses_nothing(rig: Rig) -> None:
    # A long flush interval keeps received readings in memory, unacknowledged, when we kill it.
    victim = rig.start(GRIDCOORD_STORAGE__FLUSH_INTERVAL_S="60")
    sent = rig.publish_all(0, 100)
    victim.kill()
    assert rig.stored() == 0
    survivor = rig.start()
    assert rig.wait_stored(sent) == sent
    assert survivor.terminate() == 0


def test_messages_queued_for_gridcoord_survive_a_broker_restart(rig: Rig) -> None:
    first = rig.start()
    assert first.terminate() == 0
    sent = rig.publish_all(0, 100)  # queued in the broker for our persistent session
    rig.broker.stop()
    rig.broker.start()
    second = rig.start()
    assert rig.wait_stored(sent) == sent
    assert second.terminate() == 0


def test_example_city_run_by_environment_stores_what_mosquitto_pub_sends(rig: Rig) -> None:
    rig.config = Path(__file__).resolve().parents[2] / "config" / "wolfsburg.yaml"
    proc = rig.start()
    mosquitto_pub(rig.broker, "gridcoord/telemetry/meter-0412", [json.dumps({"power_w": 812.5})])
    vendor = {"ac": {"p_kw": 1520.25}, "totals": {"e_kwh": 981234}, "time": T0.isoformat()}
    # A device with its own topic and JSON, mapped in the config.
    mosquitto_pub(rig.broker, "vendor/solarpark-2/state", [json.dumps(vendor)])
    assert rig.wait_stored(2) == 2
    rows = {r["asset_id"]: r for r in rig.influx.rows('SELECT * FROM "telemetry"', rig.database)}
    assert rows["meter-0412"]["power_w"] == 812.5 and rows["meter-0412"]["kind"] == "meter"
    assert rows["pv-park-02"]["power_w"] == 1_520_250.0
    assert rows["pv-park-02"]["energy_wh"] == 981_234_000.0
    assert rows["pv-park-02"]["zone"] == "feeder-3"
    assert proc.terminate() == 0


def test_random_payload_storm_crashes_nothing(rig: Rig) -> None:
    """5,000 seeded random payloads (bytes, broken and valid-looking JSON) among valid ones."""
    rng = random.Random(20261124)
    fragments = [
        '{"power_w":',
        "NaN",
        "1e999",
        '"x"',
        "[",
        "]",
        "}",
        "{",
        ",",
        "null",
        "true",
        '"ts":',
        '"2026-13-45T99:00:00Z"',
        "-1",
        "9" * 40,
        '"\\ud800"',
        "\u00e9",
    ]

    def junk() -> str:
        if rng.random() < 0.3:
            return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(0, 60)))
        return "".join(rng.choice(fragments) for _ in range(rng.randrange(1, 12)))

    storm = [junk().replace("\n", " ") for _ in range(5000)]
    proc = rig.start()
    sent = rig.publish_all(0, 50)
    mosquitto_pub(rig.broker, "gridcoord/telemetry/charger-001", storm)
    sent += rig.publish_all(50, 50)

    def valid_stream() -> int:  # a random payload may happen to be valid: count the others
        series = rig.influx.query(
            """SELECT count("power_w") FROM "telemetry" WHERE "asset_id" != 'charger-001'""",
            rig.database,
        )
        return int(series[0]["values"][0][1]) if series else 0

    assert eventually(valid_stream, sent) == sent
    assert proc.process is not None and proc.process.poll() is None
    assert proc.terminate() == 0
    assert "Traceback" not in proc.output
