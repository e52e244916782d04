"""The read side of `/api/v1` (viewer role): assets, zones, sessions, plans, setpoints, series.

Lists are paged (``limit``, ``offset``; ``total`` says how many match) so a city of 10,000
chargers never makes one huge response. Every query parameter is bounded.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from gridcoord.api.audit import AuditEntry
from gridcoord.api.auth import requires
from gridcoord.api.context import context
from gridcoord.api.summary import Summary, build_summary
from gridcoord.api.view import (
    AssetState,
    ChargerState,
    ChartSeries,
    ForecastView,
    PlanSummary,
    SeriesPoint,
    SessionState,
    SetpointState,
    ZoneStatus,
)
from gridcoord.config import Config, Role
from gridcoord.storage.base import StoreRejected, StoreUnavailable
from gridcoord.timegrid import as_utc

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def api_instant(value: datetime, name: str) -> datetime:
    """An instant from a request as aware UTC; 422 without an offset or outside 2000-2200."""
    if value.tzinfo is None:
        raise HTTPException(422, f"{name} needs a UTC offset")
    try:
        utc = as_utc(value)
    except OverflowError:  # e.g. year 1 at +14:00
        raise HTTPException(422, f"{name} is out of range") from None
    if not EARLIEST <= utc < LATEST:
        raise HTTPException(422, f"{name} must lie between 2000 and 2200")
    return utc


router = APIRouter(dependencies=[requires(Role.VIEWER)])

T = TypeVar("T")
MAX_PAGE = 10_000
MAX_CHARGER_PAGE = 500
MAX_RANGE = timedelta(days=31)
MAX_POINTS = 5_000
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Most items returned.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items skipped.")]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    total: int = Field(description="Items matching, over all pages.")
    items: list[T]


@router.get("/summary", response_model=Summary, tags=["live"])
async def summary(request: Request) -> Response:
    """Header KPIs, zones and alarms now (what the live stream sends)."""
    ctx = context(request)
    latest = ctx.broadcaster.latest
    if latest is not None:  # built every api.sse_interval_s anyway: the same for everyone
        return Response(latest, media_type="application/json")
    return await ctx.responses.serve(
        request,
        Summary,
        lambda: build_summary(ctx.view, ctx.overrides.active(ctx.view.now()), ctx.stale_grace_s),
    )


@router.get(
    "/events",
    tags=["live"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "Too many."}},
)
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: a `summary` event every `api.sse_interval_s`."""
    broadcaster = context(request).broadcaster
    if broadcaster.full():
        raise HTTPException(503, "too many live clients")
    return StreamingResponse(
        broadcaster.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/assets", response_model=Page[AssetState], tags=["state"])
async def assets(
    request: Request,
    limit: Limit = 1000,
    offset: Offset = 0,
    kind: Literal["pv", "wind", "meter", "charger"] | None = None,
    zone: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    available: bool | None = None,
) -> Response:
    """Assets with their latest reading; ``power_kw`` is null when the device is stale."""

    def build() -> Page[AssetState]:
        items = [
            a
            for a in context(request).view.assets()
            if (kind is None or a.kind == kind)
            and (zone is None or a.zone == zone)
            and (available is None or a.available == available)
        ]
        return Page(total=len(items), items=items[offset : offset + limit])

    return await context(request).responses.serve(request, Page[AssetState], build)


@router.get("/assets/{asset_id}", response_model=AssetState, tags=["state"])
def asset(request: Request, asset_id: Annotated[str, PathParam(pattern=ID_PATTERN)]) -> AssetState:
    """One asset."""
    for a in context(request).view.assets():
        if a.id == asset_id:
            return a
    raise HTTPException(404, f"unknown asset {asset_id!r}")


@router.get("/zones", response_model=list[ZoneStatus], tags=["state"])
async def zones(request: Request) -> Response:
    """Zones with load, capacity, headroom and the limit in force."""
    ctx = context(request)
    return await ctx.responses.serve(request, list[ZoneStatus], ctx.view.zones)


@router.get("/sessions", response_model=Page[SessionState], tags=["state"])
async def sessions(request: Request, limit: Limit = 1000, offset: Offset = 0) -> Response:
    """Open charging sessions: energy so far, departure, requested."""

    def build() -> Page[SessionState]:
        items = context(request).view.sessions()
        return Page(total=len(items), items=items[offset : offset + limit])

    return await context(request).responses.serve(request, Page[SessionState], build)


@router.get("/plans", response_model=list[PlanSummary], tags=["planning"])
async def plans(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 10) -> Response:
    """The last planning runs, newest first: status, solve time, KPIs, binding."""
    ctx = context(request)
    return await ctx.responses.serve(request, list[PlanSummary], lambda: ctx.view.plans()[:limit])


@router.get(
    "/plans/current",
    response_model=PlanSummary,
    tags=["planning"],
    responses={404: {"description": "No plan yet."}},
)
def current_plan(request: Request) -> PlanSummary:
    """The newest planning run."""
    found = context(request).view.plans()
    if not found:
        raise HTTPException(404, "no plan yet")
    return found[0]


@router.get("/setpoints", response_model=Page[SetpointState], tags=["planning"])
async def setpoints(
    request: Request,
    limit: Limit = 1000,
    offset: Offset = 0,
    alarm: Annotated[bool | None, Query(description="Only with (or without) an alarm.")] = None,
) -> Response:
    """Each charger's latest setpoint: sent, read back (Modbus), expiry, what limited it."""

    def build() -> Page[SetpointState]:
        items = [
            s
            for s in context(request).view.setpoints()
            if alarm is None or (s.alarm is not None) == alarm
        ]
        return Page(total=len(items), items=items[offset : offset + limit])

    return await context(request).responses.serve(request, Page[SetpointState], build)


@router.get("/chargers", response_model=Page[ChargerState], tags=["state"])
async def chargers(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_CHARGER_PAGE, description="Most rows.")] = 50,
    offset: Offset = 0,
    zone: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="Only chargers in this zone or below it."),
    ] = None,
    state: Literal["charging", "idle", "stale"] | None = None,
    alarm: Annotated[bool | None, Query(description="Only with (or without) an alarm.")] = None,
    q: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$", description="Part of the id."),
    ] = None,
) -> Response:
    """The chargers table: state, setpoint vs actual, expiry, session; filtered and paged.

    Built once per second for everyone; a page of it per request, so a dashboard never loads
    a city's 10,000 chargers at once.
    """
    needle = q.lower() if q else None
    within = _zones_under(context(request).config, zone) if zone is not None else None

    def build() -> Page[ChargerState]:
        items = [
            c
            for c in context(request).view.chargers()
            if (within is None or c.zone in within)
            and (state is None or c.state == state)
            and (alarm is None or (c.alarm is not None) == alarm)
            and (needle is None or needle in c.id)
        ]
        return Page(total=len(items), items=items[offset : offset + limit])

    return await context(request).responses.serve(request, Page[ChargerState], build)


@router.get("/rejections", response_model=dict[str, int], tags=["ingest"])
def rejections(request: Request) -> dict[str, int]:
    """Rejected readings since start, by reason (DESIGN 3.2)."""
    return context(request).view.rejections()


@router.get("/ingest", response_model=dict[str, int], tags=["ingest"])
def ingest(request: Request) -> dict[str, int]:
    """Ingest counters since start."""
    return context(request).view.ingest()


@router.get("/chart", response_model=ChartSeries, tags=["live"])
async def chart(request: Request) -> Response:
    """The last and next 12 hours per slot: renewable forecast/actual, EV planned/actual."""
    ctx = context(request)
    return await ctx.responses.serve(request, ChartSeries, ctx.view.chart)


@router.get(
    "/forecast",
    response_model=ForecastView,
    tags=["planning"],
    responses={404: {"description": "No planning run yet."}},
)
def forecast(request: Request) -> ForecastView:
    """The latest run's forecast (PV, wind, non-EV load per slot) and its measured error."""
    found = context(request).view.forecast()
    if found is None:
        raise HTTPException(404, "no forecast yet")
    return found


@router.get(
    "/series",
    response_model=list[SeriesPoint],
    tags=["series"],
    responses={503: {"description": "The store cannot be read now."}},
)
async def series(
    request: Request,
    field: Annotated[str, Query(pattern=FIELD_PATTERN, description="e.g. power_w")],
    start: Annotated[datetime, Query(description="RFC 3339 with offset.")],
    end: Annotated[datetime, Query(description="RFC 3339 with offset; after start.")],
    asset: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    zone: Annotated[str | None, Query(pattern=ID_PATTERN, description="The zone's meter.")] = None,
    resolution_s: Annotated[int, Query(ge=1, le=86_400, description="Bucket width [s].")] = 900,
) -> list[SeriesPoint]:
    """A stored field of an asset (or a zone's meter), averaged per bucket."""
    ctx = context(request)
    if (asset is None) == (zone is None):
        raise HTTPException(422, "give exactly one of asset and zone")
    start, end = api_instant(start, "start"), api_instant(end, "end")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    if end - start > MAX_RANGE:
        raise HTTPException(422, f"range longer than {MAX_RANGE.days} days")
    if (end - start).total_seconds() / resolution_s > MAX_POINTS:
        raise HTTPException(422, f"more than {MAX_POINTS} buckets: raise resolution_s")
    if zone is not None:
        zone_config = next((z for z in ctx.config.zones if z.id == zone), None)
        if zone_config is None:
            raise HTTPException(404, f"unknown zone {zone!r}")
        if zone_config.meter is None:
            raise HTTPException(404, f"zone {zone!r} has no meter")
        asset = zone_config.meter
    assert asset is not None
    if ctx.config.asset(asset) is None:
        raise HTTPException(404, f"unknown asset {asset!r}")
    try:
        raw = await asyncio.to_thread(
            ctx.view.series, "telemetry", field, {"asset_id": asset}, start, end
        )
    except (StoreUnavailable, StoreRejected) as exc:
        raise HTTPException(503, f"store cannot be read: {exc}") from None
    return _buckets(raw, start, resolution_s)


@router.get("/audit", response_model=list[AuditEntry], tags=["audit"])
def audit(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditEntry]:
    """Every write through the API, newest first: who, when, what, the clamped result."""
    return context(request).audit.entries(limit)


def _zones_under(config: Config, zone: str) -> set[str]:
    """``zone`` and every zone below it; 404 for an unknown zone."""
    children: dict[str, list[str]] = {}
    for z in config.zones:
        if z.parent is not None:
            children.setdefault(z.parent, []).append(z.id)
    if not any(z.id == zone for z in config.zones):
        raise HTTPException(404, f"unknown zone {zone!r}")
    found, todo = {zone}, [zone]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _buckets(
    raw: list[tuple[datetime, float]], start: datetime, resolution_s: int
) -> list[SeriesPoint]:
    sums: dict[int, list[float]] = {}
    for ts, value in raw:
        if not math.isfinite(value):
            continue
        index = int((ts - start).total_seconds() // resolution_s)
        bucket = sums.setdefault(index, [0.0, 0.0])
        bucket[0] += value
        bucket[1] += 1
    return [
        SeriesPoint(ts=start + timedelta(seconds=i * resolution_s), value=s / n)
        for i, (s, n) in sorted(sums.items())
    ]
