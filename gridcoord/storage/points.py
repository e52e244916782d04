"""A storage-neutral time-series point and its InfluxDB line-protocol form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gridcoord.reading import FieldValue, Reading


@dataclass(frozen=True, slots=True)
class Point:
    """One row of a measurement (DESIGN 3.4): tags are low-cardinality identities only.

    Attributes:
        measurement: ``telemetry``, ``setpoint`` or ``plan``.
        tags: identity of the series (asset_id, kind, zone, schedule_id).
        fields: the values.
        ts_ns: UTC instant in nanoseconds since the Unix epoch.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts_ns: int

    def to_line(self) -> str:
        """Return the point in InfluxDB line protocol (nanosecond precision)."""
        head = _escape_key(self.measurement, measurement=True)
        for key in sorted(self.tags):
            value = self.tags[key]
            if value:
                head += f",{_escape_key(key)}={_escape_key(value)}"
        fields = ",".join(
            f"{_escape_key(key)}={_format_field(value)}" for key, value in self.fields.items()
        )
        return f"{head} {fields} {self.ts_ns}"


def reading_to_point(reading: Reading) -> Point:
    """Map a reading onto the `telemetry` measurement of DESIGN 3.4."""
    tags = {"asset_id": reading.asset_id, "kind": reading.kind.value}
    if reading.zone:
        tags["zone"] = reading.zone
    return Point("telemetry", tags, reading.fields, datetime_to_ns(reading.ts))


def datetime_to_ns(ts: datetime) -> int:
    """Convert an aware datetime to integer nanoseconds since the epoch without float rounding."""
    seconds = int(ts.timestamp())
    return seconds * 1_000_000_000 + ts.microsecond * 1000


def _escape_key(text: str, *, measurement: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    return text if measurement else text.replace("=", "\\=")


def _format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # Stored as float so a field never changes type between writes (InfluxDB refuses that).
        return repr(float(value))
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
