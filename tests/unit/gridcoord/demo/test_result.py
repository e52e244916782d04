"""The demo's final output: the --json contract and the three rows for people."""

from __future__ import annotations

import json

from gridcoord.demo.bound import Bound
from gridcoord.demo.command import summary
from gridcoord.demo.run import DemoResult
from gridcoord.outcomes import OUTCOME_KPI_KEYS, KpiAccumulator, SessionRecord


def kpis(share: float) -> dict[str, float | int]:
    kpi = KpiAccumulator({"z": 100.0})
    kpi.add(1.0, ev_kw=10.0, base_kw=20.0, renewable_kw=20.0 + 10.0 * share, zone_kw={"z": 5.0})
    return kpi.result([SessionRecord(12.0, 10.0, 11.0, 1.0)])


def result(bound: Bound | None) -> DemoResult:
    return DemoResult(kpis(0.5), kpis(0.25), 24.0, 96, 0, 0, bound=bound)


def test_json_carries_every_kpi_for_ours_the_baseline_and_the_bound() -> None:
    out = json.loads(json.dumps(result(Bound(kpis(0.75), "optimal", 1, 0.5)).as_json()))
    assert set(out) == set(OUTCOME_KPI_KEYS) | {
        "baseline",
        "bound",
        "bound_status",
        "forecast_error",
    }
    assert set(out["baseline"]) == set(out["bound"]) == set(OUTCOME_KPI_KEYS)
    assert out["renewable_share"] == 0.5
    assert out["baseline"]["renewable_share"] == 0.25
    assert out["bound"]["renewable_share"] == 0.75 and out["bound_status"] == "optimal"
    assert out["unmet_above_floor_kwh"] == 1.0 and out["floor_kwh"] == 1.0  # 12 - 11 x 1 h


def test_the_text_shows_three_columns_side_by_side() -> None:
    text = summary(result(Bound(kpis(0.75), "optimal", 2, 1.5)))
    lines = text.splitlines()
    header = next(line for line in lines if "uncontrolled" in line)
    assert header.split() == ["uncontrolled", "coordinated", "bound"]
    share = next(
        line for line in lines if line.startswith("renewable share of EV energy (surplus)")
    )
    assert share.split()[-3:] == ["25.0%", "50.0%", "75.0%"]
    assert "66.7% of the bound's, 2.00x uncontrolled" in text
    # Without a bound (a run stopped before its first step) the column says so.
    share = next(
        line
        for line in summary(result(None)).splitlines()
        if line.startswith("renewable share of EV energy (surplus)")
    )
    assert share.split()[-1] == "-"
