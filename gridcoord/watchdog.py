"""A dying thread or a stalled event loop takes the process down loudly (issue 9).

Without this, an exception that ends paho's network thread or the ingest writer leaves a
process that looks alive, reads nothing, and exits 0 on SIGTERM: no supervisor ever restarts
it. The watchdog checks, every `interval_s`, that each watched thread is alive and that the
event loop still runs callbacks; on the first failure it calls `on_fatal` once with what died.
The service's `on_fatal` logs at CRITICAL and ends the process with `EXIT_FATAL`, so systemd,
Docker or Kubernetes restart it. That is safe for the delivery guarantees: a reading is
acknowledged only once it is in the store or the spool, so what was in memory is redelivered
by the broker to the restarted process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# sysexits.h EX_SOFTWARE: an internal failure; the supervisor restarts the service.
EXIT_FATAL = 70
# An event loop that has not run a callback for this long is stuck (a blocking call in it) [s].
LOOP_STALL_S = 30.0

FatalHandler = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class _Watched:
    name: str
    alive: Callable[[], bool]


class Watchdog:
    """Watches threads and one asyncio event loop from a thread of its own.

    Parameters
    ----------
    on_fatal
        called once, from the watchdog's thread, with a sentence naming what died.
    interval_s
        time between checks [s].
    loop_stall_s
        how long the event loop may go without running a callback [s].
    """

    def __init__(
        self,
        on_fatal: FatalHandler,
        *,
        interval_s: float = 1.0,
        loop_stall_s: float = LOOP_STALL_S,
    ) -> None:
        self._on_fatal = on_fatal
        self._interval_s = interval_s
        self._loop_stall_s = loop_stall_s
        self._watched: list[_Watched] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_seen = time.monotonic()
        self._stop = threading.Event()
        self._fired = False
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def watch_thread(self, name: str, alive: Callable[[], bool]) -> None:
        """Make `alive()` returning False fatal; `name` says what it is in the log."""
        self._watched.append(_Watched(name, alive))

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make a stall of `loop` (no callback run for `loop_stall_s`) fatal."""
        self._loop = loop
        self._loop_seen = time.monotonic()

    def start(self) -> None:
        """Start checking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (before an orderly shutdown stops the watched threads)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def _seen(self) -> None:
        self._loop_seen = time.monotonic()

    def _run(self) -> None:
        # The wait is the check period, not synchronisation: nothing signals a thread's death.
        while not self._stop.wait(self._interval_s):
            problem = self._check()
            if problem is not None and not self._stop.is_set():
                self._fired = True
                self._on_fatal(problem)
                return

    def _check(self) -> str | None:
        for watched in self._watched:
            if not watched.alive():
                return f"the {watched.name} thread died"
        if self._loop is None:
            return None
        try:
            self._loop.call_soon_threadsafe(self._seen)
        except RuntimeError:
            return "the event loop was closed while the service runs"
        stalled = time.monotonic() - self._loop_seen
        if stalled > self._loop_stall_s:
            return f"the event loop ran no callback for {stalled:.0f} s"
        return None

    @property
    def fired(self) -> bool:
        """True once `on_fatal` was called."""
        return self._fired
