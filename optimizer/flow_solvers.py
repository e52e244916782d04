"""Exact integer min-cost max-flow solvers for a `Network`: each returns the flow on every arc.

* `ortools_flow`: OR-Tools' `SimpleMinCostFlow.solve_max_flow_with_min_cost` (push-relabel
  max flow, then cost scaling): the maximum flow of least cost, i.e. the lexicographic optimum
  directly. The production path: it is the steadiest on stressed cities (docs/optimizer.md).
* `lemon_flow`: LEMON's network simplex (`pylmcf`) on the same network plus a bypass arc
  source → sink of cost max_rank + 1 that carries the unmet energy. Any cost above the most
  expensive augmenting path (one terminal arc: ≤ max_rank) makes "less bypass" dominate, so
  its optimum is the same lexicographic optimum. Faster on easy cities, much slower when the
  substation binds everywhere (kept for the benchmark and as a second exact reference).

Both hold the GIL and have no time limit: `solve` runs them under `deadline.call_with_deadline`.
"""

from __future__ import annotations

import numpy as np

# Imported here, not inside the solver calls: those run in a forked child, which must not take
# the import lock (another thread of the parent may have held it at the fork).
import pylmcf
from ortools.graph.python import min_cost_flow

from optimizer.compiled import IntArray
from optimizer.network import SINK, SOURCE, Network


class FlowSolverError(RuntimeError):
    """The solver refused the network or did not prove optimality."""


def ortools_flow(network: Network) -> IntArray:
    """Flow [units] on every arc of the least-cost maximum flow (OR-Tools)."""
    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        network.tail, network.head, network.capacity, network.cost
    )
    supply = network.total_supply
    solver.set_nodes_supplies(np.array([SOURCE, SINK]), np.array([supply, -supply]))
    status = solver.solve_max_flow_with_min_cost()
    if status != solver.OPTIMAL:
        raise FlowSolverError(f"OR-Tools min-cost flow: {status}")
    flows: IntArray = np.asarray(solver.flows(np.arange(network.n_arcs)), dtype=np.int64)
    return flows


def lemon_flow(network: Network, pivot_rule: str = "block_search") -> IntArray:
    """Flow [units] on every arc of the same optimum by LEMON's network simplex (`pylmcf`)."""
    # Each array is dropped as soon as pylmcf holds its copy: this runs in a child whose private
    # memory adds to the parent's (13 MB per array at 20,000 × 288 session-slots).
    tail = np.append(network.tail, SOURCE)
    head = np.append(network.head, SINK)
    order = np.lexsort((head, tail))  # pylmcf wants arcs sorted by tail, then head
    graph = pylmcf.Graph(network.n_nodes, tail[order], head[order])
    del tail, head
    supply = np.zeros(network.n_nodes, dtype=np.int64)
    supply[SOURCE], supply[SINK] = network.total_supply, -network.total_supply
    graph.set_pivot_rule(pivot_rule)
    graph.set_node_supply(supply)
    graph.set_edge_capacities(np.append(network.capacity, network.total_supply)[order])
    graph.set_edge_costs(np.append(network.cost, network.max_rank + 1)[order])
    graph.solve()
    flow = np.empty(len(order), dtype=np.int64)
    flow[order] = graph.result()
    result: IntArray = flow[: network.n_arcs]
    return result
