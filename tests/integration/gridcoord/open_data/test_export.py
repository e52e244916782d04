"""`export-open-data` on a real embedded store and on InfluxDB 1.6: files, groups, metadata."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyld import jsonld

from gridcoord.config import Config
from gridcoord.open_data.command import export
from gridcoord.open_data.tables import CHARGE_POINT_COLUMNS, STATUS_COLUMNS, ZONE_COLUMNS
from gridcoord.privacy.retention import RetentionJob
from gridcoord.storage.base import Store
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.points import Point, datetime_to_ns
from tests.fixtures.influx import InfluxdServer

DAY = date(2026, 10, 15)
START = datetime(2026, 10, 14, 22, 0, tzinfo=UTC)  # local midnight in Berlin (CEST)
STEP = timedelta(minutes=5)
MIN_GROUP = 10
DCAT = "http://www.w3.org/ns/dcat#"

# feeder-a has enough households of its own; feeder-b's 3 are merged into the substation
# (8 of its own: 11 together); the hub has only chargers and is merged too.
HOUSEHOLDS = {
    **{f"meter-a{i:02d}": "feeder-a" for i in range(12)},
    **{f"meter-b{i:02d}": "feeder-b" for i in range(3)},
    **{f"meter-s{i:02d}": "substation" for i in range(8)},
}


def config() -> Config:
    assets = [{"id": a, "kind": "meter", "zone": z, "rated_kw": 30} for a, z in HOUSEHOLDS.items()]
    assets += [
        {"id": "meter-zone", "kind": "meter", "zone": "substation", "rated_kw": 1000},
        {"id": "pv-roof-a", "kind": "pv", "zone": "feeder-a", "rated_kw": 50},
        {"id": "wind-1", "kind": "wind", "zone": "substation", "rated_kw": 2000},
        {"id": "charger-pub", "kind": "charger", "zone": "hub", "rated_kw": 22},
        {"id": "charger-home", "kind": "charger", "zone": "feeder-b", "rated_kw": 11,
         "charger": {"type": "home", "phases": 1}},
    ]  # fmt: skip
    return Config.model_validate(
        {
            "zones": [
                {"id": "substation", "capacity_kw": 1000, "meter": "meter-zone"},
                {"id": "feeder-a", "parent": "substation", "capacity_kw": 200},
                {"id": "feeder-b", "parent": "substation", "capacity_kw": 200},
                {"id": "hub", "parent": "substation", "capacity_kw": 200},
            ],
            "assets": assets,
            "privacy": {"min_group_size": MIN_GROUP},
        }
    )


def points() -> list[Point]:
    out = []
    for i in range(24 * 12):
        ns = datetime_to_ns(START + i * STEP)
        for n, (asset, zone) in enumerate(sorted(HOUSEHOLDS.items())):
            tags = {"asset_id": asset, "kind": "meter", "zone": zone}
            out.append(Point("telemetry", tags, {"power_w": 200.0 + n + (i % 7) * 10}, ns))
        for asset, kind, zone, watts in (
            ("meter-zone", "meter", "substation", 9000.0),
            ("pv-roof-a", "pv", "feeder-a", 1000.0 * (i % 12)),
            ("wind-1", "wind", "substation", 3000.0),
        ):
            out.append(Point("telemetry", {"asset_id": asset, "kind": kind, "zone": zone},
                             {"power_w": watts}, ns))  # fmt: skip
        for asset, zone, connected in (
            ("charger-pub", "hub", i % 24 < 12),
            ("charger-home", "feeder-b", i >= 200),
        ):
            fields = {"power_w": 7000.0 if connected else 0.0, "connected": connected}
            tags = {"asset_id": asset, "kind": "charger", "zone": zone}
            out.append(Point("telemetry", tags, fields, ns))
    return out


@pytest.fixture(params=["embedded", "influx_v1"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        filled: Store = EmbeddedStore(tmp_path / "store.sqlite3")
    else:
        server: InfluxdServer = request.getfixturevalue("influxd_server")
        filled = InfluxV1Store(server.url, request.getfixturevalue("influx_database"), timeout_s=10)
    filled.write(points())
    yield filled
    filled.close()


def rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def test_zone_rows_come_from_enough_households_and_add_up(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(store, config(), DAY, DAY, out)
    header, zones = rows(out / "zones.csv")
    assert header == [c.name for c in ZONE_COLUMNS]
    assert all(int(r["households"]) >= MIN_GROUP for r in zones)
    assert {r["zone"] for r in zones} == {"feeder-a", "substation"}
    assert {r["merged_zones"] for r in zones if r["zone"] == "substation"} == {"feeder-b;hub"}
    assert len(zones) == 2 * 96
    assert zones[0]["slot_start"] == "2026-10-14T22:00:00+00:00"
    assert zones[-1]["slot_start"] == "2026-10-15T21:45:00+00:00"
    feeder_a = [r for r in zones if r["zone"] == "feeder-a"]
    # PV of feeder-a: 3 samples a slot of 1000 W x (i % 12): energy = Σ power × 5 min.
    expected_pv = sum(1000.0 * (i % 12) for i in range(288)) * 5 / 60 / 1000
    assert sum(float(r["renewable_generation_kwh"]) for r in feeder_a) == pytest.approx(
        expected_pv, abs=1e-3 * 96
    )
    assert {r["households"] for r in feeder_a} == {"12"}
    substation = [r for r in zones if r["zone"] == "substation"]
    assert {r["households"] for r in substation} == {"11"}
    ev = sum(float(r["ev_energy_kwh"]) for r in substation)
    assert ev == pytest.approx((144 + 88) * 7.0 * 5 / 60, abs=1e-3 * 96)  # 3-decimal rows
    for r in zones:
        assert 0.0 <= float(r["renewable_share"]) <= 1.0
        assert r["renewable_share"].count(".") == 1 and len(r["renewable_share"].split(".")[1]) == 4

    header, charge_points = rows(out / "charge_points.csv")
    assert header == [c.name for c in CHARGE_POINT_COLUMNS]
    public = {"charge_point_id": "charger-pub", "zone": "hub", "max_power_kw": "22.0"}
    assert charge_points == [{**public, "power_type": "AC_3_PHASE", "connectors": "1"}]
    header, status = rows(out / "charge_point_status.csv")
    assert header == [c.name for c in STATUS_COLUMNS]
    assert {r["charge_point_id"] for r in status} == {"charger-pub"}  # never the home charger
    assert [r["status"] for r in status[:8]] == ["OCCUPIED"] * 4 + ["AVAILABLE"] * 4


def test_identical_inputs_give_identical_bytes(store: Store, tmp_path: Path) -> None:
    export(store, config(), DAY, DAY, tmp_path / "one")
    export(store, config(), DAY, DAY, tmp_path / "two")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == ["charge_point_status.csv", "charge_points.csv", "metadata.jsonld", "zones.csv"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_the_metadata_expands_as_dcat_with_each_file_described(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export(store, config(), DAY, DAY, out)
    import json

    document = json.loads((out / "metadata.jsonld").read_text(encoding="utf-8"))
    # Relative file names resolve against where the metadata is published (its base URL).
    [dataset] = jsonld.expand(document, {"base": "https://opendata.example/gridcoord/"})
    assert dataset["@type"] == [DCAT + "Dataset"]
    for term in ("title", "description", "license", "temporal", "spatial", "publisher"):
        assert "http://purl.org/dc/terms/" + term in dataset, term
    [temporal] = dataset["http://purl.org/dc/terms/temporal"]
    assert temporal[DCAT + "startDate"][0]["@value"] == "2026-10-15"
    [licence] = dataset["http://purl.org/dc/terms/license"]
    assert licence["@id"] == "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    described = {}
    for distribution in dataset[DCAT + "distribution"]:
        name = distribution[DCAT + "downloadURL"][0]["@id"]
        assert distribution[DCAT + "mediaType"][0]["@id"].endswith("/text/csv")
        checksum = distribution["http://spdx.org/rdf/terms#checksum"][0]
        described[name] = (
            int(distribution[DCAT + "byteSize"][0]["@value"]),
            checksum["http://spdx.org/rdf/terms#checksumValue"][0]["@value"],
        )
    assert described == {
        "https://opendata.example/gridcoord/" + name: (len(data), hashlib.sha256(data).hexdigest())
        for name in ("zones.csv", "charge_points.csv", "charge_point_status.csv")
        for data in [(out / name).read_bytes()]
    }


def test_the_export_is_the_same_after_the_raw_data_is_aggregated(
    store: Store, tmp_path: Path
) -> None:
    export(store, config(), DAY, DAY, tmp_path / "before")
    report = RetentionJob(store, config(), lambda: START + timedelta(days=40)).run()
    assert report.assets == len(HOUSEHOLDS) + 2
    export(store, config(), DAY, DAY, tmp_path / "after")
    assert (tmp_path / "after" / "zones.csv").read_bytes() == (
        tmp_path / "before" / "zones.csv"
    ).read_bytes()
    _, status = rows(tmp_path / "after" / "charge_point_status.csv")
    assert {r["status"] for r in status} == {"UNKNOWN"}  # per-charger raw data is gone


def test_the_csv_opens_as_utf8_with_crlf_rows(store: Store, tmp_path: Path) -> None:
    export(store, config(), DAY, DAY, tmp_path)
    data = (tmp_path / "zones.csv").read_bytes()
    text = data.decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert next(csv.reader(io.StringIO(text))) == [c.name for c in ZONE_COLUMNS]
