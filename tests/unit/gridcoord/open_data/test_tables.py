"""The open-data tables and metadata from collected numbers (no store)."""

from __future__ import annotations

import csv
import io
from datetime import date

from gridcoord.config import Config
from gridcoord.open_data.collect import Collected, ZoneSlot
from gridcoord.open_data.dcat import Distribution, metadata
from gridcoord.open_data.tables import build

SLOT = 1_790_000_100 * 1_000_000_000 // (900 * 10**9) * (900 * 10**9)


def config(**privacy: object) -> Config:
    return Config.model_validate(
        {
            "zones": [
                {"id": "sub", "capacity_kw": 100},
                {"id": "small", "parent": "sub", "capacity_kw": 10},
            ],
            "assets": [
                {"id": "charger-pub", "kind": "charger", "zone": "small", "rated_kw": 50,
                 "charger": {"type": "public"}},
            ],
            "privacy": {"min_group_size": 10, **privacy},
        }
    )  # fmt: skip


def zone(households: int, **values: float) -> ZoneSlot:
    numbers = ZoneSlot(households)
    numbers.values.update(values)
    return numbers


def test_a_suppressed_zone_gives_its_charger_the_city_share_and_no_row() -> None:
    collected = Collected(
        zones={SLOT: {"small": zone(3, household_wh=-1e-9), "sub": zone(12, renewable_wh=500.0,
                                                                          household_wh=1000.0)}},
        charger_status={(SLOT, "charger-pub"): True},
    )  # fmt: skip
    tables = build(collected, config(), [SLOT])
    rows = list(csv.DictReader(io.StringIO(tables.zones)))
    assert [(r["zone"], r["merged_zones"], r["households"]) for r in rows] == [
        ("sub", "small", "15")
    ]
    assert "-0.000" not in tables.zones  # a tiny negative rounds to 0.000, never "-0.000"
    [status] = list(csv.DictReader(io.StringIO(tables.charge_point_status)))
    assert status["status"] == "OCCUPIED" and status["renewable_share"] == "0.5000"
    [point] = list(csv.DictReader(io.StringIO(tables.charge_points)))
    assert point["power_type"] == "DC"

    alone = Collected(zones={SLOT: {"small": zone(3, household_wh=10.0)}})
    tables = build(alone, config(), [SLOT])
    assert tables.zones.count("\r\n") == 1 and tables.suppressed_rows == 1  # header only
    [status] = list(csv.DictReader(io.StringIO(tables.charge_point_status)))
    assert status["status"] == "UNKNOWN" and status["renewable_share"] == ""


def test_metadata_takes_the_licence_and_publish_url_from_the_config() -> None:
    files = [Distribution("zones.csv", "t", "d", b"a,b\r\n")]
    document = metadata(
        config(licence="cc-by/4.0", publish_url="https://opendata.example/grid/"),
        date(2026, 11, 1),
        date(2026, 11, 30),
        files,
    )
    assert document["@context"]["@base"] == "https://opendata.example/grid/"
    assert document["dct:license"] == {"@id": "http://dcat-ap.de/def/licenses/cc-by/4.0"}
    assert document["dct:temporal"]["dcat:endDate"]["@value"] == "2026-11-30"
    [distribution] = document["dcat:distribution"]
    assert distribution["dcat:byteSize"]["@value"] == "5"
