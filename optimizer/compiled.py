"""A validated problem as numpy arrays: the one representation every algorithm here works on.

Power plans are dense arrays ``power[s, t]`` [kW] over sessions × slots (20,000 × 96 floats is
15 MB), zero outside each session's window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from optimizer.problem import Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def group_sum(index: IntArray, values: FloatArray, groups: int) -> FloatArray:
    """[groups, T] sums of the rows of `values` [N, T] by group `index` [N] (all ≥ 0).

    A sparse indicator matrix times `values`: many times faster than ``np.add.at``.
    """
    indicator = csr_matrix(
        (np.ones(len(index)), (index, np.arange(len(index)))), shape=(groups, len(index))
    )
    return np.asarray(indicator @ values, dtype=np.float64)


def _series(value: float | list[float], slots: int) -> FloatArray:
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float64)
    return np.full(slots, float(value), dtype=np.float64)


@dataclass(frozen=True)
class Compiled:
    """Index structures and series of one problem.

    Attributes
    ----------
    slots
        number of slots T.
    dt
        slot length [h].
    renewable_kw, base_load_kw, import_weight
        per-slot series [kW], [kW], [cost/kWh].
    zone_ids
        zone ids in topological order, every zone after all of its descendants.
    zone_parent
        index of each zone's parent, -1 for a root.
    zone_depth
        0 for a root, parent's depth + 1 below.
    zone_capacity_kw
        [Z, T] headroom [kW].
        charger_ids, charger_zone (-1: no zone), charger_max_kw [kW].
        session_ids, session_charger, arrival, departure, energy_kwh,
    session_max_kw
        the session's own power bound min(vehicle, charger) [kW].
    window
        [S, T] True where the session may charge.
    session_zone_at_depth
        [S, D] the session's ancestor zone at each depth, -1 if none.
    """

    slots: int
    dt: float
    renewable_kw: FloatArray
    base_load_kw: FloatArray
    import_weight: FloatArray
    zone_ids: list[str]
    zone_parent: IntArray
    zone_depth: IntArray
    zone_capacity_kw: FloatArray
    charger_ids: list[str]
    charger_zone: IntArray
    charger_max_kw: FloatArray
    session_ids: list[str]
    session_charger: IntArray
    arrival: IntArray
    departure: IntArray
    energy_kwh: FloatArray
    session_max_kw: FloatArray
    window: BoolArray
    session_zone_at_depth: IntArray

    @property
    def n_sessions(self) -> int:
        """Number of sessions S."""
        return len(self.session_ids)

    @property
    def n_zones(self) -> int:
        """Number of zones Z."""
        return len(self.zone_ids)

    @property
    def n_chargers(self) -> int:
        """Number of chargers."""
        return len(self.charger_ids)

    @property
    def session_zone(self) -> IntArray:
        """Zone each session's charger is in (-1: none)."""
        return self.charger_zone[self.session_charger]

    def charger_load(self, power: FloatArray) -> FloatArray:
        """[chargers, T] sum of session power per charger [kW]."""
        return group_sum(self.session_charger, power, self.n_chargers)

    def zone_load(self, power: FloatArray) -> FloatArray:
        """[Z, T] power of all sessions on chargers in each zone or below it [kW]."""
        zoned = self.session_zone >= 0
        load = group_sum(self.session_zone[zoned], power[zoned], self.n_zones)
        # Deepest level first, a level at a time (not zone by zone: 2,000 feeders at 100,000
        # sessions): each level's totals, complete by then, go up to their parents.
        for depth in range(int(self.zone_depth.max(initial=0)), 0, -1):
            level = np.nonzero(self.zone_depth == depth)[0]
            load += group_sum(self.zone_parent[level], load[level], self.n_zones)
        return load

    def max_violation(self, power: FloatArray) -> float:
        """Largest violation of any constraint of DESIGN 3.5 by `power` [kW or kWh]."""
        if power.shape != (self.n_sessions, self.slots):
            raise ValueError(f"power has shape {power.shape}, expected {self.window.shape}")
        worst = float(max(0.0, -power.min(initial=0.0)))
        worst = max(worst, float(np.abs(power[~self.window]).max(initial=0.0)))
        worst = max(worst, float((power - self.session_max_kw[:, None]).max(initial=0.0)))
        charger_over = self.charger_load(power) - self.charger_max_kw[:, None]
        worst = max(worst, float(charger_over.max(initial=0.0)))
        zone_over = self.zone_load(power) - self.zone_capacity_kw
        worst = max(worst, float(zone_over.max(initial=0.0)))
        energy_over = power.sum(axis=1) * self.dt - self.energy_kwh
        return max(worst, float(energy_over.max(initial=0.0)))


def compile_problem(problem: Problem) -> Compiled:
    """Arrays of a validated `problem` (ids must resolve and the zone forest be acyclic)."""
    slots = problem.slots
    order = _topological(problem)
    zone_index = {problem.zones[i].id: k for k, i in enumerate(order)}
    zones = [problem.zones[i] for i in order]
    zone_parent = np.array(
        [zone_index[z.parent] if z.parent is not None else -1 for z in zones], dtype=np.int64
    )
    zone_depth = np.zeros(len(zones), dtype=np.int64)
    for k in range(len(zones) - 1, -1, -1):  # parents come after children: walk backwards
        if zone_parent[k] >= 0:
            zone_depth[k] = zone_depth[zone_parent[k]] + 1
    capacity = np.zeros((len(zones), slots))
    for k, zone in enumerate(zones):
        capacity[k] = _series(zone.capacity_kw, slots)

    charger_index = {c.id: k for k, c in enumerate(problem.chargers)}
    charger_zone = np.array(
        [zone_index[c.zone] if c.zone is not None else -1 for c in problem.chargers],
        dtype=np.int64,
    )
    charger_max = np.array([c.max_kw for c in problem.chargers], dtype=np.float64)

    sessions = problem.sessions
    session_charger = np.array([charger_index[s.charger] for s in sessions], dtype=np.int64)
    arrival = np.array([s.arrival_slot for s in sessions], dtype=np.int64)
    departure = np.array([s.departure_slot for s in sessions], dtype=np.int64)
    vehicle_max = np.array(
        [s.max_kw if s.max_kw is not None else np.inf for s in sessions], dtype=np.float64
    )
    session_max = np.minimum(vehicle_max, charger_max[session_charger]) if sessions else vehicle_max
    slot = np.arange(slots)
    window = (slot[None, :] >= arrival[:, None]) & (slot[None, :] < departure[:, None])

    depth_count = int(zone_depth.max()) + 1 if len(zones) else 0
    at_depth = np.full((len(sessions), depth_count), -1, dtype=np.int64)
    session_zone = charger_zone[session_charger] if sessions else charger_zone[:0]
    current = session_zone.copy()
    while True:  # climb every session's zone chain one level per pass
        valid = current >= 0
        if not valid.any():
            break
        rows = np.nonzero(valid)[0]
        at_depth[rows, zone_depth[current[valid]]] = current[valid]
        current = np.where(valid, zone_parent[np.maximum(current, 0)], -1)

    return Compiled(
        slots=slots,
        dt=problem.slot_hours,
        renewable_kw=_series(problem.renewable_kw, slots),
        base_load_kw=_series(problem.base_load_kw, slots),
        import_weight=_series(problem.import_weight, slots),
        zone_ids=[z.id for z in zones],
        zone_parent=zone_parent,
        zone_depth=zone_depth,
        zone_capacity_kw=capacity,
        charger_ids=[c.id for c in problem.chargers],
        charger_zone=charger_zone,
        charger_max_kw=charger_max,
        session_ids=[s.id for s in sessions],
        session_charger=session_charger,
        arrival=arrival,
        departure=departure,
        energy_kwh=np.array([s.energy_kwh for s in sessions], dtype=np.float64),
        session_max_kw=session_max,
        window=window,
        session_zone_at_depth=at_depth,
    )


def _topological(problem: Problem) -> list[int]:
    """Zone positions ordered so that every zone comes before its parent."""
    children: dict[str | None, list[int]] = {}
    for i, zone in enumerate(problem.zones):
        children.setdefault(zone.parent, []).append(i)
    order: list[int] = []
    stack = list(reversed(children.get(None, [])))
    while stack:  # pre-order from the roots, reversed at the end: children before parents
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(children.get(problem.zones[i].id, [])))
    return order[::-1]
