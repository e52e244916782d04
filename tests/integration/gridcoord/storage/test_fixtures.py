"""The InfluxDB 1.6 and VictoriaMetrics fixtures: ready, restartable on the same port and data."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.fixtures.influx import InfluxdServer, VictoriaMetricsServer

pytestmark = pytest.mark.integration


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_influxd_keeps_data_across_restart(influxd_factory: Callable[[], InfluxdServer]) -> None:
    server = influxd_factory()
    server.query("CREATE DATABASE fx")
    assert _post(f"{server.url}/write?db=fx&precision=ns", b"m,t=a f=1.5 1000") == 204
    port = server.port
    server.restart()
    assert server.port == port and server.running
    assert server.rows('SELECT "f" FROM "m"', "fx") == [{"time": 1000, "f": 1.5}]


def test_victoria_keeps_data_across_restart(
    victoria_factory: Callable[[], VictoriaMetricsServer],
) -> None:
    server = victoria_factory()
    now_ns = time.time_ns()
    assert _post(f"{server.url}/write?precision=ns", f"m,t=a f=2.5 {now_ns}".encode()) == 204
    assert server.wait_for_samples('{__name__="m_f"}', 1)[0]["values"] == [2.5]
    server.restart()
    series = server.wait_for_samples('{__name__="m_f"}', 1)
    assert series[0]["values"] == [2.5]
    assert series[0]["timestamps"] == [now_ns // 1_000_000]
    assert series[0]["metric"]["t"] == "a"
