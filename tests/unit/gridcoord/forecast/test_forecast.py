"""Forecasts: clear-sky PV x measured index, wind persistence, same-weekday load, overrides, MAE."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.forecast import (
    ExternalForecast,
    ForecastError,
    ForecastInputs,
    ForecastKind,
    PvFleet,
    build_forecast,
    clamp_kw,
    clear_sky_index,
    clear_sky_kw,
    forecast_errors,
    forecast_load_kw,
    forecast_pv_kw,
    forecast_wind_kw,
    mean_absolute_error_kw,
    parse_external,
    slot_means,
)
from gridcoord.timegrid import horizon_slots, local_day_slots, slot_starts

BERLIN = ZoneInfo("Europe/Berlin")
FLEET = PvFleet(latitude=52.42, longitude=10.79, rated_kw=1000.0)
MIDSUMMER_NOON = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)  # 13:00 CEST


def test_clear_sky_pv_follows_the_sun() -> None:
    day = local_day_slots(date(2026, 6, 21))
    out = clear_sky_kw(FLEET, day)
    assert out.shape == (96,)
    assert out.min() == 0.0  # night
    assert 650.0 < out.max() <= 1000.0  # a clear June noon in Lower Saxony
    peak = day[int(out.argmax())]
    assert 10 <= peak.hour <= 12  # solar noon ≈ 11:17 UTC at 10.8° E
    winter = clear_sky_kw(FLEET, local_day_slots(date(2026, 12, 21)))
    assert winter.max() < 0.8 * out.max()


def test_clear_sky_index_from_measurements() -> None:
    times = [MIDSUMMER_NOON - timedelta(minutes=m) for m in range(0, 120, 5)]
    clear = clear_sky_kw(FLEET, times)
    half = [(t, 0.5 * c) for t, c in zip(times, clear, strict=True)]
    assert clear_sky_index(FLEET, half, MIDSUMMER_NOON) == pytest.approx(0.5)
    # At night there is nothing to measure the index from.
    night = datetime(2026, 6, 21, 0, 0, tzinfo=UTC)
    assert clear_sky_index(FLEET, [(night, 0.0)], night) is None
    assert clear_sky_index(FLEET, [], MIDSUMMER_NOON) is None
    # Absurd measurements are bounded.
    huge = [(t, 1e9) for t in times]
    assert clear_sky_index(FLEET, huge, MIDSUMMER_NOON) == 1.2


def test_pv_forecast_scales_clear_sky_by_the_index() -> None:
    times = [MIDSUMMER_NOON - timedelta(minutes=m) for m in range(0, 120, 5)]
    clear = clear_sky_kw(FLEET, times)
    measured = [(t, 0.3 * c) for t, c in zip(times, clear, strict=True)]
    starts = horizon_slots(MIDSUMMER_NOON, timedelta(hours=6))
    cloudy = forecast_pv_kw(FLEET, starts, 15, measured, MIDSUMMER_NOON)
    sunny = forecast_pv_kw(FLEET, starts, 15, [], MIDSUMMER_NOON, default_index=1.0)
    assert cloudy == pytest.approx(0.3 * sunny, rel=1e-6)


def test_wind_persistence_blends_toward_the_mean() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    history = [(now - timedelta(hours=h), 400.0) for h in range(1, 24)]
    history += [(now - timedelta(minutes=m), 1600.0) for m in range(0, 10)]
    starts = horizon_slots(now, timedelta(hours=24))
    out = forecast_wind_kw(2000.0, starts, 15, history, now)
    mean = float(np.mean([v for _, v in history]))
    assert out[0] == pytest.approx(mean + (1600.0 - mean) * math.exp(-(22.5 / 60) / 3), rel=1e-6)
    assert np.all(np.diff(out) < 0)  # decays monotonically toward the mean
    assert out[-1] == pytest.approx(mean, abs=5.0)
    assert forecast_wind_kw(2000.0, starts, 15, [], now).tolist() == [0.0] * 96


def test_load_uses_the_same_local_weekday() -> None:
    # Four weeks where local Tuesdays draw 300 kW and every other day 100 kW.
    history = [
        (start, 300.0 if start.astimezone(BERLIN).weekday() == 1 else 100.0)
        for back in range(1, 29)
        for start in local_day_slots(date(2026, 11, 24) - timedelta(days=back))
    ]
    now = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # Tuesday 00:00 Berlin
    tuesday = forecast_load_kw(local_day_slots(date(2026, 11, 24)), 15, history, now, max_kw=1e4)
    wednesday = forecast_load_kw(local_day_slots(date(2026, 11, 25)), 15, history, now, max_kw=1e4)
    assert tuesday.tolist() == [300.0] * 96
    assert wednesday.tolist() == [100.0] * 96
    assert (
        forecast_load_kw(local_day_slots(date(2026, 11, 24)), 15, [], now, max_kw=1.0).tolist()
        == [0.0] * 96
    )
    # Absurd history is clamped to the plausible maximum.
    assert (
        forecast_load_kw(local_day_slots(date(2026, 11, 24)), 15, history, now, max_kw=200.0).max()
        == 200.0
    )


def test_load_follows_local_time_across_dst() -> None:
    # Four weeks of history where the load is 1000 kW at 18:00-19:00 local and 100 kW otherwise,
    # ending before the autumn change; the Sunday after (25 Oct 2026) has 100 quarter hours.
    history = []
    for days_back in range(1, 29):
        for start in local_day_slots(date(2026, 10, 25) - timedelta(days=days_back)):
            hour = start.astimezone(BERLIN).hour
            history.append((start, 1000.0 if hour == 18 else 100.0))
    starts = local_day_slots(date(2026, 10, 25))
    now = starts[0] - timedelta(minutes=1)
    out = forecast_load_kw(starts, 15, history, now, max_kw=5000.0)
    assert len(out) == 100
    peak_hours = {starts[i].astimezone(BERLIN).hour for i in np.flatnonzero(out > 500)}
    assert peak_hours == {18}


def test_clamp() -> None:
    out = clamp_kw([-5.0, math.nan, math.inf, 1e12, 3.0], 100.0, fill_kw=7.0)
    assert out.tolist() == [0.0, 7.0, 7.0, 100.0, 3.0]
    assert clamp_kw([1.0], math.nan).tolist() == [0.0]


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50),
    st.floats(0, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_clamped_forecasts_are_always_within_bounds(
    values: list[float], upper: float, fill: float
) -> None:
    out = clamp_kw(values, upper, fill)
    assert out.shape == (len(values),)
    assert np.all(np.isfinite(out)) and np.all(out >= 0) and np.all(out <= upper)


def payload(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "kind": "wind",
        "issued_at": "2026-03-01T11:00:00Z",
        "start": "2026-03-01T12:00:00+00:00",
        "slot_minutes": 60,
        "values_kw": [100, 200.5, -40],
    }
    base.update(changes)
    return base


def test_external_forecast_without_a_nowcast_weight_overrides_the_covered_slots() -> None:
    ext = parse_external(payload())
    assert ext.kind is ForecastKind.WIND and ext.values_kw == (100.0, 200.5, -40.0)
    now = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
    starts = horizon_slots(now, timedelta(hours=4))  # 12:00 .. 15:45, 16 slots
    inputs = ForecastInputs(
        pv=None,
        wind_rated_kw=2000.0,
        load_max_kw=1000.0,
        wind_measured=[(now - timedelta(minutes=5), 999.0)],
        external={ForecastKind.WIND: ext},
    )
    fc = build_forecast(inputs, starts, 15, now, nowcast_tau_h={})  # no blending
    assert fc.wind_kw[:4].tolist() == [100.0] * 4
    assert fc.wind_kw[4:8].tolist() == [200.5] * 4
    assert fc.wind_kw[8:12].tolist() == [0.0] * 4  # negative external value clamped
    assert np.all(fc.wind_kw[12:] > 900.0)  # the model beyond the external horizon
    assert fc.sources[ForecastKind.WIND] == "external+model"
    assert fc.sources[ForecastKind.PV] == "model"
    assert fc.renewable_kw.tolist() == fc.wind_kw.tolist()
    # A stale external forecast is ignored.
    later = build_forecast(inputs, starts, 15, now + timedelta(hours=13))
    assert later.sources[ForecastKind.WIND] == "model"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "hydro"}, "kind"),
        ({"kind": ["pv"]}, "kind"),
        ({"issued_at": 5}, "issued_at"),
        ({"start": "2026-03-01T12:00:00"}, "start: not RFC 3339"),
        ({"start": "2026-03-01T12:07:00Z"}, "start: not on a 60-minute boundary"),
        ({"slot_minutes": 7}, "slot_minutes"),
        ({"values_kw": []}, "values_kw"),
        ({"values_kw": [1, "x"]}, r"values_kw\[1\]"),
        ({"values_kw": [1, True]}, r"values_kw\[1\]"),
        ({"values_kw": [1, 2, math.nan]}, r"values_kw\[2\]: must be finite"),
    ],
)
def test_bad_external_forecast_names_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ForecastError, match=message):
        parse_external(payload(**changes))
    with pytest.raises(ForecastError, match="object"):
        parse_external([1, 2])


def test_mae_per_kind() -> None:
    starts = slot_starts(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), 4)
    actual = [(s + timedelta(minutes=m), 10.0) for s in starts[:3] for m in (1, 7)]
    assert mean_absolute_error_kw(starts, [12.0, 8.0, 10.0, 99.0], actual, 15) == pytest.approx(
        4.0 / 3
    )
    assert mean_absolute_error_kw(starts, [1.0] * 4, [], 15) is None
    with pytest.raises(ValueError, match="3 values for 4 slots"):
        mean_absolute_error_kw(starts, [1.0] * 3, actual, 15)
    errors = forecast_errors(starts, {"pv": [10.0] * 4, "wind": [0.0] * 4}, {"pv": actual}, 15)
    assert errors == {"pv": 0.0, "wind": None}


def test_slot_means_ignore_non_finite_and_outside_points() -> None:
    starts = slot_starts(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), 2)
    series = [
        (starts[0], 1.0),
        (starts[0] + timedelta(minutes=14), 3.0),
        (starts[1], math.nan),
        (starts[0] - timedelta(seconds=1), 50.0),
    ]
    out = slot_means(series, starts, 15)
    assert out[0] == 2.0 and math.isnan(out[1])


def test_external_forecast_dataclass_end() -> None:
    ext = ExternalForecast(
        ForecastKind.PV,
        MIDSUMMER_NOON,
        MIDSUMMER_NOON,
        15,
        (1.0, 2.0),
    )
    assert ext.end() == MIDSUMMER_NOON + timedelta(minutes=30)


@given(st.floats(0, 1.5), st.integers(0, 23))
@settings(max_examples=25, deadline=None)
def test_full_forecast_is_bounded(index: float, hour: int) -> None:
    now = datetime(2026, 3, 29, hour, 0, tzinfo=UTC)  # a DST day
    starts = horizon_slots(now, timedelta(hours=24))
    times = [now - timedelta(minutes=m) for m in range(0, 180, 15)]
    clear = clear_sky_kw(FLEET, times)
    inputs = ForecastInputs(
        pv=FLEET,
        wind_rated_kw=500.0,
        load_max_kw=800.0,
        pv_measured=[(t, index * c) for t, c in zip(times, clear, strict=True)],
        wind_measured=[(t, 1e9) for t in times],
        load_history=[(t, -50.0) for t in times],
    )
    fc = build_forecast(inputs, starts, 15, now)
    for values, upper in ((fc.pv_kw, 1000.0), (fc.wind_kw, 500.0), (fc.load_kw, 800.0)):
        assert values.shape == (96,)
        assert np.all(values >= 0) and np.all(values <= upper)
