"""The v2 store through influxdb-client against a real VictoriaMetrics (its v2 write endpoint)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gridcoord.storage.base import StoreRejected, StoreUnavailable
from gridcoord.storage.influx_v2 import InfluxV2Store
from gridcoord.storage.points import Point
from tests.fixtures.influx import VictoriaMetricsServer

pytestmark = pytest.mark.integration


def _points(measurement: str, count: int, start: int = 0) -> list[Point]:
    # Recent times: VictoriaMetrics keeps milliseconds and drops what its retention excludes.
    t0 = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000
    return [
        Point(
            measurement,
            {"asset_id": f"ch-{i % 3}", "kind": "charger", "zone": "z 1,a=b"},
            {"power_w": float(i), "connected": i % 2 == 0},
            t0 + i * 1_000_000_000,
        )
        for i in range(start, start + count)
    ]


@pytest.fixture
def measurement() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(victoria_server: VictoriaMetricsServer) -> Iterator[InfluxV2Store]:
    store = InfluxV2Store(victoria_server.url, None, "org", "bucket", "gridcoord", timeout_s=5)
    yield store
    store.close()


def test_written_points_read_back_with_tags_and_values(
    store: InfluxV2Store, victoria_server: VictoriaMetricsServer, measurement: str
) -> None:
    points = _points(measurement, 300)
    store.write(points)
    series = victoria_server.wait_for_samples(f'{{__name__="{measurement}_power_w"}}', 300)
    got = {
        (s["metric"]["asset_id"], ts, value)
        for s in series
        for ts, value in zip(s["timestamps"], s["values"], strict=True)
    }
    want = {(p.tags["asset_id"], p.ts_ns // 1_000_000, p.fields["power_w"]) for p in points}
    assert got == want
    assert {s["metric"]["zone"] for s in series} == {"z 1,a=b"}
    booleans = victoria_server.wait_for_samples(f'{{__name__="{measurement}_connected"}}', 300)
    assert sorted(v for s in booleans for v in s["values"]) == [0] * 150 + [1] * 150


def test_reads_say_clearly_that_the_server_has_no_influxql(store: InfluxV2Store) -> None:
    now = datetime.now(UTC)
    with pytest.raises(StoreRejected, match="does not run InfluxQL"):
        store.series("telemetry", "power_w", {}, now - timedelta(hours=1), now)


def test_unwritable_point_is_refused_alone(
    store: InfluxV2Store, victoria_server: VictoriaMetricsServer, measurement: str
) -> None:
    bad = Point(measurement, {"asset_id": "a\\b"}, {"power_w": 1.0}, time.time_ns())
    with pytest.raises(StoreRejected, match="1 of 11") as caught:
        store.write([*_points(measurement, 10), bad])
    assert caught.value.rejected == [bad]
    assert victoria_server.wait_for_samples(f'{{__name__="{measurement}_power_w"}}', 10)


def test_stopped_server_is_unavailable_then_writes_resume(
    victoria_factory: Callable[..., VictoriaMetricsServer], measurement: str
) -> None:
    server = victoria_factory()
    store = InfluxV2Store(server.url, "tok-SECRET-42", "org", "bucket", "gridcoord", timeout_s=2)
    store.write(_points(measurement, 10))
    server.stop()
    with pytest.raises(StoreUnavailable, match="connection refused") as caught:
        store.write(_points(measurement, 10, start=10))
    assert "SECRET" not in str(caught.value)
    server.start()
    store.write(_points(measurement, 10, start=10))
    series = server.wait_for_samples(f'{{__name__="{measurement}_power_w"}}', 20)
    assert sum(len(s["values"]) for s in series) == 20
    store.close()
