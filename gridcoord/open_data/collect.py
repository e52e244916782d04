"""Read what the open-data export needs from the store: per zone and slot, own assets only.

Household and charger numbers come from the raw series while they are kept and from the
``zone_aggregate`` points the retention job left after that (the same `aggregate` function
made both, so the numbers agree); renewable generation from the PV and wind series, which are
kept. A slot's numbers for a zone cover only the assets connected in that zone itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.contract.reading import AssetKind, ChargerType
from gridcoord.config import Config
from gridcoord.privacy.aggregate import (
    MEASUREMENT,
    SLOT_HOURS,
    SLOT_NS,
    RawSeries,
    SlotAggregate,
    Source,
    aggregate,
    from_points,
)
from gridcoord.storage.base import Store
from gridcoord.storage.points import datetime_to_ns

SLOT = timedelta(minutes=15)
_FIELDS = ("energy_wh", "peak_w", "assets", "sessions_active")


@dataclass
class ZoneSlot:
    """One zone's own numbers in one slot."""

    households: int = 0
    values: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class Collected:
    """Everything the export publishes from, before grouping.

    Attributes
    ----------
    zones
        slot start [ns] → zone → its own numbers (``renewable_wh``, ``household_wh``,
        ``ev_wh``, ``household_peak_w``, ``ev_peak_w``, ``sessions_active``).
    charger_status
        (slot start [ns], public charger id) → True when connected at a sample in it.
    """

    zones: dict[int, dict[str, ZoneSlot]] = field(default_factory=dict)
    charger_status: dict[tuple[int, str], bool] = field(default_factory=dict)


def collect(store: Store, config: Config, start: datetime, end: datetime) -> Collected:
    """Read the store for start ≤ t < end (quarter-hour aligned instants).

    Raises
    ------
    StoreUnavailable, StoreRejected
        from the store's reads.
    """
    zone_meters = {z.meter for z in config.zones if z.meter is not None}
    households = [a for a in config.assets if a.kind is AssetKind.METER and a.id not in zone_meters]
    chargers = [a for a in config.assets if a.kind is AssetKind.CHARGER]
    public = {
        a.id for a in chargers if a.charger is not None and a.charger.type is ChargerType.PUBLIC
    }
    out = Collected()
    fresh: dict[tuple[str, Source, int], SlotAggregate] = {}
    for source, assets in ((Source.HOUSEHOLD, households), (Source.CHARGING, chargers)):
        raw = []
        for asset in sorted(assets, key=lambda a: a.id):
            tags = {"asset_id": asset.id}
            power = store.series("telemetry", "power_w", tags, start, end)
            connected = (
                store.series("telemetry", "connected", tags, start, end)
                if source is Source.CHARGING
                else []
            )
            series = RawSeries(
                asset.id,
                asset.zone or "",
                [(datetime_to_ns(t), v) for t, v in power],
                [(datetime_to_ns(t), v) for t, v in connected],
            )
            raw.append(series)
            if asset.id in public:
                for ts, value in series.connected:
                    key = (ts - ts % SLOT_NS, asset.id)
                    out.charger_status[key] = out.charger_status.get(key, False) or value >= 0.5
                for ts, _ in series.power:
                    out.charger_status.setdefault((ts - ts % SLOT_NS, asset.id), False)
        for item in aggregate(source, raw):
            fresh[(item.zone, source, item.slot_ns)] = item
    zone_ids = sorted({z.id for z in config.zones})
    for zone in zone_ids:
        for source in Source:
            tags = {"zone": zone, "source": source.value}
            stored = {f: _ns(store.series(MEASUREMENT, f, tags, start, end)) for f in _FIELDS}
            for item in from_points(stored, zone, source):
                fresh.setdefault((zone, source, item.slot_ns), item)  # raw wins where kept
    for (zone, source, slot), item in sorted(fresh.items()):
        numbers = out.zones.setdefault(slot, {}).setdefault(zone, ZoneSlot())
        if source is Source.HOUSEHOLD:
            numbers.households += item.assets
            numbers.values["household_wh"] += item.energy_wh
            numbers.values["household_peak_w"] += item.peak_w
        else:
            numbers.values["ev_wh"] += item.energy_wh
            numbers.values["ev_peak_w"] += item.peak_w
            numbers.values["sessions_active"] += item.sessions_active
    for zone in zone_ids:
        for kind in (AssetKind.PV, AssetKind.WIND):
            tags = {"kind": kind.value, "zone": zone}
            for bucket, total_w in store.bucket_totals(
                "telemetry", "power_w", tags, start, end, SLOT
            ):
                numbers = out.zones.setdefault(datetime_to_ns(bucket), {}).setdefault(
                    zone, ZoneSlot()
                )
                numbers.values["renewable_wh"] += total_w * SLOT_HOURS
    return out


def _ns(pairs: list[tuple[datetime, float]]) -> list[tuple[int, float]]:
    return [(datetime_to_ns(t), v) for t, v in pairs]
