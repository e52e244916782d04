"""Histories rebuilt from the store on start: the first plan after a restart forecasts from them.

The embedded store (no services); the InfluxDB stores are run against real servers in
tests/integration/test_warm_start.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gridcoord.config import Config
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.state import LOAD_WINDOW
from gridcoord.planning.warmup import warm_from_store
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.ports import free_port
from tests.unit.gridcoord.planning.test_coordinator import NOW, city, feed

SLOT = timedelta(minutes=15)


def telemetry(asset: str, kind: str, start_h: float, end_h: float, step: timedelta,
              power_w: float) -> list[Point]:  # fmt: skip
    """Points of one asset at a constant power from ``start_h`` to ``end_h`` before NOW."""
    out = []
    ts = NOW - timedelta(hours=start_h)
    while ts < NOW - timedelta(hours=end_h):
        out.append(Point("telemetry", {"asset_id": asset, "kind": kind},
                         {"power_w": power_w}, datetime_to_ns(ts)))  # fmt: skip
        ts += step
    return out


def consumer_city() -> Config:
    """The test city plus two household meters: the load is what they measure."""
    base = city().model_dump()
    base["assets"] += [
        {"id": f"meter-home-{i}", "kind": "meter", "zone": "lt-1", "rated_kw": 30.0} for i in (1, 2)
    ]
    return Config(**base)


def test_a_restarted_coordinator_forecasts_from_the_stored_load(tmp_path: Path) -> None:
    config = consumer_city()
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    # Two weeks of household load (8 + 4 kW) and a zone meter that must not count.
    store.write(telemetry("meter-home-1", "meter", 24 * 14, 0, SLOT, 8_000.0))
    store.write(telemetry("meter-home-2", "meter", 24 * 14, 0, SLOT, 4_000.0))
    store.write(telemetry("meter-lt-1", "meter", 24 * 14, 0, SLOT, 90_000.0))
    # A day of PV at 6 kW, per minute; and some older than the 25 h window.
    store.write(telemetry("pv-1", "pv", 30, 0, timedelta(minutes=1), 6_000.0))

    cold = Coordinator(config)
    feed(cold, NOW)
    first_cold = cold.plan(NOW)
    assert first_cold.history_buckets["load"] <= 1
    assert first_cold.forecast_mean_kw["load"] < 12.0

    warm = Coordinator(config)
    started = warm_from_store(warm.state, store, config, NOW)
    assert started.failure is None
    assert started.buckets["load"] == 14 * 96
    assert started.buckets["pv"] == 25 * 60
    feed(warm, NOW)
    first = warm.plan(NOW)
    assert first.history_buckets["load"] >= 14 * 96 and first.history_buckets["pv"] >= 25 * 60
    # The same-weekday load forecast sees 12 kW of households, not the zone meter's 90.
    assert first.forecast_mean_kw["load"] == pytest.approx(12.0, rel=0.05)
    store.close()


def test_a_city_without_consumer_meters_rebuilds_load_from_its_root_meter(
    tmp_path: Path,
) -> None:
    config = city()  # zone meters only: the load is root + generation − charging
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    store.write(telemetry("meter-feeder", "meter", 24 * 7, 0, SLOT, 20_000.0))
    store.write(telemetry("meter-lt-1", "meter", 24 * 7, 0, SLOT, 70_000.0))  # not a root
    store.write(telemetry("pv-1", "pv", 24 * 7, 0, SLOT, 5_000.0))
    store.write(telemetry("c1", "charger", 24 * 7, 0, SLOT, 3_000.0))
    coordinator = Coordinator(config)
    started = warm_from_store(coordinator.state, store, config, NOW)
    assert started.buckets["load"] == 7 * 96
    image = coordinator.state.freeze(NOW, histories=True)
    assert [kw for _, kw in image.load_history] == pytest.approx([22.0] * (7 * 96))
    store.close()


def test_the_load_query_is_bounded_by_the_window(tmp_path: Path) -> None:
    config = consumer_city()
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    hours = LOAD_WINDOW / timedelta(hours=1)
    store.write(telemetry("meter-home-1", "meter", hours + 48, 0, SLOT, 1_000.0))
    coordinator = Coordinator(config)
    started = warm_from_store(coordinator.state, store, config, NOW)
    assert started.buckets["load"] == LOAD_WINDOW // SLOT
    store.close()


def test_an_unreachable_store_costs_only_the_warm_start() -> None:
    config = consumer_city()
    store = InfluxV1Store(f"http://127.0.0.1:{free_port()}", "gridcoord", timeout_s=1)
    coordinator = Coordinator(config)
    started = warm_from_store(coordinator.state, store, config, NOW)
    assert started.failure is not None and "unreachable" in started.failure
    assert started.buckets == {}
    feed(coordinator, NOW)
    assert coordinator.plan(NOW).status == "optimal"
    store.close()


def test_learnt_stays_are_read_back_after_a_restart(tmp_path: Path) -> None:
    from adapters.contract.reading import ChargerType
    from gridcoord.planning.stays import stay_point

    config = city()
    store = EmbeddedStore(tmp_path / "store.sqlite3")
    ended = [NOW - timedelta(hours=h) for h in range(1, 31)]
    # Thirty public stays of 1.4 h, and one from before the four-week window (not read).
    store.write([stay_point(f"c{i % 6}", ChargerType.PUBLIC, t, 1.4) for i, t in enumerate(ended)])
    store.write([stay_point("c0", ChargerType.PUBLIC, NOW - timedelta(weeks=5), 9.0)])
    coordinator = Coordinator(config)
    assert coordinator.state.learned_stays_h() == {}
    warm = warm_from_store(coordinator.state, store, config, NOW)
    store.close()
    assert warm.failure is None and warm.buckets["stays_public"] == 30
    assert coordinator.state.learned_stays_h() == {"public": pytest.approx(1.4)}
