"""How much memory a solve of a problem will need, estimated from its sizes before building it.

The big arrays are per cell (session × slot: the dense power plans, the window, the schedule's
lists of floats) and per arc (session × slot inside the window: the flow network, twice, in
this process and in the solver's). The coefficients are measured peaks with a margin
(docs/performance.md), so the estimate errs high.
"""

from __future__ import annotations

from optimizer.problem import Problem

_BASE_BYTES = 150 * 2**20  # interpreter, numpy, OR-Tools, pydantic
_BYTES_PER_CELL = 160  # [S, T] float arrays, the window, the schedule's Python floats
_BYTES_PER_ARC = 450  # network arrays here and in the solver's child
_BYTES_PER_ZONE_SLOT = 200


def estimate_memory_bytes(problem: Problem) -> int:
    """Estimated peak memory [bytes] of `optimizer.solve` on `problem` (an upper estimate)."""
    slots = problem.slots
    cells = len(problem.sessions) * slots
    arcs = sum(max(0, min(s.departure_slot, slots) - s.arrival_slot) for s in problem.sessions)
    return (
        _BASE_BYTES
        + cells * _BYTES_PER_CELL
        + arcs * _BYTES_PER_ARC
        + len(problem.zones) * slots * _BYTES_PER_ZONE_SLOT
    )
