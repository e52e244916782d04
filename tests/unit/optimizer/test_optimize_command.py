"""`gridcoord optimize`: schedule JSON to stdout or a file; exit 2, no traceback, on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridcoord.optimize_command import optimize_command
from tests.unit.optimizer.test_problem import VALID


def test_solves_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(VALID))
    assert optimize_command(problem, None) == 0
    schedule = json.loads(capsys.readouterr().out)
    assert schedule["status"] == "optimal"
    assert set(schedule["sessions"]) == {"s-1"}
    assert len(schedule["chargers"]["cp-1"]) == 4


def test_writes_the_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(VALID))
    out = tmp_path / "schedule.json"
    assert optimize_command(problem, out) == 0
    assert json.loads(out.read_text())["unmet_kwh_total"] == pytest.approx(0.0, abs=1e-9)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "invalid JSON at line 1"),
        (
            json.dumps({**VALID, "sessions": [{**VALID["sessions"][0], "charger": "cp-404"}]}),
            "session 's-1': unknown charger 'cp-404'",
        ),
        ("[]", "Input should be a valid dictionary"),
    ],
)
def test_invalid_input_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(text)
    assert optimize_command(problem, None) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err
    assert "Traceback" not in captured.err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert optimize_command(tmp_path / "absent.json", None) == 2
    assert "cannot read" in capsys.readouterr().err


def test_stdout_is_only_the_schedule_json_in_a_fresh_process(tmp_path: Path) -> None:
    """HiGHS prints a banner from native code on first use; it must not end up in stdout."""
    import subprocess
    import sys

    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(VALID))
    done = subprocess.run(
        [sys.executable, "-m", "gridcoord", "optimize", str(problem)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "optimal"
