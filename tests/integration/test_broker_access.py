"""Only gridcoord commands a charger (DESIGN 3.6a, issue 9 defect 2): the broker files
`gridcoord broker-config` writes, loaded by a real Mosquitto 2.0, enforce who may do what.

Every refusal is proven by a marker: a permitted message sent after the refused one arrives,
the refused one never does (not at the operator, who reads everything, nor at its target).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.broker.passwd import hash_password, parse_passwd, verify_password
from gridcoord.storage.embedded import EmbeddedStore
from tests.fixtures.generated_broker import GeneratedBroker
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.mqtt_client import NOT_AUTHORIZED, TestClient, accepted
from tests.fixtures.ports import find_binary
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration

CITY = """\
zones:
  - {id: lt-01, capacity_kw: 100, meter: meter-0001}
assets:
  - {id: meter-0001, kind: meter, zone: lt-01, rated_kw: 60}
  - {id: charger-001, kind: charger, zone: lt-01, rated_kw: 11}
  - {id: charger-002, kind: charger, zone: lt-01, rated_kw: 11}
  - id: pv-vendor-01
    kind: pv
    zone: lt-01
    rated_kw: 50
    mqtt: {topic: vendor/park/state, fields: {power_w: {path: p, scale: 1000}}}
"""
SETPOINT = json.dumps({"max_power_w": 150000, "valid_until": "2099-01-01T00:00:00Z"})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[GeneratedBroker]:
    city = tmp_path / "city.yaml"
    city.write_text(CITY)
    running = GeneratedBroker(city, tmp_path / "broker").start()
    yield running
    running.stop()


@pytest.fixture
def login(broker: GeneratedBroker) -> Iterator[object]:
    """`login(user, mqtt5=True)` → a connected TestClient with the user's generated password."""
    clients: list[TestClient] = []

    def connect(user: str, *, mqtt5: bool = True) -> TestClient:
        client = TestClient(broker.port, user, broker.passwords[user], mqtt5=mqtt5)
        assert client.connect() == 0, user
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def test_a_device_cannot_forge_telemetry_setpoints_or_the_plan(login) -> None:  # type: ignore[no-untyped-def]
    operator = login("operator")
    assert operator.subscribe("#") == [1]
    gridcoord = login("gridcoord")
    gridcoord.subscribe("gridcoord/telemetry/+", "gridcoord/status/+")
    charger = login("charger-001", mqtt5=False)
    charger.subscribe("gridcoord/setpoint/charger-001")
    # Most field devices speak MQTT 3.1.1: Mosquitto drops what the ACL refuses, silently.
    meter = login("meter-0001", mqtt5=False)
    forged = [
        ("gridcoord/telemetry/charger-001", json.dumps({"power_w": 1})),
        ("gridcoord/status/charger-001", "offline"),
        ("gridcoord/setpoint/charger-001", SETPOINT),
        ("gridcoord/plan/latest", json.dumps({"status": "optimal"})),
        ("gridcoord/rejected/charger-001", json.dumps({"reason": "forged"})),
        ("vendor/park/state", json.dumps({"p": 1})),
    ]
    for topic, payload in forged:
        meter.publish(topic, payload, retain=True)
    marker = json.dumps({"power_w": 812.5}).encode()
    meter.publish("gridcoord/telemetry/meter-0001", marker)
    assert operator.wait_for_message("gridcoord/telemetry/meter-0001", marker)
    assert gridcoord.wait_for_message("gridcoord/telemetry/meter-0001", marker)
    assert operator.topics() == {"gridcoord/telemetry/meter-0001"}
    assert gridcoord.topics() == {"gridcoord/telemetry/meter-0001"}
    assert charger.messages == []
    # Nothing forged was retained either: a new subscriber finds no setpoint, no plan.
    late = login("operator")
    late.subscribe("gridcoord/#")
    own = login("gridcoord")
    own.publish("gridcoord/plan/latest", b"real", retain=True)
    assert late.wait_for_message("gridcoord/plan/latest", b"real")
    assert late.topics() == {"gridcoord/plan/latest"}


def test_mqtt5_devices_are_told_not_authorized(login) -> None:  # type: ignore[no-untyped-def]
    meter = login("meter-0001")
    assert accepted(meter.publish("gridcoord/telemetry/meter-0001", b"{}"))
    assert accepted(meter.publish("gridcoord/status/meter-0001", b"online"))
    for topic in (
        "gridcoord/telemetry/charger-001",
        "gridcoord/setpoint/charger-001",
        "gridcoord/plan/latest",
    ):
        assert login("meter-0001").publish(topic, b"{}") == NOT_AUTHORIZED, topic


def test_a_charger_reads_only_its_own_setpoints(login) -> None:  # type: ignore[no-untyped-def]
    charger = login("charger-001")
    charger.subscribe("gridcoord/setpoint/charger-001")
    greedy = login("charger-002")
    # It may ask for everything; the broker delivers only what its ACL lets it read.
    greedy.subscribe("gridcoord/#")
    gridcoord = login("gridcoord")
    assert accepted(gridcoord.publish("gridcoord/setpoint/charger-001", b"one", retain=True))
    assert accepted(gridcoord.publish("gridcoord/plan/latest", b"plan", retain=True))
    assert accepted(gridcoord.publish("gridcoord/setpoint/charger-002", b"two", retain=True))
    assert charger.wait_for_message("gridcoord/setpoint/charger-001", b"one")
    assert greedy.wait_for_message("gridcoord/setpoint/charger-002", b"two")
    assert greedy.topics() == {"gridcoord/setpoint/charger-002"}
    assert charger.topics() == {"gridcoord/setpoint/charger-001"}


def test_gridcoord_and_operator_can_do_exactly_what_the_acl_says(login) -> None:  # type: ignore[no-untyped-def]
    reader = login("gridcoord")
    assert reader.subscribe("gridcoord/telemetry/+", "gridcoord/status/+", "vendor/park/state") == [
        1,
        1,
        1,
    ]
    gridcoord = login("gridcoord")
    for topic in ("gridcoord/setpoint/charger-001", "gridcoord/plan/latest"):
        assert accepted(gridcoord.publish(topic, b"{}")), topic
    assert accepted(gridcoord.publish("gridcoord/rejected/meter-0001", b"{}"))
    vendor = login("pv-vendor-01")
    assert accepted(vendor.publish("vendor/park/state", b'{"p": 7.5}'))
    assert reader.wait_for_message("vendor/park/state", b'{"p": 7.5}')
    # Refusals last, each on a fresh connection: Mosquitto 2.0.11 may drop an MQTT 5 client
    # right after a refused publish ("Bad socket read/write"), losing its subscriptions.
    refused = [
        # gridcoord reads telemetry, it never writes it (nor a device's status or vendor topic).
        ("gridcoord", "gridcoord/telemetry/meter-0001"),
        ("gridcoord", "gridcoord/status/charger-001"),
        ("gridcoord", "vendor/park/state"),
        ("pv-vendor-01", "gridcoord/telemetry/pv-vendor-01"),
        ("operator", "gridcoord/setpoint/charger-001"),
        ("operator", "gridcoord/telemetry/meter-0001"),
        ("operator", "anything"),
    ]
    for user, topic in refused:
        assert login(user).publish(topic, b"{}") == NOT_AUTHORIZED, (user, topic)
    assert reader.topics() == {"vendor/park/state"}


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("meter-0001", "wrong"),
        ("charger-001", None),  # another device's password is tried below
        ("nobody", "whatever"),
        (None, None),  # anonymous
    ],
)
def test_wrong_credentials_and_anonymous_are_refused(
    broker: GeneratedBroker, user: str | None, password: str | None
) -> None:
    if user == "charger-001":
        password = broker.passwords["meter-0001"]
    for mqtt5 in (True, False):
        client = TestClient(broker.port, user, password, mqtt5=mqtt5, client_id="intruder")
        try:
            assert client.connect() != 0
        finally:
            client.close()


def test_forged_telemetry_never_reaches_the_store(broker: GeneratedBroker, tmp_path: Path) -> None:
    """End to end: `gridcoord run` on the generated broker; a device forging another's reading."""
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(broker.port),
        "GRIDCOORD_MQTT__USERNAME": "gridcoord",
        "GRIDCOORD_MQTT__PASSWORD": broker.passwords["gridcoord"],
        "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
        "GRIDCOORD_PLANNING__ENABLED": "false",
    }
    proc = GridcoordProcess(broker.city, env, tmp_path / "gc").start()
    meter = TestClient(broker.port, "meter-0001", broker.passwords["meter-0001"], mqtt5=False)
    try:
        proc.wait_connected()
        assert meter.connect() == 0
        meter.publish("gridcoord/telemetry/charger-001", json.dumps({"power_w": 11000.0}))
        meter.publish("gridcoord/telemetry/meter-0001", json.dumps({"power_w": 812.5}))
        store = EmbeddedStore(tmp_path / "store.sqlite3")
        start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
        wait_until(
            lambda: store.series("telemetry", "power_w", {"asset_id": "meter-0001"}, start, end),
            "the meter's reading in the store",
        )
        assert store.series("telemetry", "power_w", {"asset_id": "charger-001"}, start, end) == []
        store.close()
        assert proc.terminate() == 0
    finally:
        meter.close()
        proc.kill()
    assert broker.passwords["gridcoord"] not in proc.output


def test_our_hash_is_byte_for_byte_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    secret = "s3cr:et,ü 🔌"
    subprocess.run(
        [find_binary("mosquitto_passwd"), "-b", str(passwd), "meter-0001", secret],
        check=True,
        capture_output=True,
        timeout=30,
    )
    theirs = parse_passwd(passwd.read_text())["meter-0001"]
    assert verify_password(secret, theirs) and not verify_password(secret + "!", theirs)
    salt = base64.b64decode(theirs.split("$")[3])
    assert hash_password(secret, salt=salt) == theirs
