"""The validated telemetry reading every adapter produces and the ingest pipeline consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

FieldValue = float | int | bool | str


class AssetKind(StrEnum):
    """What an asset is; also the `kind` tag of the `telemetry` measurement."""

    PV = "pv"
    WIND = "wind"
    METER = "meter"
    CHARGER = "charger"


class ChargerType(StrEnum):
    """Where a charger is; sets the session defaults (energy need, departure)."""

    HOME = "home"
    WORKPLACE = "workplace"
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted observation of one asset at one instant.

    A plain dataclass rather than a pydantic model: adapters build tens of thousands per second,
    and validation has already happened by the time one exists.

    Attributes
    ----------
    asset_id
        pseudonymous, stable id of the asset (e.g. ``meter-0412``).
    kind
        the asset's kind.
    zone
        id of the zone the asset belongs to, if any.
    ts
        instant of the observation, timezone-aware UTC.
    fields
        values with their unit in the name (``power_w``, ``energy_wh``, ...).
    """

    asset_id: str
    kind: AssetKind
    zone: str | None
    ts: datetime
    fields: Mapping[str, FieldValue]

    def __post_init__(self) -> None:
        """Refuse a naive or non-UTC ``ts`` (times inside are aware UTC)."""
        if self.ts.tzinfo is None or self.ts.utcoffset() != UTC.utcoffset(None):
            raise ValueError("Reading.ts must be timezone-aware UTC")
