"""The safety layer's inputs from the configuration: limits and staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridcoord.config import Config
from gridcoord.dispatch import ChargerLimit, charger_limits, stale_chargers, stale_zones

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
