"""`gridcoord broker-config` as a user runs it (a subprocess): files, modes, kept passwords."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.broker.acl import BrokerUser, Rule, acl_text
from gridcoord.broker.passwd import hash_password, parse_passwd, verify_password

ROOT = Path(__file__).resolve().parents[3]
SERVICE_PW = "service-pw-from-env-31f9"
CITY = """\
zones:
  - {id: lt-01, capacity_kw: 100}
assets:
  - {id: meter-0001, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: charger-001, kind: charger, zone: lt-01, rated_kw: 11}
  - id: pv-vendor-01
    kind: pv
    rated_kw: 50
    mqtt: {topic: vendor/park/state, fields: {power_w: {path: p, scale: 1000}}}
  - id: pv-modbus-01
    kind: pv
    rated_kw: 10
    modbus: {host: 127.0.0.1, port: 15020, unit_id: 1, register_map: sunspec}
"""


def broker_config(
    config: Path, out: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOORD_")}
    command = [sys.executable, "-m", "gridcoord", "broker-config", "--config", str(config)]
    return subprocess.run(
        [*command, "--out", str(out), *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def credentials(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture
def city(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(CITY)
    return path


def test_writes_hashed_passwd_acl_conf_and_private_credentials(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    result = broker_config(city, out, GRIDCOORD_MQTT__PASSWORD=SERVICE_PW)
    assert result.returncode == 0, result.stderr
    devices = credentials(out / "device-credentials.csv")
    # Every MQTT device, username = asset id; the Modbus-polled asset never speaks MQTT.
    assert [(d["asset_id"], d["username"]) for d in devices] == [
        ("meter-0001", "meter-0001"),
        ("charger-001", "charger-001"),
        ("pv-vendor-01", "pv-vendor-01"),
    ]
    assert len({d["password"] for d in devices}) == 3 and all(
        len(d["password"]) >= 32 for d in devices
    )
    for name in ("device-credentials.csv", "service-credentials.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    hashes = parse_passwd((out / "passwd").read_text())
    assert set(hashes) == {
        *("gridcoord", "operator", "forecaster"),
        *("meter-0001", "charger-001", "pv-vendor-01"),
    }
    assert verify_password(SERVICE_PW, hashes["gridcoord"])
    for device in devices:
        assert verify_password(device["password"], hashes[device["username"]])
    # The service password came from the environment: it is in no file, hashed or not.
    for path in out.iterdir():
        if path.is_file():
            assert SERVICE_PW not in path.read_text(), path
    generated = credentials(out / "service-credentials.csv")
    assert [g["username"] for g in generated] == ["operator", "forecaster"]
    acl = (out / "acl").read_text()
    assert "user charger-001\ntopic write gridcoord/telemetry/charger-001\n" in acl
    assert "user pv-vendor-01\ntopic write vendor/park/state\n" in acl
    assert "pattern" not in acl and "pv-modbus-01" not in acl
    conf = (out / "mosquitto.conf").read_text().splitlines()
    for line in (
        "allow_anonymous false",
        f"password_file {out.resolve()}/passwd",
        f"acl_file {out.resolve()}/acl",
        "persistence true",
        "autosave_on_changes true",
        "max_queued_messages 0",
        "listener 1883",
    ):
        assert line in conf
    assert "allow_anonymous true" not in conf


def test_passwords_are_kept_on_rerun_and_replaced_with_rotate(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert broker_config(city, out).returncode == 0
    first = credentials(out / "device-credentials.csv")
    operator = credentials(out / "service-credentials.csv")
    assert broker_config(city, out).returncode == 0
    assert credentials(out / "device-credentials.csv") == first
    assert credentials(out / "service-credentials.csv") == operator
    assert broker_config(city, out, "--rotate").returncode == 0
    rotated = credentials(out / "device-credentials.csv")
    assert [r["asset_id"] for r in rotated] == [f["asset_id"] for f in first]
    assert not {r["password"] for r in rotated} & {f["password"] for f in first}
    assert credentials(out / "service-credentials.csv") != operator


@pytest.mark.parametrize(
    ("asset", "field"),
    [
        ("{id: operator, kind: meter, rated_kw: 1}", "assets[0].id"),
        ("{id: gridcoord, kind: meter, rated_kw: 1}", "assets[0].id"),
        ("{id: forecaster, kind: meter, rated_kw: 1}", "assets[0].id"),
        (
            "{id: m-1, kind: meter, rated_kw: 1, mqtt: {topic: gridcoord/setpoint/charger-001, "
            "fields: {power_w: {path: p}}}}",
            "assets[0].mqtt.topic",
        ),
        (
            "{id: m-1, kind: meter, rated_kw: 1, mqtt: {topic: 'a b', "
            "fields: {power_w: {path: p}}}}",
            "assets[0].mqtt.topic",
        ),
        ("{id: m-1, kind: meter, rated_kw: -1}", "rated_kw"),
    ],
)
def test_invalid_config_exits_2_naming_the_field(tmp_path: Path, asset: str, field: str) -> None:
    city = tmp_path / "city.yaml"
    city.write_text(f"assets:\n  - {asset}\n")
    result = broker_config(city, tmp_path / "out")
    assert result.returncode == 2, result
    assert field in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "passwd").exists()


def test_malformed_credentials_file_exits_2(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    out.mkdir()
    (out / "device-credentials.csv").write_text("who,what\n")
    result = broker_config(city, out)
    assert result.returncode == 2 and "device-credentials.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_mosquitto_conf_is_what_broker_config_writes_for_the_example(
    tmp_path: Path,
) -> None:
    """config/mosquitto/mosquitto.conf must not drift from the generator (docker paths)."""
    out = tmp_path / "mosquitto"
    result = broker_config(
        ROOT / "config" / "production.example.yaml",
        out,
        "--broker-dir",
        "/mosquitto/config",
        "--data-dir",
        "/mosquitto/data",
    )
    assert result.returncode == 0, result.stderr
    shipped = (ROOT / "config" / "mosquitto" / "mosquitto.conf").read_text()
    assert shipped == (out / "mosquitto.conf").read_text()


@given(st.text(min_size=0, max_size=40), st.binary(min_size=12, max_size=12))
def test_hash_verifies_its_password_and_no_other(password: str, salt: bytes) -> None:
    encoded = hash_password(password, salt=salt, iterations=2)
    assert verify_password(password, encoded)
    assert not verify_password(password + "x", encoded)


def test_acl_lists_exactly_the_rules() -> None:
    users = [BrokerUser("a", (Rule("write", "p/telemetry/a"), Rule("read", "p/setpoint/a")))]
    text = acl_text(users)
    assert "user a\ntopic write p/telemetry/a\ntopic read p/setpoint/a\n" in text


def test_a_gateway_may_write_only_its_own_gateway_topic_and_gridcoord_reads_them() -> None:
    from gridcoord.broker.acl import broker_users
    from gridcoord.config import Config

    config = Config(
        assets=[
            {"id": "meter-a", "kind": "meter", "rated_kw": 30, "gateway": "gw-01"},
            {"id": "meter-b", "kind": "meter", "rated_kw": 30, "gateway": "gw-01"},
            {"id": "meter-c", "kind": "meter", "rated_kw": 30},
        ]
    )
    users = {user.name: user for user in broker_users(config)}
    assert users["gw-01"].rules == (Rule("write", "gridcoord/gateway/gw-01"),)
    assert users["gw-01"].device
    assert Rule("read", "gridcoord/gateway/+") in users["gridcoord"].rules
    assert not any("gateway" in rule.topic for rule in users["meter-c"].rules)
