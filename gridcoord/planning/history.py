"""Bounded histories of the city's totals (PV, wind, non-EV load) for forecasts and their error.

Readings arrive asset by asset; the forecasts want the *city's* total per kind over time. A
running total per kind (latest value of each asset, summed) is updated in O(1) per reading and
recorded into fixed-width time buckets (sum and count, so a bucket's value is the mean total
over it). Old buckets are dropped, so memory is bounded by the window, not by the reading rate.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from gridcoord.timegrid import as_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RunningTotal:
    """The sum of the latest value of each member (e.g. each PV plant's output) [kW]."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self.total = 0.0

    def update(self, member: str, value: float) -> float:
        """Replace one member's value; return the new total [kW]."""
        self.total += value - self._values.get(member, 0.0)
        self._values[member] = value
        if len(self._values) % 64 == 0:
            # Re-sum now and then so floating-point drift of the running sum cannot build up.
            self.total = math.fsum(self._values.values())
        return self.total

    @property
    def members(self) -> int:
        """How many members have a value."""
        return len(self._values)


class BucketSeries:
    """Mean of a quantity per fixed-width time bucket over a sliding window.

    Parameters
    ----------
    width
        bucket width (a minute for PV and wind, a slot for load).
    keep
        window kept; buckets older than this before the newest are dropped.
    """

    def __init__(self, width: timedelta, keep: timedelta) -> None:
        self._width = width
        self._keep_buckets = max(1, keep // width)
        self._sums: dict[int, list[float]] = {}
        self._newest = -(2**62)

    def add(self, ts: datetime, value: float) -> None:
        """Record one observation at ``ts`` [UTC]; ignored when not finite or too old."""
        if not math.isfinite(value):
            return
        index = (as_utc(ts) - _EPOCH) // self._width
        if index <= self._newest - self._keep_buckets:
            return
        cell = self._sums.get(index)
        if cell is None:
            self._sums[index] = [value, 1.0]
        else:
            cell[0] += value
            cell[1] += 1.0
        if index > self._newest:
            self._newest = index
            if len(self._sums) > self._keep_buckets + 16:
                cutoff = self._newest - self._keep_buckets
                for old in [i for i in self._sums if i <= cutoff]:
                    del self._sums[old]

    def series(self) -> list[tuple[datetime, float]]:
        """(bucket start, mean) pairs, oldest first [UTC, kW]."""
        return [
            (_EPOCH + i * self._width, cell[0] / cell[1]) for i, cell in sorted(self._sums.items())
        ]

    def __len__(self) -> int:
        """Number of slots held."""
        return len(self._sums)
