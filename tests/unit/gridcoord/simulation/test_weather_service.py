"""The simulated weather service: seeded, its error growing with lead time, valid messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from gridcoord.config import Config
from gridcoord.forecast.external import ForecastKind
from gridcoord.forecast.subscription import decode_forecast
from gridcoord.planning.planner import forecast_capacity_kw
from gridcoord.simulation import demo_city
from gridcoord.simulation.weather import wind_speed_ms
from gridcoord.simulation.weather_service import WIND_SPEED_ERROR, WeatherService

ISSUED = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def test_the_same_seed_and_issue_give_the_same_forecast() -> None:
    layout = demo_city(1, 20)
    one = WeatherService(layout, 1).forecast(ISSUED)
    again = WeatherService(layout, 1).forecast(ISSUED)
    other = WeatherService(layout, 2).forecast(ISSUED)
    assert np.array_equal(one["wind"][1], again["wind"][1])
    assert not np.array_equal(one["wind"][1], other["wind"][1])
    assert one["wind"][0] == ISSUED and len(one["pv"][1]) == 48 * 4


def test_the_wind_speed_error_grows_with_lead_time() -> None:
    rng = np.random.default_rng(7)
    leads = np.arange(0.125, 48.0, 0.25)
    paths = np.array([WIND_SPEED_ERROR.draw(leads, rng) for _ in range(400)])
    spread = paths.std(axis=0)
    assert spread[0] < 0.8 < 1.3 < spread[-1] < 1.8  # 0.6 m/s at issue, 1.5 m/s later
    assert spread[4 * 24] > spread[4]  # a day ahead worse than an hour ahead


def test_a_forecast_tracks_the_simulated_wind_but_not_exactly() -> None:
    layout = demo_city(1, 20)
    start, wind = WeatherService(layout, 1).forecast(ISSUED)["wind"]
    middles = [start + timedelta(minutes=15 * i + 7.5) for i in range(len(wind))]
    true = layout.wind_farm.output_kw([wind_speed_ms(1, m) for m in middles])
    error = np.abs(wind - true)
    assert 0 < error.mean() < 0.3 * layout.wind_farm.rated_kw
    assert np.corrcoef(wind, true)[0, 1] > 0.5


def test_its_messages_pass_the_services_checks() -> None:
    layout = demo_city(1, 20)
    capacity = forecast_capacity_kw(Config(**layout.config()))
    messages = WeatherService(layout, 1).publications(ISSUED, "gridcoord")
    assert [t for t, _ in messages] == ["gridcoord/forecast/pv", "gridcoord/forecast/wind"]
    for topic, payload in messages:
        forecast = decode_forecast(
            topic, payload, prefix="gridcoord", now=ISSUED, capacity_kw=capacity
        )
        assert forecast.kind in (ForecastKind.PV, ForecastKind.WIND)
        assert forecast.issued_at == ISSUED
