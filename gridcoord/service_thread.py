"""The real `Service` on its own event-loop thread, for a driver in another thread.

`gridcoord demo` drives the service minute by simulated minute from its own thread (publish
the city's telemetry, wait, plan or dispatch, wait for the setpoints); tests reach into a
running service the same way. `call` runs one coroutine on the service's loop and waits for
it; `stop` drains the service as SIGTERM does and raises what killed it, if anything.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gridcoord.service import Service, StartupError

T = TypeVar("T")


class ServiceThread:
    """`Service.serve` in a daemon thread.

    Parameters
    ----------
    service : Service
        The service to run (not yet serving).
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridcoord-service", daemon=True)

    def start(self, timeout_s: float = 30.0) -> ServiceThread:
        """Start serving; return once ingest and planning are up.

        Raises
        ------
        StartupError
            the service refused to start for a reason the user must fix (as itself, so that
            the caller prints one line, as `gridcoord run` does).
        RuntimeError
            the service did not come up in time (the reason chained).
        """
        self._thread.start()
        # `started` is also set when the service ends early, so one wait covers both.
        if not self.service.started.wait(timeout_s) or self._ended.is_set():
            if isinstance(self._error, StartupError):
                raise self._error
            raise RuntimeError("the service did not start") from self._error
        return self

    def call(self, make: Callable[[], Awaitable[T]], timeout_s: float | None = None) -> T:
        """Run ``make()`` on the service's event loop and return its result.

        Raises
        ------
        TimeoutError
            after ``timeout_s``; and whatever the coroutine raised.
        """
        assert self._loop is not None, "start() first"

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the service to drain and stop; wait for it.

        Raises
        ------
        RuntimeError
            it did not stop in time; and whatever ended the service with an error.
        """
        if self._loop is not None and not self._ended.is_set():
            self._loop.call_soon_threadsafe(self.service.request_stop)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"the service did not stop within {timeout_s:g} s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self.service.serve()

        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the driver by start/stop
            self._error = exc
        finally:
            self._ended.set()
            self.service.started.set()  # wakes `start` if the service never came up
