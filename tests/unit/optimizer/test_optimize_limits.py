"""`gridcoord optimize` refuses unbounded input (issue 9, defect 7): exit 2, message, no trace.

The hostile corpus runs as real subprocesses of the command, each bounded in time and memory;
the memory-estimate and file-size checks run in-process with lowered limits.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from gridcoord import optimize_command as command
from tests.unit.optimizer.test_problem import VALID

_SESSION = VALID["sessions"][0]


def _with(**changes: Any) -> str:
    data = copy.deepcopy(VALID)
    data.update(changes)
    return json.dumps(data)


def _scalar(**changes: Any) -> str:
    """`VALID` with every series a single value, so that `slots` alone can change."""
    data = copy.deepcopy(VALID)
    data["renewable_kw"] = 5
    data["zones"][1]["capacity_kw"] = 10
    data.update(changes)
    return json.dumps(data)


def _deep(levels: int) -> str:
    return json.dumps(VALID)[:-1] + ', "slots": ' + "[" * levels + "]" * levels + "}"


CORPUS: dict[str, tuple[str, str]] = {
    # name: (file text, expected part of the message)
    "10,000-level nesting": ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
    "10,000-level nesting in a field": (_deep(10_000), "nested too deeply"),
    "5,000-digit integer": (_with()[:-1] + ', "slots": 1' + "0" * 4999 + "}", "digits"),
    "slots 10**1000": (
        _scalar()[:-1] + ', "slots": 1' + "0" * 1000 + "}",
        "slots: Input should be less than or equal to 2016",
    ),
    "slots true": (_scalar(slots=True), "slots: Input should be a valid integer"),
    "a million slots": (_scalar(slots=1_000_000), "less than or equal to 2016"),
    "slot_minutes 1e9": (
        _with(slot_minutes=1_000_000_000),
        "slot_minutes: Input should be less than or equal to 1440",
    ),
    "capacity 1e308": (
        _with(zones=[{"id": "sub", "capacity_kw": 1e308}], chargers=[{"id": "cp-1", "max_kw": 11}]),
        "zone 'sub' (zones[0]).capacity_kw",
    ),
    "energy 1e308": (
        _with(sessions=[{**_SESSION, "energy_kwh": 1e308}]),
        "energy_kwh: Input should be less than or equal to",
    ),
    "400-digit energy": (
        _with()[:-1].replace('"energy_kwh": 8', '"energy_kwh": 1' + "0" * 400) + "}",
        "energy_kwh",
    ),
    "NaN": (_with().replace('"energy_kwh": 8', '"energy_kwh": NaN'), "NaN is not a number"),
    "Infinity": (_with(renewable_kw="__INF__").replace('"__INF__"', "Infinity"), "Infinity"),
    "true as energy": (_with(sessions=[{**_SESSION, "energy_kwh": True}]), "energy_kwh"),
    "forty 1-day slots": (_scalar(slots=40, slot_minutes=1440), "exceeds the limit"),
    "an id of 10,000 characters": (
        _with(sessions=[{**_SESSION, "id": "s" * 10_000}]),
        "at most 200 characters",
    ),
}


# Runs `gridcoord optimize PROBLEM`, writes the command's own peak RSS [KiB] to the second
# argument and exits with its exit code.
_SPAWNER = """
import os, sys
argv = [sys.executable, "-m", "gridcoord", "optimize", sys.argv[1]]
pid = os.posix_spawn(sys.executable, argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[2], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_problem_exits_2_with_a_message(tmp_path: Path, name: str) -> None:
    text, expected = CORPUS[name]
    problem = tmp_path / "problem.json"
    problem.write_text(text)
    out_file, err_file = tmp_path / "out", tmp_path / "err"
    rss_file = tmp_path / "maxrss"
    with out_file.open("w") as out, err_file.open("w") as err:
        # Through a small spawner: Linux counts the memory a child had before exec (its fork of
        # this pytest process, hundreds of MB late in a run) in its ru_maxrss.
        process = subprocess.Popen(
            [sys.executable, "-c", _SPAWNER, str(problem), str(rss_file)],
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    guard = threading.Timer(60.0, lambda: os.killpg(process.pid, signal.SIGKILL))
    guard.start()  # a hang guard, not a speed assertion
    try:
        process.wait()
    finally:
        guard.cancel()
    max_rss_kib = int(rss_file.read_text())
    message = err_file.read_text()
    assert process.returncode == 2, (name, message[-2000:])
    assert out_file.read_text() == ""
    assert expected in message, message[-2000:]
    assert "Traceback" not in message
    assert max_rss_kib < 500 * 1024  # the command's own peak [KiB]


def test_memory_estimate_refuses_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(_with())
    assert command.optimize_command(problem, None, max_memory_bytes=2**20) == 2
    err = capsys.readouterr().err
    assert "problem too large: its solve needs an estimated" in err
    assert "1 sessions × 4 slots" in err


def test_file_size_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(_with())
    monkeypatch.setattr(command, "MAX_FILE_BYTES", 100)
    assert command.optimize_command(problem, None) == 2
    assert "more than the limit of 100" in capsys.readouterr().err


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_only_regular_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str) -> None:
    target = Path(path)
    if path == "fifo":
        target = tmp_path / "fifo"
        os.mkfifo(target)
    assert command.optimize_command(target, None) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_errors_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sessions = [{**_SESSION, "id": f"s-{i}", "charger": "cp-404"} for i in range(500)]
    problem = tmp_path / "problem.json"
    problem.write_text(_with(sessions=sessions))
    assert command.optimize_command(problem, None) == 2
    err = capsys.readouterr().err
    assert "and 450 more" in err
    assert len(err.splitlines()) == 1 + 50 + 1


@pytest.mark.parametrize("limit", [0.0, -1.0, float("nan"), 1e9])
def test_time_limit_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: float
) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(_with())
    assert command.optimize_command(problem, None, time_limit_s=limit) == 2
    assert "--time-limit must be in" in capsys.readouterr().err


def test_time_limit_option_reaches_the_solve(tmp_path: Path) -> None:
    problem = tmp_path / "problem.json"
    problem.write_text(_with())
    done = subprocess.run(
        [sys.executable, "-m", "gridcoord", "optimize", str(problem), "--time-limit", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--time-limit" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "gridcoord", "optimize", str(problem), "--time-limit", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "optimal"
