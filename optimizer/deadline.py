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
import ctypes
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from optimizer.compiled import IntArray

_HEADER = struct.Struct("<q")  # array length, or −1 when the call raised
_PR_SET_PDEATHSIG = 1
# Loaded before any fork: a child must not load libraries (it may not take the loader's lock).
# CDLL(None): the symbols already loaded into this process, libc's `prctl` among them (Linux).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> None:
    """In a forked child: be killed (SIGKILL) when the parent process dies (Linux).

    A solver child outlives a parent that was killed by a signal otherwise, computing for
    minutes with nobody to read its answer. Elsewhere this does nothing (the child still ends at
    its next write into the closed pipe).
    """
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


@dataclass(frozen=True)
class Outcome:
    """What came back.

    Attributes
    ----------
    values
        the call's array, or None when it did not finish in time or failed.
    detail
        "ok", "time_limit", or why it failed.
    forked
        whether the call ran in a child process (False: in-process, no deadline).
    winner
        index of the call that answered (`race_with_deadline`).
    """

    values: IntArray | None
    detail: str
    forked: bool
    winner: int = 0


Probe = Callable[[], bool]


class Running(Protocol):
    """A racer that is already running in a child of its own (`warm.WarmLemon`)."""

    fd: int
    last: IntArray | None

    @property
    def pending(self) -> bool:
        """An answer is still to come."""
        ...

    def feed(self) -> bool:
        """Read from `fd` (ready); True when the pending answer is complete (`last`)."""
        ...


def call_with_deadline(
    call: Callable[[], IntArray],
    deadline: float,
    meanwhile: Callable[[Probe], None] | None = None,
) -> Outcome:
    """Run `call` and return its int64 array, or give up at `deadline` (`time.monotonic`) [s].

    `meanwhile(answered)` runs in this process while the child computes (the second core is
    otherwise idle); it should watch the deadline itself, and may stop early once `answered()`
    is True (the answer is in). Never raises for a failure of `call` or of the child:
    `Outcome.detail` says what happened (an exception of `meanwhile` propagates).
    """
    return race_with_deadline([call], deadline, meanwhile)


def race_with_deadline(
    calls: Sequence[Callable[[], IntArray]],
    deadline: float,
    meanwhile: Callable[[Probe], None] | None = None,
    delays: Sequence[float] = (),
    running: Running | None = None,
) -> Outcome:
    """Run every call in its own child; the first complete answer wins, the others are killed.

    Used to race two exact solvers whose speeds differ by instance (docs/optimizer.md). Call i
    starts `delays[i]` seconds after the first (0 when not given), and only if no answer has
    come by then: a second solver costs CPU only when the first is slow. A call that fails does
    not end the race while another is running or still to start. `Outcome.winner` is the index
    of the call whose answer came back. `meanwhile` as in `call_with_deadline`; its probe also
    starts the delayed calls on time. Without `os.fork` only the first call runs, in-process
    and without a deadline. `running`, a racer already at work with an answer pending, takes
    part too (`Outcome.winner` -1 when it answers first); the race never stops or kills it.
    """
    if not hasattr(os, "fork"):
        try:
            values = np.ascontiguousarray(calls[0](), dtype=np.int64)
            outcome = Outcome(values, "ok", forked=False)
        except Exception as exc:  # the caller falls back to a heuristic plan
            outcome = Outcome(None, f"solver failed: {exc}", forked=False)
        if meanwhile is not None:
            meanwhile(lambda: True)
        return outcome
    if time.monotonic() >= deadline:
        if meanwhile is not None:
            meanwhile(lambda: True)
        return Outcome(None, "time_limit", forked=True)
    race = _Race(calls, delays, running if running is not None and running.pending else None)
    try:
        race.step(0.0)
        if meanwhile is not None:
            meanwhile(race.answered)
        return race.finish(deadline)
    finally:
        race.close()


class _Race:
    """The children of one race, their pipes and what they have sent so far."""

    def __init__(
        self,
        calls: Sequence[Callable[[], IntArray]],
        delays: Sequence[float],
        running: Running | None = None,
    ) -> None:
        started = time.monotonic()
        self.running = running
        self.calls = calls
        self.waiting = sorted(
            (started + (delays[i] if i < len(delays) else 0.0), i) for i in range(len(calls))
        )
        self.children: dict[int, tuple[int, int]] = {}  # read fd → (call index, pid)
        self.chunks: dict[int, list[bytes]] = {}
        self.open_fds: set[int] = set()
        self.result: Outcome | None = None
        self.failure = "solver failed: its process ended without an answer"

    def answered(self) -> bool:
        """Without blocking: start due calls, read what arrived; True once the race is over."""
        self.step(0.0)
        return self.result is not None or not (self.open_fds or self.waiting or self.running)

    def step(self, timeout: float) -> None:
        """Start due calls, then wait up to `timeout` [s] for data and read it."""
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, index = self.waiting.pop(0)
            read_fd, pid = _spawn(self.calls[index])
            self.children[read_fd] = (index, pid)
            self.chunks[read_fd] = []
            self.open_fds.add(read_fd)
        if self.result is not None or not (self.open_fds or self.running):
            return
        watched = sorted(self.open_fds) + ([self.running.fd] if self.running else [])
        ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
        for fd in ready:
            if self.running is not None and fd == self.running.fd:
                if self.running.feed():
                    values, self.running = self.running.last, None
                    if values is not None:
                        self.result = Outcome(values, "ok", forked=True, winner=-1)
                        return
                    self.failure = "solver failed: the warm solve failed"
                    if not self.open_fds and self.waiting:
                        self.waiting[0] = (time.monotonic(), self.waiting[0][1])
                continue
            chunk = os.read(fd, 1 << 20)
            if chunk:
                self.chunks[fd].append(chunk)
                continue
            self.open_fds.discard(fd)
            values, detail = _decode(b"".join(self.chunks[fd]))
            if values is not None:
                self.result = Outcome(values, "ok", forked=True, winner=self.children[fd][0])
                return
            self.failure = detail
            if not self.open_fds and self.waiting:  # nothing left running: start the next now
                self.waiting[0] = (time.monotonic(), self.waiting[0][1])

    def finish(self, deadline: float) -> Outcome:
        """Wait for the first answer until `deadline`."""
        while self.result is None and (self.open_fds or self.waiting or self.running):
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return Outcome(None, "time_limit", forked=True)
            wake = min(left, self.waiting[0][0] - now) if self.waiting else left
            self.step(wake)
        if self.result is not None:
            return self.result
        return Outcome(None, self.failure, forked=True)

    def close(self) -> None:
        """Kill and reap every child, close every pipe."""
        for read_fd, (_, pid) in self.children.items():
            os.close(read_fd)
            reap(pid)


def _spawn(call: Callable[[], IntArray]) -> tuple[int, int]:
    """Fork a child that runs `call` and writes its answer; returns (read end, pid)."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: compute, write, exit without running any Python cleanup
        os.close(read_fd)
        code = 0
        try:
            die_with_parent(parent)
            try:
                values = np.ascontiguousarray(call(), dtype=np.int64)
                # The array's own buffer after the header: no copy of it (13 MB at 20,000 × 288).
                body = memoryview(values.view(np.uint8))  # type: ignore[arg-type]
                parts = [memoryview(_HEADER.pack(len(values))), body]
            except BaseException:  # reported to the parent as a failure
                parts, code = [memoryview(_HEADER.pack(-1))], 1
            for view in parts:
                while view:
                    written = os.write(write_fd, view)
                    view = view[written:]
        finally:
            os._exit(code)
    os.close(write_fd)
    return read_fd, pid


def _decode(data: bytes) -> tuple[IntArray | None, str]:
    if len(data) < _HEADER.size:
        return None, "solver failed: its process ended without an answer"
    (length,) = _HEADER.unpack_from(data)
    if length < 0:
        return None, "solver failed: it raised an exception"
    values = np.frombuffer(data, dtype=np.int64, offset=_HEADER.size)
    if len(values) != length:
        return None, "solver failed: a truncated answer"
    return values.copy(), "ok"


def reap(pid: int) -> None:
    """Make sure the child is gone and waited for (killing one that already exited is harmless)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
