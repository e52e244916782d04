"""A store wrapper that reports how long each write takes (for the metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from adapters.contract.reading import Reading
from gridcoord.storage.base import Store
from gridcoord.storage.points import Point


class TimedStore:
    """Delegates to ``inner``; ``observe(seconds)`` after every write attempt, failed or not.

    Parameters
    ----------
    inner
        the real store.
    observe
        receives the wall time of one write [s].
    """

    def __init__(self, inner: Store, observe: Callable[[float], None]) -> None:
        self._inner = inner
        self._observe = observe

    def write(self, points: Sequence[Point]) -> None:
        began = time.perf_counter()
        try:
            self._inner.write(points)
        finally:
            self._observe(time.perf_counter() - began)

    def write_readings(self, readings: Sequence[Reading]) -> None:
        began = time.perf_counter()
        try:
            self._inner.write_readings(readings)
        finally:
            self._observe(time.perf_counter() - began)

    def series(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[datetime, float]]:
        return self._inner.series(measurement, field, tags, start, end)

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
        return self._inner.bucket_totals(
            measurement, field, tags, start, end, width, exclude_assets
        )

    def close(self) -> None:
        self._inner.close()
