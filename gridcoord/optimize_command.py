"""`gridcoord optimize PROBLEM.json [-o SCHEDULE.json]`: one solve of a problem (DESIGN 3.1)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from optimizer import Problem, describe_problem_errors, solve


def optimize_command(problem: Path, output: Path | None) -> int:
    """Solve the problem in `problem`; write the schedule JSON to `output` or stdout.

    Returns
    -------
    0 when solved (any status: optimal, time_limit, fallback), 2 when the input is unusable;
    the reasons then go to stderr, one per line, each naming the offending element.
    """
    try:
        raw = json.loads(problem.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{problem}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"{problem}: not UTF-8 text", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(
            f"{problem}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            file=sys.stderr,
        )
        return 2
    try:
        parsed = Problem.model_validate(raw)
    except ValidationError as exc:
        lines = describe_problem_errors(exc, raw)
        print(f"{problem}: invalid problem ({len(lines)} problem(s))", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 2
    with _native_stdout_to_stderr():
        schedule = solve(parsed)
    text = schedule.model_dump_json(indent=None)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
    if schedule.status != "optimal":
        print(f"{problem}: status {schedule.status}: {schedule.message}", file=sys.stderr)
    return 0


@contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """Send what native code prints (HiGHS's banner) to stderr: stdout carries only the JSON."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no usable stdout descriptor: nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
