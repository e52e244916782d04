"""Stored request/expected-KPI pairs (tests/optimizer_cases/): the optimum must not drift.

Expected values come from the independent two-stage reference solve in `strategies.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer import Problem, solve
from optimizer.compiled import compile_problem

CASES = Path(__file__).resolve().parents[2] / "optimizer_cases"
NAMES = sorted(p.name.removesuffix(".problem.json") for p in CASES.glob("*.problem.json"))


def test_cases_exist() -> None:
    assert len(NAMES) >= 4
    for name in NAMES:
        assert (CASES / f"{name}.expected.json").is_file(), name


@pytest.mark.parametrize("name", NAMES)
def test_case(name: str) -> None:
    problem = Problem.model_validate_json((CASES / f"{name}.problem.json").read_text())
    expected = json.loads((CASES / f"{name}.expected.json").read_text())
    schedule = solve(problem, time_limit_s=60)
    assert schedule.status == expected["status"]
    assert schedule.unmet_kwh_total == pytest.approx(expected["unmet_kwh_total"], abs=1e-5)
    assert schedule.import_cost == pytest.approx(expected["import_cost"], rel=1e-6, abs=1e-5)
    power = [schedule.sessions[s.id].power_kw for s in problem.sessions]
    assert compile_problem(problem).max_violation(np.array(power).reshape(-1, problem.slots)) < 1e-6
