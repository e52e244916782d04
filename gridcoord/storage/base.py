"""The interface every store implements, and the errors that tell the pipeline what to do."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from adapters.contract.reading import Reading
from gridcoord.storage.points import Point


class StoreUnavailable(Exception):
    """The store cannot take writes right now (down, timeout, 5xx): keep the data, retry later."""


class StoreRejected(Exception):
    """The store refused some data itself (4xx other than auth/throttling): retrying cannot help.

    Every point of the batch the store *could* take has been stored before this is raised
    (InfluxDB 1.x stores the good points of a batch and refuses the rest; the other stores
    split the batch to the same effect), so the caller never retries the batch: it keeps
    `rejected` aside for an operator.

    Attributes
    ----------
    rejected
        the refused points (all of the batch when the store cannot tell which).
    """

    def __init__(self, message: str, rejected: Sequence[Point] = ()) -> None:
        super().__init__(message)
        self.rejected = list(rejected)


@dataclass(frozen=True)
class Deletion:
    """Points to delete: those of one measurement carrying all ``tags``, start ≤ time < end.

    Attributes
    ----------
    measurement
        e.g. ``telemetry``.
    tags
        exact tag values the points carry (e.g. ``{"asset_id": "meter-0412"}``); at least one,
        so a deletion never selects a whole measurement by accident.
    start
        first instant deleted, timezone-aware.
    end
        first instant kept, timezone-aware.
    """

    measurement: str
    tags: Mapping[str, str]
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        """Refuse a deletion without tags or with an empty time range."""
        if not self.tags:
            raise ValueError("a deletion names at least one tag")
        if self.end <= self.start:
            raise ValueError("a deletion needs start < end")


class Store(Protocol):
    """A time-series store for points of DESIGN 3.4."""

    def write(self, points: Sequence[Point]) -> None:
        """Write all points or raise; never a partial silent success.

        Raises
        ------
        StoreUnavailable
            transient failure, the caller keeps the points and retries.
        StoreRejected
            the data was refused; retrying the same points cannot succeed.
        """
        ...

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write telemetry readings as `telemetry` points, with `write`'s guarantees.

        The ingest hot path: stores build their own form straight from each reading (line
        protocol, rows) instead of going through a `Point` per reading; `StoreRejected`
        still names the refused ones as points (`reading_to_point`).

        Raises
        ------
        StoreUnavailable
            as `write`.
        StoreRejected
            as `write`.
        """
        ...

    def series(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[datetime, float]]:
        """Return (UTC time, value) pairs of one numeric field, oldest first.

        Parameters
        ----------
        measurement
            e.g. ``telemetry``.
        field
            e.g. ``power_w``; booleans read as 0.0/1.0, text values are left out.
        tags
            only points carrying all of these tags (other tags may differ).
        start
            first instant included, timezone-aware.
        end
            first instant excluded, timezone-aware.

        Raises
        ------
        StoreUnavailable
            the store cannot be read right now.
        StoreRejected
            the store cannot serve this read (e.g. no InfluxQL endpoint).
        """
        ...

    def bucket_totals(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
        width: timedelta,
        exclude_assets: Collection[str] = (),
    ) -> list[tuple[datetime, float]]:
        """Per time bucket, the sum over assets of each asset's mean of one numeric field.

        What the planner's histories hold (the city's total PV, wind or load per minute or
        slot), computed in the store so that the answer is one row per bucket however many
        assets there are: a bounded read of ``(end - start) / width`` rows.

        Parameters
        ----------
        measurement
            e.g. ``telemetry``.
        field
            a numeric field, e.g. ``power_w`` (InfluxDB refuses a mean of text or
            booleans with `StoreRejected`; the embedded store leaves them out).
        tags
            only points carrying all of these tags (e.g. ``{"kind": "pv"}``).
        start
            first instant included, timezone-aware.
        end
            first instant excluded, timezone-aware.
        width
            bucket width; buckets start at whole multiples of it since the Unix epoch
            (InfluxQL's ``GROUP BY time()`` alignment).
        exclude_assets
            ``asset_id`` tags left out (e.g. the zone meters among meters).

        Returns
        -------
        list[tuple[datetime, float]]
            (bucket start [UTC], total) pairs, oldest first; buckets without points omitted.
            An asset without a point in a bucket adds nothing to it.

        Raises
        ------
        StoreUnavailable
            the store cannot be read right now.
        StoreRejected
            the store cannot serve this read (e.g. no InfluxQL endpoint).
        """
        ...

    def oldest(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        end: datetime,
        group_by: Sequence[str],
    ) -> list[tuple[dict[str, str], datetime]]:
        """The series holding points of one field before ``end``, with their oldest point.

        What the retention job (`gridcoord.privacy.retention`) asks to find the raw series it
        has to aggregate and delete, without reading them whole.

        Parameters
        ----------
        measurement
            e.g. ``telemetry``.
        field
            a field the points carry, e.g. ``power_w``.
        tags
            only points carrying all of these tags (e.g. ``{"kind": "meter"}``).
        end
            first instant not looked at, timezone-aware.
        group_by
            tag keys that identify a series here (e.g. ``("asset_id", "zone")``).

        Returns
        -------
        list[tuple[dict[str, str], datetime]]
            per distinct combination of the ``group_by`` tags (a missing tag as ``""``), the
            time of its oldest point [UTC]; in no particular order.

        Raises
        ------
        StoreUnavailable
            the store cannot be read right now.
        StoreRejected
            the store cannot serve this read (e.g. no InfluxQL endpoint).
        """
        ...

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        """Write ``points``, then delete what ``deletions`` select.

        The points are stored before anything is deleted (in one transaction where the store
        has them: the embedded store), so a crash in between leaves data twice, never lost.

        Raises
        ------
        StoreUnavailable
            transient failure: nothing, or only the points, may have been done.
        StoreRejected
            the store cannot delete (a server without a delete API) or refused the points.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
