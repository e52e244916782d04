"""The REST API of a running service: state, roles, overrides through the safety layer, audit.

Real Mosquitto, `gridcoord run` as a subprocess, the embedded store (see conftest.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.api.conftest import RunningService

pytestmark = pytest.mark.integration


def eventually(probe, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll an HTTP endpoint until ``probe`` returns a truthy value (no event to await there)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_health_live_and_ready(service: RunningService) -> None:
    with service.client(None) as http:
        assert http.get("/health/live").json() == {"status": "live"}
        ready = eventually(lambda: http.get("/health/ready").status_code == 200)
        assert ready, http.get("/health/ready").text
        assert http.get("/health/ready").json()["checks"] == {
            "broker": "ok",
            "store": "ok",
            "plan": "ok",
        }


@pytest.mark.parametrize("path", ["/api/v1/zones", "/api/v1/assets", "/api/v1/audit"])
def test_no_token_is_401_and_a_wrong_one_too(service: RunningService, path: str) -> None:
    with service.client(None) as http:
        response = http.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = http.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code == 401


def test_viewer_reads_but_may_not_write(service: RunningService) -> None:
    with service.client("viewer") as http:
        assert http.get("/api/v1/zones").status_code == 200
        assert http.post("/api/v1/plans/run").status_code == 403
        body = {
            "target": "charger",
            "target_id": "charger-001",
            "max_kw": 1.0,
            "until": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        }
        assert http.post("/api/v1/overrides", json=body).status_code == 403
    with service.client("admin") as http:  # the admin's hash came from a file
        assert http.get("/api/v1/overrides").status_code == 200


def test_stale_asset_is_unavailable_not_zero(service: RunningService) -> None:
    with service.client("viewer") as http:
        fresh = eventually(
            lambda: http.get("/api/v1/assets/charger-001").json()["available"] or None
        )
        assert fresh
        stale = http.get("/api/v1/assets/charger-009").json()
        assert stale["available"] is False
        assert stale["power_kw"] is None
        assert http.get("/api/v1/assets/nope-1").status_code == 404
        chargers = http.get("/api/v1/assets", params={"kind": "charger", "limit": 2}).json()
        assert chargers["total"] == 3 and len(chargers["items"]) == 2


def test_zone_load_headroom_and_limit(service: RunningService) -> None:
    with service.client("viewer") as http:

        def lt01() -> dict[str, object] | None:
            zones = {z["id"]: z for z in http.get("/api/v1/zones").json()}
            zone = zones["lt-01"]
            return zone if zone["load_kw"] == 20.0 else None

        zone = eventually(lt01)
        assert zone is not None
        # 40 kW rating; the meter's 20 kW include 11 kW of fresh chargers' draw: 9 kW non-EV.
        assert zone["ev_kw"] == pytest.approx(11.0)
        assert zone["headroom_kw"] == pytest.approx(31.0)
        assert zone["limit_kw"] == pytest.approx(31.0)
        assert zone["meter_stale"] is False


def test_plans_setpoints_and_run_now_audited(service: RunningService) -> None:
    with service.client("operator") as http:
        plans = eventually(lambda: http.get("/api/v1/plans").json())
        assert plans and plans[0]["status"] in {"optimal", "time_limit", "fallback"}
        before = len(plans)
        accepted = http.post("/api/v1/plans/run")
        assert accepted.status_code == 202 and accepted.json() == {"accepted": True}
        more = eventually(lambda: len(http.get("/api/v1/plans").json()) > before)
        assert more
        forecast = http.get("/api/v1/forecast").json()
        assert len(forecast["starts"]) == len(forecast["pv_kw"]) == 96
        assert set(forecast["sources"]) == {"pv", "wind", "load"}
        current = http.get("/api/v1/plans/current").json()
        assert set(current) >= {"solve_s", "kpis", "binding", "status", "schedule_id"}
        setpoints = http.get("/api/v1/setpoints").json()["items"]
        by_id = {s["charger_id"]: s for s in setpoints}
        assert set(by_id) == {"charger-001", "charger-002", "charger-009"}
        assert by_id["charger-009"]["limited_by"] == "stale"
        assert all(s["max_power_kw"] <= 11.0 for s in setpoints)
        audit = http.get("/api/v1/audit").json()
        entry = next(e for e in audit if e["action"] == "plan.run_now")
        assert entry["who"] == "operator-1" and entry["result"] == {"accepted": True}


def test_override_is_clamped_sent_audited_and_undone_at_expiry(service: RunningService) -> None:
    until = datetime.now(UTC) + timedelta(seconds=8)
    body = {
        "target": "charger",
        "target_id": "charger-002",
        "max_kw": 1.0,
        "until": until.isoformat(),
    }
    with service.client("operator") as http:
        created = http.post("/api/v1/overrides", json=body)
        assert created.status_code == 201, created.text
        item = created.json()
        # charger-002 has a §14a minimum of 4.2 kW: the cap cannot cut it.
        assert item["effective_kw"] == pytest.approx(4.2)
        capped = service.wait_setpoint("charger-002", lambda p: p["max_power_w"] <= 4200.0 + 1e-6)
        assert capped["max_power_w"] == pytest.approx(4200.0)
        listed = http.get("/api/v1/overrides").json()
        assert [o["id"] for o in listed] == [item["id"]]
        audit = http.get("/api/v1/audit").json()
        entry = next(e for e in audit if e["action"] == "override.create")
        assert entry["who"] == "operator-1"
        assert entry["target"] == "charger:charger-002"
        assert entry["request"]["max_kw"] == 1.0
        assert entry["result"]["effective_kw"] == pytest.approx(4.2)
        # At expiry the cap is lifted by the service itself, audited as `system`.
        expired = eventually(
            lambda: any(e["action"] == "override.expire" for e in http.get("/api/v1/audit").json())
        )
        assert expired
        assert http.get("/api/v1/overrides").json() == []
        released = service.wait_setpoint("charger-002", lambda p: p["max_power_w"] > 4200.0 + 1)
        assert released["max_power_w"] <= 11_000.0


def test_zone_override_caps_the_sum(service: RunningService) -> None:
    until = datetime.now(UTC) + timedelta(minutes=10)
    body = {"target": "zone", "target_id": "lt-01", "max_kw": 6.0, "until": until.isoformat()}
    with service.client("operator") as http:
        created = http.post("/api/v1/overrides", json=body)
        assert created.status_code == 201, created.text
        try:
            # charger-002's 4.2 kW minimum and charger-009's safe power (0) fit in 6 kW.
            service.wait_setpoint("charger-001", lambda p: p["max_power_w"] <= 1800.0 + 1e-6)
            # The API's view is refreshed once a second.
            zone = eventually(
                lambda: (
                    next(
                        z
                        for z in http.get("/api/v1/zones").json()
                        if z["id"] == "lt-01" and z["override_until"] is not None
                    )
                    if any(z["override_until"] for z in http.get("/api/v1/zones").json())
                    else None
                )
            )
            assert zone is not None and zone["limit_kw"] == pytest.approx(6.0)
            setpoints = {s["charger_id"]: s for s in http.get("/api/v1/setpoints").json()["items"]}
            total = sum(s["max_power_kw"] for s in setpoints.values())
            assert total <= 6.0 + 1e-9
        finally:
            assert http.delete(f"/api/v1/overrides/{created.json()['id']}").status_code == 200
        assert any(e["action"] == "override.delete" for e in http.get("/api/v1/audit").json())


def test_bad_override_requests_are_refused(service: RunningService) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    with service.client("operator") as http:
        unknown = {"target": "charger", "target_id": "charger-404", "max_kw": 1, "until": soon}
        assert http.post("/api/v1/overrides", json=unknown).status_code == 404
        past = {"target": "zone", "target_id": "lt-01", "max_kw": 1, "until": "2020-01-01T00:00Z"}
        assert http.post("/api/v1/overrides", json=past).status_code == 422
        far = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        too_long = {"target": "zone", "target_id": "lt-01", "max_kw": 1, "until": far}
        assert http.post("/api/v1/overrides", json=too_long).status_code == 422
        assert http.delete("/api/v1/overrides/999").status_code == 404
        # Instants whose UTC conversion overflows were a 500 (found by schemathesis).
        edge = {"target": "zone", "target_id": "lt-01", "max_kw": 1}
        for until in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
            assert http.post("/api/v1/overrides", json=edge | {"until": until}).status_code == 422


def test_rejections_by_reason_and_metrics(service: RunningService) -> None:
    service.publish("meter-lt-01", b"{not json")
    service.publish("pv-roof-01", {"power_w": 1e9})
    with service.client("viewer") as http:
        counts = eventually(
            lambda: (
                (r := http.get("/api/v1/rejections").json()).get("invalid_json")
                and r.get("out_of_range")
                and r
            )
        )
        assert counts and counts["invalid_json"] >= 1 and counts["out_of_range"] >= 1
    text = httpx.get(service.url + "/metrics").text
    assert 'gridcoord_readings_rejected_total{reason="invalid_json"}' in text
    for name in (
        "gridcoord_spool_bytes",
        "gridcoord_store_write_seconds_bucket",
        "gridcoord_planning_solve_seconds_count",
        "gridcoord_planning_runs_total",
        "gridcoord_setpoints_sent_total",
        "gridcoord_setpoint_readback_mismatches_total",
        'gridcoord_zone_headroom_kw{zone="lt-01"}',
    ):
        assert name in text, name


def test_series_from_the_store_bounded(service: RunningService) -> None:
    now = datetime.now(UTC)
    params = {
        "asset": "meter-lt-01",
        "field": "power_w",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
        "resolution_s": 60,
    }
    with service.client("viewer") as http:
        points = eventually(lambda: http.get("/api/v1/series", params=params).json())
        assert points and points[-1]["value"] == pytest.approx(20_000.0)
        by_zone = {k: v for k, v in params.items() if k != "asset"} | {"zone": "lt-01"}
        zone = http.get("/api/v1/series", params=by_zone)
        assert zone.status_code == 200 and zone.json() == points
        huge = {**params, "resolution_s": 1, "start": (now - timedelta(days=30)).isoformat()}
        assert http.get("/api/v1/series", params=huge).status_code == 422
        naive = {**params, "start": "2026-01-01T00:00:00"}
        assert http.get("/api/v1/series", params=naive).status_code == 422
        assert http.get("/api/v1/series", params={**params, "asset": "nope-1"}).status_code == 404
        # An instant whose UTC conversion overflows was a 500 (found by schemathesis).
        year_one = {**params, "start": "0001-01-01T00:00:00+14:00"}
        assert http.get("/api/v1/series", params=year_one).status_code == 422


def test_sse_stream_sends_summaries(service: RunningService) -> None:
    headers = {"Authorization": "Bearer viewer-token-1"}
    events: list[str] = []
    with httpx.stream("GET", service.url + "/api/v1/events", headers=headers, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                if len(events) == 2:
                    break
    import json

    first, second = (json.loads(e) for e in events)
    assert first["at"] != second["at"]
    assert {"totals", "zones", "alarms", "last_plan"} <= set(first)


def test_chargers_table_is_paged_filtered_and_bounded(service: RunningService) -> None:
    with service.client("viewer") as http:

        def with_setpoints() -> dict[str, object] | None:
            page = http.get("/api/v1/chargers").json()
            return page if all(c["setpoint_kw"] is not None for c in page["items"]) else None

        rows = eventually(with_setpoints)
        assert rows["total"] == 3
        by_id = {c["id"]: c for c in rows["items"]}
        assert [c["id"] for c in rows["items"]] == ["charger-001", "charger-002", "charger-009"]
        assert by_id["charger-009"]["state"] == "stale" and by_id["charger-009"]["power_kw"] is None
        assert by_id["charger-001"]["state"] == "charging"
        assert by_id["charger-001"]["power_kw"] == pytest.approx(7.0)
        page = http.get("/api/v1/chargers", params={"limit": 1, "offset": 1}).json()
        assert page["total"] == 3 and [c["id"] for c in page["items"]] == ["charger-002"]
        stale = http.get("/api/v1/chargers", params={"state": "stale"}).json()
        assert [c["id"] for c in stale["items"]] == ["charger-009"]
        found = http.get("/api/v1/chargers", params={"q": "002"}).json()
        assert [c["id"] for c in found["items"]] == ["charger-002"]
        # A parent zone takes the chargers below it.
        assert http.get("/api/v1/chargers", params={"zone": "sub-01"}).json()["total"] == 3
        assert http.get("/api/v1/chargers", params={"zone": "lt-01"}).json()["total"] == 3
        assert http.get("/api/v1/chargers", params={"zone": "nope-1"}).status_code == 404
        for bad in ({"limit": 501}, {"limit": 0}, {"q": "x" * 65}, {"q": "<b>"}, {"state": "x"}):
            assert http.get("/api/v1/chargers", params=bad).status_code == 422, bad


def test_chart_has_the_uncontrolled_baseline_ahead(service: RunningService) -> None:
    with service.client("viewer") as http:

        def with_baseline() -> dict[str, list[float | None]] | None:
            c = http.get("/api/v1/chart").json()
            return c if any(v is not None for v in c["ev_baseline_kw"]) else None

        chart = eventually(with_baseline)
        n = len(chart["starts"])
        assert len(chart["ev_baseline_kw"]) == len(chart["ev_planned_kw"]) == n
        ahead = [v for v in chart["ev_baseline_kw"] if v is not None]
        # Two cars plugged in at up to 11 kW each: uncontrolled, they draw at once.
        assert 0.0 < max(ahead) <= 22.0 + 1e-6
