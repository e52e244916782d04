"""`Store.bucket_totals` on every store kind that can read: one row per bucket, summed in the store.

The embedded SQLite store, InfluxDB 1.6 through ``/query``, and the v2 store's InfluxQL read
(the path InfluxDB 2.x/3.x serve for a DBRP-mapped bucket) against the same influxd — Debian's
InfluxDB has no ``/api/v2/write``, so its points are written through the 1.x API.
VictoriaMetrics serves no InfluxQL and must say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.storage.base import Store, StoreRejected
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.influx_v2 import InfluxV2Store
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.influx import InfluxdServer, VictoriaMetricsServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def points() -> list[Point]:
    """Three PV plants over three minutes, plus a zone meter and a charger to leave out."""
    out = []
    for minute in range(3):
        for second in (0, 20, 40):
            ts = datetime_to_ns(T0 + minute * MINUTE + timedelta(seconds=second))
            for plant, base in (("pv-1", 1000.0), ("pv-2", 2000.0)):
                out.append(Point("telemetry", {"asset_id": plant, "kind": "pv"},
                                 {"power_w": base + second, "connected": True}, ts))  # fmt: skip
            out.append(Point("telemetry", {"asset_id": "meter-lt-1", "kind": "meter"},
                             {"power_w": 50_000.0}, ts))  # fmt: skip
            out.append(Point("telemetry", {"asset_id": "meter-home-1", "kind": "meter"},
                             {"power_w": 700.0 + minute, "status": "ok"}, ts))  # fmt: skip
        # pv-3 reports only in the second minute: it adds to that bucket alone.
        if minute == 1:
            ts = datetime_to_ns(T0 + minute * MINUTE)
            out.append(Point("telemetry", {"asset_id": "pv-3", "kind": "pv"},
                             {"power_w": 500.0}, ts))  # fmt: skip
    return out


@pytest.fixture(params=["embedded", "influx_v1", "influx_v2_influxql"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        store: Store = EmbeddedStore(tmp_path / "store.sqlite3")
        store.write(points())
    else:
        server: InfluxdServer = request.getfixturevalue("influxd_server")
        database: str = request.getfixturevalue("influx_database")
        writer = InfluxV1Store(server.url, database, timeout_s=5)
        writer.write(points())
        if request.param == "influx_v1":
            store = writer
        else:
            writer.close()
            store = InfluxV2Store(server.url, None, "org", "bucket", database, timeout_s=5)
    yield store
    store.close()


def test_totals_per_bucket_sum_each_assets_mean(filled: Store) -> None:
    pv = filled.bucket_totals("telemetry", "power_w", {"kind": "pv"}, T0, T0 + 3 * MINUTE, MINUTE)
    # Each plant's mean over its minute: base + 20 W; pv-3 joins the second minute.
    assert pv == [(T0, 3040.0), (T0 + MINUTE, 3540.0), (T0 + 2 * MINUTE, 3040.0)]


def test_excluded_assets_and_the_window_bound_the_answer(filled: Store) -> None:
    load = filled.bucket_totals(
        "telemetry",
        "power_w",
        {"kind": "meter"},
        T0 + MINUTE,
        T0 + 3 * MINUTE,
        MINUTE,
        exclude_assets=["meter-lt-1"],
    )
    assert load == [(T0 + MINUTE, 701.0), (T0 + 2 * MINUTE, 702.0)]
    wide = filled.bucket_totals(
        "telemetry", "power_w", {"kind": "meter"}, T0, T0 + 3 * MINUTE, 3 * MINUTE
    )
    # A three-minute bucket aligned on the epoch: T0 (12:00) is a multiple of 3 minutes.
    assert wide == [(T0, pytest.approx(50_000.0 + 701.0))]


def test_an_empty_window_gives_nothing(filled: Store) -> None:
    later = T0 + timedelta(days=1)
    assert filled.bucket_totals("telemetry", "power_w", {}, later, later + MINUTE, MINUTE) == []


def test_victoria_metrics_says_it_serves_no_influxql(
    victoria_server: VictoriaMetricsServer,
) -> None:
    store = InfluxV2Store(victoria_server.url, None, "org", "bucket", "gridcoord", timeout_s=5)
    try:
        with pytest.raises(StoreRejected, match="InfluxQL"):
            store.bucket_totals("telemetry", "power_w", {"kind": "pv"}, T0, T0 + MINUTE, MINUTE)
    finally:
        store.close()
