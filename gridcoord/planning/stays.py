"""Departure defaults learned per charger type from completed sessions.

A charger that does not report a departure gets its type's default (`SessionDefaults`). For
types with a fixed stay (no ``departure_local``; public charge points by default: plug-in +
2 h) the configured stay is a guess the city can correct: `StayLearner` keeps the stays of the
last completed sessions per type and, once it has ``min_sessions`` of them, offers their
median instead, bounded to [`MIN_STAY_H`, `MAX_STAY_H`]. Types with a local departure time
("home until 07:00") keep their rule: the stay there depends on the plug-in time, which a
median of stays forgets. The planner still hedges a default departure early (`planner._hedged`).

Completed stays are stored (measurement ``stay``, field ``stay_h``, tags ``charger_type`` and
``asset_id``) and read back on start (`gridcoord.planning.warmup`), so a restart does not forget.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from datetime import datetime

from adapters.contract.reading import ChargerType
from gridcoord.storage.points import Point
from gridcoord.timegrid import as_utc

# Stays kept per type (a moving window: the city's habits change with the seasons).
KEPT_STAYS = 500
MIN_STAY_H = 0.25
MAX_STAY_H = 48.0
STAY_MEASUREMENT = "stay"


class StayLearner:
    """Median stay per charger type over the last completed sessions.

    Parameters
    ----------
    min_sessions : int
        Stays of a type needed before its median is offered.
    """

    def __init__(self, min_sessions: int) -> None:
        self._min = max(1, min_sessions)
        self._stays: dict[ChargerType, deque[float]] = {}

    def add(self, charger_type: ChargerType, stay_h: float) -> None:
        """Record one completed stay [h]; stays outside the bounds are clipped to them."""
        if math.isnan(stay_h):  # says nothing
            return
        stays = self._stays.setdefault(charger_type, deque(maxlen=KEPT_STAYS))
        stays.append(min(MAX_STAY_H, max(MIN_STAY_H, stay_h)))

    def extend(self, charger_type: ChargerType, stays_h: Iterable[float]) -> int:
        """Record stored stays [h], oldest first; returns how many."""
        count = 0
        for stay in stays_h:
            self.add(charger_type, stay)
            count += 1
        return count

    def median_h(self, charger_type: ChargerType) -> float | None:
        """The median stay of a type [h], or None until ``min_sessions`` are known."""
        stays = self._stays.get(charger_type)
        if stays is None or len(stays) < self._min:
            return None
        return float(statistics.median(stays))

    def counts(self) -> dict[str, int]:
        """Stays known per type."""
        return {t.value: len(v) for t, v in self._stays.items()}


def stay_point(charger_id: str, charger_type: ChargerType, ended: datetime, stay_h: float) -> Point:
    """The stored record of one completed stay (no vehicle or user identity)."""
    ts = as_utc(ended)
    return Point(
        STAY_MEASUREMENT,
        {"charger_type": charger_type.value, "asset_id": charger_id},
        {"stay_h": float(stay_h)},
        int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000,
    )
