"""The open-data tables: their columns (documented in docs/data-protection.md) and rows.

Deterministic: rows sorted, numbers in fixed notation with a fixed number of decimals, times
as RFC 3339 UTC with an explicit ``+00:00`` offset; nothing depends on the wall clock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.contract.reading import AssetKind, ChargerType
from gridcoord.config import Config
from gridcoord.open_data.collect import Collected
from gridcoord.open_data.groups import Group, group
from gridcoord.storage.points import ns_to_datetime


@dataclass(frozen=True)
class Column:
    """One CSV column: its name, unit and meaning."""

    name: str
    unit: str
    description: str


ZONE_COLUMNS = (
    Column("slot_start", "RFC 3339, UTC", "start of the 15-minute slot"),
    Column("zone", "", "zone (transformer or feeder) the row is published under"),
    Column("merged_zones", "", "zones below it merged in for too few households, ';'-separated"),
    Column("households", "count", "household meters that reported in the slot (≥ the minimum)"),
    Column("renewable_generation_kwh", "kWh", "PV and wind energy generated in the slot"),
    Column("household_energy_kwh", "kWh", "energy consumed by the households"),
    Column("ev_energy_kwh", "kWh", "energy delivered by the chargers"),
    Column("renewable_share", "0..1", "renewable generation over consumption, capped at 1"),
    Column("peak_load_kw", "kW", "households' and chargers' peak; merged rows sum the peaks"),
    Column("charging_sessions_active", "count", "chargers connected to a vehicle in the slot"),
)
CHARGE_POINT_COLUMNS = (
    Column("charge_point_id", "", "pseudonymous id of a public charge point"),
    Column("zone", "", "zone it is connected in"),
    Column("max_power_kw", "kW", "maximum power"),
    Column("power_type", "", "AC_1_PHASE, AC_3_PHASE or DC"),
    Column("connectors", "count", "connectors that can charge at the same time"),
)
STATUS_COLUMNS = (
    Column("slot_start", "RFC 3339, UTC", "start of the 15-minute slot"),
    Column("charge_point_id", "", "pseudonymous id of a public charge point"),
    Column("status", "", "OCCUPIED, AVAILABLE, or UNKNOWN when it did not report"),
    Column("renewable_share", "0..1", "renewable share of the group its zone is published in"),
)


@dataclass(frozen=True)
class Tables:
    """The export's tables as CSV text, and what was suppressed."""

    zones: str
    charge_points: str
    charge_point_status: str
    suppressed_rows: int


def build(collected: Collected, config: Config, slots: Sequence[int]) -> Tables:
    """All tables for the given slot starts [ns]."""
    min_size = config.privacy.min_group_size
    parents = {z.id: z.parent for z in config.zones}
    zone_rows: list[list[str]] = []
    suppressed = 0
    share_of: dict[tuple[int, str], str] = {}
    for slot in slots:
        numbers = collected.zones.get(slot, {})
        groups, landed = group(
            parents,
            {z: n.households for z, n in numbers.items()},
            {z: dict(n.values) for z, n in numbers.items()},
            min_size,
        )
        suppressed += sum(1 for z, at in landed.items() if at is None and z in numbers)
        stamp = _time(slot)
        shares = {g.zone: _share(g) for g in groups}
        city = Group("", sum(n.households for n in numbers.values()))
        for n in numbers.values():
            for name, value in n.values.items():
                city.values[name] += value
        city_share = _share(city) if city.households >= min_size else ""
        for zone, at in landed.items():
            share_of[(slot, zone)] = shares[at] if at is not None else city_share
        for g in groups:
            v = g.values
            zone_rows.append(
                [
                    stamp,
                    g.zone,
                    ";".join(g.merged),
                    str(g.households),
                    _kwh(v.get("renewable_wh", 0.0)),
                    _kwh(v.get("household_wh", 0.0)),
                    _kwh(v.get("ev_wh", 0.0)),
                    _share(g),
                    _kwh(v.get("household_peak_w", 0.0) + v.get("ev_peak_w", 0.0)),
                    str(round(v.get("sessions_active", 0.0))),
                ]
            )
    public = sorted(
        (a for a in config.assets if a.kind is AssetKind.CHARGER and a.charger is not None
         and a.charger.type is ChargerType.PUBLIC),
        key=lambda a: a.id,
    )  # fmt: skip
    points = [
        [a.id, a.zone or "", _fixed(a.rated_kw, 1),
         _power_type(a.rated_kw, a.charger.phases if a.charger else 3), "1"]
        for a in public
    ]  # fmt: skip
    status_rows = []
    for slot in slots:
        for a in public:
            seen = collected.charger_status.get((slot, a.id))
            state = "UNKNOWN" if seen is None else ("OCCUPIED" if seen else "AVAILABLE")
            status_rows.append([_time(slot), a.id, state, share_of.get((slot, a.zone or ""), "")])
    return Tables(
        zones=_csv(ZONE_COLUMNS, zone_rows),
        charge_points=_csv(CHARGE_POINT_COLUMNS, points),
        charge_point_status=_csv(STATUS_COLUMNS, status_rows),
        suppressed_rows=suppressed,
    )


def _share(g: Group) -> str:
    demand = g.values.get("household_wh", 0.0) + g.values.get("ev_wh", 0.0)
    if demand <= 0:
        return ""
    return _fixed(min(1.0, g.values.get("renewable_wh", 0.0) / demand), 4)


def _power_type(rated_kw: float, phases: int) -> str:
    if rated_kw > 43.5:  # beyond AC charging's 43 kW
        return "DC"
    return "AC_1_PHASE" if phases == 1 else "AC_3_PHASE"


def _kwh(wh: float) -> str:
    return _fixed(wh / 1000.0, 3)


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return f"{0.0:.{decimals}f}" if float(text) == 0 else text  # never "-0.000"


def _time(slot_ns: int) -> str:
    return ns_to_datetime(slot_ns).isoformat()


def _csv(columns: Sequence[Column], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    writer.writerows(rows)  # callers give them in order: slot, then id
    return buffer.getvalue()
