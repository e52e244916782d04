"""The provisioned Grafana dashboards query measurements, fields and tags the store really has.

The points are made by the code that writes them (telemetry readings, plan and dispatch
outcomes), not listed by hand, so a renamed field fails here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from adapters.contract.reading import AssetKind, Reading
from gridcoord.outcomes import DispatchOutcome, PlanOutcome
from gridcoord.storage.outcomes import plan_points, setpoint_points
from gridcoord.storage.points import Point, reading_to_point

ROOT = Path(__file__).resolve().parents[4]
GRAFANA = ROOT / "config" / "grafana"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def written_points() -> list[Point]:
    readings = [
        Reading("pv-01", AssetKind.PV, "lt-01", NOW, {"power_w": 1.0, "energy_wh": 2.0}),
        Reading("wind-01", AssetKind.WIND, "sub-01", NOW, {"power_w": 1.0}),
        Reading("charger-001", AssetKind.CHARGER, "lt-01", NOW, {"power_w": 1.0}),
    ]
    plan = PlanOutcome(
        schedule_id="s1",
        slot_start=NOW,
        status="optimal",
        failure=None,
        solve_s=0.5,
        sessions=3,
        kpis={"renewable_share": 0.5, "unmet_kwh": 0.0, "import_kwh": 1.0},
        baseline={"renewable_share": 0.2},
        binding=[],
        forecast_mae={},
        made_at=NOW,
    )
    dispatch = DispatchOutcome(
        schedule_id="s1",
        at=NOW,
        valid_until=NOW + timedelta(minutes=3),
        setpoints_kw={"charger-001": 3.0},
        payloads={},
        order=["charger-001"],
        overloads=[],
        limited={"charger-001": "plan"},
    )
    return [reading_to_point(r) for r in readings] + plan_points(plan) + setpoint_points(dispatch)


def dashboards() -> list[dict[str, object]]:
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert files
    return [json.loads(f.read_text()) for f in files]


def test_every_query_names_a_stored_measurement_field_and_tag() -> None:
    points = written_points()
    fields = {(p.measurement, f) for p in points for f in p.fields}
    tags = {(p.measurement, t) for p in points for t in p.tags}
    kinds = {p.tags.get("kind") for p in points}
    checked = 0
    for dashboard in dashboards():
        for panel in dashboard["panels"]:  # type: ignore[attr-defined]
            for target in panel["targets"]:
                query = target["query"]
                measurement = re.search(r'r\._measurement == "(\w+)"', query)
                assert measurement, query
                m = measurement.group(1)
                for field in re.findall(r'r\._field == "(\w+)"', query):
                    assert (m, field) in fields, (panel["title"], m, field)
                for tag in re.findall(r"r\.(?!_)(\w+) ==", query):
                    assert (m, tag) in tags, (panel["title"], m, tag)
                for kind in re.findall(r'r\.kind == "(\w+)"', query):
                    assert kind in kinds, (panel["title"], kind)
                for tag in re.findall(r"group\(columns: \[([^\]]*)\]", query):
                    for name in re.findall(r'"(\w+)"', tag):
                        assert name.startswith("_") or (m, name) in tags, (panel["title"], name)
                checked += 1
    assert checked >= 5


def test_provisioning_points_at_the_dashboards_and_the_datasource_uid() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for dashboard in dashboards():
        for panel in dashboard["panels"]:  # type: ignore[attr-defined]
            assert panel["datasource"]["uid"] == uid
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/gridcoord.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/gridcoord"
