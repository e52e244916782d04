"""What the routes reach through ``request.app.state.ctx``: the service's parts the API uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from gridcoord.api.audit import AuditLog
from gridcoord.api.events import Broadcaster
from gridcoord.api.metrics import Instruments
from gridcoord.api.overrides import OverrideBook
from gridcoord.api.responses import ResponseCache
from gridcoord.api.view import CityView
from gridcoord.config import Config


@dataclass(frozen=True)
class ApiContext:
    """Everything one application serves."""

    config: Config
    view: CityView
    overrides: OverrideBook
    audit: AuditLog
    instruments: Instruments
    broadcaster: Broadcaster
    responses: ResponseCache = field(default_factory=ResponseCache)

    @property
    def stale_grace_s(self) -> float:
        """No stale alarms this soon after start: devices have not had time to report [s]."""
        limits = [a.charger.stale_after_s for a in self.config.assets if a.charger is not None]
        return max([self.config.planning.zone_meter_stale_after_s, *limits])


def context(request: Request) -> ApiContext:
    """The context of the application serving ``request``."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx
