"""Forecast error per kind, source and lead-time bucket, judged once the slots are measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gridcoord.forecast.error import LeadTimeErrors, lead_bucket

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)


@pytest.mark.parametrize(
    ("lead", "bucket"),
    [(0.0, "0-1h"), (0.99, "0-1h"), (1.0, "1-3h"), (11.9, "6-12h"), (47.0, "24-48h"), (72, None)],
)
def test_lead_buckets(lead: float, bucket: str | None) -> None:
    assert lead_bucket(lead) == bucket


def test_values_are_judged_in_the_bucket_of_their_lead_time_once_measured() -> None:
    errors = LeadTimeErrors(15)
    starts = [T0 + i * SLOT for i in range(8)]  # 12:00 .. 13:45
    # One run at 12:00 forecasts 100 kW everywhere (blend) and 160 kW (day-ahead, 4 slots).
    blended, ahead = {"wind": [100.0] * 8}, {"wind": [160.0] * 4 + [np.nan] * 4}
    errors.record(T0, starts, blended, ahead, {"wind": [50.0] * 8})
    # Measured: 120 kW throughout, per minute.
    measured = [(T0 + timedelta(minutes=m), 120.0) for m in range(120)]
    assert errors.score({"wind": measured}, T0 + timedelta(minutes=40)) == 2 * 3  # 2 slots done
    assert errors.pending_slots == 6
    errors.score({"wind": measured}, T0 + timedelta(hours=2))
    assert errors.pending_slots == 0
    summary = errors.summary()["wind"]
    # Slot middles at 7.5 .. 52.5 min are 0-1h ahead, 67.5 .. 112.5 min 1-3h.
    assert summary["blended"]["0-1h"] == {"mae_kw": 20.0, "bias_kw": -20.0, "n": 4}
    assert summary["blended"]["1-3h"]["n"] == 4
    assert summary["day_ahead"] == {"0-1h": {"mae_kw": 40.0, "bias_kw": 40.0, "n": 4}}
    assert summary["nowcast"]["1-3h"] == {"mae_kw": 70.0, "bias_kw": -70.0, "n": 4}


def test_slots_without_a_measurement_are_dropped_unjudged() -> None:
    errors = LeadTimeErrors(15)
    starts = [T0 + i * SLOT for i in range(4)]
    errors.record(T0, starts, {"pv": [1.0] * 4}, {})
    assert errors.score({"pv": []}, T0 + timedelta(hours=1)) == 0
    assert errors.pending_slots == 0 and errors.summary() == {}
    # Kept at most a day: a planner that stops scoring cannot grow it without bound.
    errors.record(T0, starts, {"pv": [1.0] * 4}, {})
    errors.score({}, T0 + timedelta(days=2))
    assert errors.pending_slots == 0
