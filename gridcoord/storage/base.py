"""The interface every store implements, and the errors that tell the pipeline what to do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gridcoord.storage.points import Point


class StoreUnavailable(Exception):
    """The store cannot take writes right now (down, timeout, 5xx): keep the data, retry later."""


class StoreRejected(Exception):
    """The store refused the data itself (4xx other than auth/throttling): retrying cannot help."""


class Store(Protocol):
    """A time-series store for points of DESIGN 3.4."""

    def write(self, points: Sequence[Point]) -> None:
        """Write all points or raise; never a partial silent success.

        Raises:
            StoreUnavailable: transient failure, the caller keeps the points and retries.
            StoreRejected: the data was refused; retrying the same points cannot succeed.
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
        """Return (UTC time, value) pairs of one field for points matching all tags, in order."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
