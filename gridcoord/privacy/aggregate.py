"""Per-zone 15-minute aggregates of household meters and chargers (docs/data-protection.md).

What outlives the raw retention period, and what the open-data export publishes. Pure: raw
samples in, aggregates out; the same function serves the retention job and the export, so an
aggregate computed before and after the raw data is deleted is the same number.

Definitions, per zone, source (``household`` or ``charging``) and 15-minute slot:

- ``energy_wh`` = Σ over the assets that reported in the slot of their mean ``power_w`` in
  the slot × 0.25 h (the mean of the samples, as the planner's histories take it);
- ``peak_w`` = the largest, over the slot's minutes, Σ of the assets' mean power in that
  minute (an asset without a sample in a minute adds nothing to it);
- ``assets`` = how many assets reported power in the slot (the group the numbers come from);
- ``sessions_active`` (charging only) = how many chargers were connected at a sample in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gridcoord.storage.points import Point

SLOT_NS = 15 * 60 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
SLOT_HOURS = 0.25
MEASUREMENT = "zone_aggregate"


class Source(StrEnum):
    """Whose raw series an aggregate stands for."""

    HOUSEHOLD = "household"
    CHARGING = "charging"


@dataclass(frozen=True)
class RawSeries:
    """The raw samples of one asset over a window.

    Attributes
    ----------
    asset_id
        the asset (never leaves this module: aggregates carry only the zone).
    zone
        the zone tag of its series (``""`` when it has none).
    power
        (time [ns], ``power_w`` [W]) samples, any order.
    connected
        (time [ns], 1.0 or 0.0) samples of ``connected`` (chargers), any order.
    """

    asset_id: str
    zone: str
    power: Sequence[tuple[int, float]]
    connected: Sequence[tuple[int, float]] = ()


@dataclass(frozen=True)
class SlotAggregate:
    """One zone's aggregate of one source in one 15-minute slot (see the module docstring)."""

    zone: str
    source: Source
    slot_ns: int
    energy_wh: float
    peak_w: float
    assets: int
    sessions_active: int = 0

    def to_point(self) -> Point:
        """The aggregate as a ``zone_aggregate`` point (docs/storage.md)."""
        fields: dict[str, float | int | bool | str] = {
            "energy_wh": self.energy_wh,
            "peak_w": self.peak_w,
            "assets": float(self.assets),
        }
        if self.source is Source.CHARGING:
            fields["sessions_active"] = float(self.sessions_active)
        return Point(
            MEASUREMENT, {"zone": self.zone, "source": self.source.value}, fields, self.slot_ns
        )


def aggregate(source: Source, raw: Iterable[RawSeries]) -> list[SlotAggregate]:
    """Aggregate raw series per zone and slot, sorted by (zone, slot).

    Parameters
    ----------
    source
        what the series are (household meters or chargers).
    raw
        one entry per asset; an asset given twice counts twice.

    Returns
    -------
    list[SlotAggregate]
        one per (zone, slot) in which at least one asset reported power.
    """
    energy: dict[tuple[str, int], float] = defaultdict(float)
    minutes: dict[tuple[str, int], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    assets: dict[tuple[str, int], int] = defaultdict(int)
    active: dict[tuple[str, int], int] = defaultdict(int)
    for series in raw:
        for slot, mean in _means(series.power, SLOT_NS).items():
            key = (series.zone, slot)
            energy[key] += mean * SLOT_HOURS
            assets[key] += 1
        for minute, mean in _means(series.power, MINUTE_NS).items():
            minutes[(series.zone, minute - minute % SLOT_NS)][minute] += mean
        connected_slots = {ts - ts % SLOT_NS for ts, value in series.connected if value >= 0.5}
        for slot in connected_slots:
            active[(series.zone, slot)] += 1
    return [
        SlotAggregate(
            zone=zone,
            source=source,
            slot_ns=slot,
            energy_wh=energy[(zone, slot)],
            peak_w=max(minutes[(zone, slot)].values()),
            assets=assets[(zone, slot)],
            sessions_active=active.get((zone, slot), 0) if source is Source.CHARGING else 0,
        )
        for zone, slot in sorted(energy)
    ]


def from_points(
    points: Mapping[str, Sequence[tuple[int, float]]],
    zone: str,
    source: Source,
) -> list[SlotAggregate]:
    """Aggregates read back from the store: field name → (slot [ns], value) pairs of one zone."""
    by_slot: dict[int, dict[str, float]] = defaultdict(dict)
    for field, values in points.items():
        for ts, value in values:
            by_slot[ts][field] = value
    return [
        SlotAggregate(
            zone=zone,
            source=source,
            slot_ns=slot,
            energy_wh=fields.get("energy_wh", 0.0),
            peak_w=fields.get("peak_w", 0.0),
            assets=int(fields.get("assets", 0)),
            sessions_active=int(fields.get("sessions_active", 0)),
        )
        for slot, fields in sorted(by_slot.items())
        if "energy_wh" in fields and "assets" in fields
    ]


def _means(samples: Iterable[tuple[int, float]], width_ns: int) -> dict[int, float]:
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    for ts, value in samples:
        bucket = ts - ts % width_ns
        sums[bucket] += value
        counts[bucket] += 1
    return {bucket: sums[bucket] / counts[bucket] for bucket in sums}
