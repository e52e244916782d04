"""A store wrapper that reports how long each write takes (for the metrics).

Only `write`, `write_readings` (telemetry) and `replace` (the retention job's write) are
wrapped; every other method of the `Store` protocol is handed to the inner store as it is,
looked up by name from the protocol itself, so a method added to `Store` needs no code here
(tests/unit/gridcoord/storage/test_timed.py checks each one arrives).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from adapters.contract.reading import Reading
from gridcoord.storage.base import Deletion, Store
from gridcoord.storage.points import Point

#: The public methods of the `Store` protocol (what `TimedStore` passes on).
STORE_METHODS = frozenset(
    name for name, value in vars(Store).items() if not name.startswith("_") and callable(value)
)


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
        """Write through the inner store, timing the attempt; see `Store.write`."""
        began = time.perf_counter()
        try:
            self._inner.write(points)
        finally:
            self._observe(time.perf_counter() - began)

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write readings through the inner store, timed; see `Store.write_readings`."""
        began = time.perf_counter()
        try:
            self._inner.write_readings(readings)
        finally:
            self._observe(time.perf_counter() - began)

    def __getattr__(self, name: str) -> Any:
        """The inner store's method `name` for every `Store` method not wrapped here.

        Python calls this only for names the class lacks; anything outside the protocol (a
        typo, a private attribute of the inner store) stays an AttributeError.
        """
        if name in STORE_METHODS:
            return getattr(self._inner, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        """Write and delete through the inner store, timing the attempt; see `Store.replace`."""
        began = time.perf_counter()
        try:
            self._inner.replace(points, deletions)
        finally:
            self._observe(time.perf_counter() - began)
