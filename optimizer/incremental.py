"""`IncrementalSolver`: re-plan after a small change in well under a second, exactly.

The planning loop calls ``planner.solve(problem)`` with the whole new problem each time, as it
would call `optimizer.solve`. The first call (and any call whose problem no longer fits the
network) solves cold, like `solve`, but keeps the network and a LEMON child that holds the
optimal basis (`warm.WarmLemon`). A later problem with the same slots, zones and chargers fits
the same network by capacities and costs alone:

* a session that left, or whose energy changed: its source arc's capacity;
* a window that shrank: its arcs outside the window get capacity 0;
* a session that arrived (or whose window grew, or that moved charger): one of the *spare*
  sessions of its zone (`network.build_network(spares_per_zone=K)`) takes it, with an arc to
  the zone in every slot; the old arcs of a moved session get capacity 0;
* renewable or base-load forecasts: the free arcs; import weights: the import arcs' ranks;
* a zone's headroom: its arcs (every (zone, slot) node exists in this network).

It does not fit (cold solve) when slots, zones or chargers change, a zone's spares run out,
the total energy needs a coarser unit, or a charger's sessions could together exceed it in a
slot where the network has no node for that charger (e.g. a car on a spare sharing a charger
with another session at the same time). LEMON then re-optimises from its last basis: 10–30 ms
at 20,000 sessions. The answer is the same lexicographic optimum as a cold solve (the same
network, solved to optimality; the tests compare both), with the same status rules and the
same deadline: the warm solve races an OR-Tools cold solve started after max(`WARM_BACKUP_S`,
`WARM_BACKUP_SHARE` · budget), and
`solve` returns within `time_limit_s` plus the finishing work like `optimizer.solve`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import numpy as np

from optimizer.allocation import repair
from optimizer.baselines import uncontrolled
from optimizer.compiled import (
    BoolArray,
    Compiled,
    FloatArray,
    IntArray,
    compile_problem,
    group_sum,
)
from optimizer.deadline import race_with_deadline
from optimizer.flow_solvers import ortools_flow
from optimizer.leader import choose_leader
from optimizer.network import _MAX_TOTAL_UNITS, Network, _units, build_network, import_ranks
from optimizer.problem import Problem
from optimizer.schedule import Schedule
from optimizer.solve import (
    FINISH_PER_PREPARATION,
    FINISH_SECONDS_PER_CELL,
    RACE_HEAD_START_S_PER_ARC,
    _best_of,
    _References,
    _schedule,
    build_fits,
)
from optimizer.warm import WarmLemon

Start = Literal["none", "cold", "warm", "same_network"]

# Spare sessions per zone with chargers: arrivals a zone can take before a cold solve.
SPARES_PER_ZONE = 4
# An OR-Tools cold solve joins a warm solve that has not answered after this long [s], or this
# share of the budget if that is longer: a warm solve needs milliseconds of CPU, but on a busy
# machine its wall time stretches, and a backup started too early takes the CPU it needs.
WARM_BACKUP_S = 0.5
WARM_BACKUP_SHARE = 0.2


class IncrementalSolver:
    """Solve a sequence of related problems, each exactly, re-using the previous optimum's basis.

    Parameters
    ----------
    spares_per_zone : spare sessions per zone for arrivals (more: fewer cold solves, a larger
        network).

    Use as a context manager, or call `close` (it ends the LEMON child)::

        with IncrementalSolver() as planner:
            schedule = planner.solve(problem, time_limit_s=60)
            ...
            schedule = planner.solve(changed_problem, time_limit_s=5)

    Call `solve` from one thread that outlives the planner's use: the LEMON child dies with
    the thread that forked it (`deadline.die_with_parent`: Linux's ``PR_SET_PDEATHSIG`` is
    per thread), and a planner whose child is gone solves cold.

    `last_start` says how the last `solve` went: ``cold`` (a new network), ``warm`` (LEMON
    answered from its last basis), ``same_network`` (the problem fit the network, but the
    answer came from a cold solve: OR-Tools, because LEMON had no basis ready or was slower,
    or LEMON itself when pylmcf could not repair its basis and re-solved from scratch).
    """

    def __init__(self, *, spares_per_zone: int = SPARES_PER_ZONE) -> None:
        self._spares_per_zone = max(1, int(spares_per_zone))
        self._state: _State | None = None
        self.last_start: Start = "none"

    def __enter__(self) -> IncrementalSolver:
        """The solver itself."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """`close`."""
        self.close()

    def close(self) -> None:
        """End the LEMON child and forget the network (the next `solve` is cold)."""
        if self._state is not None and self._state.worker is not None:
            self._state.worker.close()
        self._state = None

    def ready(self, timeout_s: float = 0.0) -> bool:
        """Whether LEMON holds an optimal basis for the current network (waits up to `timeout_s`).

        After a cold `solve` that OR-Tools answered first, LEMON's own cold solve may still be
        running; until it is done re-plans are OR-Tools cold solves (``same_network``).
        """
        state = self._state
        if state is None or state.worker is None:
            return False
        return state.worker.wait(timeout_s)

    def solve(self, problem: Problem, *, time_limit_s: float = 60.0) -> Schedule:
        """The lexicographic optimum of `problem`, as `optimizer.solve` gives it.

        Parameters
        ----------
        problem : a validated problem (the whole problem, not a difference).
        time_limit_s : wall-time budget [s], as for `optimizer.solve`.

        Returns
        -------
        A feasible `Schedule` with the same objectives (within 1e-6 relative) and status rules
        as `optimizer.solve`. Never raises for a valid problem.
        """
        started = time.monotonic()
        budget = max(0.0, float(time_limit_s))
        compiled = compile_problem(problem)
        fallback = uncontrolled(compiled)
        prepared = time.monotonic() - started
        cells = compiled.n_sessions * compiled.slots
        finishing = max(FINISH_SECONDS_PER_CELL * cells, FINISH_PER_PREPARATION * prepared)
        deadline = started + budget - min(0.5 * budget, finishing)
        # No surplus-first baseline: seconds of Python per re-plan for a reference nobody in the
        # planning loop reads (`baselines.renewable_surplus_first` computes it on demand).
        surplus_first = None
        references = _References(fallback, surplus_first, started + budget)
        state = self._state
        fit = _fit(state, compiled) if state is not None else None
        if fit is None and not build_fits(prepared, deadline):  # no time to build a network
            self.last_start = "cold"
            quick = {"the uncontrolled plan": fallback}
            return _best_of(compiled, quick, time_limit_s, started, references)
        try:
            if state is not None and fit is not None:
                self.last_start = "same_network"
                flow = self._warm(state, fit, deadline, budget)
            else:
                self.last_start = "cold"
                self.close()
                state, fit = self._cold(compiled)
                flow = self._cold_race(state, compiled, deadline)
        except Exception as exc:  # a failure must still end in a safe plan
            self.close()
            message = f"solver failed: {exc}"
            return _schedule(compiled, fallback, "fallback", started, references, message)
        if isinstance(flow, str):
            if flow != "time_limit":
                return _schedule(compiled, fallback, "fallback", started, references, flow)
            candidates = {"the uncontrolled plan": fallback}
            if surplus_first is not None:
                candidates["the renewable-surplus-first plan"] = surplus_first
            return _best_of(compiled, candidates, time_limit_s, started, references)
        power = fit.power(flow, state.network, compiled)
        return _schedule(compiled, repair(compiled, power), "optimal", started, references, None)

    def _cold(self, compiled: Compiled) -> tuple[_State, _Fit]:
        network = build_network(compiled, self._spares_per_zone)
        state = _State.of(compiled, network)
        self._state = state
        fit = _fit(state, compiled)
        if fit is None:  # cannot happen for the network of this very problem
            raise RuntimeError("the fresh network does not fit its own problem")
        state.commit(fit)
        return state, fit

    def _cold_race(self, state: _State, compiled: Compiled, deadline: float) -> IntArray | str:
        """LEMON (kept as the warm worker) and OR-Tools race, the leader as in `solve`."""
        network = state.network
        leader = choose_leader(compiled)
        head_start = RACE_HEAD_START_S_PER_ARC[leader] * network.n_arcs
        if leader == "lemon":
            state.worker = WarmLemon(network)
            outcome = race_with_deadline(
                [lambda: ortools_flow(network)],
                deadline,
                delays=(head_start,),
                running=state.worker,
            )
        else:  # LEMON is slow here: its basis is built in the background once OR-Tools answered
            outcome = race_with_deadline([lambda: ortools_flow(network)], deadline)
            if outcome.values is not None:
                state.worker = WarmLemon(network)
        if outcome.values is None:
            self.close()
            return outcome.detail
        return outcome.values

    def _warm(self, state: _State, fit: _Fit, deadline: float, budget: float) -> IntArray | str:
        """The warm LEMON answer, with an OR-Tools cold solve as the backup."""
        worker = state.worker
        if worker is not None:
            worker.drain()
        network = dataclasses.replace(
            state.network, capacity=fit.capacity, cost=fit.cost, total_supply=fit.total
        )
        cost_changed = not np.array_equal(fit.cost, state.cost)
        state.commit(fit)
        backup = [lambda: ortools_flow(network)]
        if worker is None or not worker.idle:
            # No basis yet (LEMON still on its first solve) or none any more: OR-Tools alone.
            outcome = race_with_deadline(backup, deadline)
        else:
            worker.request(fit.capacity, fit.total, fit.cost if cost_changed else None)
            delay = max(WARM_BACKUP_S, WARM_BACKUP_SHARE * budget)
            delay = delay if worker.pending else 0.0  # not pending: the child is gone
            outcome = race_with_deadline(backup, deadline, delays=(delay,), running=worker)
            if outcome.values is None and worker.pending:
                worker.close()  # stuck on our request: a cold solve next time
                state.worker = None
            # LEMON answered; "warm" only if it really restarted from its basis (pylmcf
            # re-solves cold, silently, when it cannot repair it).
            if outcome.winner == -1 and outcome.values is not None and not worker.last_cold:
                self.last_start = "warm"
        if outcome.values is None:
            return outcome.detail
        return outcome.values


@dataclass
class _State:
    """The network of the last cold solve and how the current sessions sit in it."""

    key: tuple[object, ...]
    network: Network
    n_base: int  # network sessions 0 … n_base-1 are the cold problem's, the rest spares
    arc_mask: BoolArray  # [network sessions, T] where each has a power arc
    node_charger: IntArray  # [network sessions] charger of each (spares: -1 until taken)
    charger_node: BoolArray  # [chargers, T] where the network has a (charger, slot) node
    assigned: dict[str, int]  # session id → network session
    cost: IntArray
    worker: WarmLemon | None = None

    @staticmethod
    def of(compiled: Compiled, network: Network) -> _State:
        slots = compiled.slots
        n_base = compiled.n_sessions
        n_spares = len(network.spare_zone)
        base_mask = np.zeros((n_base, slots), dtype=bool)
        base_mask[network.power_session, network.power_slot] = True
        arc_mask = np.vstack([base_mask, np.ones((n_spares, slots), dtype=bool)])
        charger_node = np.zeros((compiled.n_chargers, slots), dtype=bool)
        charger_node[network.charger_arc_charger, network.charger_arc_slot] = True
        node_charger = np.concatenate(
            [compiled.session_charger, np.full(n_spares, -1, dtype=np.int64)]
        )
        return _State(
            key=_structure(compiled),
            network=network,
            n_base=n_base,
            arc_mask=arc_mask,
            node_charger=node_charger,
            charger_node=charger_node,
            assigned={sid: i for i, sid in enumerate(compiled.session_ids)},
            cost=network.cost,
        )

    def commit(self, fit: _Fit) -> None:
        """Make `fit`'s assignment the current one."""
        self.assigned = fit.assigned
        self.node_charger = fit.node_charger
        self.cost = fit.cost


@dataclass(frozen=True)
class _Fit:
    """The new problem in the old network: capacities, costs, and the session assignment."""

    capacity: IntArray
    cost: IntArray
    total: int
    assigned: dict[str, int]
    node_charger: IntArray
    node_session: IntArray  # [network sessions] current session index, -1 for none
    units_per_kwh: float

    def power(self, flow: IntArray, network: Network, compiled: Compiled) -> FloatArray:
        """[S, T] power [kW] of the current sessions from the arc flows [units]."""
        power = np.zeros((compiled.n_sessions, compiled.slots))
        scale = 1.0 / self.units_per_kwh / network.dt
        n_power = len(network.power_session)
        base = flow[network.power_arc0 : network.power_arc0 + n_power]
        session = self.node_session[network.power_session]
        keep = session >= 0
        power[session[keep], network.power_slot[keep]] = base[keep] * scale
        n_spares = len(network.spare_zone)
        if n_spares:
            first = network.spare_arc0 + n_spares
            spare = flow[first : first + n_spares * compiled.slots].reshape(n_spares, -1)
            session = self.node_session[-n_spares:]
            keep = session >= 0
            power[session[keep]] = spare[keep] * scale
        return power


def _structure(compiled: Compiled) -> tuple[object, ...]:
    """What must not change for a problem to fit the same network."""
    return (
        compiled.slots,
        compiled.dt,
        tuple(compiled.zone_ids),
        compiled.zone_parent.tobytes(),
        tuple(compiled.charger_ids),
        compiled.charger_zone.tobytes(),
        compiled.charger_max_kw.tobytes(),
    )


def _fit(state: _State | None, compiled: Compiled) -> _Fit | None:
    """`compiled` in `state`'s network, or None when it does not fit (see the module docstring)."""
    if state is None or _structure(compiled) != state.key:
        return None
    network = state.network
    unit = network.units_per_kwh
    energy = _units(compiled.energy_kwh, unit, int(_MAX_TOTAL_UNITS))
    total = int(energy.sum())
    if total > _MAX_TOTAL_UNITS:
        return None
    usable = compiled.window & (energy > 0)[:, None]

    # Keep each session where it is if its arcs still cover its window, else give it a spare.
    n_nodes = len(state.node_charger)
    assigned = state.assigned
    previous = np.array([assigned.get(i, -1) for i in compiled.session_ids], dtype=np.int64)
    keep = previous >= 0
    rows = np.maximum(previous, 0)
    keep &= state.node_charger[rows] == compiled.session_charger
    keep &= ~(usable & ~state.arc_mask[rows]).any(axis=1)
    node_of = np.where(keep, previous, -1)
    taken = np.zeros(n_nodes, dtype=bool)
    taken[node_of[keep]] = True
    spare_zone = network.spare_zone
    free: dict[int, list[int]] = {}
    for k in np.nonzero(~taken[state.n_base :])[0][::-1]:
        free.setdefault(int(spare_zone[k]), []).append(state.n_base + int(k))
    session_zone = compiled.session_zone
    for i in np.nonzero(~keep)[0]:
        pool = free.get(int(session_zone[i]))
        if not usable[i].any():
            continue  # nothing to deliver: no node needed
        if not pool:
            return None
        node_of[i] = pool.pop()
    on_node = node_of >= 0

    # Chargers: wherever sessions could together exceed one, all of them must pass its node.
    bound = np.where(usable, compiled.session_max_kw[:, None], 0.0)
    charger_sum = group_sum(compiled.session_charger, bound, compiled.n_chargers)
    need = charger_sum > compiled.charger_max_kw[:, None]
    if (need & ~state.charger_node).any():
        return None
    on_spare = on_node & (node_of >= state.n_base)
    if on_spare.any():
        spare_need = need[compiled.session_charger[on_spare]] & usable[on_spare]
        if spare_need.any():
            return None

    node_session = np.full(n_nodes, -1, dtype=np.int64)
    node_session[node_of[on_node]] = np.nonzero(on_node)[0]
    node_charger = state.node_charger.copy()
    node_charger[node_of[on_node]] = compiled.session_charger[on_node]
    assigned = {compiled.session_ids[i]: int(node_of[i]) for i in np.nonzero(on_node)[0].tolist()}
    capacity, cost = _arrays(network, compiled, node_session, energy, usable, total)
    return _Fit(capacity, cost, total, assigned, node_charger, node_session, unit)


def _arrays(
    network: Network,
    compiled: Compiled,
    node_session: IntArray,
    energy: IntArray,
    usable: BoolArray,
    total: int,
) -> tuple[IntArray, IntArray]:
    """Capacities [units] and costs [rank] of every arc for the sessions placed on the nodes."""
    unit, dt, slots = network.units_per_kwh, network.dt, compiled.slots
    big = max(total, 1)
    capacity = np.zeros(network.n_arcs, dtype=np.int64)
    n_base = network.power_arc0
    n_spares = len(network.spare_zone)
    session = node_session
    present = session >= 0
    source = np.zeros(len(session), dtype=np.int64)
    source[present] = energy[session[present]]
    capacity[:n_base] = source[:n_base]
    capacity[network.spare_arc0 : network.spare_arc0 + n_spares] = source[n_base:]
    bound_units = _units(compiled.session_max_kw * dt, unit, big)

    def power_caps(nodes: IntArray, slot: IntArray) -> IntArray:
        s = session[nodes]
        ok = s >= 0
        out = np.zeros(len(nodes), dtype=np.int64)
        ok[ok] = usable[s[ok], slot[ok]]
        out[ok] = bound_units[s[ok]]
        return out

    first = network.power_arc0
    capacity[first : first + len(network.power_session)] = power_caps(
        network.power_session, network.power_slot
    )
    if n_spares:
        nodes = np.repeat(np.arange(n_base, n_base + n_spares, dtype=np.int64), slots)
        spare_slot = np.tile(np.arange(slots, dtype=np.int64), n_spares)
        first = network.spare_arc0 + n_spares
        capacity[first : first + n_spares * slots] = power_caps(nodes, spare_slot)
    chargers = network.charger_arc_charger
    capacity[network.charger_arc0 : network.charger_arc0 + len(chargers)] = _units(
        compiled.charger_max_kw[chargers] * dt, unit, big
    )
    zones = slice(network.zone_arc0, network.zone_arc0 + len(network.zone_arc_zone))
    capacity[zones] = _units(
        compiled.zone_capacity_kw[network.zone_arc_zone, network.zone_arc_slot] * dt, unit, big
    )
    surplus = np.maximum(0.0, compiled.renewable_kw - compiled.base_load_kw) * dt
    capacity[network.free_arc0 : network.free_arc0 + slots] = _units(surplus, unit, big)
    capacity[network.import_arc0 : network.import_arc0 + slots] = big
    rank, _ = import_ranks(compiled.import_weight)
    cost = np.zeros(network.n_arcs, dtype=np.int64)
    cost[network.import_arc0 : network.import_arc0 + slots] = rank
    return capacity, cost
