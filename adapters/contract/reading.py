"""The validated telemetry reading every adapter produces and the ingest pipeline consumes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import overload

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


# What a reading's series is: (asset_id, kind, zone), one tuple per asset, shared by its rows.
Series = tuple[str, AssetKind, str | None]
# One reading as a row: its series, its instant [ns since the Unix epoch, whole µs], its fields.
Row = tuple[Series, int, Mapping[str, FieldValue]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReadingRows(Sequence[Reading]):
    """Validated readings kept as rows, the ingest hot path's form; a `Sequence[Reading]`.

    The typed decoder validates a batch while parsing it; a `Reading` (a frozen dataclass and
    a `datetime` per reading) then costs more than the parse. Rows carry the same content —
    the series tuple shared by an asset's readings, the instant as integer nanoseconds, the
    fields — and the stores build their form (line protocol, SQLite rows) straight from them.
    Whoever asks for a `Reading` (planning's observations, the spool, a refused write) gets
    one built on demand, equal to the one the general path builds from the same payload.

    Parameters
    ----------
    rows
        already validated: fields within the contract, instants whole microseconds.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    @classmethod
    def of(cls, readings: Iterable[Reading]) -> ReadingRows:
        """The rows of readings, in order (rows as they are for `ReadingRows`)."""
        if type(readings) is ReadingRows:
            return readings
        return cls([row_of(reading) for reading in readings])

    def __len__(self) -> int:
        """The number of readings."""
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> ReadingRows: ...

    def __getitem__(self, index: int | slice) -> Reading | ReadingRows:
        """The reading at `index`, built now (a slice: rows again)."""
        if isinstance(index, slice):
            return ReadingRows(self.rows[index])
        (asset_id, kind, zone), ts_ns, fields = self.rows[index]
        return Reading(asset_id, kind, zone, ns_to_datetime(ts_ns), fields)

    def __iter__(self) -> Iterator[Reading]:
        """Each reading, built as it is reached."""
        for (asset_id, kind, zone), ts_ns, fields in self.rows:
            yield Reading(asset_id, kind, zone, ns_to_datetime(ts_ns), fields)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same readings (a list from the general path)."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        """The readings it holds."""
        return f"ReadingRows({list(self)!r})"


def row_of(reading: Reading) -> Row:
    """A reading as a row (its instant in integer nanoseconds, exact)."""
    return (
        (reading.asset_id, reading.kind, reading.zone),
        datetime_to_ns(reading.ts),
        reading.fields,
    )


def datetime_to_ns(ts: datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch, without float rounding."""
    if ts.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_to_datetime(ts_ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime, exact to the microsecond."""
    return _EPOCH + timedelta(microseconds=int(ts_ns) // 1000)
