"""Broker authentication and TLS: gridcoord connects with credentials from the environment,
over TLS verified against a CA, and never writes the password into its log.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.broker.acl import BrokerUser, device_rules, service_rules
from gridcoord.broker.files import Accounts
from gridcoord.local_broker import LocalBroker
from gridcoord.storage.embedded import EmbeddedStore
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.mqtt_client import NOT_AUTHORIZED, TestClient, accepted
from tests.fixtures.ports import find_binary, free_port

pytestmark = pytest.mark.integration

PASSWORD = "pw-7f3a9c-never-logged"
DEVICE_PASSWORD = "pw-meter-0001"
CITY = "assets:\n  - {id: meter-0001, kind: meter, rated_kw: 30}\n"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(pki: Path, name: str) -> Path:
    """A throwaway CA: `<name>.crt` and `<name>.key` in `pki`."""
    openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", f"/CN=gridcoord-test-{name}", "-keyout", f"{name}.key", "-out", f"{name}.crt"),
        cwd=pki,
    )
    return pki / f"{name}.crt"


def issue(pki: Path, name: str, common_name: str, *, server: bool) -> tuple[Path, Path]:
    """A certificate signed by `ca` in `pki`: (`<name>.crt`, `<name>.key`)."""
    openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}"),
        *("-keyout", f"{name}.key", "-out", f"{name}.csr"),
        cwd=pki,
    )
    ext = pki / f"{name}.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else "extendedKeyUsage=clientAuth\n"
    )
    openssl(
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt"),
        cwd=pki,
    )
    return pki / f"{name}.crt", pki / f"{name}.key"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A test CA (`ca.crt`), a server certificate for 127.0.0.1, a device's client certificate
    (CN = meter-0001) and an unrelated CA (`other-ca.crt`).
    """
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_ca(pki, "other-ca")
    issue(pki, "server", "localhost", server=True)
    issue(pki, "meter-0001", "meter-0001", server=False)
    return pki


def accounts() -> Accounts:
    users = (
        BrokerUser("gridcoord", service_rules("gridcoord")),
        BrokerUser("meter-0001", device_rules("gridcoord", "meter-0001", None), device=True),
    )
    return Accounts(users, {"gridcoord": PASSWORD, "meter-0001": DEVICE_PASSWORD})


def tls_options(pki: Path) -> list[str]:
    return [
        f"cafile {pki / 'ca.crt'}",
        f"certfile {pki / 'server.crt'}",
        f"keyfile {pki / 'server.key'}",
    ]


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Path) -> Iterator[tuple[LocalBroker, Path]]:
    """Mosquitto with TLS (a throwaway CA) and a password file; no anonymous access."""
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", accounts(), tls_options(pki))
    broker.start()
    yield broker, pki / "ca.crt"
    broker.stop()


@pytest.fixture
def mtls_broker(tmp_path: Path, pki: Path) -> Iterator[LocalBroker]:
    """TLS with client certificates: the certificate's CN is the username (no password)."""
    options = [*tls_options(pki), "require_certificate true", "use_identity_as_username true"]
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", accounts(), options)
    broker.start()
    yield broker
    broker.stop()


def test_a_broker_certificate_from_another_ca_is_refused(
    tls_broker: tuple[LocalBroker, Path], pki: Path
) -> None:
    broker, _ = tls_broker
    client = TestClient(broker.port, "meter-0001", DEVICE_PASSWORD, tls_ca=pki / "other-ca.crt")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect()
    trusted = TestClient(broker.port, "meter-0001", DEVICE_PASSWORD, tls_ca=pki / "ca.crt")
    try:
        assert trusted.connect() == 0
        assert accepted(trusted.publish("gridcoord/telemetry/meter-0001", b"{}"))
    finally:
        trusted.close()


def test_a_client_certificate_is_the_device_identity(mtls_broker: LocalBroker, pki: Path) -> None:
    cert = (pki / "meter-0001.crt", pki / "meter-0001.key")
    device = TestClient(mtls_broker.port, None, None, tls_ca=pki / "ca.crt", tls_cert=cert)
    try:
        assert device.connect() == 0
        assert accepted(device.publish("gridcoord/telemetry/meter-0001", b"{}"))
    finally:
        device.close()
    # The identity binds it to its own topics like a password login would.
    device = TestClient(mtls_broker.port, None, None, tls_ca=pki / "ca.crt", tls_cert=cert)
    try:
        assert device.connect() == 0
        assert device.publish("gridcoord/setpoint/charger-001", b"{}") == NOT_AUTHORIZED
    finally:
        device.close()
    # Without a certificate, a password is not enough on this listener.
    stranger = TestClient(mtls_broker.port, "meter-0001", DEVICE_PASSWORD, tls_ca=pki / "ca.crt")
    try:
        assert stranger.connect(timeout=5.0) != 0
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake: also a refusal
    finally:
        stranger.close()


def run(tmp_path: Path, broker: LocalBroker, ca: Path, password: str) -> GridcoordProcess:
    city = tmp_path / "city.yaml"
    city.write_text(CITY)
    env = {
        "GRIDCOORD_MQTT__HOST": "127.0.0.1",
        "GRIDCOORD_MQTT__PORT": str(broker.port),
        "GRIDCOORD_MQTT__USERNAME": "gridcoord",
        "GRIDCOORD_MQTT__PASSWORD": password,
        "GRIDCOORD_MQTT__TLS__ENABLED": "true",
        "GRIDCOORD_MQTT__TLS__CA_FILE": str(ca),
        "GRIDCOORD_STORAGE__PATH": str(tmp_path / "store.sqlite3"),
        "GRIDCOORD_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
        "GRIDCOORD_STORAGE__FLUSH_INTERVAL_S": "0.2",
    }
    return GridcoordProcess(city, env, tmp_path / "gc").start()


def test_tls_with_password_from_environment(
    tmp_path: Path, tls_broker: tuple[LocalBroker, Path]
) -> None:
    broker, ca = tls_broker
    proc = run(tmp_path, broker, ca, PASSWORD)
    try:
        proc.wait_connected()
        subprocess.run(
            [
                find_binary("mosquitto_pub"),
                "-p",
                str(broker.port),
                "--cafile",
                str(ca),
                "-h",
                "127.0.0.1",
                "-u",
                "meter-0001",
                "-P",
                DEVICE_PASSWORD,
                "-q",
                "1",
                "-t",
                "gridcoord/telemetry/meter-0001",
                "-m",
                json.dumps({"power_w": 1234}),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        store = EmbeddedStore(tmp_path / "store.sqlite3")
        start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
        deadline = time.monotonic() + 30
        while not (values := store.series("telemetry", "power_w", {}, start, end)):
            assert time.monotonic() < deadline, proc.output
            time.sleep(0.1)  # the store offers no event to await
        store.close()
        assert [v for _, v in values] == [1234.0]
        assert proc.terminate() == 0
    finally:
        proc.kill()
    assert PASSWORD not in proc.output


def test_wrong_password_is_reported_without_echoing_it(
    tmp_path: Path, tls_broker: tuple[LocalBroker, Path]
) -> None:
    broker, ca = tls_broker
    wrong = "wrong-" + PASSWORD
    proc = run(tmp_path, broker, ca, wrong)
    try:
        proc.wait_for_log(r"broker refused the connection")
        assert proc.terminate() == 0
    finally:
        proc.kill()
    assert wrong not in proc.output and PASSWORD not in proc.output
