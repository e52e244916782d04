"""`gridcoord optimize PROBLEM.json [-o SCHEDULE.json] [--time-limit S]`: one solve (DESIGN 3.1).

Every input is bounded before anything is built for it: the file's size and kind, the JSON's
nesting and integer sizes, the problem's documented limits (`optimizer.problem`, docs/
optimizer.md "Limits") and an estimate of the memory the solve will need. Each refusal is exit
2 with a message on stderr naming the file and the field; no traceback.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from optimizer import Problem, describe_problem_errors, solve
from optimizer.sizing import estimate_memory_bytes

MAX_FILE_BYTES = 256 * 2**20  # a 500,000-session week is far below this
MAX_MEMORY_BYTES = 8 * 2**30  # refuse a problem whose solve is estimated to need more
MAX_TIME_LIMIT_S = 86_400.0
MAX_ERROR_LINES = 50


class _Refused(Exception):
    """The input is unusable; the message says why (exit 2)."""


def optimize_command(
    problem: Path,
    output: Path | None,
    time_limit_s: float = 60.0,
    max_memory_bytes: int = MAX_MEMORY_BYTES,
) -> int:
    """Solve the problem in `problem`; write the schedule JSON to `output` or stdout.

    Parameters
    ----------
    time_limit_s : the solve's budget [s] (`optimizer.solve`'s `time_limit_s`).
    max_memory_bytes : refuse problems whose estimated solve memory exceeds this [bytes].

    Returns
    -------
    0 when solved (any status: optimal, time_limit, fallback), 2 when the input is unusable;
    the reasons then go to stderr, one per line, each naming the offending element.
    """
    try:
        parsed = _load(problem, time_limit_s, max_memory_bytes)
    except _Refused as exc:
        print(f"{problem}: {exc}", file=sys.stderr)
        return 2
    with _native_stdout_to_stderr():
        schedule = solve(parsed, time_limit_s=time_limit_s)
    text = schedule.model_dump_json(indent=None)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
    if schedule.status != "optimal":
        print(f"{problem}: status {schedule.status}: {schedule.message}", file=sys.stderr)
    return 0


def _load(problem: Path, time_limit_s: float, max_memory_bytes: int) -> Problem:
    """The validated problem of the file, or `_Refused` with the reason."""
    if not 0 < time_limit_s <= MAX_TIME_LIMIT_S:  # also refuses NaN
        raise _Refused(f"--time-limit must be in (0, {MAX_TIME_LIMIT_S:g}] s, got {time_limit_s}")
    text = _read_text(problem)
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _Refused(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise _Refused("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer beyond Python's digit limit, NaN or Infinity
        raise _Refused(f"invalid JSON: {exc}") from None
    try:
        parsed = Problem.model_validate(raw)
    except ValidationError as exc:
        lines = describe_problem_errors(exc, raw)
        shown = [f"  {line}" for line in lines[:MAX_ERROR_LINES]]
        if len(lines) > MAX_ERROR_LINES:
            shown.append(f"  and {len(lines) - MAX_ERROR_LINES} more")
        raise _Refused(f"invalid problem ({len(lines)} problem(s))\n" + "\n".join(shown)) from None
    except RecursionError:
        raise _Refused("invalid problem: nested too deeply") from None
    needed = estimate_memory_bytes(parsed)
    if needed > max_memory_bytes:
        raise _Refused(
            f"problem too large: its solve needs an estimated {needed / 2**20:,.0f} MiB, "
            f"more than the limit of {max_memory_bytes / 2**20:,.0f} MiB "
            f"({len(parsed.sessions)} sessions × {parsed.slots} slots)"
        )
    return parsed


def _read_text(problem: Path) -> str:
    """The file's text: a regular file of at most `MAX_FILE_BYTES`, UTF-8."""
    try:
        info = problem.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Refused(f"file is {info.st_size} bytes, more than the limit of {MAX_FILE_BYTES}")
        with problem.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Refused(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        raise _Refused(f"file is more than the limit of {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("not UTF-8 text") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


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
