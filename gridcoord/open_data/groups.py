"""Minimum group size: a zone with too few households is merged into its parent or suppressed.

Pure. Per slot, zones are taken deepest first; a zone whose (already merged) group has fewer
than ``min_size`` households hands everything it has to its parent zone; a root zone that is
still below the minimum is suppressed, and its numbers are published nowhere. Every published
row is therefore computed from at least ``min_size`` households.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Group:
    """The zones one published row stands for, and their summed numbers.

    Attributes
    ----------
    zone
        the zone the row is published under (the highest of the merged zones).
    households
        households that reported in the slot, summed over the merged zones.
    values
        each quantity summed over the merged zones.
    merged
        the zones below `zone` merged into it, sorted.
    """

    zone: str
    households: int = 0
    values: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    merged: list[str] = field(default_factory=list)


def depth(zone: str, parents: Mapping[str, str | None]) -> int:
    """Number of ancestors of a zone (0 for a root; zones not in ``parents`` are roots)."""
    steps, cursor = 0, parents.get(zone)
    while cursor is not None and steps <= len(parents):
        steps += 1
        cursor = parents.get(cursor)
    return steps


def group(
    parents: Mapping[str, str | None],
    households: Mapping[str, int],
    values: Mapping[str, Mapping[str, float]],
    min_size: int,
) -> tuple[list[Group], dict[str, str | None]]:
    """Merge zones below ``min_size`` households into their parents; suppress small roots.

    Parameters
    ----------
    parents
        zone id → parent zone id (None for a root).
    households
        zone id → households that contributed in the slot (zones absent count 0).
    values
        zone id → quantity name → value of the zone's own assets.
    min_size
        fewest households a published group may have.

    Returns
    -------
    tuple[list[Group], dict[str, str | None]]
        the published groups sorted by zone, and for every zone seen the zone of the group
        it was published in (None when suppressed).
    """
    zones = set(parents) | set(households) | set(values)
    order = sorted(zones, key=lambda z: (-depth(z, parents), z))
    pending: dict[str, Group] = {z: Group(z) for z in zones}
    members: dict[str, list[str]] = {z: [z] for z in zones}
    for zone in zones:
        pending[zone].households = households.get(zone, 0)
        for name, value in values.get(zone, {}).items():
            pending[zone].values[name] += value
    published: list[Group] = []
    landed: dict[str, str | None] = {}
    for zone in order:
        own = pending.pop(zone)
        if own.households >= min_size:
            own.merged = sorted(m for m in members[zone] if m != zone)
            published.append(own)
            for member in members[zone]:
                landed[member] = zone
            continue
        parent = parents.get(zone)
        if parent is None or parent not in pending:
            for member in members[zone]:
                landed[member] = None
            continue
        target = pending[parent]
        target.households += own.households
        for name, value in own.values.items():
            target.values[name] += value
        members[parent] += members[zone]
    return sorted(published, key=lambda g: g.zone), landed
