"""The PuLP model: extensible by later constraints, and the same LP as the HiGHS-only path."""

from __future__ import annotations

import numpy as np
import pulp
import pytest

from optimizer import Problem
from optimizer.compiled import compile_problem
from optimizer.highs_direct import solve_layout
from optimizer.layout import build_layout
from optimizer.lp import build_model, solve_model
from tests.unit.optimizer.test_regression_cases import CASES, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_pulp_and_highs_alone_reach_the_same_optimum(name: str) -> None:
    problem = Problem.model_validate_json((CASES / f"{name}.problem.json").read_text())
    compiled = compile_problem(problem)
    layout = build_layout(compiled)
    via_pulp = solve_model(build_model(compiled, layout), 60)
    alone = solve_layout(layout, 60)
    assert via_pulp.status == alone.status == "optimal"
    assert via_pulp.values is not None and alone.values is not None
    objective = float(layout.col_cost @ via_pulp.values)
    assert objective == pytest.approx(float(layout.col_cost @ alone.values), rel=1e-7, abs=1e-7)


def test_a_later_constraint_is_honoured() -> None:
    """E.g. a dispatch rule capping one session, added to the PuLP model and solved the same way."""
    problem = Problem.model_validate(
        {
            "slot_minutes": 60,
            "slots": 3,
            "renewable_kw": [0, 20, 0],
            "chargers": [{"id": "c1", "max_kw": 11}],
            "sessions": [
                {
                    "id": "s1",
                    "charger": "c1",
                    "arrival_slot": 0,
                    "departure_slot": 3,
                    "energy_kwh": 12,
                }
            ],
        }
    )
    compiled = compile_problem(problem)
    model = build_model(compiled)
    free = solve_model(model, 10)
    assert free.values is not None
    power = model.layout.power_from_columns(free.values, compiled)
    assert power[0, 1] == pytest.approx(11.0)  # the renewable slot first
    model.problem += model.power[(0, 1)] <= 4.0, "cap_s1_t1"
    capped = solve_model(model, 10)
    assert capped.status == "optimal" and capped.values is not None
    power = model.layout.power_from_columns(capped.values, compiled)
    assert power[0, 1] == pytest.approx(4.0)
    assert power.sum() == pytest.approx(12.0)
    assert pulp.value(model.power[(0, 1)]) == pytest.approx(4.0)
    assert np.all(power >= -1e-9)
