"""The safety layer's inputs from the configuration: limits and staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.contract.reading import AssetKind, FieldValue, Reading
from gridcoord.config import Config
from gridcoord.dispatch import ChargerLimit, charger_limits, stale_chargers, stale_zones
from gridcoord.dispatch.inputs import zone_state

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def config() -> Config:
    return Config(
        zones=[
            {"id": "sub", "capacity_kw": 1000, "meter": "meter-sub"},
            {"id": "ev-feeder", "parent": "sub", "capacity_kw": 200},
        ],
        assets=[
            {"id": "meter-sub", "kind": "meter", "rated_kw": 1000, "zone": "sub"},
            {
                "id": "wallbox-1",
                "kind": "charger",
                "rated_kw": 11,
                "zone": "ev-feeder",
                "charger": {"type": "home", "safe_power_kw": 1.4, "guaranteed_kw": 4.2},
            },
            {"id": "public-1", "kind": "charger", "rated_kw": 22, "zone": "sub"},
        ],
    )


def test_charger_limits_from_config() -> None:
    assert charger_limits(config()) == [
        ChargerLimit("wallbox-1", "ev-feeder", 11.0, 1.4, 4.2),
        ChargerLimit("public-1", "sub", 22.0, 0.0, 0.0),
    ]


def test_stale_chargers_use_their_own_limit_and_unseen_is_stale() -> None:
    seen = {"wallbox-1": NOW - timedelta(seconds=119), "meter-sub": NOW}
    assert stale_chargers(config(), seen, NOW) == {"public-1"}
    assert stale_chargers(config(), seen, NOW + timedelta(seconds=2)) == {"wallbox-1", "public-1"}


def test_stale_zone_meters() -> None:
    assert stale_zones(config(), {"meter-sub": NOW - timedelta(minutes=1)}, NOW) == set()
    assert stale_zones(config(), {"meter-sub": NOW - timedelta(minutes=3)}, NOW) == {"sub"}
    assert stale_zones(config(), {}, NOW) == {"sub"}  # a zone without a meter is never stale


def reading(asset: str, kind: AssetKind, power_w: float | None, age_s: float = 10.0) -> Reading:
    fields: dict[str, FieldValue] = {} if power_w is None else {"power_w": power_w}
    fields.setdefault("energy_wh", 1.0)
    return Reading(asset, kind, None, NOW - timedelta(seconds=age_s), fields)


def test_zone_state_headroom_from_the_meter_minus_fresh_ev() -> None:
    latest = {
        "meter-sub": reading("meter-sub", AssetKind.METER, 600_000.0),
        "wallbox-1": reading("wallbox-1", AssetKind.CHARGER, 11_000.0),
        "public-1": reading("public-1", AssetKind.CHARGER, 22_000.0),
    }
    state = zone_state(config(), latest, NOW)
    limits = {z.id: z.headroom_kw for z in state.limits}
    # Non-EV load 600 - 33 = 567 kW of a 1000 kW rating.
    assert limits["sub"] == pytest.approx(433.0)
    assert state.non_ev_kw["sub"] == pytest.approx(567.0)
    assert limits["ev-feeder"] == 200.0  # no meter: its whole rating
    assert state.stale_zones == set() and state.stale_chargers == set()


def test_zone_state_stale_meter_and_stale_charger() -> None:
    latest = {
        "meter-sub": reading("meter-sub", AssetKind.METER, 600_000.0, age_s=600),
        "wallbox-1": reading("wallbox-1", AssetKind.CHARGER, 11_000.0, age_s=600),
        "public-1": reading("public-1", AssetKind.CHARGER, 22_000.0),
    }
    state = zone_state(config(), latest, NOW)
    assert {z.id: z.headroom_kw for z in state.limits}["sub"] == 0.0
    assert state.non_ev_kw["sub"] is None
    assert state.stale_zones == {"sub"} and state.stale_chargers == {"wallbox-1"}


def test_a_meter_reading_without_power_is_unavailable_not_zero() -> None:
    latest = {"meter-sub": reading("meter-sub", AssetKind.METER, None)}
    state = zone_state(config(), latest, NOW)
    assert {z.id: z.headroom_kw for z in state.limits}["sub"] == 0.0
    assert "sub" in state.stale_zones
