"""The provisioned Grafana dashboards query measurements, fields and tags the store really has.

The points are made by the code that writes them (telemetry readings, plan and dispatch
outcomes), not listed by hand, so a renamed field fails here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import Config
from gridcoord.planning.coordinator import Coordinator
from gridcoord.storage.outcomes import plan_points, setpoint_points
from gridcoord.storage.points import Point, reading_to_point

ROOT = Path(__file__).resolve().parents[4]
GRAFANA = ROOT / "config" / "grafana"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def written_points() -> list[Point]:
    """What the service writes: readings, and a real coordinator's plan and dispatch.

    The KPI fields of the plan come from the real planner and optimizer, so a renamed KPI
    fails here rather than leaving a Grafana panel empty.
    """
    readings = [
        Reading("pv-01", AssetKind.PV, "lt-01", NOW, {"power_w": 1.0, "energy_wh": 2.0}),
        Reading("wind-01", AssetKind.WIND, "lt-01", NOW, {"power_w": 1.0}),
        Reading("meter-lt-01", AssetKind.METER, "lt-01", NOW, {"power_w": 5000.0}),
        Reading(
            "charger-001",
            AssetKind.CHARGER,
            "lt-01",
            NOW,
            {"power_w": 1.0, "connected": True, "energy_request_wh": 10_000.0},
        ),
    ]
    config = Config(
        zones=[{"id": "lt-01", "capacity_kw": 40.0, "meter": "meter-lt-01"}],
        assets=[
            {"id": "meter-lt-01", "kind": "meter", "zone": "lt-01", "rated_kw": 60.0},
            {"id": "pv-01", "kind": "pv", "zone": "lt-01", "rated_kw": 10.0},
            {"id": "wind-01", "kind": "wind", "zone": "lt-01", "rated_kw": 10.0},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 11.0},
        ],
        planning={"solver_time_limit_s": 10.0},
    )
    coordinator = Coordinator(config)
    for r in readings:
        coordinator.observe(r)
    plan = coordinator.plan(NOW)
    assert plan.status != "fallback", plan.failure
    dispatch = coordinator.dispatch(NOW)
    assert dispatch.setpoints_kw
    return [reading_to_point(r) for r in readings] + plan_points(plan) + setpoint_points(dispatch)


def panels() -> list[dict[str, Any]]:
    """Every panel of every dashboard, those inside rows too."""
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for panel in items:
            found.append(panel)
            walk(panel.get("panels", []))

    for dashboard in dashboards():
        walk(dashboard["panels"])  # type: ignore[arg-type]
    return found


def dashboards() -> list[dict[str, object]]:
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert files
    return [json.loads(f.read_text()) for f in files]


def test_every_query_names_a_stored_measurement_field_and_tag() -> None:
    points = written_points()
    fields = {(p.measurement, f) for p in points for f in p.fields}
    tags = {(p.measurement, t) for p in points for t in p.tags}
    kinds = {p.tags.get("kind") for p in points}
    stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["influxdb"]
    bucket = stack["environment"]["DOCKER_INFLUXDB_INIT_BUCKET"]
    checked = 0
    for panel in panels():
        if panel.get("type") == "row":
            continue
        title = panel.get("title")
        assert panel.get("targets"), f"panel {title!r} queries nothing"
        for target in panel["targets"]:
            query = target["query"]
            assert re.findall(r'from\(bucket: "([^"]+)"\)', query) == [bucket], (title, query)
            measurement = re.search(r'r\._measurement == "(\w+)"', query)
            assert measurement, query
            m = measurement.group(1)
            for field in re.findall(r'r\._field == "(\w+)"', query):
                assert (m, field) in fields, (title, m, field)
            for tag in re.findall(r"r\.(?!_)(\w+) ==", query):
                assert (m, tag) in tags, (title, m, tag)
            for kind in re.findall(r'r\.kind == "(\w+)"', query):
                assert kind in kinds, (title, kind)
            for tag in re.findall(r"group\(columns: \[([^\]]*)\]", query):
                for name in re.findall(r'"(\w+)"', tag):
                    assert name.startswith("_") or (m, name) in tags, (title, name)
            checked += 1
    assert checked == sum(len(p.get("targets", [])) for p in panels()) >= 5


def test_the_datasource_reads_the_stack_s_bucket_and_org() -> None:
    stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["influxdb"]
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    settings = datasource["datasources"][0]["jsonData"]
    assert settings["defaultBucket"] == stack["environment"]["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert settings["organization"] == stack["environment"]["DOCKER_INFLUXDB_INIT_ORG"]
    assert datasource["datasources"][0]["url"] == "http://influxdb:8086"


def test_provisioning_points_at_the_dashboards_and_the_datasource_uid() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in panels():
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == uid
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/gridcoord.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/gridcoord"
