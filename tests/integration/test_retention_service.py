"""`gridcoord run` runs the retention job itself: old household data aggregated and deleted.

The store is prepared with household-meter, charger and PV points 40 days old before the
service starts; the service's first retention run (at start) must aggregate and delete the
personal ones and leave the PV series alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gridcoord.local_broker import LocalBroker
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.gridcoord_process import GridcoordProcess

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_the_service_aggregates_and_deletes_expired_household_data(
    tmp_path: Path, mosquitto: LocalBroker
) -> None:
    workdir = tmp_path / "gc"
    workdir.mkdir()
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=40)
    store = EmbeddedStore(workdir / "store.sqlite3")
    points = []
    for i in range(96):
        ns = datetime_to_ns(start + i * timedelta(minutes=15))
        for asset, kind in (
            ("meter-0001", "meter"),
            ("pv-0001", "pv"),
            ("charger-0001", "charger"),
        ):
            tags = {"asset_id": asset, "kind": kind, "zone": "lt-01"}
            points.append(Point("telemetry", tags, {"power_w": 1000.0}, ns))
    store.write(points)
    store.close()
    city = {
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "storage": {"kind": "embedded", "path": "store.sqlite3", "spool_dir": "spool"},
        "planning": {"enabled": False},
        "zones": [{"id": "lt-01", "capacity_kw": 100}],
        "assets": [
            {"id": "meter-0001", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
            {"id": "pv-0001", "kind": "pv", "zone": "lt-01", "rated_kw": 30},
            {"id": "charger-0001", "kind": "charger", "zone": "lt-01", "rated_kw": 11},
        ],
    }
    config = tmp_path / "city.yaml"
    config.write_text(yaml.safe_dump(city), encoding="utf-8")
    proc = GridcoordProcess(config, {}, workdir).start()
    try:
        proc.wait_for_log(r"retention: \{")
        assert proc.terminate() == 0
    finally:
        proc.kill()
    store = EmbeddedStore(workdir / "store.sqlite3")
    try:
        far = datetime.now(UTC)
        assert store.series("telemetry", "power_w", {"asset_id": "meter-0001"}, EPOCH, far) == []
        assert store.series("telemetry", "power_w", {"asset_id": "charger-0001"}, EPOCH, far) == []
        assert len(store.series("telemetry", "power_w", {"asset_id": "pv-0001"}, EPOCH, far)) == 96
        tags = {"zone": "lt-01", "source": "household"}
        energy = store.series("zone_aggregate", "energy_wh", tags, EPOCH, far)
        assert len(energy) == 96 and {v for _, v in energy} == {250.0}
    finally:
        store.close()
