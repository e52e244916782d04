"""The safety layer's inputs from the configuration and the latest telemetry times.

Kept apart from `limits` so that the layer itself depends on nothing but plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gridcoord.dispatch.limits import ChargerLimit
from gridcoord.reading import AssetKind
from gridcoord.timegrid import as_utc

if TYPE_CHECKING:
    from gridcoord.config import Config

DEFAULT_METER_STALE_AFTER = timedelta(minutes=2)


def charger_limits(config: Config) -> list[ChargerLimit]:
    """Every configured charger's limits: rating, zone, safe power and guaranteed minimum."""
    out = []
    for asset in config.assets:
        if asset.kind is not AssetKind.CHARGER or asset.charger is None:
            continue
        out.append(
            ChargerLimit(
                asset.id,
                asset.zone,
                asset.rated_kw,
                asset.charger.safe_power_kw,
                asset.charger.guaranteed_kw,
            )
        )
    return out


def stale_chargers(config: Config, last_seen: Mapping[str, datetime], now: datetime) -> set[str]:
    """Chargers whose latest telemetry is older than their ``stale_after_s`` (or never seen).

    Stale means unavailable, never idle: a charger we have not heard from may be drawing.
    """
    now = as_utc(now)
    stale = set()
    for asset in config.assets:
        if asset.kind is not AssetKind.CHARGER or asset.charger is None:
            continue
        seen = last_seen.get(asset.id)
        limit = timedelta(seconds=asset.charger.stale_after_s)
        if seen is None or now - as_utc(seen) > limit:
            stale.add(asset.id)
    return stale


def stale_zones(
    config: Config,
    last_seen: Mapping[str, datetime],
    now: datetime,
    stale_after: timedelta = DEFAULT_METER_STALE_AFTER,
) -> set[str]:
    """Zones whose meter's latest reading is older than ``stale_after`` (or never seen).

    A zone configured without a meter is never stale: nothing measures a non-EV load there, so
    its whole rating is EV headroom (a feeder dedicated to charging).
    """
    now = as_utc(now)
    stale = set()
    for zone in config.zones:
        if zone.meter is None:
            continue
        seen = last_seen.get(zone.meter)
        if seen is None or now - as_utc(seen) > stale_after:
            stale.add(zone.id)
    return stale
