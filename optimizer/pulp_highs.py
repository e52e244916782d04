"""PuLP's in-memory HiGHS solver, handing the model over as arrays in one `passModel` call.

PuLP's own `HiGHS.buildSolverModel` adds the model one column and one row at a time through
pybind11 and collects the variables three times (walking every constraint and sorting by name
each time): at 20,000 sessions that was about two thirds of the whole solve. This subclass
walks the constraints once, builds the row-wise matrix with numpy and passes it whole; it still
solves any PuLP LP (nothing here is specific to charging) and still sets `varValue`, `dj`,
`slack` and `pi` as PuLP's solver does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pulp

from optimizer.compiled import FloatArray


class ArrayHiGHS(pulp.HiGHS):  # type: ignore[misc]
    """`pulp.HiGHS` for continuous LPs with a vectorised model transfer.

    Parameters
    ----------
    known_variables : variables in the order they should become columns (the model's own
        list); variables found only in constraints or the objective are appended.
    **options : passed to `pulp.HiGHS` (``timeLimit``, ``msg``, HiGHS options, ...).
    """

    def __init__(self, known_variables: Sequence[pulp.LpVariable] = (), **options: Any) -> None:
        super().__init__(mip=False, **options)
        self.known_variables = list(known_variables)
        self.column_values: FloatArray | None = None

    def actualSolve(self, lp: pulp.LpProblem) -> int:
        """Build, solve and read back `lp`; returns PuLP's status code."""
        import highspy

        self.createAndConfigureSolver(lp)
        highs = lp.solverModel
        variables = list(self.known_variables)
        index: dict[int, int] = {id(v): i for i, v in enumerate(variables)}

        def column(var: pulp.LpVariable) -> int:
            found = index.get(id(var))
            if found is None:
                found = index[id(var)] = len(variables)
                variables.append(var)
            return found

        constraints = list(lp._constraints.values())  # as PuLP's own HiGHS interface reads them
        row_start = [0]
        cols: list[int] = []
        vals: list[float] = []
        for constraint in constraints:
            for var, coefficient in constraint.items():
                if coefficient != 0:
                    cols.append(column(var))
                    vals.append(coefficient)
            row_start.append(len(cols))
        sign = -1.0 if lp.sense == pulp.LpMaximize else 1.0
        cost = np.zeros(len(variables) + len(lp.objective))
        for var, coefficient in lp.objective.items():
            cost[column(var)] = sign * coefficient
        cost = cost[: len(variables)]
        inf = highspy.kHighsInf
        lower = np.array([-inf if v.lowBound is None else v.lowBound for v in variables], float)
        upper = np.array([inf if v.upBound is None else v.upBound for v in variables], float)
        row_lower = np.array([_bound(c.getLb(), -inf) for c in constraints], float)
        row_upper = np.array([_bound(c.getUb(), inf) for c in constraints], float)

        model = highspy.HighsLp()
        model.num_col_ = len(variables)
        model.num_row_ = len(constraints)
        model.col_cost_ = cost
        model.col_lower_ = lower
        model.col_upper_ = upper
        model.row_lower_ = row_lower
        model.row_upper_ = row_upper
        model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        model.a_matrix_.start_ = np.asarray(row_start, dtype=np.int32)
        model.a_matrix_.index_ = np.asarray(cols, dtype=np.int32)
        model.a_matrix_.value_ = np.asarray(vals, dtype=float)
        highs.passModel(model)
        highs.run()

        solution = highs.getSolution()
        values = np.asarray(solution.col_value, dtype=float)
        self.column_values = values if len(values) == len(variables) else None
        if self.column_values is not None:
            duals = np.asarray(solution.col_dual, dtype=float).tolist()
            for var, value, dual in zip(variables, values.tolist(), duals, strict=True):
                var.varValue = value
                var.dj = dual
            row_values = np.asarray(solution.row_value, dtype=float).tolist()
            row_duals = np.asarray(solution.row_dual, dtype=float).tolist()
            for constraint, row_value, row_dual in zip(
                constraints, row_values, row_duals, strict=True
            ):
                slack = constraint.constant + row_value
                constraint.slack = -slack if constraint.sense == pulp.LpConstraintLE else slack
                constraint.pi = row_dual
        status, solution_status = _pulp_status(highs)
        lp.assignStatus(status, solution_status)
        return status


def _bound(value: float | None, missing: float) -> float:
    return missing if value is None else float(value)


def _pulp_status(highs: Any) -> tuple[int, int]:
    import highspy

    status = highs.getModelStatus()
    kinds = highspy.HighsModelStatus
    if status == kinds.kOptimal:
        return pulp.LpStatusOptimal, pulp.LpSolutionOptimal
    if status in (kinds.kInfeasible, kinds.kUnboundedOrInfeasible):
        return pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible
    if status == kinds.kUnbounded:
        return pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded
    return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound
