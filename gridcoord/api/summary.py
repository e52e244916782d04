"""The control room's header and alarms, built from a `CityView` (what the live stream sends)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gridcoord.api.overrides import Override
from gridcoord.api.view import CityView, Totals, ZoneStatus

# Listed by id in an alarm at most (the count says how many in all).
ALARM_IDS = 20


class Alarm(BaseModel):
    """Something an operator should look at."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(
        description="stale_devices, stale_zone_meters, zone_shortfall, fallback, readback, override"
    )
    detail: str
    ids: list[str] = Field(default_factory=list, description="Affected ids (first few).")
    count: int = 1


class LastPlan(BaseModel):
    """The newest planning run, briefly."""

    model_config = ConfigDict(frozen=True)

    schedule_id: str
    status: str
    failure: str | None
    age_s: float = Field(description="Since the run started [s].")
    solve_s: float
    sessions: int
    renewable_share: float | None


class Summary(BaseModel):
    """The header KPIs and the alarms."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    totals: Totals
    renewable_share_today: float | None = Field(
        description="Share of today's EV energy covered by renewable surplus [-]."
    )
    last_plan: LastPlan | None
    zones: list[ZoneStatus]
    alarms: list[Alarm]


def build_summary(view: CityView, overrides: list[Override], stale_grace_s: float) -> Summary:
    """The header, zones and alarms now.

    Parameters
    ----------
    view
        the service.
    overrides
        overrides in force.
    stale_grace_s
        no stale alarms this soon after start (devices have not reported yet).
    """
    now = view.now()
    health = view.health()
    alarms: list[Alarm] = []
    settled = (now - health.started_at).total_seconds() >= stale_grace_s
    if settled:
        stale = [a.id for a in view.assets() if not a.available]
        if stale:
            alarms.append(
                Alarm(
                    kind="stale_devices",
                    detail=f"{len(stale)} device(s) without fresh telemetry: unavailable, not 0 W",
                    ids=stale[:ALARM_IDS],
                    count=len(stale),
                )
            )
    zones = view.zones()
    stale_meters = [z.id for z in zones if z.meter_stale]
    if settled and stale_meters:
        alarms.append(
            Alarm(
                kind="stale_zone_meters",
                detail="zone meter silent: the zone is held at its limit",
                ids=stale_meters[:ALARM_IDS],
                count=len(stale_meters),
            )
        )
    short = [z for z in zones if z.shortfall_kw is not None]
    if short:
        alarms.append(
            Alarm(
                kind="zone_shortfall",
                detail=f"guaranteed minima exceed the zone limit by "
                f"{sum(z.shortfall_kw or 0.0 for z in short):.1f} kW in all: the limit wins, "
                "minima scaled down (grid planning)",
                ids=[z.id for z in short][:ALARM_IDS],
                count=len(short),
            )
        )
    plans = view.plans()
    last = plans[0] if plans else None
    if last is not None and last.status == "fallback":
        alarms.append(Alarm(kind="fallback", detail=last.failure or "fallback plan dispatched"))
    readback = [s.charger_id for s in view.setpoints() if s.alarm is not None]
    if readback:
        alarms.append(
            Alarm(
                kind="readback",
                detail="setpoint not confirmed by the charger",
                ids=readback[:ALARM_IDS],
                count=len(readback),
            )
        )
    for o in overrides:
        alarms.append(
            Alarm(
                kind="override",
                detail=f"{o.target} capped at {o.effective_kw:g} kW until "
                f"{o.until.isoformat()} by {o.created_by}",
                ids=[o.target_id],
            )
        )
    if not health.broker_connected:
        alarms.append(Alarm(kind="broker", detail="not connected to the MQTT broker"))
    if health.spooling:
        alarms.append(Alarm(kind="store", detail="store unavailable: writing to the disk spool"))
    return Summary(
        at=now,
        totals=view.totals(),
        renewable_share_today=view.renewable_share_today(),
        last_plan=LastPlan(
            schedule_id=last.schedule_id,
            status=last.status,
            failure=last.failure,
            age_s=max(0.0, (now - last.made_at).total_seconds()),
            solve_s=last.solve_s,
            sessions=last.sessions,
            renewable_share=last.kpis.get("renewable_share"),
        )
        if last is not None
        else None,
        zones=zones,
        alarms=alarms,
    )
