"""A restarted service plans from the history in its store (state is a cache of the store).

The real `Service` in-process with real Mosquitto, on the embedded store and on InfluxDB 1.6;
the store is filled with two weeks of telemetry before the service starts, and its first plan
must forecast from it. InfluxDB 2.x/3.x differ only in the write path; their InfluxQL read is
checked in tests/integration/storage/test_bucket_totals.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridcoord.config import Config
from gridcoord.local_broker import LocalBroker
from gridcoord.service import Service
from gridcoord.storage.base import Store
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.points import Point, datetime_to_ns
from gridcoord.timegrid import floor_slot
from tests.fixtures.influx import InfluxdServer
from tests.fixtures.service_thread import ServiceThread, Watcher

pytestmark = pytest.mark.integration

SLOT = timedelta(minutes=15)


def city(port: int, tmp_path: Path, **storage: Any) -> Config:
    """A transformer with two households, a PV roof and two chargers."""
    return Config(
        zones=[{"id": "lt-01", "capacity_kw": 60.0, "meter": "meter-lt-01"}],
        assets=[
            {"id": "meter-lt-01", "kind": "meter", "zone": "lt-01", "rated_kw": 100.0},
            {"id": "meter-0001", "kind": "meter", "zone": "lt-01", "rated_kw": 30.0},
            {"id": "meter-0002", "kind": "meter", "zone": "lt-01", "rated_kw": 30.0},
            {"id": "pv-roof-01", "kind": "pv", "zone": "lt-01", "rated_kw": 30.0},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 11.0},
            {"id": "charger-002", "kind": "charger", "zone": "lt-01", "rated_kw": 11.0},
        ],
        mqtt={"host": "127.0.0.1", "port": port},
        storage={"spool_dir": tmp_path / "spool", "flush_interval_s": 0.2, **storage},
    )


def history(now: datetime) -> list[Point]:
    """Two weeks of household load (9 + 3 kW) per slot, a zone meter at 80 kW, a day of PV."""
    out = []
    end = floor_slot(now, 15)
    ts = end - timedelta(weeks=2)
    while ts < end:
        for asset, watts in (("meter-0001", 9_000.0), ("meter-0002", 3_000.0),
                             ("meter-lt-01", 80_000.0)):  # fmt: skip
            out.append(Point("telemetry", {"asset_id": asset, "kind": "meter", "zone": "lt-01"},
                             {"power_w": watts}, datetime_to_ns(ts)))  # fmt: skip
        ts += SLOT
    ts = end - timedelta(hours=24)
    while ts < end:
        out.append(Point("telemetry", {"asset_id": "pv-roof-01", "kind": "pv", "zone": "lt-01"},
                         {"power_w": 4_000.0}, datetime_to_ns(ts)))  # fmt: skip
        ts += timedelta(minutes=1)
    return out


def first_plan(config: Config, port: int) -> Any:
    watcher = Watcher(port, "gridcoord/plan/latest")
    runner = ServiceThread(Service(config)).start()
    try:
        watcher.wait_for(1, timeout=90)
        planning = runner.service.planning
        assert planning is not None and planning.last_plan is not None
        return runner.service, planning.last_plan
    finally:
        runner.stop()
        watcher.close()


StoreFactory = Callable[[Path], tuple[dict[str, Any], Store]]


def embedded(tmp_path: Path) -> tuple[dict[str, Any], Store]:
    path = tmp_path / "store.sqlite3"
    return {"kind": "embedded", "path": path}, EmbeddedStore(path)


@pytest.mark.parametrize("kind", ["embedded", "influxdb-v1"])
def test_the_first_plan_after_a_restart_forecasts_from_the_store(
    kind: str, tmp_path: Path, mosquitto: LocalBroker, request: pytest.FixtureRequest
) -> None:
    extra: dict[str, Any] = {}
    if kind == "embedded":
        storage, store = embedded(tmp_path)
    else:
        server: InfluxdServer = request.getfixturevalue("influxd_server")
        database: str = request.getfixturevalue("influx_database")
        storage = {"kind": "influxdb"}
        extra = {"influxdb": {"url": server.url, "api": "v1", "database": database}}
        store = InfluxV1Store(server.url, database)
    store.write(history(datetime.now(UTC)))
    store.close()

    config = Config(**{**city(mosquitto.port, tmp_path, **storage).model_dump(), **extra})
    service, plan = first_plan(config, mosquitto.port)
    assert service.warm_start is not None and service.warm_start.failure is None
    assert service.warm_start.buckets["load"] >= 14 * 96 - 1
    assert service.warm_start.buckets["pv"] >= 24 * 60 - 1
    assert plan.history_buckets["load"] >= 14 * 96 - 1
    # Households only (9 + 3 kW): the zone meter's 80 kW is the zone, not load on top of it.
    assert plan.forecast_mean_kw["load"] == pytest.approx(12.0, rel=0.05)


def test_an_empty_store_starts_cold(tmp_path: Path, mosquitto: LocalBroker) -> None:
    storage, store = embedded(tmp_path)
    store.close()
    service, plan = first_plan(city(mosquitto.port, tmp_path, **storage), mosquitto.port)
    assert service.warm_start is not None and service.warm_start.buckets["load"] == 0
    assert plan.history_buckets["load"] == 0 and plan.forecast_mean_kw["load"] == 0.0
