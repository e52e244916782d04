"""The OCPP central system against stations built on the `ocpp` package's own ChargePoint class.

Real websockets over loopback, the real server; the stations keep the profiles they are sent
and evaluate them like a station does (tests/fixtures/ocpp_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from adapters.contract.reading import Reading
from adapters.ocpp.server import OcppServer
from adapters.ocpp.settings import OcppTls
from adapters.sink import Setpoint
from gridcoord.config import Config
from tests.fixtures.ocpp_client import basic_auth, open_station

pytestmark = pytest.mark.integration

PASSWORDS = {"CS-201": "a" * 20, "CS-16": "b" * 20}


def city(credentials: Path) -> Config:
    return Config(
        zones=[{"id": "lt-01", "capacity_kw": 40}],
        assets=[
            {
                "id": "charger-201",
                "kind": "charger",
                "zone": "lt-01",
                "rated_kw": 11,
                "charger": {"safe_power_kw": 4.2},
                "ocpp": {"station_id": "CS-201", "version": "2.0.1"},
            },
            {
                "id": "charger-16",
                "kind": "charger",
                "zone": "lt-01",
                "rated_kw": 11,
                "charger": {"safe_power_kw": 4.2},
                "ocpp": {"station_id": "CS-16", "version": "1.6", "charging_rate_unit": "W"},
            },
        ],
        ocpp={"port": 0, "credentials_file": str(credentials), "max_frame_bytes": 4096},
    )


class Harness:
    def __init__(self, server: OcppServer) -> None:
        self.server = server
        self.readings: list[Reading] = []
        self.rejected: list[tuple[str, str, str]] = []


@contextlib.asynccontextmanager
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    credentials = tmp_path / "ocpp.csv"
    credentials.write_text(
        "station_id,password\n" + "".join(f"{k},{v}\n" for k, v in PASSWORDS.items())
    )
    credentials.chmod(0o600)
    config = city(credentials)
    assert config.ocpp is not None
    box: list[Harness] = []
    server = OcppServer(
        config.ocpp,
        config.assets,
        submit=lambda r: box[0].readings.append(r),
        reject=lambda a, reason, d: box[0].rejected.append((a, reason.value, d)),
    )
    box.append(Harness(server))
    await server.start()
    try:
        yield box[0]
    finally:
        await server.close()


def in_loop(test: Callable[[Harness], Awaitable[None]]) -> Callable[[Path], None]:
    """Run an async test body on a fresh event loop with a started server."""

    def run(tmp_path: Path) -> None:
        async def body() -> None:
            async with harness(tmp_path) as h:
                await test(h)

        asyncio.run(body())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


def setpoint(charger: str, kw: float, minutes: float = 5.0) -> Setpoint:
    now = datetime.now(UTC)
    return Setpoint(charger, kw * 1000.0, now + timedelta(minutes=minutes), "plan-1", now)


@in_loop
async def test_unknown_station_and_wrong_password_are_refused_with_401(harness: Harness) -> None:
    port = harness.server.port
    for station, password in (
        ("CS-999", "a" * 20),
        ("CS-201", "wrong-password-xx"),
        ("CS-16", "a" * 20),
    ):
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                f"ws://127.0.0.1:{port}/{station}",
                subprotocols=["ocpp2.0.1"],
                additional_headers=basic_auth(station, password),
            )
        assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as no_auth:
        await connect(f"ws://127.0.0.1:{port}/CS-201", subprotocols=["ocpp2.0.1"])
    assert no_auth.value.response.status_code == 401
    assert harness.server.connections == {}


@in_loop
async def test_a_station_offering_the_wrong_subprotocol_is_refused(harness: Harness) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"ws://127.0.0.1:{harness.server.port}/CS-201",
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
        )
    assert refused.value.response.status_code == 400


@in_loop
async def test_201_boot_transaction_meter_values_and_a_profile_read_back(harness: Harness) -> None:
    station, task, _ = await open_station(harness.server.port, "CS-201", PASSWORDS["CS-201"])
    boot = await station.boot()
    assert boot.status == "Accepted" and boot.interval == 300
    await station.start_transaction("tx-1", 1000.0)
    await station.meter("tx-1", 1500.0, 7200.0)
    delivery = await harness.server.send(setpoint("charger-201", 7.0))
    assert delivery.state == "read_back", delivery
    held = station.held
    tx = held.profiles["TxProfile"]
    assert tx["transaction_id"] == "tx-1"
    limit_a = tx["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
    assert limit_a * 230 * 3 <= 7000.0  # never above the setpoint
    assert limit_a == pytest.approx(10.1)
    # Meter values became readings with session energy; the idToken is nowhere.
    powers = [r.fields.get("power_w") for r in harness.readings]
    assert 7200.0 in powers
    assert any(r.fields.get("session_energy_wh") == 500.0 for r in harness.readings)
    assert "04A1B2C3D4" not in repr(harness.readings)
    task.cancel()


@in_loop
async def test_connection_drop_leaves_the_failsafe_limit_holding(harness: Harness) -> None:
    station, task, connection = await open_station(
        harness.server.port, "CS-201", PASSWORDS["CS-201"]
    )
    await station.boot()
    await station.start_transaction("tx-2", 0.0)
    sp = setpoint("charger-201", 11.0, minutes=2)
    assert (await harness.server.send(sp)).state == "read_back"
    await connection.close()
    task.cancel()
    await harness.server.wait_disconnected("CS-201")
    held = station.held
    during = held.limit_at(datetime.now(UTC), in_transaction=True)
    after = held.limit_at(sp.valid_until + timedelta(seconds=1), in_transaction=True)
    assert during is not None and during * 690 <= 11000.0
    assert after == pytest.approx(6.0)  # 4.2 kW safe power at 3 × 230 V, rounded down
    assert (await harness.server.send(sp)).state == "failed"


@in_loop
async def test_a_rejected_txprofile_falls_back_to_txdefault(harness: Harness) -> None:
    station, task, _ = await open_station(harness.server.port, "CS-201", PASSWORDS["CS-201"])
    await station.boot()
    await station.start_transaction("tx-3", 0.0)
    station.held.reject.add("TxProfile")
    delivery = await harness.server.send(setpoint("charger-201", 5.0))
    assert delivery.state == "read_back" and "TxDefaultProfile" in delivery.detail
    assert harness.server.hub.counts["profile_rejected"] == 1
    default = station.held.profiles["TxDefaultProfile"]
    first = default["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
    assert first * 690 <= 5000.0 and first == pytest.approx(7.2)
    station.held.reject.add("TxDefaultProfile")
    delivery = await harness.server.send(setpoint("charger-201", 4.0))
    assert "ChargingStationMaxProfile" in station.held.profiles
    assert delivery.state == "read_back" and "ChargingStationMaxProfile" in delivery.detail
    # The station takes TxProfiles again after a reboot: the station-wide maximum goes.
    station.held.reject.clear()
    await station.boot()
    delivery = await harness.server.send(setpoint("charger-201", 11.0))
    assert delivery.state == "read_back" and delivery.detail == "", delivery
    assert "ChargingStationMaxProfile" not in station.held.profiles
    task.cancel()


@in_loop
async def test_16_station_in_watts_with_start_and_stop_transaction(harness: Harness) -> None:
    station, task, _ = await open_station(harness.server.port, "CS-16", PASSWORDS["CS-16"], "1.6")
    assert (await station.boot()).status == "Accepted"
    await station.start_transaction(2000)
    delivery = await harness.server.send(setpoint("charger-16", 3.3))
    assert delivery.state == "read_back" and delivery.read_back_w == pytest.approx(3300.0)
    tx = station.held.profiles["TxProfile"]
    assert tx["transaction_id"] == station.transaction_id
    assert tx["charging_schedule"]["charging_rate_unit"] == "W"
    from ocpp.v16 import call as call16

    await station.call(
        call16.StopTransaction(
            meter_stop=5000,
            timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            transaction_id=station.transaction_id,
        )
    )
    async with asyncio.timeout(5):
        while 101 not in station.held.cleared:
            station.held.changed.clear()
            await station.held.changed.wait()
    ended = [r for r in harness.readings if r.fields.get("connected") is False]
    assert ended and ended[-1].fields["session_energy_wh"] == 3000.0
    task.cancel()


@in_loop
async def test_malformed_frames_get_callerror_and_the_connection_lives(harness: Harness) -> None:
    async with connect(
        f"ws://127.0.0.1:{harness.server.port}/CS-201",
        subprotocols=["ocpp2.0.1"],
        additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
    ) as ws:
        for frame in (
            "not json",
            "{}",
            "[2]",
            '[2,"a",["x"],{}]',
            '[9,"b"]',
            '[2,"c","Heartbeat",[1]]',
            '[2,"d","NoSuchAction",{}]',
            '[2,"e","MeterValues",{"evseId":"x"}]',
        ):
            await ws.send(frame)
            answer = json.loads(await ws.recv())
            assert answer[0] == 4, (frame, answer)
        await ws.send('[2,"ok","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "ok"]
    assert harness.server.hub.counts["malformed"] >= 4


@in_loop
async def test_an_oversized_frame_closes_the_connection(harness: Harness) -> None:
    async with connect(
        f"ws://127.0.0.1:{harness.server.port}/CS-201",
        subprotocols=["ocpp2.0.1"],
        additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
    ) as ws:
        await ws.send('[2,"big","Heartbeat",{"customData":{"vendorId":"' + "x" * 5000 + '"}}]')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await harness.server.wait_disconnected("CS-201")
    assert harness.server.hub.counts["oversized"] == 1


@in_loop
async def test_a_flooding_station_is_rate_limited(harness: Harness) -> None:
    async with connect(
        f"ws://127.0.0.1:{harness.server.port}/CS-201",
        subprotocols=["ocpp2.0.1"],
        additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
    ) as ws:
        for i in range(120):
            await ws.send(f'[2,"h{i}","Heartbeat",{{}}]')
        answers = [json.loads(await ws.recv()) for _ in range(120)]
    limited = [a for a in answers if a[0] == 4 and a[2] == "GenericError"]
    assert len(limited) >= 60  # 50 burst + a few refilled; the rest refused
    assert harness.server.hub.counts["rate_limited"] == len(limited)


@in_loop
async def test_reconnect_resends_the_valid_setpoint(harness: Harness) -> None:
    station, task, connection = await open_station(
        harness.server.port, "CS-201", PASSWORDS["CS-201"]
    )
    await station.boot()
    await station.start_transaction("tx-4", 0.0)
    assert (await harness.server.send(setpoint("charger-201", 6.0))).state == "read_back"
    await connection.close()
    task.cancel()
    await harness.server.wait_disconnected("CS-201")
    again, task2, _ = await open_station(harness.server.port, "CS-201", PASSWORDS["CS-201"])
    again.in_transaction = True
    async with asyncio.timeout(5):
        await again.held.changed.wait()
    assert "TxProfile" in again.held.profiles or "TxDefaultProfile" in again.held.profiles
    task2.cancel()


def test_security_profile_2_tls_with_basic_auth(tmp_path: Path) -> None:
    """wss:// with a certificate the station trusts; the password still decides."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.crt",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    credentials = tmp_path / "ocpp.csv"
    credentials.write_text(f"CS-201,{PASSWORDS['CS-201']}\n")
    credentials.chmod(0o600)
    config = city(credentials)
    assert config.ocpp is not None
    settings = config.ocpp.model_copy(
        update={"tls": OcppTls(cert_file=tmp_path / "server.crt", key_file=tmp_path / "server.key")}
    )
    trust = ssl.create_default_context(cafile=tmp_path / "server.crt")

    async def body() -> None:
        server = OcppServer(settings, config.assets, submit=lambda r: None, reject=lambda *a: None)
        await server.start()
        try:
            url = f"wss://127.0.0.1:{server.port}/CS-201"
            async with connect(
                url,
                ssl=trust,
                subprotocols=["ocpp2.0.1"],
                additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
            ) as ws:
                await ws.send(
                    '[2,"b","BootNotification",{"reason":"PowerUp",'
                    '"chargingStation":{"model":"m","vendorName":"v"}}]'
                )
                answer = json.loads(await ws.recv())
                assert answer[0] == 3 and answer[2]["status"] == "Accepted"
            with pytest.raises(InvalidStatus) as refused:
                await connect(
                    url,
                    ssl=trust,
                    subprotocols=["ocpp2.0.1"],
                    additional_headers=basic_auth("CS-201", "not-the-password-x"),
                )
            assert refused.value.response.status_code == 401
            with pytest.raises((OSError, InvalidMessage)):  # plain ws:// to a TLS port
                await connect(
                    f"ws://127.0.0.1:{server.port}/CS-201",
                    open_timeout=2,
                    subprotocols=["ocpp2.0.1"],
                    additional_headers=basic_auth("CS-201", PASSWORDS["CS-201"]),
                )
        finally:
            await server.close()

    asyncio.run(body())
