"""The FastAPI application: `/api/v1`, health, metrics and the dashboard (DESIGN 3.7).

`create_app` takes everything it serves as arguments; it starts no task and opens no socket
(`server.py` runs it on the service's event loop). Health and metrics need no token (container
health checks and Prometheus call them; they carry no personal data); everything under
`/api/v1` needs at least the viewer role, writes the operator role.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import gridcoord
from gridcoord.api.auth import TokenRegistry
from gridcoord.api.context import ApiContext
from gridcoord.api.readiness import readiness
from gridcoord.api.routes import router as read_router
from gridcoord.api.writes import router as write_router

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def create_app(ctx: ApiContext, tokens: TokenRegistry) -> FastAPI:
    """The application for one running service."""
    app = FastAPI(
        title="gridcoord",
        version=gridcoord.__version__,
        description="Smart-grid coordination: the control room's API (DESIGN 3.7). Powers in "
        "kW, energies in kWh, times RFC 3339 UTC; an unavailable value is null, never 0.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.ctx = ctx
    app.state.tokens = tokens
    app.include_router(read_router, prefix="/api/v1")
    app.include_router(write_router, prefix="/api/v1")

    @app.exception_handler(Exception)
    async def contained(request: Request, exc: Exception) -> JSONResponse:
        # Counted and logged with the route's template only: a path parameter, the query
        # string and the exception's message could carry anything a caller sent.
        ctx.instruments.api_requests.inc()
        route = getattr(request.scope.get("route"), "path", "(no route)")
        log.error("API %s %s failed: %s", request.method, route, type(exc).__name__)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer echoes the refused value ("input"); whatever a caller
        # sent stays out of answers (and out of any proxy's log of them): where and why only.
        detail = [
            {"type": e.get("type"), "loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "live"}

    @app.get(
        "/health/ready",
        tags=["health"],
        responses={503: {"description": "Not ready; the body says why."}},
    )
    async def ready() -> JSONResponse:
        """Broker connected and subscribed, store writable or spooling, a recent plan."""
        ok, checks = readiness(ctx.view.health(), ctx.view.now())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(ctx.instruments.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
