"""Blending the nowcast with a day-ahead forecast: weights by lead time, bounds, fallbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridcoord.forecast import ForecastInputs, ForecastKind, build_forecast, parse_external
from gridcoord.forecast.blend import blend, day_ahead_kw, lead_hours, nowcast_weight
from gridcoord.timegrid import horizon_slots, to_rfc3339

NOW = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
kw = st.floats(0.0, 5000.0)


@st.composite
def series_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    now = draw(arrays(np.float64, n, elements=kw))
    ahead = draw(arrays(np.float64, n, elements=kw | st.just(float("nan"))))
    weight = draw(arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    return now, ahead, weight


@given(series_pair())
def test_the_blend_lies_between_nowcast_and_day_ahead(
    pair: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    now, ahead, weight = pair
    out = blend(now, ahead, weight)
    covered = np.isfinite(ahead)
    low = np.minimum(now, np.where(covered, ahead, now))
    high = np.maximum(now, np.where(covered, ahead, now))
    assert np.all(out >= low - 1e-9) and np.all(out <= high + 1e-9)
    # Where there is no day-ahead value the nowcast stands as it was.
    assert np.array_equal(out[~covered], now[~covered])


@given(st.floats(0.1, 24.0), st.lists(st.floats(0.0, 72.0), min_size=2, max_size=40))
def test_the_nowcast_weight_falls_with_lead_time(tau: float, leads: list[float]) -> None:
    ordered = np.array(sorted(leads))
    weight = nowcast_weight(ordered, tau)
    assert np.all(np.diff(weight) <= 0) and np.all((weight >= 0) & (weight <= 1))
    assert nowcast_weight(np.array([0.0]), tau)[0] == 1.0
    assert np.all(nowcast_weight(ordered, 0.0) == 0.0)  # no nowcast: the day-ahead wins


def external(kind: str, value: float, issued: datetime = NOW, hours: int = 30) -> object:
    return parse_external(
        {
            "kind": kind,
            "issued_at": to_rfc3339(issued),
            "start": to_rfc3339(datetime(2026, 3, 1, 11, 0, tzinfo=UTC)),
            "slot_minutes": 60,
            "values_kw": [value] * hours,
        }
    )


def test_the_planner_forecast_goes_from_the_nowcast_to_the_day_ahead_with_lead_time() -> None:
    starts = horizon_slots(NOW, timedelta(hours=24))
    inputs = ForecastInputs(
        pv=None,
        wind_rated_kw=3000.0,
        load_max_kw=1000.0,
        # Persistence: the farm made 2,000 kW a minute ago, the day's mean is 2,000 too.
        wind_measured=[(NOW - timedelta(minutes=m), 2000.0) for m in range(1, 600)],
        external={ForecastKind.WIND: external("wind", 500.0)},  # type: ignore[dict-item]
    )
    fc = build_forecast(inputs, starts, 15, NOW)
    wind = fc.wind_kw
    assert wind[0] > 1500.0  # ten minutes ahead the measurement knows best
    assert abs(wind[-1] - 500.0) < 1.0  # a day ahead the weather model does
    assert np.all(np.diff(wind) <= 1e-9)  # and in between it moves from one to the other
    assert fc.sources[ForecastKind.WIND] == "external"
    assert np.allclose(fc.day_ahead["wind"], 500.0) and "pv" not in fc.day_ahead
    assert np.allclose(fc.nowcast["wind"], 2000.0)


def test_a_stale_or_absent_day_ahead_leaves_the_nowcast_alone() -> None:
    starts = horizon_slots(NOW, timedelta(hours=6))
    measured = [(NOW - timedelta(minutes=m), 2000.0) for m in range(1, 600)]
    stale = external("wind", 500.0, issued=NOW - timedelta(hours=13))
    for ext in ({}, {ForecastKind.WIND: stale}):
        inputs = ForecastInputs(
            pv=None,
            wind_rated_kw=3000.0,
            load_max_kw=1000.0,
            wind_measured=measured,
            external=ext,  # type: ignore[arg-type]
        )
        fc = build_forecast(inputs, starts, 15, NOW)
        assert np.allclose(fc.wind_kw, 2000.0) and fc.day_ahead == {}
        assert fc.sources[ForecastKind.WIND] == "model"


def test_day_ahead_values_fill_the_slots_they_cover_and_nan_elsewhere() -> None:
    starts = horizon_slots(NOW, timedelta(hours=40))
    values = day_ahead_kw(starts, 15, external("pv", 7.0), NOW)  # type: ignore[arg-type]
    covered = np.isfinite(values)
    assert covered[0] and not covered[-1] and np.all(values[covered] == 7.0)
    assert lead_hours(starts[:1], 15, NOW)[0] == pytest.approx((10.0 + 7.5) / 60)
