"""Setpoint payloads (DESIGN 3.2), their expiry and the order they are sent in."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridcoord.dispatch import sending_order, setpoint_payload, setpoint_topic, valid_until
from gridcoord.timegrid import parse_rfc3339

NOW = datetime(2026, 10, 25, 0, 59, 30, 250000, tzinfo=UTC)


def test_valid_until_spans_missed_refreshes_rounded_up_to_a_second() -> None:
    assert valid_until(NOW) == datetime(2026, 10, 25, 1, 2, 31, tzinfo=UTC)
    assert valid_until(NOW.replace(microsecond=0), 30.0, 0) == datetime(
        2026, 10, 25, 1, 0, 0, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="refresh_s"):
        valid_until(NOW, 0.0)
    with pytest.raises(ValueError, match="missed_refreshes"):
        valid_until(NOW, 60.0, -1)


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.floats(1, 3600),
    st.integers(0, 10),
)
def test_valid_until_is_after_now_and_covers_the_refreshes(
    now: datetime, refresh_s: float, missed: int
) -> None:
    until = valid_until(now, refresh_s, missed)
    assert until.microsecond == 0
    assert until >= now + timedelta(seconds=(missed + 1) * refresh_s)
    assert until < now + timedelta(seconds=(missed + 1) * refresh_s + 1)


def test_payload_matches_the_contract() -> None:
    payload = setpoint_payload(
        7.4, now=NOW, until=valid_until(NOW), schedule_id="2026-10-25T01:00Z-1"
    )
    assert set(payload) == {"ts", "max_power_w", "valid_until", "schedule_id"}
    assert payload["max_power_w"] == pytest.approx(7400.0)
    assert parse_rfc3339(payload["ts"]) == NOW
    assert payload["valid_until"] == "2026-10-25T01:02:31Z"
    json.dumps(payload, allow_nan=False)  # plain JSON, no NaN
    assert setpoint_topic("charger-0001") == "gridcoord/setpoint/charger-0001"
    assert setpoint_topic("c", prefix="city/x") == "city/x/setpoint/c"


@pytest.mark.parametrize("bad", [math.nan, -1.0, math.inf])
def test_payload_refuses_values_the_safety_layer_cannot_produce(bad: float) -> None:
    with pytest.raises(ValueError, match="max_power_kw"):
        setpoint_payload(bad, now=NOW, until=valid_until(NOW), schedule_id="s")


def test_payload_refuses_an_expiry_before_the_send_time() -> None:
    with pytest.raises(ValueError, match="valid_until"):
        setpoint_payload(1.0, now=NOW, until=NOW, schedule_id="s")


def test_decreases_are_sent_before_increases() -> None:
    previous = {"a": 10.0, "b": 5.0, "c": 7.0}
    new = {"a": 2.0, "b": 11.0, "c": 7.0, "new": 3.0}
    assert sending_order(previous, new) == ["a", "c", "b", "new"]


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 22), min_size=1),
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 22), min_size=1),
)
def test_every_prefix_of_the_sending_order_stays_below_the_larger_sum(
    previous: dict[str, float], new: dict[str, float]
) -> None:
    # Chargers never sent a setpoint are assumed to draw nothing yet; they are sent last.
    order = sending_order(previous, new)
    assert sorted(order) == sorted(new)
    state = {k: previous.get(k, 0.0) for k in new}
    bound = max(sum(state.values()), sum(new.values()))
    for charger in order:
        state[charger] = new[charger]
        assert sum(state.values()) <= bound + 1e-9
