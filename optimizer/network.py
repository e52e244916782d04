"""The problem of DESIGN 3.5 as an integer min-cost flow network (arrays), and back.

Nodes: a source, a sink, one node per session, one per (charger, slot) where the sessions on a
charger could together exceed it, one per (zone, slot) that carries power, one per slot. Arcs
(capacities in integer energy *units*, ``units_per_kwh`` of them per kWh):

* source → session: the energy asked for;
* session → its (charger, slot) node, or straight to its zone's (zone, slot) node when the
  charger cannot bind there (or to the slot node without a zone): the session's bound · dt;
* (charger, slot) → (zone, slot) or slot node: the charger's max_kw · dt;
* (zone, slot) → parent (zone, slot) or slot node: the zone's capacity · dt;
* slot → sink twice: a *free* arc (renewable surplus max(0, ren − base) · dt, cost 0) and an
  *import* arc (unlimited, cost = the rank of the slot's import weight among the distinct
  weights, 1 for the cheapest).

Every capacity is rounded **down** to whole units, so every integer flow is a feasible plan of
the real problem. Costs are ranks, not weights: all costs sit on the terminal arcs, where the
flow vectors form a polymatroid, and a polymatroid's optimal bases depend only on the *order*
of the costs (docs/optimizer.md). Ranks are small exact integers whatever the weights are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.compiled import Compiled, FloatArray, IntArray

# Largest total of source capacities in units: leaves room for costs (ranks ≤ a few thousand)
# times flow, and for a solver's internal scaling, inside int64 (9.2e18).
_MAX_TOTAL_UNITS = 1e15
# Finest unit: 1e-9 kWh (1 µWh); coarser only when the city's total energy needs it.
_MAX_UNITS_PER_KWH = 1e9

SOURCE, SINK = 0, 1


@dataclass(frozen=True)
class Network:
    """An integer flow network of one problem.

    Attributes
    ----------
    n_nodes
        number of nodes (0 source, 1 sink).
    tail, head, capacity, cost
        the arcs [node, node, units, rank].
    power_arc0
        first session → charger/zone arc; the `power_session.size` arcs from there
        carry the power columns, in the order of `power_session`, `power_slot`.
    power_session, power_slot
        session and slot of each power arc.
    free_arc0, import_arc0
        first slot → sink free / import arc (one per slot, in order).
    units_per_kwh
        the energy unit of the capacities.
    total_supply
        sum of the source arcs' capacities [units].
    max_rank
        the largest import cost (number of distinct import weights).
    dt
        slot length [h].
    charger_arc0, charger_arc_charger, charger_arc_slot
        first (charger, slot) → above arc, and the charger and slot of each.
    zone_arc0, zone_arc_zone, zone_arc_slot
        first (zone, slot) → above arc, and the zone and slot of each.
    spare_arc0, spare_zone
        spare sessions (`build_network(..., spares_per_zone=K)`, for `incremental`): their
        source arcs start at `spare_arc0`, followed by each spare's arc to its zone's node in
        every slot (spare-major); `spare_zone` is each spare's zone (-1: chargers without one).
        All their capacities are 0 as built.
    """

    n_nodes: int
    tail: IntArray
    head: IntArray
    capacity: IntArray
    cost: IntArray
    power_arc0: int
    power_session: IntArray
    power_slot: IntArray
    free_arc0: int
    import_arc0: int
    units_per_kwh: float
    total_supply: int
    max_rank: int
    dt: float
    charger_arc0: int = 0
    charger_arc_charger: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    charger_arc_slot: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zone_arc0: int = 0
    zone_arc_zone: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zone_arc_slot: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    spare_arc0: int = 0
    spare_zone: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_arcs(self) -> int:
        """Number of arcs."""
        return len(self.tail)

    def power_from_flow(self, flow: IntArray, sessions: int, slots: int) -> FloatArray:
        """[S, T] power [kW] of an arc flow vector [units]."""
        power = np.zeros((sessions, slots))
        arcs = slice(self.power_arc0, self.power_arc0 + len(self.power_session))
        power[self.power_session, self.power_slot] = flow[arcs] / self.units_per_kwh / self.dt
        return power


def units_per_kwh(compiled: Compiled) -> float:
    """The finest power-of-ten unit [1/kWh] at which the total request fits `_MAX_TOTAL_UNITS`."""
    total = float(compiled.energy_kwh.sum())
    if total <= 0:
        return _MAX_UNITS_PER_KWH
    exponent = np.floor(np.log10(_MAX_TOTAL_UNITS / total))
    return float(min(_MAX_UNITS_PER_KWH, 10.0**exponent))


def _units(kwh: FloatArray, unit: float, cap: int) -> IntArray:
    """Floor of `kwh` · `unit`, clipped to [0, cap]: never above the real limit."""
    scaled = np.floor(np.minimum(np.maximum(kwh, 0.0) * unit, float(cap)))
    return scaled.astype(np.int64)


def import_ranks(weight: FloatArray) -> tuple[IntArray, int]:
    """Rank (1 = cheapest) of each slot's import weight among the distinct weights, and the max."""
    distinct, rank = np.unique(weight, return_inverse=True)
    return rank.astype(np.int64) + 1, len(distinct)


def build_network(compiled: Compiled, spares_per_zone: int = 0) -> Network:
    """The flow network of `compiled` (see the module docstring).

    With `spares_per_zone` K > 0 (the incremental solver's network), every (zone, slot) node
    exists, and K spare sessions per zone that has chargers (and K for the chargers without a
    zone) get an arc to their zone's node in every slot, all of capacity 0: a session that
    arrives later can take one by setting capacities only (`incremental`).
    """
    slots, dt = compiled.slots, compiled.dt
    unit = units_per_kwh(compiled)
    energy_units = _units(compiled.energy_kwh, unit, int(_MAX_TOTAL_UNITS))
    total = int(energy_units.sum())
    big = max(total, 1)  # no arc can carry more than the whole supply

    ps, pt = np.nonzero(compiled.window & (energy_units > 0)[:, None])
    power_session, power_slot = ps.astype(np.int64), pt.astype(np.int64)
    bound_kw = compiled.session_max_kw[power_session]
    charger_of = compiled.session_charger[power_session]

    # (charger, slot) nodes only where the sessions' own bounds could exceed the charger.
    cells = compiled.n_chargers * slots  # one bincount, not np.add.at (~10× slower)
    charger_sum = np.bincount(
        charger_of * slots + power_slot, weights=bound_kw, minlength=cells
    ).reshape(compiled.n_chargers, slots)
    need = charger_sum > compiled.charger_max_kw[:, None]
    cs_charger, cs_slot = (a.astype(np.int64) for a in np.nonzero(need))

    # (zone, slot) nodes where some power can flow.
    active = np.full((compiled.n_zones, slots), spares_per_zone > 0, dtype=bool)
    at_depth = compiled.session_zone_at_depth[power_session]
    for depth in range(at_depth.shape[1]):
        zone = at_depth[:, depth]
        keep = zone >= 0
        active[zone[keep], power_slot[keep]] = True
    zs_zone, zs_slot = (a.astype(np.int64) for a in np.nonzero(active))

    session0 = 2
    charger0 = session0 + compiled.n_sessions
    zone0 = charger0 + len(cs_charger)
    slot0 = zone0 + len(zs_zone)
    spare_node0 = slot0 + slots
    spare_zone = np.zeros(0, dtype=np.int64)
    if spares_per_zone > 0:
        pools = np.unique(compiled.charger_zone)  # zones with chargers directly in them, -1
        spare_zone = np.repeat(pools, spares_per_zone).astype(np.int64)
    n_nodes = spare_node0 + len(spare_zone)
    zone_node = np.full((compiled.n_zones + 1, slots), -1, dtype=np.int64)  # row -1: no zone
    zone_node[zs_zone, zs_slot] = zone0 + np.arange(len(zs_zone))
    charger_node = np.full((compiled.n_chargers, slots), -1, dtype=np.int64)
    charger_node[cs_charger, cs_slot] = charger0 + np.arange(len(cs_charger))

    def above_charger(charger: IntArray, slot: IntArray) -> IntArray:
        zone = compiled.charger_zone[charger]
        return np.where(zone >= 0, zone_node[zone, slot], slot0 + slot)

    # Source → session.
    tails = [np.full(compiled.n_sessions, SOURCE, dtype=np.int64)]
    heads = [session0 + np.arange(compiled.n_sessions, dtype=np.int64)]
    caps = [energy_units]
    # Session → (charger, slot) or straight above the charger.
    via = charger_node[charger_of, power_slot]
    tails.append(session0 + power_session)
    heads.append(np.where(via >= 0, via, above_charger(charger_of, power_slot)))
    caps.append(_units(bound_kw * dt, unit, big))
    # (charger, slot) → above.
    tails.append(charger0 + np.arange(len(cs_charger), dtype=np.int64))
    heads.append(above_charger(cs_charger, cs_slot))
    caps.append(_units(compiled.charger_max_kw[cs_charger] * dt, unit, big))
    # (zone, slot) → parent or slot.
    parent = compiled.zone_parent[zs_zone]
    tails.append(zone0 + np.arange(len(zs_zone), dtype=np.int64))
    heads.append(np.where(parent >= 0, zone_node[parent, zs_slot], slot0 + zs_slot))
    caps.append(_units(compiled.zone_capacity_kw[zs_zone, zs_slot] * dt, unit, big))
    # Spare sessions: source → spare, spare → its zone's node (or the slot node) in every slot.
    n_spares = len(spare_zone)
    spare_nodes = spare_node0 + np.arange(n_spares, dtype=np.int64)
    tails += [np.full(n_spares, SOURCE, dtype=np.int64), np.repeat(spare_nodes, slots)]
    spare_slot = np.tile(np.arange(slots, dtype=np.int64), n_spares)
    spare_of_arc = np.repeat(spare_zone, slots)
    heads += [
        spare_nodes,
        np.where(spare_of_arc >= 0, zone_node[spare_of_arc, spare_slot], slot0 + spare_slot),
    ]
    caps += [np.zeros(n_spares, dtype=np.int64), np.zeros(n_spares * slots, dtype=np.int64)]
    # Slot → sink: free renewable surplus, then priced import.
    slot_nodes = slot0 + np.arange(slots, dtype=np.int64)
    surplus = np.maximum(0.0, compiled.renewable_kw - compiled.base_load_kw) * dt
    tails += [slot_nodes, slot_nodes]
    heads += [np.full(slots, SINK, dtype=np.int64)] * 2
    caps += [_units(surplus, unit, big), np.full(slots, big, dtype=np.int64)]

    rank, max_rank = import_ranks(compiled.import_weight)
    starts = np.cumsum([0] + [len(t) for t in tails])
    n_before_terminal = int(starts[-3])
    cost = np.zeros(n_before_terminal + 2 * slots, dtype=np.int64)
    cost[n_before_terminal + slots :] = rank
    return Network(
        n_nodes=n_nodes,
        tail=np.concatenate(tails),
        head=np.concatenate(heads),
        capacity=np.concatenate(caps),
        cost=cost,
        power_arc0=compiled.n_sessions,
        power_session=power_session,
        power_slot=power_slot,
        free_arc0=n_before_terminal,
        import_arc0=n_before_terminal + slots,
        units_per_kwh=unit,
        total_supply=total,
        max_rank=max_rank,
        dt=dt,
        charger_arc0=int(starts[2]),
        charger_arc_charger=cs_charger,
        charger_arc_slot=cs_slot,
        zone_arc0=int(starts[3]),
        zone_arc_zone=zs_zone,
        zone_arc_slot=zs_slot,
        spare_arc0=int(starts[4]),
        spare_zone=spare_zone,
    )
