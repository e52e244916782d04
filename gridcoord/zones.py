"""Walking the zone tree: a zone and every zone above it (transformer, feeder, ...).

A charger's draw counts against its own zone and each zone above it; so do its floors,
its setpoints and a simulated load. Every such walk goes through `ancestors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


def ancestors(zone: str | None, parents: Mapping[str, str | None]) -> list[str]:
    """The zone itself and every zone above it, bottom up.

    Parameters
    ----------
    zone : str or None
        Where to start; None (an asset in no zone) gives an empty chain.
    parents : mapping of str to str or None
        Zone id → its parent's id (None for a root), for every known zone.

    Returns
    -------
    list of str
        ``[zone, parent, grandparent, ...]``; the walk stops at a zone ``parents`` does not
        know and at a zone already visited, so a malformed tree cannot loop forever (the
        configuration check reports both).
    """
    chain: list[str] = []
    cursor = zone
    while cursor is not None and cursor in parents and cursor not in chain:
        chain.append(cursor)
        cursor = parents[cursor]
    return chain


class ZoneNode(Protocol):
    """Anything with a zone id and its parent's (config zones, zone limits, city layouts)."""

    @property
    def id(self) -> str:
        """The zone's id."""
        ...

    @property
    def parent(self) -> str | None:
        """The id of the zone above it; None for a root."""
        ...


def parents_of(zones: Iterable[ZoneNode]) -> dict[str, str | None]:
    """Zone id → parent id, the mapping `ancestors` walks."""
    return {z.id: z.parent for z in zones}
