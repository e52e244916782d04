"""Extreme values (issue 9): every payload ends as a reading or a `Rejected`, never a crash.

Huge integers overflowed `float()`, timestamps at the edges of the calendar overflowed the UTC
conversion; both escaped as exceptions other than `Rejected` and ended paho's network thread.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.validation import Reason, Rejected, parse_timestamp
from adapters.mqtt.telemetry import MAX_DEPTH, TelemetryDecoder
from gridcoord.config import Config

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
BIG = "1" + "0" * 400  # the 400-digit integer


@pytest.fixture(scope="module")
def decoder() -> TelemetryDecoder:
    config = Config(
        zones=[{"id": "lt-01", "capacity_kw": 630}],
        assets=[
            {"id": "meter-0412", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 11},
            {
                "id": "pv-park-02",
                "kind": "pv",
                "rated_kw": 2000,
                "mqtt": {
                    "topic": "vendor/park2/state",
                    "fields": {"power_w": {"path": "ac.p_kw", "scale": 1000}},
                    "ts_path": "time",
                },
            },
        ],
    )
    return TelemetryDecoder(config)


METER = "gridcoord/telemetry/meter-0412"
CHARGER = "gridcoord/telemetry/charger-001"
VENDOR = "vendor/park2/state"

# (topic, payload, reason): the reproductions of issue 9, defect 1, and their relatives.
EXTREMES: list[tuple[str, str, Reason]] = [
    (METER, f'{{"power_w": {BIG}}}', Reason.OUT_OF_RANGE),
    (METER, f'{{"power_w": -{BIG}}}', Reason.OUT_OF_RANGE),
    (METER, f'{{"energy_wh": {BIG}}}', Reason.OUT_OF_RANGE),
    (METER, f'{{"x_custom": {BIG}}}', Reason.OUT_OF_RANGE),
    (METER, '{"power_w": 1' + "0" * 5000 + "}", Reason.OUT_OF_RANGE),
    (METER, '{"power_w": 1, "ts": "0001-01-01T00:00:00+14:00"}', Reason.BAD_TIMESTAMP),
    (METER, '{"power_w": 1, "ts": "9999-12-31T23:59:59-14:00"}', Reason.BAD_TIMESTAMP),
    (METER, f'{{"power_w": 1, "ts": {BIG}}}', Reason.BAD_TIMESTAMP),
    (METER, f'{{"power_w": 1, "ts": -{BIG}}}', Reason.BAD_TIMESTAMP),
    (METER, '{"power_w": 1, "ts": "' + "9" * 5000 + '"}', Reason.BAD_TIMESTAMP),
    (CHARGER, '{"power_w": 1, "departure": "9999-12-31T23:59:59-14:00"}', Reason.BAD_TIMESTAMP),
    (CHARGER, '{"power_w": 1, "departure": "0001-01-01T00:00:00+14:00"}', Reason.BAD_TIMESTAMP),
    (CHARGER, '{"power_w": 1, "departure": "9999-12-31T00:00:00+00:00"}', Reason.BAD_TIMESTAMP),
    (VENDOR, f'{{"ac": {{"p_kw": {BIG}}}}}', Reason.OUT_OF_RANGE),
    (VENDOR, f'{{"ac": {{"p_kw": 1}}, "time": {BIG}}}', Reason.BAD_TIMESTAMP),
    (VENDOR, '{"ac": {"p_kw": 1}, "time": "0001-01-01T00:00:00+14:00"}', Reason.BAD_TIMESTAMP),
    (METER, '{"a": ' * 40 + "1" + "}" * 40, Reason.OVERSIZED),
    (
        METER,
        '{"power_w": 1, "x": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}",
        Reason.OVERSIZED,
    ),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), EXTREMES)
def test_extreme_payload_is_rejected_with_its_reason(
    decoder: TelemetryDecoder, topic: str, payload: str, reason: Reason
) -> None:
    with pytest.raises(Rejected) as caught:
        decoder.decode(topic, payload.encode(), now=NOW)
    assert caught.value.reason is reason, caught.value


def test_a_departure_within_a_month_is_kept(decoder: TelemetryDecoder) -> None:
    departure = (NOW + timedelta(days=2)).isoformat()
    reading = decoder.decode(
        CHARGER, json.dumps({"power_w": 1, "departure": departure}).encode(), now=NOW
    )
    assert reading.fields["departure"] == departure


def test_nesting_up_to_the_limit_is_accepted(decoder: TelemetryDecoder) -> None:
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    reading = decoder.decode(METER, f'{{"power_w": 5, "x": {nested}}}'.encode(), now=NOW)
    assert reading.fields == {"power_w": 5.0}


# Integers far beyond any physical range, of either sign.
huge_integers = st.integers(min_value=17, max_value=1200).flatmap(
    lambda digits: st.integers(min_value=10 ** (digits - 1), max_value=10**digits - 1)
) | st.integers(min_value=17, max_value=1200).map(lambda digits: -(10**digits))
# Any calendar instant with any offset the standard allows, most of them far from NOW.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: (
        f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )
)
extreme_dates = st.builds(
    lambda when, offset: when.isoformat(timespec="seconds") + offset,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offsets,
) | st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["power_w", "energy_wh", "soc_pct", "voltage_v", "x_custom"]),
    value=huge_integers,
)
def test_any_huge_integer_is_out_of_range(
    decoder: TelemetryDecoder, field: str, value: int
) -> None:
    payload = f'{{"{field}": {value}}}'.encode()
    with pytest.raises(Rejected) as caught:
        decoder.decode(METER, payload, now=NOW)
    assert caught.value.reason is Reason.OUT_OF_RANGE


@settings(max_examples=300, deadline=None)
@given(
    case=st.tuples(st.just("ts"), extreme_dates | huge_integers)
    | st.tuples(st.just("departure"), extreme_dates)
)
def test_any_timestamp_is_parsed_or_rejected_as_bad_timestamp(
    decoder: TelemetryDecoder, case: tuple[str, str | int]
) -> None:
    where, ts = case
    payload = json.dumps({"power_w": 1, where: ts}).encode()
    try:
        reading = decoder.decode(CHARGER, payload, now=NOW)
    except Rejected as exc:
        assert exc.reason is Reason.BAD_TIMESTAMP, exc
        return
    if where == "ts":
        assert NOW - timedelta(days=31) <= reading.ts <= NOW + timedelta(minutes=5)


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(min_value=MAX_DEPTH + 1, max_value=20_000))
def test_any_nesting_past_the_limit_is_oversized(decoder: TelemetryDecoder, depth: int) -> None:
    with pytest.raises(Rejected) as caught:
        decoder.decode(METER, _nested(depth).encode(), now=NOW)
    # Within the byte limit it is too deep; past it, too big: both are `oversized`.
    assert caught.value.reason is Reason.OVERSIZED


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(huge_integers, extreme_dates, st.floats(), st.booleans(), st.none()))
def test_parse_timestamp_never_raises_anything_but_rejected(value: object) -> None:
    try:
        ts = parse_timestamp(value, now=NOW)
    except Rejected as exc:
        assert exc.reason is Reason.BAD_TIMESTAMP
    else:
        assert ts.tzinfo is UTC
