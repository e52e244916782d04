"""The write side of `/api/v1` (operator role): overrides and run-now, each one audited.

An override's audit entry records the request and the clamped result (the cap the safety
layer can hold, e.g. never below a §14a minimum); the override then takes effect at a dispatch
started at once, not at the next minute's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from gridcoord.api.audit import AuditEntry
from gridcoord.api.auth import Principal, requires
from gridcoord.api.context import context
from gridcoord.api.overrides import Override, Target
from gridcoord.api.routes import api_instant
from gridcoord.config import Role

router = APIRouter()
Viewer = Annotated[Principal, requires(Role.VIEWER)]
Operator = Annotated[Principal, requires(Role.OPERATOR)]
MAX_OVERRIDE = timedelta(days=7)


class OverrideRequest(BaseModel):
    """Cap a charger or a zone's EV power until a time."""

    model_config = ConfigDict(extra="forbid")

    target: Target
    target_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    max_kw: float = Field(ge=0, le=1_000_000, description="The cap [kW].")
    until: datetime = Field(description="RFC 3339 with offset; at most 7 days ahead.")


class RunNow(BaseModel):
    """A planning run was requested."""

    accepted: bool


@router.get("/overrides", response_model=list[Override], tags=["overrides"])
def list_overrides(request: Request, _: Viewer) -> list[Override]:
    """Overrides in force."""
    ctx = context(request)
    return ctx.overrides.active(ctx.view.now())


@router.post(
    "/overrides",
    response_model=Override,
    status_code=status.HTTP_201_CREATED,
    tags=["overrides"],
    responses={404: {"description": "Unknown charger or zone."}},
)
def create_override(request: Request, body: OverrideRequest, who: Operator) -> Override:
    """Cap a charger or zone; it passes the safety layer like every setpoint and is audited."""
    ctx = context(request)
    now = ctx.view.now()
    until = api_instant(body.until, "until")
    if until - now > MAX_OVERRIDE:
        raise HTTPException(422, "until is more than 7 days ahead")
    try:
        item = ctx.overrides.add(body.target, body.target_id, body.max_kw, until, who.name, now)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    ctx.audit.record(
        AuditEntry(
            at=now,
            who=who.name,
            action="override.create",
            target=f"{item.target}:{item.target_id}",
            request=body.model_dump(mode="json"),
            result={"id": item.id, "effective_kw": item.effective_kw, "until": item.until},
        )
    )
    ctx.view.dispatch_now()
    return item


@router.delete(
    "/overrides/{override_id}",
    response_model=Override,
    tags=["overrides"],
    responses={404: {"description": "No such override."}},
)
def delete_override(
    request: Request, override_id: Annotated[int, PathParam(ge=1, le=2**31)], who: Operator
) -> Override:
    """Lift an override before its end."""
    ctx = context(request)
    item = ctx.overrides.remove(override_id)
    if item is None:
        raise HTTPException(404, f"no override {override_id}")
    ctx.audit.record(
        AuditEntry(
            at=ctx.view.now(),
            who=who.name,
            action="override.delete",
            target=f"{item.target}:{item.target_id}",
            request={"id": override_id},
            result={"lifted": True},
        )
    )
    ctx.view.dispatch_now()
    return item


@router.post(
    "/plans/run",
    response_model=RunNow,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["planning"],
)
def run_now(request: Request, who: Operator) -> RunNow:
    """Start a planning run out of turn (it waits for one under way)."""
    ctx = context(request)
    accepted = ctx.view.run_now()
    ctx.audit.record(
        AuditEntry(
            at=ctx.view.now(),
            who=who.name,
            action="plan.run_now",
            target="planning",
            request={},
            result={"accepted": accepted},
        )
    )
    return RunNow(accepted=accepted)
