"""`gridcoord run` as the central system for stations that are not ours: ocpp-rpc on Node 20.

Real Mosquitto, the real service as a subprocess, the embedded store; each station is an
ocpp-rpc client in strict mode (it checks every call we send against the OCPP schemas).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridcoord.local_broker import LocalBroker
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.ocpp_station import NodeStation

pytestmark = pytest.mark.integration

PASSWORDS = {"cs-201": "p201-" + "x" * 20, "cs-16": "p16-" + "y" * 20}
ZONE_KW = 9.0


def _city(broker: LocalBroker) -> dict[str, Any]:
    return {
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "storage": {
            "kind": "embedded",
            "path": "store.sqlite3",
            "spool_dir": "spool",
            "flush_interval_s": 0.2,
        },
        "planning": {"dispatch_interval_s": 1, "solver_time_limit_s": 10},
        # GridcoordProcess overrides the port with GRIDCOORD_OCPP__PORT=0 (any free one).
        "ocpp": {"port": 9000, "credentials_file": "ocpp.csv", "heartbeat_interval_s": 60},
        "zones": [{"id": "lt-01", "capacity_kw": ZONE_KW}],
        "assets": [
            {
                "id": "charger-ocpp-201",
                "kind": "charger",
                "zone": "lt-01",
                "rated_kw": 22,
                "charger": {"type": "public", "safe_power_kw": 4.2},
                "ocpp": {"station_id": "cs-201", "version": "2.0.1"},
            },
            {
                "id": "charger-ocpp-16",
                "kind": "charger",
                "zone": "lt-01",
                "rated_kw": 11,
                "charger": {"type": "public", "safe_power_kw": 3.7},
                "ocpp": {"station_id": "cs-16", "version": "1.6", "charging_rate_unit": "W"},
            },
        ],
    }


def _telemetry(database: Path, asset_id: str) -> dict[str, float]:
    if not database.exists():
        return {}
    with sqlite3.connect(database) as connection:
        try:
            rows = connection.execute(
                "SELECT s.field, p.value FROM series s JOIN samples p ON p.series_id = s.id "
                "WHERE s.measurement = 'telemetry' AND s.tags LIKE ?",
                (f'%"{asset_id}"%',),
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {field: value for field, value in rows}


def _wait_for_fields(
    database: Path, asset_id: str, wanted: set[str], station: NodeStation
) -> dict[str, float]:
    """The asset's stored fields once they include `wanted`, re-read after each meter event."""
    fields = _telemetry(database, asset_id)
    seen = 0
    for _ in range(100):  # 100 meter values (30 s) at most
        if wanted <= set(fields):
            break
        seen = len(station.events)
        station.wait(
            lambda e, after=seen: e["event"] == "meter" and station.events.index(e) >= after
        )
        fields = _telemetry(database, asset_id)
    return fields


def _first_limit_w(event: dict[str, Any]) -> float:
    scale = 1.0 if event["unit"] == "W" else 690.0
    return float(event["limits"][0]) * scale


def test_ocpp_rpc_stations_are_planned_and_controlled_by_gridcoord_run(
    tmp_path: Path, mosquitto: LocalBroker, node_stations: Callable[[dict[str, Any]], NodeStation]
) -> None:
    workdir = tmp_path / "gc"
    workdir.mkdir()
    credentials = workdir / "ocpp.csv"
    credentials.write_text("".join(f"{k},{v}\n" for k, v in PASSWORDS.items()))
    credentials.chmod(0o600)
    config = tmp_path / "city.yaml"
    config.write_text(yaml.safe_dump(_city(mosquitto)), encoding="utf-8")
    proc = GridcoordProcess(config, {}, workdir).start()
    try:
        listening = proc.wait_for_log(r"OCPP central system on ws://127.0.0.1:(\d+)")
        ocpp_port = int(listening.group(1))
        endpoint = f"ws://127.0.0.1:{ocpp_port}"

        # Unknown station and wrong password: HTTP 401 at the handshake.
        intruders = [
            node_stations(
                {
                    "endpoint": endpoint,
                    "identity": "cs-999",
                    "password": "z" * 20,
                    "version": "2.0.1",
                }
            ),
            node_stations(
                {
                    "endpoint": endpoint,
                    "identity": "cs-201",
                    "password": "wrong" * 4,
                    "version": "2.0.1",
                }
            ),
        ]
        for intruder in intruders:
            refused = intruder.wait(lambda e: e["event"] == "refused")
            assert refused["code"] == 401

        st201 = node_stations(
            {
                "endpoint": endpoint,
                "identity": "cs-201",
                "password": PASSWORDS["cs-201"],
                "version": "2.0.1",
            }
        )
        st16 = node_stations(
            {
                "endpoint": endpoint,
                "identity": "cs-16",
                "password": PASSWORDS["cs-16"],
                "version": "1.6",
                "reject": ["TxProfile"],
                "wattsPerUnit": 1,
            }
        )
        for station in (st201, st16):
            booted = station.wait(lambda e: e["event"] == "booted")
            assert booted["status"] == "Accepted" and booted["interval"] == 60
            station.wait(lambda e: e["event"] == "alive")  # malformed frames answered, still up

        # The plan's profile arrives as a TxProfile for the running transaction ...
        tx = st201.wait(
            lambda e: (
                e["event"] == "profile"
                and e["purpose"] == "TxProfile"
                and e["status"] == "Accepted"
            )
        )
        assert tx["transactionId"] == "tx-cs-201" and tx["validTo"] is not None
        assert _first_limit_w(tx) <= 22_000 and _first_limit_w(tx) <= ZONE_KW * 1000
        st201.wait(lambda e: e["event"] == "profile" and e["purpose"] == "TxDefaultProfile")
        st201.wait(lambda e: e["event"] == "composite" and e["limit"] is not None)
        # ... and the 1.6 station that rejects TxProfiles gets the setpoint as TxDefaultProfile.
        st16.wait(
            lambda e: (
                e["event"] == "profile"
                and e["purpose"] == "TxProfile"
                and e["status"] == "Rejected"
            )
        )
        fallback = st16.wait(
            lambda e: (
                e["event"] == "profile"
                and e["purpose"] == "TxDefaultProfile"
                and e["status"] == "Accepted"
            )
        )
        assert _first_limit_w(fallback) <= 11_000
        proc.wait_for_log(r"charger-ocpp-16 \(OCPP cs-16\) answered Rejected to a TxProfile")
        # Never above the zone: every profile sent in any dispatch, both stations together.
        limits = [
            _first_limit_w(e)
            for station in (st201, st16)
            for e in station.events
            if e["event"] == "profile" and e["status"] == "Accepted"
        ]
        assert limits and max(limits) <= ZONE_KW * 1000

        # Meter values land in the store; the idToken nowhere.
        database = workdir / "store.sqlite3"
        for station in (st201, st16):
            station.wait(lambda e: e["event"] == "meter")
        wanted = {"power_w", "energy_wh", "soc_pct", "current_l1_a", "session_energy_wh"}
        fields = _wait_for_fields(database, "charger-ocpp-201", wanted, st201)
        assert wanted <= set(fields), fields
        assert fields["soc_pct"] == 42.0 and fields["current_l1_a"] == 10.5
        assert "energy_wh" in _wait_for_fields(database, "charger-ocpp-16", {"energy_wh"}, st16)

        # Session end on the 1.6 station: its TxProfile slot is cleared.
        st16.command("stop")
        st16.wait(lambda e: e["event"] == "cleared")

        # Connection lost: the station holds the fail-safe once the TxProfile expires.
        st201.command("drop")
        held = st201.wait(lambda e: e["event"] == "held")
        assert held["after"] == pytest.approx(6.0)  # 4.2 kW at 3 × 230 V, rounded down [A]
        assert held["now"] is not None and held["now"] * 690 <= ZONE_KW * 1000
        proc.wait_for_log(r"setpoint to charger-ocpp-201 failed: station not connected")
    finally:
        code = proc.terminate()
        proc.kill()
    assert code == 0
    secret = b"RFID-SECRET-0042"
    assert secret.decode() not in proc.output
    assert all(secret not in p.read_bytes() for p in workdir.rglob("*") if p.is_file())


def test_a_credentials_file_others_may_read_stops_gridcoord_run_with_a_clear_error(
    tmp_path: Path, mosquitto: LocalBroker
) -> None:
    workdir = tmp_path / "gc"
    workdir.mkdir()
    credentials = workdir / "ocpp.csv"
    credentials.write_text("".join(f"{k},{v}\n" for k, v in PASSWORDS.items()))
    credentials.chmod(0o644)
    config = tmp_path / "city.yaml"
    config.write_text(yaml.safe_dump(_city(mosquitto)), encoding="utf-8")
    proc = GridcoordProcess(config, {}, workdir).start()
    assert proc.process is not None
    try:
        code = proc.process.wait(60)
    finally:
        proc.kill()
    assert code == 1
    assert "ocpp.credentials_file" in proc.output and "chmod 600" in proc.output
    assert "Traceback" not in proc.output
    assert PASSWORDS["cs-201"] not in proc.output
