"""The safety layer of dispatch (DESIGN 4): whatever the optimizer said, no limit is exceeded.

`apply_limits` turns the optimizer's per-charger power for the current slot into setpoints that
respect, in layers a lower one cannot override:

1. each charger's rating: a setpoint lies in [0, ``max_kw``];
2. fixed powers: a *stale* charger (telemetry older than its limit) gets its configured safe
   power — we cannot know what it draws, so it is held at the power it falls back to anyway;
3. guaranteed minima (§14a EnWG, e.g. 4.2 kW) for *connected* chargers (a car plugged in, by
   the charger's ``connected`` telemetry): the floor a zone cut can never take away. §14a
   limits how far a grid operator may *dim* a device under congestion; it is no obligation to
   draw. So with ``minimum="when_limited"`` (the default, ``planning.guaranteed_minimum``) a
   connected charger is raised to and held at its ``guaranteed_kw`` only under a zone that
   *binds* in this dispatch — its setpoints, with every connected charger in it not yet held
   raised to its minimum, exceed its headroom (a stale zone always binds). Elsewhere the
   plan's value stands, even below the minimum: a plan that moves a car's charging to later
   (the customer's smart-charging agreement) is not dimming. Zones are judged children before
   parents, so a raise in a child counts in its parent's sum (raising only grows sums: one
   pass reaches the fixed point), and a zone that does not bind stays within its limit with
   every charger in it raised, so a parent that binds later can raise them without a cut.
   ``minimum="always"`` is the old rule: every connected charger at least at its minimum. A
   charger without a car gets no minimum: its headroom goes to the cars that are there;
4. zones, bottom-up through the tree: the setpoints of all chargers in a zone and the zones
   below it sum to no more than the zone's EV headroom for the slot. A zone whose meter is
   stale is assumed at its limit: no headroom beyond the floors, which it keeps (an unknown
   load is not a measured shortage; the stale meter is its own alarm). The part of each
   setpoint above its floor is cut, which never raises any other setpoint, so a zone
   satisfied lower in the tree stays satisfied. The cut goes by *rank* (`cut_rank`, higher =
   cut later): every rank-0 setpoint is scaled down (proportionally within the rank) before a
   rank-1 one is touched, and so on — cars with the most slack give way first, a short stay
   is cut last.

**When the floors alone exceed a zone** (connected chargers' minima plus stale chargers' safe
power above its headroom), **the zone limit wins**: every setpoint above its floor drops to its
floor, the minima are scaled down by a common factor until the zone fits (if even the stale
chargers' safe powers exceed it, they are scaled too, minima then at 0), and the result lists
the zone in ``shortfalls`` — an alarm for grid planning (the transformer is too small for its
§14a commitments), never silent. So no setpoint ever exceeds its charger's rating, and the
setpoints under every zone sum to at most its limit, whatever the input. ``rules`` counts the
zones where each rule bit (``zone_cut``: flexible power cut; ``minima_scaled``: the zone limit
won over guaranteed minima).

Input is distrusted: NaN, infinite, negative or huge requests and ids the plan names but the
charger list does not are handled (NaN and negative become 0, +inf the charger maximum, unknown
ids are listed in ``ignored_ids``). Applying the layer to its own output changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from gridcoord.zones import ancestors, parents_of


class LimitsError(ValueError):
    """The charger and zone topology is invalid: a configuration error, not a runtime one."""


class Limiter(StrEnum):
    """What decided a charger's setpoint, for the run's report and the audit trail."""

    PLAN = "plan"  # the optimizer's value, within every limit
    CHARGER_MAX = "charger_max"  # cut to the charger's rating
    INVALID = "invalid"  # NaN or negative request, treated as 0
    STALE = "stale"  # stale telemetry: held at its safe power
    GUARANTEED = "guaranteed"  # raised to (or held at) its guaranteed minimum
    ZONE = "zone"  # cut to fit a zone's headroom (see ``zone_of_cut``)


@dataclass(frozen=True, slots=True)
class ChargerLimit:
    """The limits of one charger.

    Attributes
    ----------
    id
        charger asset id.
    zone
        id of the zone it is connected in, or None when it sits under no zone.
    max_kw
        rating [kW].
    safe_power_kw
        what it falls back to when stale or its setpoint expired [kW].
    guaranteed_kw
        minimum that is never cut (§14a EnWG), 0 for none [kW].
    """

    id: str
    zone: str | None
    max_kw: float
    safe_power_kw: float = 0.0
    guaranteed_kw: float = 0.0


@dataclass(frozen=True, slots=True)
class ZoneLimit:
    """One zone of the tree and its EV headroom for the slot being dispatched.

    Attributes
    ----------
    id
        zone id.
    parent
        the zone above it, or None for a root.
    headroom_kw
        power the chargers in this zone and all zones below may draw together:
        the rating minus the measured non-EV load (see `zone_headroom_kw`) [kW].
    """

    id: str
    parent: str | None
    headroom_kw: float


# When a connected charger's §14a minimum applies: under a zone that binds, or everywhere.
MinimumRule = Literal["when_limited", "always"]

RULE_ZONE_CUT = "zone_cut"  # a zone's headroom cut setpoints above their floors
RULE_MINIMA_SCALED = "minima_scaled"  # the zone limit won over guaranteed minima (an alarm)


@dataclass(frozen=True, slots=True)
class ZoneShortfall:
    """A zone whose floors (connected minima, stale chargers' safe power) exceed its limit.

    The zone limit won: the floors were scaled down to ``limit_kw``; ``floors_kw − limit_kw``
    is what the grid owes the §14a commitments there [kW].
    """

    zone: str
    limit_kw: float
    floors_kw: float

    @property
    def shortfall_kw(self) -> float:
        """Floors not served [kW]."""
        return max(0.0, self.floors_kw - self.limit_kw)


# The record's former name, from when floors were kept and the zone overloaded.
ZoneOverload = ZoneShortfall


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The setpoints of one slot after the safety layer.

    Attributes
    ----------
    setpoints_kw
        charger id → maximum power it may draw [kW], for every known charger.
    limiter
        charger id → what decided its setpoint.
    zone_of_cut
        charger id → the zone whose headroom cut it (limiter ``zone``).
    shortfalls
        zones whose floors alone exceeded their limit: scaled to it (an alarm).
    ignored_ids
        ids in the plan that are not known chargers.
    rules
        rule → number of zones where it bit (``zone_cut``, ``minima_scaled``).
    """

    setpoints_kw: dict[str, float]
    limiter: dict[str, Limiter]
    zone_of_cut: dict[str, str] = field(default_factory=dict)
    shortfalls: list[ZoneShortfall] = field(default_factory=list)
    ignored_ids: list[str] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)

    @property
    def overloads(self) -> list[ZoneShortfall]:
        """The former name of `shortfalls` (nothing overloads any more)."""
        return self.shortfalls


def zone_headroom_kw(rating_kw: float, meter_kw: float | None, ev_kw: float) -> float:
    """EV headroom of a zone: its rating minus the load that is not EV charging [kW].

    Parameters
    ----------
    rating_kw
        rating of the transformer or feeder [kW].
    meter_kw
        power through the zone's meter, EV charging included [kW]; None when the
        meter is stale or absent — the zone is then assumed at its limit (headroom 0).
    ev_kw
        power the zone's chargers draw, as measured by them [kW]. Leave out chargers
        whose telemetry is stale: their draw then counts as non-EV load, while the safety
        layer also reserves their safe power — counted twice, which errs on the safe side.

    Returns
    -------
    float
        Headroom in [0, rating_kw]; 0 for any non-finite input.
    """
    if meter_kw is None or not all(math.isfinite(v) for v in (rating_kw, meter_kw, ev_kw)):
        return 0.0
    non_ev = max(0.0, meter_kw - max(0.0, ev_kw))
    return min(max(0.0, rating_kw), max(0.0, rating_kw - non_ev))


def apply_limits(
    requested_kw: Mapping[str, float],
    chargers: Iterable[ChargerLimit],
    zones: Iterable[ZoneLimit],
    *,
    stale_chargers: Collection[str] = (),
    stale_zones: Collection[str] = (),
    connected: Collection[str] | None = None,
    cut_rank: Mapping[str, int] | None = None,
    minimum: MinimumRule = "when_limited",
) -> Dispatch:
    """Clamp requested charger powers to every charger and zone limit.

    Parameters
    ----------
    requested_kw
        charger id → power the plan asks for in this slot [kW]; chargers missing
        from it are asked for 0 (then raised to their floor).
    chargers
        every charger to dispatch.
    zones
        the zone tree with each zone's EV headroom for the slot.
    stale_chargers
        ids of chargers whose telemetry is stale.
    stale_zones
        ids of zones whose meter is stale (assumed at their limit).
    connected
        ids of chargers with a car plugged in: only they get their guaranteed
        minimum. None: every charger counts as connected (a caller that cannot tell).
    cut_rank
        charger id → its rank in a zone cut (default 0): lower ranks are cut to
        their floors before a higher rank is touched (a short stay ranks high).
    minimum
        ``when_limited``: a connected charger's guaranteed minimum holds under a zone that
        binds (see the module docstring), elsewhere the request stands even below it;
        ``always``: every connected charger is raised to its minimum.

    Returns
    -------
    Dispatch
        The setpoints, what limited each, the zones whose floors exceeded them, the rules
        that bit.

    Raises
    ------
    LimitsError
        duplicate ids, unknown zone references or a cycle in the zone tree.
    """
    charger_list = list(chargers)
    zone_map = _zone_map(zones)
    by_id: dict[str, ChargerLimit] = {}
    for c in charger_list:
        for name in ("max_kw", "safe_power_kw", "guaranteed_kw"):
            value = getattr(c, name)
            if not (math.isfinite(value) and value >= 0):
                raise LimitsError(f"charger {c.id!r}: {name} must be finite and >= 0, got {value}")
        if c.id in by_id:
            raise LimitsError(f"charger {c.id!r} listed twice")
        if c.zone is not None and c.zone not in zone_map:
            raise LimitsError(f"charger {c.id!r}: unknown zone {c.zone!r}")
        by_id[c.id] = c
    stale = set(stale_chargers)
    plugged = None if connected is None else set(connected)
    ranks = cut_rank or {}

    setpoint: dict[str, float] = {}
    floor: dict[str, float] = {}
    limiter: dict[str, Limiter] = {}
    # when_limited: connected chargers whose minimum no binding zone has applied yet → it.
    pending: dict[str, float] = {}
    for c in charger_list:
        top = c.max_kw
        guaranteed = min(c.guaranteed_kw, top)
        if c.id in stale:
            # Unknown whether a car is there: its fallback power, or the minimum, whichever is more.
            fixed = min(max(c.safe_power_kw, guaranteed), top)
            setpoint[c.id] = floor[c.id] = fixed
            limiter[c.id] = Limiter.STALE
            continue
        if plugged is not None and c.id not in plugged:
            guaranteed = 0.0
        value, why = _sanitise(requested_kw.get(c.id, 0.0), top)
        if minimum == "when_limited" and guaranteed > 0:
            pending[c.id] = guaranteed
            setpoint[c.id], floor[c.id], limiter[c.id] = value, 0.0, why
            continue
        if value < guaranteed:
            value, why = guaranteed, Limiter.GUARANTEED
        setpoint[c.id], floor[c.id], limiter[c.id] = value, guaranteed, why

    # Chargers per zone subtree, zones ordered children before parents.
    order = _bottom_up(zone_map)
    members: dict[str, list[str]] = {z: [] for z in zone_map}
    parents = parents_of(zone_map.values())
    for c in charger_list:
        for zone_id in ancestors(c.zone, parents):
            members[zone_id].append(c.id)

    zone_of_cut: dict[str, str] = {}
    shortfalls: list[ZoneShortfall] = []
    rules: dict[str, int] = {}
    for zone_id in order:
        ids = members[zone_id]
        limit = 0.0 if zone_id in stale_zones else _nonneg(zone_map[zone_id].headroom_kw)
        waiting = [i for i in ids if i in pending]
        if waiting:
            deficit = math.fsum(max(0.0, pending[i] - setpoint[i]) for i in waiting)
            if zone_id in stale_zones or math.fsum(setpoint[i] for i in ids) + deficit > limit:
                # The zone binds: its minima become floors no cut (here or above) goes below.
                for i in waiting:
                    floor[i] = pending.pop(i)
                    if setpoint[i] < floor[i]:
                        setpoint[i], limiter[i] = floor[i], Limiter.GUARANTEED
        if math.fsum(setpoint[i] for i in ids) <= limit:
            continue
        floors = math.fsum(floor[i] for i in ids)
        flexible = [i for i in ids if setpoint[i] > floor[i]]
        if zone_id in stale_zones:
            # Its load unknown: nothing beyond the floors, which stay — a meter gone silent
            # is no measured shortage, and no reason to cut a legal minimum.
            cut = flexible
            for i in flexible:
                setpoint[i] = floor[i]
        elif floors >= limit:
            cut = flexible
            for i in flexible:
                setpoint[i] = floor[i]
            if floors > limit:
                shortfalls.append(ZoneShortfall(zone_id, limit, floors))
                rules[RULE_MINIMA_SCALED] = rules.get(RULE_MINIMA_SCALED, 0) + 1
                cut = flexible + _scale_floors(setpoint, floor, ids, stale, limit)
        else:
            cut = _cut_by_rank(setpoint, floor, ids, flexible, ranks, limit)
        if cut:
            rules[RULE_ZONE_CUT] = rules.get(RULE_ZONE_CUT, 0) + 1
        for i in cut:
            limiter[i] = Limiter.ZONE
            zone_of_cut[i] = zone_id

    ignored = sorted(k for k in requested_kw if k not in by_id)
    return Dispatch(setpoint, limiter, zone_of_cut, shortfalls, ignored, rules)


def _cut_by_rank(
    setpoint: dict[str, float],
    floor: Mapping[str, float],
    ids: list[str],
    flexible: list[str],
    ranks: Mapping[str, int],
    limit: float,
) -> list[str]:
    """Cut ``flexible`` into ``limit``, lowest rank first; return the ids that were cut.

    The floors fit (``sum(floor) < limit``), so some rank's cut always suffices.
    """
    cut: list[str] = []
    for rank in sorted({ranks.get(i, 0) for i in flexible}):
        total = math.fsum(setpoint[i] for i in ids)
        if total <= limit:
            break
        group = [i for i in flexible if ranks.get(i, 0) == rank]
        cut += group
        if total - math.fsum(setpoint[i] - floor[i] for i in group) >= limit:
            for i in group:  # this whole rank to its floors is not enough: the next one too
                setpoint[i] = floor[i]
        else:
            _scale_to_fit(setpoint, floor, ids, group, limit)
    return cut


def _scale_floors(
    setpoint: dict[str, float],
    floor: dict[str, float],
    ids: list[str],
    stale: Collection[str],
    limit: float,
) -> list[str]:
    """The zone limit wins over floors: scale minima (then stale powers) into ``limit``.

    Every setpoint in ``ids`` is at its floor. The guaranteed minima of fresh chargers are
    scaled by a common factor; a stale charger's safe power (what it falls back to anyway) is
    touched only when it alone exceeds the limit. The scaled values become the floors, so a
    zone above cannot raise them. Returns the ids changed.
    """
    minima = [i for i in ids if i not in stale and setpoint[i] > 0]
    fixed = [i for i in ids if i in stale and setpoint[i] > 0]
    zero = {i: 0.0 for i in ids}
    if math.fsum(setpoint[i] for i in fixed) <= limit:
        _scale_to_fit(setpoint, zero, ids, minima, limit)
        changed = minima
    else:
        for i in minima:
            setpoint[i] = 0.0
        _scale_to_fit(setpoint, zero, ids, fixed, limit)
        changed = minima + fixed
    for i in changed:
        floor[i] = setpoint[i]
    return changed


def fair_share_kw(
    connected: Collection[str],
    chargers: Iterable[ChargerLimit],
    zones: Iterable[ZoneLimit],
    *,
    stale_chargers: Collection[str] = (),
    stale_zones: Collection[str] = (),
) -> Dispatch:
    """The fallback plan (DESIGN 4): each zone's headroom shared among its connected chargers.

    Every connected charger asks for its rating and the safety layer scales the requests into
    the zones, so each gets the same fraction of its rating within a zone that is short.
    Chargers with no vehicle get nothing (stale ones their safe power).
    """
    charger_list = list(chargers)
    wanted = {c.id: c.max_kw for c in charger_list if c.id in connected}
    return apply_limits(
        wanted,
        charger_list,
        zones,
        stale_chargers=stale_chargers,
        stale_zones=stale_zones,
        connected=connected,
    )


def _scale_to_fit(
    setpoint: dict[str, float],
    floor: Mapping[str, float],
    ids: list[str],
    flexible: list[str],
    limit: float,
) -> None:
    """Scale the flexible parts of ``flexible`` so the zone's setpoints sum to at most ``limit``."""
    if not flexible:
        return
    flex = set(flexible)
    fixed = math.fsum(setpoint[i] for i in ids if i not in flex)
    excess = {i: setpoint[i] - floor[i] for i in flexible}
    budget = limit - fixed - math.fsum(floor[i] for i in flexible)
    factor = max(0.0, budget) / math.fsum(excess.values())
    for i in flexible:
        setpoint[i] = min(setpoint[i], floor[i] + excess[i] * factor)
    # Rounding can leave the sum a few ulp above the limit: take the overshoot (twice, and at
    # least a few ulp of the value) off the largest flexible setpoint until it is gone.
    for _ in range(2 * len(flexible) + 8):
        over = math.fsum(setpoint[i] for i in ids) - limit
        if over <= 0:
            return
        i = max(flexible, key=lambda j: setpoint[j] - floor[j])
        cut = max(2.0 * over, 4.0 * math.ulp(setpoint[i]))
        setpoint[i] = max(floor[i], setpoint[i] - cut)
    for i in flexible:  # not reached in practice; floors always fit here (floors <= limit)
        setpoint[i] = floor[i]


def _sanitise(value: object, top: float) -> tuple[float, Limiter]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0, Limiter.INVALID
    number = float(value)
    if math.isnan(number) or number < 0:
        return 0.0, Limiter.INVALID
    if number > top:
        return top, Limiter.CHARGER_MAX
    return number, Limiter.PLAN


def _nonneg(value: float) -> float:
    """A headroom that is NaN or negative is 0 (nothing allowed); +inf means no limit."""
    return value if value > 0 else 0.0


def _zone_map(zones: Iterable[ZoneLimit]) -> dict[str, ZoneLimit]:
    zone_map: dict[str, ZoneLimit] = {}
    for z in zones:
        if z.id in zone_map:
            raise LimitsError(f"zone {z.id!r} listed twice")
        zone_map[z.id] = z
    for z in zone_map.values():
        if z.parent is not None and z.parent not in zone_map:
            raise LimitsError(f"zone {z.id!r}: unknown parent zone {z.parent!r}")
    return zone_map


def _bottom_up(zone_map: Mapping[str, ZoneLimit]) -> list[str]:
    """Zone ids ordered so every zone comes after all zones below it; refuses cycles."""
    depth: dict[str, int] = {}
    for start in zone_map:
        path: list[str] = []
        cursor: str | None = start
        while cursor is not None and cursor not in depth:
            if cursor in path:
                raise LimitsError(f"zone {cursor!r}: cycle in the zone tree")
            path.append(cursor)
            cursor = zone_map[cursor].parent
        base = -1 if cursor is None else depth[cursor]
        for zone_id in reversed(path):
            base += 1
            depth[zone_id] = base
    return sorted(zone_map, key=lambda z: -depth[z])
