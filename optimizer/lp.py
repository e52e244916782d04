"""The charging LP as a PuLP model, solved by HiGHS in memory (PuLP's `HiGHS` → highspy).

The PuLP model is the general formulation: later constraints (a guaranteed minimum per charger,
a peak cap, ...) are added to `ChargingModel.problem` with the variables it exposes. It is built
from the same `Layout` as the HiGHS-only path of the benchmark, so both solve one LP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from optimizer.compiled import Compiled, FloatArray
from optimizer.layout import Layout, build_layout
from optimizer.pulp_highs import ArrayHiGHS

_ROW_NAME = {
    0: "zone_{ref}_{slot}",
    1: "import_{slot}",
    2: "charger_{ref}_{slot}",
    3: "energy_{ref}",
}


@dataclass
class ChargingModel:
    """A built PuLP model and the handles to extend it.

    Attributes
    ----------
    problem
        the `pulp.LpProblem` (minimise).
    power
        power variables [kW] keyed by (session index, slot); only slots inside the
        session's window exist, none for a session asking for 0 kWh.
    flow
        zone flow variables [kW] keyed by (zone index, slot).
    grid_import
        import variable [kW] per slot.
    layout
        the index arrays the model was built from.
    variables
        every column in layout order (power, flow, import).
    """

    problem: pulp.LpProblem
    power: dict[tuple[int, int], pulp.LpVariable]
    flow: dict[tuple[int, int], pulp.LpVariable]
    grid_import: list[pulp.LpVariable]
    layout: Layout
    variables: list[pulp.LpVariable]


def build_model(compiled: Compiled, layout: Layout | None = None) -> ChargingModel:
    """The PuLP model of `compiled` (network form, single weighted objective; see `layout`)."""
    layout = layout if layout is not None else build_layout(compiled)
    problem = pulp.LpProblem("gridcoord_charging", pulp.LpMinimize)
    n_power = layout.n_power
    upper = layout.col_upper.tolist()
    variables: list[pulp.LpVariable] = []
    power: dict[tuple[int, int], pulp.LpVariable] = {}
    for k, (s, t) in enumerate(
        zip(layout.power_session.tolist(), layout.power_slot.tolist(), strict=True)
    ):
        var = problem.add_variable(f"p_{s}_{t}", lowBound=0.0, upBound=upper[k])
        power[(s, t)] = var
        variables.append(var)
    flow: dict[tuple[int, int], pulp.LpVariable] = {}
    for k, (z, t) in enumerate(
        zip(layout.flow_zone.tolist(), layout.flow_slot.tolist(), strict=True)
    ):
        var = problem.add_variable(f"f_{z}_{t}", lowBound=0.0, upBound=upper[n_power + k])
        flow[(z, t)] = var
        variables.append(var)
    grid_import = [problem.add_variable(f"imp_{t}", lowBound=0.0) for t in range(compiled.slots)]
    variables += grid_import

    cost = layout.col_cost.tolist()
    problem.setObjective(
        pulp.LpAffineExpression([(v, c) for v, c in zip(variables, cost, strict=True) if c != 0.0])
    )
    order = np.argsort(layout.entry_row, kind="stable")
    bounds = np.searchsorted(layout.entry_row[order], np.arange(layout.n_rows + 1))
    cols = layout.entry_col[order].tolist()
    vals = layout.entry_value[order].tolist()
    kinds = layout.row_kind.tolist()
    refs = layout.row_ref.tolist()
    slots = layout.row_slot.tolist()
    lower = layout.row_lower.tolist()
    upper_row = layout.row_upper.tolist()
    starts = bounds.tolist()
    for r in range(layout.n_rows):
        lo, hi = starts[r], starts[r + 1]
        expr = pulp.LpAffineExpression(
            [(variables[c], v) for c, v in zip(cols[lo:hi], vals[lo:hi], strict=True)]
        )
        kind = kinds[r]
        if kind == 1:
            sense, rhs = pulp.LpConstraintGE, lower[r]
        elif kind == 0:
            sense, rhs = pulp.LpConstraintEQ, 0.0
        else:
            sense, rhs = pulp.LpConstraintLE, upper_row[r]
        name = _ROW_NAME[kind].format(ref=refs[r], slot=slots[r])
        problem.addConstraint(pulp.LpConstraint(expr, sense, name, rhs))
    return ChargingModel(problem, power, flow, grid_import, layout, variables)


@dataclass(frozen=True)
class LpResult:
    """What came back from HiGHS.

    Attributes
    ----------
    status
        "optimal", "time_limit" (values may be infeasible) or "failed".
    values
        column values in layout order, or None when HiGHS returned none.
    detail
        HiGHS's model status text.
    """

    status: str
    values: FloatArray | None
    detail: str


def highs_options(time_limit_s: float, threads: int | None = None) -> dict[str, Any]:
    """HiGHS options used by both the PuLP path and the HiGHS-only benchmark path."""
    options: dict[str, Any] = {"time_limit": max(0.01, float(time_limit_s)), "presolve": "on"}
    if threads is not None:
        options["threads"] = threads
    return options


def solve_model(
    model: ChargingModel, time_limit_s: float, extra_options: dict[str, Any] | None = None
) -> LpResult:
    """Solve `model` with HiGHS in memory through PuLP, within `time_limit_s` [s].

    Uses `ArrayHiGHS`, PuLP's HiGHS interface with a vectorised model transfer. Columns of
    constraints added to `model.problem` after `build_model` are solved too; the returned
    values cover the layout's columns (power, flow, import) first. `extra_options` are further
    HiGHS options (the benchmark uses them to compare solvers).
    """
    import highspy

    options = highs_options(time_limit_s) | (extra_options or {})
    solver = ArrayHiGHS(model.variables, msg=False, timeLimit=options.pop("time_limit"), **options)
    try:
        model.problem.solve(solver)
    except pulp.PulpSolverError as exc:
        return LpResult("failed", None, str(exc))
    highs = model.problem.solverModel
    status = highs.getModelStatus()
    detail = highs.modelStatusToString(status)
    if status == highspy.HighsModelStatus.kOptimal:
        kind = "optimal"
    elif status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        kind = "time_limit"
    else:
        return LpResult("failed", None, detail)
    if solver.column_values is None:
        return LpResult("failed", None, f"{detail}: no solution values")
    return LpResult(kind, solver.column_values[: len(model.variables)], detail)
