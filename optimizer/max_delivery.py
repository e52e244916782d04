"""A plan that delivers (almost) the most energy possible, from a max-flow, in about a second.

Per slot, session power flows session → charger → zone → … → grid: the first objective of
DESIGN 3.5 (least unmet energy) is a maximum flow. scipy's Dinic max-flow works on integer
capacities, so every capacity is rounded *down* to whole watt-hours: any flow in that network
is feasible for the real limits, and the delivered energy falls short of the true maximum by
at most one watt-hour per arc of a minimum cut. Import cost is ignored.

`solve` offers this plan as a candidate when HiGHS runs out of time (the lexicographic order
puts unmet energy first, and the LP's own last point may be far from feasible then).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from optimizer.allocation import repair
from optimizer.compiled import Compiled, FloatArray, IntArray
from optimizer.layout import Layout

_WH_PER_KWH = 1000.0
_INT32_MAX = np.iinfo(np.int32).max


def _capacity_wh(energy_kwh: FloatArray) -> IntArray:
    # Floor, so that a flow in this network never exceeds a real limit.
    wh = np.floor(np.minimum(energy_kwh * _WH_PER_KWH, _INT32_MAX))
    return np.maximum(wh, 0).astype(np.int64)


def max_delivery_plan(compiled: Compiled, layout: Layout) -> FloatArray:
    """[S, T] power [kW] delivering the maximum energy within 1 Wh per cut arc.

    Parameters
    ----------
    compiled : the problem.
    layout : its LP layout (for the power columns and zone-slot flows it already indexes).
    """
    power = np.zeros((compiled.n_sessions, compiled.slots))
    n_power = layout.n_power
    if n_power == 0:
        return power
    dt, slots = compiled.dt, compiled.slots
    source, sink = 0, 1
    session_node0 = 2
    # Charger-slot nodes only where some session can charge.
    charger_of = compiled.session_charger[layout.power_session]
    charger_slot = charger_of * slots + layout.power_slot
    unique_cs, cs_index = np.unique(charger_slot, return_inverse=True)
    charger_node0 = session_node0 + compiled.n_sessions
    zone_node0 = charger_node0 + len(unique_cs)
    n_flow = len(layout.flow_zone)
    flow_node = np.full((compiled.n_zones + 1, slots), -1, dtype=np.int64)  # spare row for -1
    flow_node[layout.flow_zone, layout.flow_slot] = zone_node0 + np.arange(n_flow)
    slot_node0 = zone_node0 + n_flow
    n_nodes = slot_node0 + slots

    tails: list[IntArray] = []
    heads: list[IntArray] = []
    caps: list[IntArray] = []
    # source → session: the energy asked for.
    sessions = np.arange(compiled.n_sessions)
    tails.append(np.full(compiled.n_sessions, source))
    heads.append(session_node0 + sessions)
    caps.append(_capacity_wh(compiled.energy_kwh))
    # session → charger-slot: the session's own bound.
    power_tail = session_node0 + layout.power_session
    tails.append(power_tail)
    heads.append(charger_node0 + cs_index)
    caps.append(_capacity_wh(compiled.session_max_kw[layout.power_session] * dt))
    # charger-slot → its zone-slot (or the slot node): the charger's limit.
    cs_charger, cs_slot = unique_cs // slots, unique_cs % slots
    cs_zone = compiled.charger_zone[cs_charger]
    tails.append(charger_node0 + np.arange(len(unique_cs)))
    heads.append(np.where(cs_zone >= 0, flow_node[cs_zone, cs_slot], slot_node0 + cs_slot))
    caps.append(_capacity_wh(compiled.charger_max_kw[cs_charger] * dt))
    # zone-slot → parent zone-slot (or the slot node): the zone's headroom.
    parent = compiled.zone_parent[layout.flow_zone]
    tails.append(zone_node0 + np.arange(n_flow))
    heads.append(
        np.where(parent >= 0, flow_node[parent, layout.flow_slot], slot_node0 + layout.flow_slot)
    )
    caps.append(_capacity_wh(compiled.zone_capacity_kw[layout.flow_zone, layout.flow_slot] * dt))
    # slot → sink: unlimited (import is allowed, only costly).
    tails.append(slot_node0 + np.arange(slots))
    heads.append(np.full(slots, sink))
    caps.append(np.full(slots, _INT32_MAX, dtype=np.int64))

    tail, head, cap = np.concatenate(tails), np.concatenate(heads), np.concatenate(caps)
    graph = csr_matrix((cap.astype(np.int32), (tail, head)), shape=(n_nodes, n_nodes))
    flow = maximum_flow(graph, source, sink, method="dinic").flow.tocsr()
    delivered_wh = np.asarray(flow[power_tail, charger_node0 + cs_index]).ravel()
    power[layout.power_session, layout.power_slot] = delivered_wh / _WH_PER_KWH / dt
    return repair(compiled, power)  # feasible already; this only guards rounding in the division
