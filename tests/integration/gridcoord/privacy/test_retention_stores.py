"""The retention job on real stores: embedded SQLite, InfluxDB 1.6, VictoriaMetrics.

A fake clock 40 days after the data: raw household and charger points older than the
retention must be gone, their per-zone aggregates equal to the raw sums, and PV, wind and
zone-meter series untouched. Nothing waits: the clock is injected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.config import Config
from gridcoord.privacy.aggregate import MEASUREMENT
from gridcoord.privacy.retention import RetentionJob
from gridcoord.storage.base import Deletion, Store, StoreRejected
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.influx_v2 import InfluxV2Store
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.influx import InfluxdServer, VictoriaMetricsServer

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=40)
STEP = timedelta(minutes=5)
DAYS = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)

HOUSEHOLDS = {"meter-h1": "feeder-a", "meter-h2": "feeder-a", "meter-h3": "feeder-b"}
INFRASTRUCTURE = {"pv-1": "pv", "wind-1": "wind", "meter-zone-a": "meter"}


def config() -> Config:
    return Config.model_validate(
        {
            "zones": [
                {"id": "substation", "capacity_kw": 1000, "meter": "meter-zone-a"},
                {"id": "feeder-a", "parent": "substation", "capacity_kw": 100},
                {"id": "feeder-b", "parent": "substation", "capacity_kw": 100},
            ],
            "assets": [
                *(
                    {"id": a, "kind": "meter", "zone": z, "rated_kw": 30}
                    for a, z in HOUSEHOLDS.items()
                ),
                {"id": "meter-zone-a", "kind": "meter", "zone": "substation", "rated_kw": 1000},
                {"id": "pv-1", "kind": "pv", "zone": "feeder-a", "rated_kw": 100},
                {"id": "wind-1", "kind": "wind", "zone": "substation", "rated_kw": 2000},
                {"id": "charger-1", "kind": "charger", "zone": "feeder-b", "rated_kw": 11},
            ],
        }
    )


def power(asset: str, i: int) -> float:
    """A distinct, varying power per asset and sample [W]."""
    return float(100 * (1 + sorted(HOUSEHOLDS).index(asset)) + (i * 37) % 500)


def raw_points(start: datetime, days: float) -> list[Point]:
    out = []
    for i in range(int(days * 24 * 60 / 5)):
        ts = start + i * STEP
        ns = datetime_to_ns(ts)
        for asset, zone in HOUSEHOLDS.items():
            out.append(Point("telemetry", {"asset_id": asset, "kind": "meter", "zone": zone},
                             {"power_w": power(asset, i), "energy_wh": float(i)}, ns))  # fmt: skip
        for asset, kind in INFRASTRUCTURE.items():
            out.append(Point("telemetry", {"asset_id": asset, "kind": kind, "zone": "substation"},
                             {"power_w": 5000.0 + i}, ns))  # fmt: skip
        charging = (i // 12) % 2 == 0  # an hour connected, an hour not
        tags = {"asset_id": "charger-1", "kind": "charger", "zone": "feeder-b"}
        fields = {"power_w": 7000.0 if charging else 0.0, "connected": charging}
        out.append(Point("telemetry", tags, fields, ns))
        out.append(Point("setpoint", {"asset_id": "charger-1", "schedule_id": "s"},
                         {"max_power_w": 7000.0}, ns))  # fmt: skip
        if i % 24 == 23:  # a stay completed (learnt departures): personal, deleted too
            out.append(Point("stay", {"asset_id": "charger-1", "charger_type": "public"},
                             {"stay_h": 2.0}, ns))  # fmt: skip
    return out


OLD = raw_points(T0, DAYS)
RECENT = raw_points(NOW - timedelta(days=1), 0.5)


@pytest.fixture(params=["embedded", "influx_v1"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        filled: Store = EmbeddedStore(tmp_path / "store.sqlite3")
    else:
        server: InfluxdServer = request.getfixturevalue("influxd_server")
        filled = InfluxV1Store(server.url, request.getfixturevalue("influx_database"), timeout_s=10)
    filled.write(OLD + RECENT)
    yield filled
    filled.close()


def stored(
    store: Store, asset: str, field: str, start: datetime = EPOCH, end: datetime = FAR
) -> list[tuple[datetime, float]]:
    return store.series("telemetry", field, {"asset_id": asset}, start, end)


def aggregates(store: Store, zone: str, source: str, field: str) -> dict[datetime, float]:
    return dict(store.series(MEASUREMENT, field, {"zone": zone, "source": source}, EPOCH, FAR))


def test_raw_personal_points_past_retention_are_gone_and_aggregated(store: Store) -> None:
    infrastructure_before = {a: stored(store, a, "power_w") for a in INFRASTRUCTURE}
    report = RetentionJob(store, config(), lambda: NOW).run()
    cutoff = NOW - timedelta(days=30)
    assert report.cutoff == cutoff
    assert report.windows[0][0] == T0 and report.windows[-1][1] == cutoff
    for asset in [*HOUSEHOLDS, "charger-1"]:
        assert stored(store, asset, "power_w", EPOCH, cutoff) == [], asset
        assert (
            stored(store, asset, "energy_wh" if asset in HOUSEHOLDS else "connected", EPOCH, cutoff)
            == []
        )
        assert len(stored(store, asset, "power_w", cutoff, FAR)) == 144  # the recent half day kept
    setpoints = store.series("setpoint", "max_power_w", {"asset_id": "charger-1"}, EPOCH, cutoff)
    assert setpoints == []
    assert store.series("stay", "stay_h", {"asset_id": "charger-1"}, EPOCH, cutoff) == []
    assert store.series("stay", "stay_h", {"asset_id": "charger-1"}, cutoff, FAR) != []
    for asset, before in infrastructure_before.items():
        assert stored(store, asset, "power_w") == before, asset  # grid infrastructure untouched

    # The aggregates equal the raw sums: 3 samples a slot, so energy = Σ power × 5 min.
    for zone in ("feeder-a", "feeder-b"):
        members = [a for a, z in HOUSEHOLDS.items() if z == zone]
        energy = aggregates(store, zone, "household", "energy_wh")
        raw_total = sum(power(a, i) for a in members for i in range(DAYS * 288)) * 5 / 60
        assert sum(energy.values()) == pytest.approx(raw_total, rel=1e-9)
        assert len(energy) == DAYS * 96
        counts = aggregates(store, zone, "household", "assets")
        assert set(counts.values()) == {float(len(members))}
        peaks = aggregates(store, zone, "household", "peak_w")
        first = T0 + timedelta(minutes=15)  # slot 1: samples 3, 4, 5
        assert peaks[first] == max(sum(power(a, i) for a in members) for i in (3, 4, 5))
    ev_energy = aggregates(store, "feeder-b", "charging", "energy_wh")
    assert sum(ev_energy.values()) == pytest.approx(DAYS * 12 * 7000.0)  # 12 h a day at 7 kW
    active = aggregates(store, "feeder-b", "charging", "sessions_active")
    assert sum(active.values()) == DAYS * 12 * 4  # one charger connected in 4 slots an hour


def test_a_second_run_changes_nothing(store: Store) -> None:
    job = RetentionJob(store, config(), lambda: NOW)
    job.run()
    first = aggregates(store, "feeder-a", "household", "energy_wh")
    again = job.run()
    assert again.windows == [] and again.aggregates == 0
    assert aggregates(store, "feeder-a", "household", "energy_wh") == first


def test_dry_run_reports_but_keeps_everything(store: Store) -> None:
    report = RetentionJob(store, config(), lambda: NOW).run(dry_run=True)
    assert report.assets == 4 and report.aggregates > 0
    assert len(stored(store, "meter-h1", "power_w")) == DAYS * 288 + 144
    assert aggregates(store, "feeder-a", "household", "energy_wh") == {}


class _CrashAfterWrite:
    """The real store, but `replace` dies after writing (a crash before the deletions)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        self.inner.write(points)
        raise KeyboardInterrupt("crash")


def test_a_crash_between_aggregating_and_deleting_is_finished_by_the_next_run(store: Store) -> None:
    job = RetentionJob(store, config(), lambda: NOW)
    with pytest.raises(KeyboardInterrupt):
        RetentionJob(_CrashAfterWrite(store), config(), lambda: NOW).run()  # type: ignore[arg-type]
    job.run(max_windows=1)  # resumes in steps
    job.run()
    cutoff = NOW - timedelta(days=30)
    assert stored(store, "meter-h1", "power_w", EPOCH, cutoff) == []
    energy = aggregates(store, "feeder-a", "household", "energy_wh")
    members = [a for a, z in HOUSEHOLDS.items() if z == "feeder-a"]
    raw_total = sum(power(a, i) for a in members for i in range(DAYS * 288)) * 5 / 60
    assert sum(energy.values()) == pytest.approx(raw_total, rel=1e-9)


def test_victoria_metrics_refuses_and_deletes_nothing(
    victoria_server: VictoriaMetricsServer,
) -> None:
    """VictoriaMetrics serves no InfluxQL and deletes only whole series: the job must refuse."""
    store = InfluxV2Store(victoria_server.url, None, "org", "bucket", "gridcoord", timeout_s=10)
    try:
        points = [p for p in raw_points(T0, 0.1) if p.tags.get("asset_id") == "meter-h1"]
        points = [
            Point(p.measurement, {**p.tags, "test": "retention"}, p.fields, p.ts_ns) for p in points
        ]
        store.write(points)
        match = '{__name__="telemetry_power_w",test="retention"}'
        before = victoria_server.wait_for_samples(match, len(points))
        with pytest.raises(StoreRejected, match="InfluxQL"):
            RetentionJob(store, config(), lambda: NOW).run()
        assert sum(len(s["values"]) for s in victoria_server.export(match)) == sum(
            len(s["values"]) for s in before
        )
        with pytest.raises(StoreRejected, match="delete"):
            store.replace((), [Deletion("telemetry", {"asset_id": "meter-h1"}, T0, NOW)])
    finally:
        store.close()


def test_the_embedded_store_and_the_spool_are_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    from gridcoord.storage.spool import Spool

    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755 unless we say so
    try:
        store = EmbeddedStore(tmp_path / "var" / "store.sqlite3")
        store.write(OLD[:10])
        Spool(tmp_path / "var" / "spool", 1_048_576)
    finally:
        os.umask(old)
    try:
        for name in ("store.sqlite3", "store.sqlite3-wal"):
            assert stat.S_IMODE((tmp_path / "var" / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE((tmp_path / "var" / "spool").stat().st_mode) == 0o700
    finally:
        store.close()


def test_deleted_raw_points_are_overwritten_in_the_embedded_file(tmp_path: Path) -> None:
    marker = "meter-h1-unique-marker-value"
    path = tmp_path / "store.sqlite3"
    store = EmbeddedStore(path)
    tags = {"asset_id": "meter-h1", "kind": "meter", "zone": "feeder-a"}
    store.write([Point("telemetry", tags, {"note": marker * 20}, datetime_to_ns(T0))])
    store.replace((), [Deletion("telemetry", {"asset_id": "meter-h1"}, EPOCH, FAR)])
    store.close()  # checkpoints the WAL into the file
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert marker.encode() not in data
