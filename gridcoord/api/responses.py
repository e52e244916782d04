"""Read responses serialised once per second, off the event loop, whatever the client count.

FastAPI validates a sync endpoint's result in a worker thread but serialises it on the event
loop; for a city of 10,000 chargers that blocked the loop (and every live stream) for tens of
milliseconds per request. Read endpoints therefore return ready JSON bytes made in the worker
thread by pydantic's serializer, and keep them for `TTL_S` under the request's path and query:
fifty dashboards cost one serialisation per second. The state behind them changes at most
once per second anyway (`service_view.FRAME_TTL_S`).

`serve` answers a cached body on the event loop itself (a dictionary look-up) and goes to a
worker thread (Starlette's pool, the one sync endpoints use) only to build one. Before, every
request went through the thread pool: fifty clients kept forty threads waiting for the GIL,
and the loop thread, which needs the GIL for every socket operation, queued behind them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

TTL_S = 1.0
MAX_ENTRIES = 512


class ResponseCache:
    """Serialised bodies by request key, each kept `TTL_S`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._adapters: dict[Any, TypeAdapter[Any]] = {}
        self._building: dict[str, threading.Lock] = {}

    async def serve(self, request: Request, kind: Any, build: Callable[[], Any]) -> Response:
        """`json` for an async endpoint: a fresh body at once, else built in a worker thread."""
        hit = self._fresh(f"{request.url.path}?{request.url.query}")
        if hit is not None:
            return Response(hit, media_type="application/json")
        return await run_in_threadpool(self.json, request, kind, build)

    def json(self, request: Request, kind: Any, build: Callable[[], Any]) -> Response:
        """The JSON response for ``request``: cached, or ``build()`` serialised as ``kind``."""
        key = f"{request.url.path}?{request.url.query}"
        hit = self._fresh(key)
        if hit is not None:
            return Response(hit, media_type="application/json")
        # One build per key at a time: the others wait for it instead of all building at once
        # (fifty threads rebuilding the same 10,000-item list under the GIL took seconds).
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            hit = self._fresh(key)
            if hit is not None:
                return Response(hit, media_type="application/json")
            with self._lock:
                adapter = self._adapters.get(kind)
            if adapter is None:
                adapter = TypeAdapter(kind)
            body = adapter.dump_json(build())
            with self._lock:
                self._adapters[kind] = adapter
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                    self._building = {key: building}
                self._entries[key] = (time.monotonic(), body)
        return Response(body, media_type="application/json")

    def _fresh(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < TTL_S:
            return hit[1]
        return None
