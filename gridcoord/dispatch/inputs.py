"""The safety layer's inputs from the configuration and the latest telemetry times.

Kept apart from `limits` so that the layer itself depends on nothing but plain values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from adapters.contract.reading import AssetKind, Reading
from gridcoord.dispatch.limits import ChargerLimit, ZoneLimit, zone_headroom_kw
from gridcoord.timegrid import as_utc
from gridcoord.zones import ancestors, parents_of

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


@dataclass(frozen=True, slots=True)
class ZoneState:
    """The zones as dispatch sees them now.

    Attributes
    ----------
    limits
        every zone with its EV headroom now [kW].
    non_ev_kw
        zone id → its non-EV load now (meter minus fresh chargers' draw), None for a
        stale meter and 0 for a zone without one [kW].
    stale_zones
        zones whose meter is stale.
    stale_chargers
        chargers whose telemetry is stale.
    """

    limits: list[ZoneLimit]
    non_ev_kw: dict[str, float | None]
    stale_zones: set[str]
    stale_chargers: set[str]


def zone_state(
    config: Config,
    latest: Mapping[str, Reading],
    now: datetime,
    meter_stale_after: timedelta = DEFAULT_METER_STALE_AFTER,
) -> ZoneState:
    """Each zone's EV headroom from the latest readings (DESIGN 4).

    Headroom = rating − (meter − EV draw of the fresh chargers below the zone). A stale meter
    means the zone is at its limit (headroom 0); a zone without a meter has its whole rating.

    Parameters
    ----------
    config
        the deployment.
    latest
        asset id → its latest reading.
    now
        the present instant.
    meter_stale_after
        a zone meter older than this is stale.
    """
    last_seen = {asset: r.ts for asset, r in latest.items()}
    stale_c = stale_chargers(config, last_seen, now)
    stale_z = stale_zones(config, last_seen, now, meter_stale_after)
    parents = parents_of(config.zones)
    ev_kw: dict[str, float] = {z.id: 0.0 for z in config.zones}
    for asset in config.assets:
        if asset.kind is not AssetKind.CHARGER or asset.id in stale_c or asset.zone is None:
            continue
        # Unknown draw counts as 0 EV: it then looks like non-EV load, which errs on the safe side.
        kw = _power_kw(latest.get(asset.id)) or 0.0
        for zone_id in ancestors(asset.zone, parents):
            ev_kw[zone_id] += kw
    limits: list[ZoneLimit] = []
    non_ev: dict[str, float | None] = {}
    for zone in config.zones:
        meter_kw = _power_kw(latest.get(zone.meter)) if zone.meter is not None else None
        load: float | None
        if zone.meter is None:
            headroom, load = zone.capacity_kw, 0.0
        elif zone.id in stale_z or meter_kw is None:
            # Stale, or a reading without power: unavailable, never 0 W.
            stale_z.add(zone.id)
            headroom, load = 0.0, None
        else:
            headroom = zone_headroom_kw(zone.capacity_kw, meter_kw, ev_kw[zone.id])
            load = max(0.0, meter_kw - ev_kw[zone.id])
        limits.append(ZoneLimit(zone.id, zone.parent, headroom))
        non_ev[zone.id] = load
    return ZoneState(limits, non_ev, stale_z, stale_c)


def _power_kw(reading: Reading | None) -> float | None:
    value = reading.fields.get("power_w") if reading is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) / 1000.0
