"""The outcome KPIs (gridcoord.outcomes): hand-computed cases and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.outcomes import (
    MET_TOLERANCE_KWH,
    OUTCOME_KPI_KEYS,
    KpiAccumulator,
    SessionRecord,
    session_kpis,
)


def test_energy_kpis_by_hand() -> None:
    kpi = KpiAccumulator({"z": 100.0})
    # Half an hour: EV 40 kW, base 50, renewable 70 → surplus 20; mix 70/90 of all load.
    kpi.add(0.5, ev_kw=40.0, base_kw=50.0, renewable_kw=70.0, zone_kw={"z": 90.0})
    # Half an hour: EV 20 kW, no renewables, zone 20 kW over its rating.
    kpi.add(0.5, ev_kw=20.0, base_kw=50.0, renewable_kw=0.0, zone_kw={"z": 120.0})
    # Half an hour: EV 10 kW, base 30, renewable 80: all of it renewable either way.
    kpi.add(0.5, ev_kw=10.0, base_kw=30.0, renewable_kw=80.0, zone_kw={"z": 40.0})
    kpi.add_minima_over_limit(2)
    result = kpi.result()
    assert set(result) == set(OUTCOME_KPI_KEYS)
    ev = 20.0 + 10.0 + 5.0
    assert result["ev_kwh"] == pytest.approx(ev)
    assert result["renewable_share"] == pytest.approx((10.0 + 0.0 + 5.0) / ev)
    assert result["renewable_share_prorata"] == pytest.approx((20.0 * 70 / 90 + 5.0) / ev)
    assert result["peak_import_kw"] == pytest.approx(70.0)
    assert result["zone_overloads"] == 1
    assert result["minima_over_limit"] == 2
    empty = KpiAccumulator({}).result()
    assert empty["renewable_share"] == 0.0 == empty["renewable_share_prorata"]
    assert empty["requests_met_pct"] == 100.0 and empty["unmet_kwh"] == 0.0


def test_an_overload_without_charging_under_the_zone_is_the_non_ev_loads() -> None:
    kpi = KpiAccumulator({"feeder": 100.0, "street": 40.0})
    # The street's non-EV load alone is over its rating, nothing charges there: non-EV.
    kpi.add(1 / 60, 0.0, 80.0, 0.0, {"feeder": 80.0, "street": 45.0}, {"feeder": 80, "street": 45})
    # The same, and a car under the street draws 3 kW: the charging adds to it, an EV overload
    # (of the street; the feeder is within its rating).
    kpi.add(1 / 60, 3.0, 80.0, 0.0, {"feeder": 83.0, "street": 48.0}, {"feeder": 80, "street": 45})
    # Charging pushes the feeder over, the street stays within: one EV overload.
    kpi.add(
        1 / 60, 25.0, 80.0, 0.0, {"feeder": 105.0, "street": 30.0}, {"feeder": 80, "street": 30}
    )
    # Without the zones' non-EV load every overload counts as the EVs' (the cautious side).
    kpi.add(1 / 60, 0.0, 80.0, 0.0, {"feeder": 80.0, "street": 45.0})
    result = kpi.result()
    assert result["zone_overloads"] == 3
    assert result["zone_overloads_non_ev"] == 1


@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 200.0), st.floats(0.0, 50.0), st.floats(0.0, 200.0), st.booleans()
        ),
        max_size=30,
    )
)
def test_every_zone_step_over_its_rating_is_counted_once(
    steps: list[tuple[float, float, float, bool]],
) -> None:
    rating = {"z": 100.0}
    kpi = KpiAccumulator(rating)
    over = 0
    for base, ev, renewable, known in steps:
        load = base + ev
        over += load > rating["z"] + 1e-9
        kpi.add(1 / 60, ev, base, renewable, {"z": load}, {"z": base} if known else None)
    result = kpi.result()
    assert result["zone_overloads"] + result["zone_overloads_non_ev"] == over


def test_session_kpis_by_hand() -> None:
    records = [
        # Met: 10 of 10 kWh.
        SessionRecord(request_kwh=10.0, delivered_kwh=10.0, rate_kw=11.0, stay_h=2.0),
        # 30 kWh asked in 2 h at 11 kW: 8 kWh beyond any plan (the floor); got 20: 2 above it.
        SessionRecord(request_kwh=30.0, delivered_kwh=20.0, rate_kw=11.0, stay_h=2.0),
        # Still plugged in with 1 h left at 7 kW: 20 missing, 7 still possible → 13 certain.
        SessionRecord(request_kwh=25.0, delivered_kwh=5.0, rate_kw=7.0, stay_h=6.0, left_h=1.0),
        # Still plugged in, enough time left: nothing unmet yet.
        SessionRecord(request_kwh=25.0, delivered_kwh=5.0, rate_kw=7.0, stay_h=6.0, left_h=4.0),
    ]
    assert [r.floor_kwh for r in records] == pytest.approx([0.0, 8.0, 0.0, 0.0])
    assert [r.unmet_kwh for r in records] == pytest.approx([0.0, 10.0, 13.0, 0.0])
    assert [r.unmet_above_floor_kwh for r in records] == pytest.approx([0.0, 2.0, 13.0, 0.0])
    out = session_kpis(records)
    assert out == pytest.approx(
        {
            "unmet_kwh": 23.0,
            "unmet_above_floor_kwh": 15.0,
            "floor_kwh": 8.0,
            "requested_kwh": 90.0,
            "requests_met_pct": 50.0,  # of the two that departed, one was met
        }
    )
    almost = SessionRecord(10.0, 10.0 - MET_TOLERANCE_KWH / 2, 11.0, 2.0)
    assert almost.met and not SessionRecord(10.0, 9.9, 11.0, 2.0).met


records = st.builds(
    SessionRecord,
    request_kwh=st.floats(0.0, 100.0),
    delivered_kwh=st.floats(0.0, 100.0),
    rate_kw=st.floats(0.1, 22.0),
    stay_h=st.floats(0.0, 48.0),
    left_h=st.one_of(st.just(0.0), st.floats(0.0, 48.0)),
)


@given(st.lists(records, max_size=20))
def test_session_kpis_are_bounded(sessions: list[SessionRecord]) -> None:
    out = session_kpis(sessions)
    assert 0.0 <= out["unmet_above_floor_kwh"] <= out["unmet_kwh"] + 1e-9
    assert out["unmet_kwh"] <= out["requested_kwh"] + 1e-9
    assert out["floor_kwh"] <= out["requested_kwh"] + 1e-9
    assert 0.0 <= out["requests_met_pct"] <= 100.0


@given(
    request=st.floats(0.0, 100.0),
    rate=st.floats(0.1, 22.0),
    stay=st.floats(0.0, 24.0),
    fraction=st.floats(0.0, 1.0),
)
def test_a_feasible_delivery_never_beats_the_floor(
    request: float, rate: float, stay: float, fraction: float
) -> None:
    # Whatever a plan delivers within the physics (at most rate x stay, at most the request),
    # its unmet energy is at least the floor, so "above the floor" is exactly the difference.
    delivered = fraction * min(request, rate * stay)
    record = SessionRecord(request, delivered, rate, stay)
    assert record.unmet_kwh >= record.floor_kwh - 1e-9
    assert record.unmet_above_floor_kwh == pytest.approx(
        record.unmet_kwh - record.floor_kwh, abs=1e-9
    )


@given(
    steps=st.lists(
        st.tuples(st.floats(0.0, 500.0), st.floats(0.0, 500.0), st.floats(0.0, 500.0)),
        min_size=1,
        max_size=30,
    )
)
def test_energy_shares_stay_within_the_ev_energy(steps: list[tuple[float, float, float]]) -> None:
    kpi = KpiAccumulator({})
    for ev, base, renewable in steps:
        kpi.add(1 / 60, ev, base, renewable, {})
    out = kpi.result()
    assert 0.0 <= out["renewable_share"] <= out["renewable_share_prorata"] + 1e-9 <= 1.0 + 1e-9
