"""The live stream (Server-Sent Events): one summary per tick, computed once for all clients.

A single task builds the `Summary` every `api.sse_interval_s` and hands the encoded event to
each subscriber's queue. A client that cannot keep up loses old events, never the newest: its
queue holds one, replaced on every tick. The stream also starts with the current state, so a
new client draws at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

MAX_CLIENTS = 500


class Broadcaster:
    """Fans one encoded event out to every subscriber.

    Parameters
    ----------
    build
        returns the next event's JSON text (called on the loop, must be quick).
    interval_s
        time between events [s].
    """

    def __init__(self, build: Callable[[], str], interval_s: float) -> None:
        self._build = build
        self._interval_s = interval_s
        self._queues: set[asyncio.Queue[str]] = set()
        self._latest: str | None = None
        self.sent = 0

    @property
    def latest(self) -> str | None:
        """The newest event's JSON text, None before the first."""
        return self._latest

    @property
    def clients(self) -> int:
        """Subscribers now."""
        return len(self._queues)

    async def run(self, stop: asyncio.Event) -> None:
        """Build and send an event every interval until ``stop``."""
        while not stop.is_set():
            try:
                # In a worker thread: a city of 10,000 chargers must not hold up the loop.
                self._latest = await asyncio.to_thread(self._build)
            except Exception:  # a broken summary must not end the stream for everyone
                log.exception("live summary not built")
            else:
                for queue in list(self._queues):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(self._latest)
                    self.sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait("")  # tells the stream to end

    def full(self) -> bool:
        """Whether the stream has as many clients as it takes."""
        return len(self._queues) >= MAX_CLIENTS

    async def stream(self, keepalive_s: float = 15.0) -> AsyncIterator[str]:
        """One client's SSE text: the latest state at once, then every new one."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        try:
            yield "retry: 3000\n\n"
            if self._latest is not None:
                yield _event(self._latest)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if not data:
                    return
                yield _event(data)
        finally:
            self._queues.discard(queue)


def _event(data: str) -> str:
    return f"event: summary\ndata: {data}\n\n"
