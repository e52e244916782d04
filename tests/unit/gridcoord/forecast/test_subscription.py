"""External forecast messages: decoded when valid, rejected with a reason otherwise."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.contract.validation import Reason, Rejected
from gridcoord.forecast.external import ForecastKind
from gridcoord.forecast.subscription import (
    FORECAST_MAX_BYTES,
    decode_forecast,
    forecast_topic_filter,
)

GOOD = {
    "kind": "pv",
    "issued_at": "2026-11-24T16:50:00Z",
    "start": "2026-11-24T17:00:00+00:00",
    "slot_minutes": 15,
    "values_kw": [12.5, 10.0, 0.0],
}


def decode(payload: bytes, topic: str = "city/forecast/pv") -> object:
    return decode_forecast(topic, payload, prefix="city")


def test_a_valid_forecast_is_decoded() -> None:
    forecast = decode(json.dumps(GOOD).encode())
    assert forecast.kind is ForecastKind.PV  # type: ignore[attr-defined]
    assert forecast.values_kw == (12.5, 10.0, 0.0)  # type: ignore[attr-defined]
    assert forecast_topic_filter("city") == "city/forecast/+"


@pytest.mark.parametrize(
    ("payload", "topic", "reason", "detail"),
    [
        (b"\xff\xfe", "city/forecast/pv", Reason.NOT_UTF8, "UTF-8"),
        (b"{", "city/forecast/pv", Reason.INVALID_JSON, "not JSON"),
        (b"[" * 100_000, "city/forecast/pv", Reason.INVALID_JSON, "not JSON"),
        (json.dumps({**GOOD, "values_kw": [1.0]}).replace("1.0", "NaN").encode(),
         "city/forecast/pv", Reason.NOT_FINITE, "NaN"),
        (json.dumps({**GOOD, "start": "2026-11-24T17:05:00Z"}).encode(), "city/forecast/pv",
         Reason.BAD_FORECAST, "start: not on a 15-minute boundary"),
        (json.dumps({**GOOD, "values_kw": [1, "x"]}).encode(), "city/forecast/pv",
         Reason.BAD_FORECAST, "values_kw[1]: must be a number"),
        (json.dumps(GOOD).encode(), "city/forecast/wind", Reason.BAD_FORECAST,
         "kind: pv on the topic of wind"),
        (b" " * (FORECAST_MAX_BYTES + 1), "city/forecast/pv", Reason.OVERSIZED, "bytes"),
    ],
)  # fmt: skip
def test_bad_messages_are_rejected_with_their_reason(
    payload: bytes, topic: str, reason: Reason, detail: str
) -> None:
    with pytest.raises(Rejected) as caught:
        decode(payload, topic)
    assert caught.value.reason is reason
    assert detail in caught.value.detail


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_decoded_or_rejected_never_crash(payload: bytes) -> None:
    try:
        decode(payload)
    except Rejected as exc:
        assert exc.reason in set(Reason)


RECEIVED = datetime(2026, 11, 24, 16, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"issued_at": "2026-11-24T17:30:00Z"}, "issued_at: in the future"),
        ({"issued_at": "2026-11-24T03:00:00Z"}, "issued_at: older than 12 h"),
        ({"start": "2026-11-23T17:00:00Z"}, "start: the forecast ends before now"),
        ({"start": "2026-11-28T17:00:00Z"}, "start: more than 72 h ahead"),
        ({"slot_minutes": 60, "values_kw": [1.0] * 200}, "values_kw: covers more than 7 days"),
        ({"values_kw": [12.5, 151.0]}, r"values_kw\[1\]: 151 kW is above 1.5 x the installed 100"),
        ({"values_kw": [-11.0]}, r"values_kw\[0\]: -11 kW is below -10 kW"),
    ],
)
def test_an_implausible_forecast_is_rejected_with_the_field(
    changes: dict[str, object], detail: str
) -> None:
    payload = json.dumps({**GOOD, **changes}).encode()
    with pytest.raises(Rejected) as caught:
        decode_forecast(
            "city/forecast/pv",
            payload,
            prefix="city",
            now=RECEIVED,
            capacity_kw={ForecastKind.PV: 100.0},
        )
    assert caught.value.reason is Reason.BAD_FORECAST
    assert re.search(detail, caught.value.detail)


def test_a_plausible_forecast_passes_the_checks() -> None:
    forecast = decode_forecast(
        "city/forecast/pv",
        json.dumps(GOOD).encode(),
        prefix="city",
        now=RECEIVED,
        capacity_kw={ForecastKind.PV: 100.0},
    )
    assert forecast.values_kw == (12.5, 10.0, 0.0)
