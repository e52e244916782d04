"""The same LP handed to highspy as arrays, without PuLP: the benchmark's reference path.

Also a second route to the optimum when the PuLP layer is not needed (no extra constraints).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.layout import Layout
from optimizer.lp import LpResult, highs_options


def solve_layout(
    layout: Layout, time_limit_s: float, extra_options: dict[str, Any] | None = None
) -> LpResult:
    """Solve the LP of `layout` with highspy directly (column-wise matrix), within a time limit."""
    import highspy

    order = np.lexsort((layout.entry_row, layout.entry_col))
    starts = np.searchsorted(layout.entry_col[order], np.arange(layout.n_cols + 1))
    lp = highspy.HighsLp()
    lp.num_col_ = layout.n_cols
    lp.num_row_ = layout.n_rows
    lp.col_cost_ = layout.col_cost
    lp.col_lower_ = layout.col_lower
    lp.col_upper_ = np.where(np.isinf(layout.col_upper), highspy.kHighsInf, layout.col_upper)
    lp.row_lower_ = np.where(np.isinf(layout.row_lower), -highspy.kHighsInf, layout.row_lower)
    lp.row_upper_ = np.where(np.isinf(layout.row_upper), highspy.kHighsInf, layout.row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = layout.entry_row[order].astype(np.int32)
    lp.a_matrix_.value_ = layout.entry_value[order]
    highs = highspy.Highs()  # type: ignore[no-untyped-call]
    highs.setOptionValue("output_flag", False)
    for key, value in (highs_options(time_limit_s) | (extra_options or {})).items():
        highs.setOptionValue(key, value)
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    detail = highs.modelStatusToString(status)
    if status == highspy.HighsModelStatus.kOptimal:
        kind = "optimal"
    elif status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        kind = "time_limit"
    else:
        return LpResult("failed", None, detail)
    values = np.asarray(highs.getSolution().col_value, dtype=np.float64)
    return LpResult(kind, values, detail)
