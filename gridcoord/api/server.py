"""Serve the API on the service's own event loop (uvicorn), with its background tasks.

`ApiServer` binds the configured address itself (a port in use is a clear startup error, and
port 0 picks a free one whose address is then known), runs uvicorn's server on that socket
without letting it take the process's signal handlers (the service owns SIGTERM/SIGINT and
drains in order), and runs the live-stream, tracking and override-expiry tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from gridcoord.api.app import create_app
from gridcoord.api.audit import AuditEntry, AuditLog
from gridcoord.api.auth import TokenRegistry
from gridcoord.api.context import ApiContext
from gridcoord.api.events import Broadcaster
from gridcoord.api.metrics import Instruments
from gridcoord.api.overrides import OverrideBook
from gridcoord.api.service_view import ServiceView
from gridcoord.api.summary import build_summary

if TYPE_CHECKING:
    from gridcoord.service import Service

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` as the API listens (a port in TIME_WAIT is free).

    Raises
    ------
    OSError
        the address cannot be bound (``errno.EADDRINUSE``: taken).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ApiBindError(Exception):
    """The configured address cannot be bound."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The service's own handlers stop everything in order; uvicorn must not replace them.
        yield


class ApiServer:
    """The HTTP side of one service.

    Parameters
    ----------
    service
        the service whose state it shows (started before `start`).
    instruments
        the service's metrics (its store latency is already observed there).
    overrides
        operator caps (the planning loop applies them).
    """

    def __init__(self, service: Service, instruments: Instruments, overrides: OverrideBook):
        config = service.config
        self.config = config
        self.view = ServiceView(service, overrides)
        self.view.events.on_plan.append(instruments.observe_plan)
        self.view.events.on_dispatch.append(instruments.observe_dispatch)
        instruments.attach(self.view)
        store = service.pipeline.submit_points if service.pipeline is not None else None
        self.audit = AuditLog(config.api.state_dir / "audit.jsonl", store)
        self.overrides = overrides
        self.ctx = ApiContext(
            config=config,
            view=self.view,
            overrides=overrides,
            audit=self.audit,
            instruments=instruments,
            broadcaster=Broadcaster(self._summary_json, config.api.sse_interval_s),
        )
        self.app = create_app(self.ctx, TokenRegistry(config.api))
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def url(self) -> str:
        """The dashboard's address (after `start`)."""
        assert self._socket is not None
        host, port = self._socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Bind and start serving; raises `ApiBindError` when the address is taken."""
        api = self.config.api
        try:
            sock = bind_socket(api.host, api.port)
        except OSError as exc:
            raise ApiBindError(
                f"api: cannot listen on {api.host}:{api.port}: {exc.strerror}"
            ) from None
        sock.listen(256)
        sock.setblocking(False)
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # Dashboards poll every 10 s: keep their connections rather than race a close.
            timeout_keep_alive=75,
        )
        self._server = _Server(config)
        self._tasks = [
            asyncio.create_task(self._server.serve(sockets=[sock])),
            asyncio.create_task(self.view.track(self._stop)),
            asyncio.create_task(self.ctx.broadcaster.run(self._stop)),
            asyncio.create_task(self._expire_overrides()),
        ]
        log.info("dashboard and API at %s (OpenAPI at %sapi/docs)", self.url, self.url)

    async def stop(self) -> None:
        """End the live streams, stop serving and close the socket."""
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("API task ended with %s: %s", type(result).__name__, result)
        if self._socket is not None:
            self._socket.close()

    def _summary_json(self) -> str:
        summary = build_summary(
            self.view, self.overrides.active(self.view.now()), self.ctx.stale_grace_s
        )
        return summary.model_dump_json()

    async def _expire_overrides(self) -> None:
        while not self._stop.is_set():
            now = self.view.now()
            ended = self.overrides.expire(now)
            for item in ended:
                self.audit.record(
                    AuditEntry(
                        at=now,
                        who="system",
                        action="override.expire",
                        target=f"{item.target}:{item.target_id}",
                        request={"id": item.id},
                        result={"lifted": True, "until": item.until},
                    )
                )
            if ended:
                self.view.dispatch_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
