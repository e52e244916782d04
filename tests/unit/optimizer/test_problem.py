"""Invalid problems are refused with a message naming the offending element (DESIGN 3.5)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from optimizer import Problem, describe_problem_errors

VALID: dict[str, Any] = {
    "slot_minutes": 15,
    "slots": 4,
    "renewable_kw": [0, 5, 5, 0],
    "zones": [
        {"id": "sub", "capacity_kw": 50},
        {"id": "f1", "parent": "sub", "capacity_kw": [10, 10, 10, 10]},
    ],
    "chargers": [{"id": "cp-1", "zone": "f1", "max_kw": 11}],
    "sessions": [
        {"id": "s-1", "charger": "cp-1", "arrival_slot": 0, "departure_slot": 4, "energy_kwh": 8}
    ],
}


def _refusal(change: Any) -> list[str]:
    data = copy.deepcopy(VALID)
    change(data)
    with pytest.raises(ValidationError) as caught:
        Problem.model_validate(data)
    return describe_problem_errors(caught.value, data)


def test_valid_problem_is_accepted() -> None:
    problem = Problem.model_validate(VALID)
    assert problem.slot_hours == 0.25


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["sessions"][0].update(charger="cp-9"),
            "session 's-1': unknown charger 'cp-9'",
        ),
        (
            lambda d: d["sessions"][0].update(arrival_slot=3, departure_slot=3),
            "session 's-1': departure_slot 3 must be > arrival_slot 3",
        ),
        (
            lambda d: d["sessions"][0].update(departure_slot=5),
            "session 's-1': departure_slot 5 must be <= slots = 4",
        ),
        (
            lambda d: d["sessions"][0].update(arrival_slot=4, departure_slot=5),
            "session 's-1': arrival_slot 4 must be < slots = 4",
        ),
        (
            lambda d: d.update(renewable_kw=[1, 2, 3]),
            "renewable_kw: series has 3 values, expected slots = 4",
        ),
        (
            lambda d: d["zones"][1].update(capacity_kw=[1] * 5),
            "zone 'f1': capacity_kw: series has 5 values, expected slots = 4",
        ),
        (lambda d: d["chargers"][0].update(zone="f9"), "charger 'cp-1': unknown zone 'f9'"),
        (lambda d: d["zones"][1].update(parent="f7"), "zone 'f1': unknown parent zone 'f7'"),
        (lambda d: d["zones"][0].update(parent="f1"), "zones: cycle 'sub' -> 'f1' -> 'sub'"),
        (lambda d: d["zones"][0].update(parent="sub"), "zones: cycle 'sub' -> 'sub'"),
        (lambda d: d["sessions"].append(dict(d["sessions"][0])), "session 's-1': duplicate"),
        (lambda d: d["chargers"].append(dict(d["chargers"][0])), "charger 'cp-1': duplicate"),
        (
            lambda d: d["sessions"][0].update(energy_kwh=-1),
            "session 's-1' (sessions[0]).energy_kwh: Input should be greater than or equal to 0",
        ),
        (
            lambda d: d["zones"][1].update(capacity_kw=[1, -2, 1, 1]),
            "zone 'f1' (zones[1]).capacity_kw",
        ),
        (lambda d: d["chargers"][0].update(max_kw=0), "charger 'cp-1' (chargers[0]).max_kw"),
        (lambda d: d.update(import_weight=0), "import_weight"),
        (
            lambda d: d.update(import_weight="cheap"),
            "import_weight: should be a number or a list of numbers",
        ),
        (lambda d: d.update(base_load_kw=-1), "base_load_kw"),
        (lambda d: d.update(slots=0), "slots: Input should be greater than 0"),
        (lambda d: d["sessions"][0].update(energy_kwh=float("nan")), "energy_kwh"),
        (lambda d: d["sessions"][0].update(colour="red"), "session 's-1' (sessions[0]).colour"),
        (lambda d: d.update(start="2026-03-29T02:30:00"), "start"),
    ],
)
def test_invalid_input_names_the_element(change: Any, expected: str) -> None:
    lines = _refusal(change)
    assert any(expected in line for line in lines), lines


def test_every_problem_is_reported_at_once() -> None:
    def two(d: dict[str, Any]) -> None:
        d["sessions"][0].update(charger="cp-9")
        d["chargers"][0].update(zone="f9")

    lines = _refusal(two)
    assert len(lines) == 2


def test_a_bad_series_element_is_reported_once_without_the_other_union_branch() -> None:
    lines = _refusal(lambda d: d["zones"][1].update(capacity_kw=[1, -2, 1, 1]))
    assert lines == [
        "zone 'f1' (zones[1]).capacity_kw[1]: Input should be greater than or equal to 0"
    ]
