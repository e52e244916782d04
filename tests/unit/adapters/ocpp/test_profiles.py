"""Charging profiles built from setpoints: never above the setpoint, always ending on safe power."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.ocpp.profiles import (
    Electrical,
    ProfileKind,
    Target,
    charging_profile,
    composite_limit,
    expected_limit_w,
    profile_id,
)

NOW = datetime(2026, 12, 1, 12, 0, 7, 500_000, tzinfo=UTC)


def _schedule(payload: dict[str, Any], version: str) -> dict[str, Any]:
    if version == "2.0.1":
        return payload["charging_profile"]["charging_schedule"][0]
    return payload["cs_charging_profiles"]["charging_schedule"]


def _body(payload: dict[str, Any], version: str) -> dict[str, Any]:
    return payload["charging_profile" if version == "2.0.1" else "cs_charging_profiles"]


@given(
    setpoint_w=st.floats(0, 50_000),
    safe_w=st.floats(0, 11_000),
    unit=st.sampled_from(["A", "W"]),
    phases=st.sampled_from([1, 3]),
    voltage=st.floats(200, 250),
    version=st.sampled_from(["2.0.1", "1.6"]),
    kind=st.sampled_from(list(ProfileKind)),
    minutes=st.integers(1, 120),
    steps=st.lists(st.tuples(st.integers(-30, 200), st.floats(0, 50_000)), max_size=8),
)
def test_no_limit_exceeds_the_setpoint_or_its_step_and_all_end_safe(
    setpoint_w: float,
    safe_w: float,
    unit: str,
    phases: int,
    voltage: float,
    version: str,
    kind: ProfileKind,
    minutes: int,
    steps: list[tuple[int, float]],
) -> None:
    electrical = Electrical(unit, voltage, phases, safe_w)  # type: ignore[arg-type]
    until = NOW + timedelta(minutes=minutes)
    periods = [(NOW + timedelta(minutes=m), w) for m, w in steps]
    target = Target(version, 1, 1)  # type: ignore[arg-type]
    payload = charging_profile(
        kind,
        target,
        electrical,
        setpoint_w=setpoint_w,
        periods=periods,
        start=NOW,
        valid_until=until,
        transaction_id="7",
        carries_setpoint=kind is not ProfileKind.TX_DEFAULT,
    )
    schedule = _schedule(payload, version)
    offsets = [p["start_period"] for p in schedule["charging_schedule_period"]]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))
    highest = max([setpoint_w, *[w for at, w in periods if NOW < at < until]])
    horizon_s = (until - NOW).total_seconds()
    for period in schedule["charging_schedule_period"]:
        if period["start_period"] < horizon_s:  # from valid_until on: the safe power (below)
            assert electrical.power_w(period["limit"]) <= highest + 1e-6
        assert period["limit"] == round(period["limit"], 1)
    body = _body(payload, version)
    if kind is ProfileKind.TX:
        assert body["valid_to"] == "2026-12-01T" + until.strftime("%H:%M:%S") + "Z"
    else:
        # No expiry, and from valid_until on the safe power.
        assert "valid_to" not in body
        last = schedule["charging_schedule_period"][-1]
        assert last["limit"] == electrical.limit(safe_w)
        assert last["start_period"] >= (until - NOW).total_seconds()


def test_the_failsafe_txdefault_never_exceeds_the_setpoint_or_the_safe_power() -> None:
    electrical = Electrical("A", 230, 3, 4200)
    payload = charging_profile(
        ProfileKind.TX_DEFAULT,
        Target("2.0.1", 2, 1),
        electrical,
        setpoint_w=2000,
        periods=(),
        start=NOW,
        valid_until=NOW + timedelta(minutes=2),
        transaction_id=None,
        carries_setpoint=False,
    )
    periods = _schedule(payload, "2.0.1")["charging_schedule_period"]
    assert [p["limit"] for p in periods] == [2.8, 6.0]
    assert payload["evse_id"] == 2 and payload["charging_profile"]["id"] == 202
    assert expected_limit_w(ProfileKind.TX_DEFAULT, electrical, 9000, in_transaction=False) == (
        pytest.approx(6.0 * 690)
    )


def test_ids_and_purposes_per_version() -> None:
    v16 = Target("1.6", 1, 2)
    payload = charging_profile(
        ProfileKind.STATION_MAX,
        v16,
        Electrical("W", 230, 3, 0),
        setpoint_w=3000,
        periods=(),
        start=NOW,
        valid_until=NOW + timedelta(minutes=1),
        transaction_id=None,
        carries_setpoint=True,
    )
    assert payload["connector_id"] == 0
    assert payload["cs_charging_profiles"]["charging_profile_purpose"] == "ChargePointMaxProfile"
    assert profile_id(ProfileKind.TX, v16) == 102
    with pytest.raises(ValueError, match="transaction"):
        charging_profile(
            ProfileKind.TX,
            v16,
            Electrical("W", 230, 3, 0),
            setpoint_w=1,
            periods=(),
            start=NOW,
            valid_until=NOW + timedelta(minutes=1),
            transaction_id=None,
            carries_setpoint=False,
        )


def test_composite_limit_reads_both_versions_and_refuses_junk() -> None:
    v201 = {"schedule": {"charging_schedule_period": [{"start_period": 0, "limit": 10.0}]}}
    v16 = {
        "charging_schedule": {
            "charging_schedule_period": [{"start_period": 0, "limit": Decimal("7.5")}]
        }
    }
    assert composite_limit(v201, "2.0.1") == 10.0
    assert composite_limit(v16, "1.6") == 7.5
    for junk in (
        {},
        {"schedule": []},
        {"schedule": {"charging_schedule_period": [{"limit": 1}]}},
        {"schedule": {"charging_schedule_period": [{"start_period": 0, "limit": "x"}]}},
        {"schedule": {"charging_schedule_period": [{"start_period": 0, "limit": float("nan")}]}},
    ):
        assert composite_limit(junk, "2.0.1") is None
