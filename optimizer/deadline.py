"""Run a solver that has no time limit of its own under a hard deadline.

The exact network solvers (LEMON's network simplex through `pylmcf`) run in C++ holding the
GIL and cannot be interrupted. `call_with_deadline` runs such a call in a forked child process
that shares the parent's memory copy-on-write (nothing is pickled or re-imported), reads back
one int64 array through a pipe, and kills the child when the deadline passes. So a solve that
would overrun costs the caller nothing beyond its budget.

Where `os.fork` does not exist the call runs in-process, without a deadline (`forked` False).
Everything the child needs must already be imported by the parent: a child of a multi-threaded
parent must not take locks another thread may hold (the import lock among them), so it only
runs the given call on data it inherited, writes and exits with `os._exit`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimizer.compiled import IntArray

_HEADER = struct.Struct("<q")  # array length, or −1 when the call raised


@dataclass(frozen=True)
class Outcome:
    """What came back.

    Attributes:
        values: the call's array, or None when it did not finish in time or failed.
        detail: "ok", "time_limit", or why it failed.
        forked: whether the call ran in a child process (False: in-process, no deadline).
    """

    values: IntArray | None
    detail: str
    forked: bool


def call_with_deadline(
    call: Callable[[], IntArray],
    deadline: float,
    meanwhile: Callable[[], None] | None = None,
) -> Outcome:
    """Run `call` and return its int64 array, or give up at `deadline` (`time.monotonic`) [s].

    `meanwhile` runs in this process while the child computes (the second core is otherwise
    idle); it should watch the deadline itself. Never raises for a failure of `call` or of the
    child: `Outcome.detail` says what happened (an exception of `meanwhile` propagates).
    """
    if not hasattr(os, "fork"):
        try:
            values = np.ascontiguousarray(call(), dtype=np.int64)
            outcome = Outcome(values, "ok", forked=False)
        except Exception as exc:  # the caller falls back to a heuristic plan
            outcome = Outcome(None, f"solver failed: {exc}", forked=False)
        if meanwhile is not None:
            meanwhile()
        return outcome
    if time.monotonic() >= deadline:
        if meanwhile is not None:
            meanwhile()
        return Outcome(None, "time_limit", forked=True)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, write, exit without running any Python cleanup
        os.close(read_fd)
        code = 0
        try:
            try:
                values = np.ascontiguousarray(call(), dtype=np.int64)
                payload = _HEADER.pack(len(values)) + values.tobytes()
            except BaseException:  # reported to the parent as a failure
                payload, code = _HEADER.pack(-1), 1
            view = memoryview(payload)
            while view:
                written = os.write(write_fd, view)
                view = view[written:]
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        if meanwhile is not None:
            meanwhile()
        data = _read_until(read_fd, deadline)
    finally:
        os.close(read_fd)
        _reap(pid)
    if data is None:
        return Outcome(None, "time_limit", forked=True)
    if len(data) < _HEADER.size:
        return Outcome(None, "solver failed: its process ended without an answer", forked=True)
    (length,) = _HEADER.unpack_from(data)
    if length < 0:
        return Outcome(None, "solver failed: it raised an exception", forked=True)
    values = np.frombuffer(data, dtype=np.int64, offset=_HEADER.size)
    if len(values) != length:
        return Outcome(None, "solver failed: a truncated answer", forked=True)
    return Outcome(values.copy(), "ok", forked=True)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything `fd` yields until EOF, or None if the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> None:
    """Make sure the child is gone and waited for (killing one that already exited is harmless)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
