"""Broker authentication and TLS: gridcoord connects with credentials from the environment,
over TLS verified against a CA, and never writes the password into its log.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.local_broker import LocalBroker
from gridcoord.storage.embedded import EmbeddedStore
from tests.fixtures.gridcoord_process import GridcoordProcess
from tests.fixtures.ports import find_binary, free_port

pytestmark = pytest.mark.integration

PASSWORD = "pw-7f3a9c-never-logged"
CITY = "assets:\n  - {id: meter-0001, kind: meter, rated_kw: 30}\n"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[LocalBroker, Path]]:
    """Mosquitto with TLS (a throwaway CA) and a password file; no anonymous access."""
    pki = tmp_path / "pki"
    pki.mkdir()
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=gridcoord-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=pki,
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=pki,
    )
    (pki / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
        cwd=pki,
    )
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(
        [find_binary("mosquitto_passwd"), "-b", str(passwd), "gridcoord", PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    broker = LocalBroker(
        free_port(),
        tmp_path / "mosquitto",
        [
            "allow_anonymous false",
            f"password_file {passwd}",
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'server.crt'}",
            f"keyfile {pki / 'server.key'}",
        ],
    )
    broker.start()
    yield broker, pki / "ca.crt"
    broker.stop()


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
                "gridcoord",
                "-P",
                PASSWORD,
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
