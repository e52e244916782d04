"""Deterministic smooth noise: the same (seed, stream, time) always gives the same value.

The simulated city is a function of its seed and the time, not of the order in which it is
asked, so a demo at any speed, restarted or replayed, sees the same weather and the same cars.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def uniform(seed: int, stream: str, index: int) -> float:
    """A pseudo-random number in [0, 1) fixed by (seed, stream, index)."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def stream_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed for numpy's generator derived from the city seed and names (stable)."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def smooth(seed: int, stream: str, instant: datetime, period: timedelta) -> float:
    """Value noise in [0, 1): random knots every ``period``, cosine-interpolated between them."""
    position = (instant - _EPOCH) / period
    knot = math.floor(position)
    fraction = position - knot
    weight = (1.0 - math.cos(math.pi * fraction)) / 2.0
    return (1.0 - weight) * uniform(seed, stream, knot) + weight * uniform(seed, stream, knot + 1)
