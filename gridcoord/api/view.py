"""What the API may see of the running service: one small read-only interface, `CityView`.

The HTTP layer, the metrics and the live stream read the service only through this Protocol
and the response models below (which are also the OpenAPI schemas). `service_view.py` is the
one adapter over today's `Service`, `Coordinator` and `PlanningLoop`; a refactor of those
reconciles that adapter, not the API.

Conventions: times are aware UTC, powers in kW, energies in kWh; a value that is not known is
``None`` (a stale device is *unavailable*, never 0 W).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class AssetState(_Model):
    """One field device and its latest reading."""

    id: str
    kind: str = Field(description="pv, wind, meter or charger.")
    zone: str | None
    rated_kw: float = Field(description="Rated power [kW].")
    available: bool = Field(description="Reported within its staleness limit.")
    last_seen: datetime | None = Field(description="Time of the latest reading [UTC].")
    power_kw: float | None = Field(
        description="Latest power [kW]; None when unavailable (stale is not 0 W)."
    )
    fields: dict[str, float | bool] = Field(
        default_factory=dict, description="The latest reading's numeric fields, unit-named."
    )


class ZoneStatus(_Model):
    """One zone (transformer, feeder) now."""

    id: str
    parent: str | None
    capacity_kw: float = Field(description="Rating of the zone [kW].")
    limit_kw: float = Field(
        description="The EV limit in force: the headroom, or an operator's cap if lower [kW]."
    )
    load_kw: float | None = Field(description="Meter reading [kW]; None when stale or no meter.")
    ev_kw: float = Field(description="Draw of the fresh chargers in and below the zone [kW].")
    headroom_kw: float = Field(
        description="EV headroom now: rating minus non-EV load, 0 for a stale meter [kW]."
    )
    meter_stale: bool
    override_until: datetime | None = Field(None, description="End of an operator's cap [UTC].")


class SessionState(_Model):
    """An open charging session (no vehicle or user identity)."""

    id: str
    charger_id: str
    plugged_in_at: datetime
    departure: datetime
    departure_source: str = Field(description="device or default.")
    requested_kwh: float
    request_source: str = Field(description="device or default.")
    delivered_kwh: float = Field(description="Energy so far [kWh].")
    power_kw: float


class PlanSummary(_Model):
    """One planning run."""

    schedule_id: str
    made_at: datetime
    slot_start: datetime
    status: str = Field(description="optimal, time_limit or fallback.")
    failure: str | None
    solve_s: float = Field(description="Wall time of the solve [s].")
    budget_s: float
    sessions: int
    kpis: dict[str, float]
    baseline: dict[str, float] = Field(description="KPIs of uncontrolled charging.")
    binding: list[dict[str, Any]] = Field(description="What limited the plan.")
    forecast_mae: dict[str, float] = Field(description="Previous forecast's MAE per kind [kW].")
    forecast_sources: dict[str, str]


class SetpointState(_Model):
    """The latest setpoint of one charger."""

    charger_id: str
    schedule_id: str
    sent_at: datetime
    max_power_kw: float = Field(description="Limit sent, after the safety layer [kW].")
    valid_until: datetime
    limited_by: str = Field(description="plan, charger_max, stale, guaranteed, zone:<id>, ...")
    protocol: Literal["mqtt", "modbus"]
    read_back_kw: float | None = Field(
        description="Modbus: the limit read back from the charger [kW]; MQTT: None."
    )
    alarm: str | None = Field(description="Why the setpoint is not known to be in force.")
    actual_kw: float | None = Field(description="What the charger reports drawing [kW].")


class ChargerState(_Model):
    """One charger for the control room's table: its state, setpoint and session together."""

    id: str
    zone: str | None
    state: Literal["charging", "idle", "stale"] = Field(
        description="stale: no fresh telemetry (unavailable, not 0 W); charging: a session is "
        "open; idle: fresh, no session."
    )
    power_kw: float | None = Field(description="What the charger reports drawing [kW].")
    setpoint_kw: float | None = Field(description="The latest limit sent [kW].")
    limited_by: str | None = Field(description="What limited the setpoint.")
    valid_until: datetime | None = Field(description="When the setpoint expires [UTC].")
    alarm: str | None = Field(description="Why the setpoint is not known to be in force.")
    delivered_kwh: float | None = Field(description="The open session's energy so far [kWh].")
    requested_kwh: float | None = Field(description="The open session's request [kWh].")
    departure: datetime | None = Field(description="The open session's departure [UTC].")


class Health(_Model):
    """What readiness is judged on."""

    broker_connected: bool = Field(description="Connected and subscribed.")
    store_writable: bool = Field(description="The last write went to the store.")
    spooling: bool = Field(description="Writes go to the disk spool (store away).")
    spool_full: bool
    spool_bytes: int
    planning_enabled: bool
    last_plan_at: datetime | None
    plan_interval_s: float
    started_at: datetime = Field(description="When the service started [UTC].")


class SeriesPoint(_Model):
    """One bucket of a time series."""

    ts: datetime = Field(description="Bucket start [UTC].")
    value: float = Field(description="Mean of the bucket's values, in the field's unit.")


class ChartSeries(_Model):
    """The dashboard's 24-hour chart: city totals per slot [kW]."""

    starts: list[datetime]
    renewable_forecast_kw: list[float | None]
    renewable_actual_kw: list[float | None]
    ev_planned_kw: list[float | None]
    ev_actual_kw: list[float | None]
    ev_baseline_kw: list[float | None] = Field(
        description="Uncontrolled charging of the same sessions (every car at its max from "
        "arrival), as each slot's latest plan expected it; None before a plan covered it."
    )


class LeadError(_Model):
    """How good forecasts made a given lead time ahead were, over every slot judged so far."""

    mae_kw: float = Field(description="Mean absolute error [kW].")
    bias_kw: float = Field(description="Mean of forecast minus measured [kW].")
    n: int = Field(description="Slot values judged.")


class ForecastView(_Model):
    """The latest planning run's forecast per slot [kW] and the previous one's measured error."""

    starts: list[datetime]
    pv_kw: list[float]
    wind_kw: list[float]
    load_kw: list[float] = Field(description="Non-EV load.")
    sources: dict[str, str] = Field(
        description="Per kind: model (the nowcast alone), external (every slot blended with a "
        "day-ahead forecast) or external+model (some slots)."
    )
    day_ahead_kw: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="Per kind with a fresh external forecast: that forecast alone per slot, "
        "null where it does not reach [kW].",
    )
    mae_kw: dict[str, float] = Field(
        description="Mean absolute error of the previous run's forecast over the slots measured "
        "since, per kind [kW]."
    )
    error_by_lead: dict[str, dict[str, dict[str, LeadError]]] = Field(
        default_factory=dict,
        description="Since the start: kind (pv, wind, load) → source (blended = what was "
        "planned with, day_ahead, nowcast) → lead-time bucket (0-1h, 1-3h, 3-6h, 6-12h, "
        "12-24h, 24-48h, 48-72h) → MAE and bias of the values forecast that far ahead.",
    )


class Totals(_Model):
    """City totals now, from the latest readings of available devices [kW]."""

    renewable_kw: float
    ev_kw: float
    load_kw: float
    net_import_kw: float
    online: int
    stale: int


class CityView(Protocol):
    """Read-only access to the running service (all methods thread-safe and quick)."""

    def now(self) -> datetime:
        """The service clock [UTC]."""
        ...

    def assets(self) -> list[AssetState]:
        """Every configured asset with its latest reading."""
        ...

    def zones(self) -> list[ZoneStatus]:
        """Every zone with load, headroom and the limit in force."""
        ...

    def sessions(self) -> list[SessionState]:
        """Open charging sessions."""
        ...

    def plans(self) -> list[PlanSummary]:
        """Planning runs, newest first."""
        ...

    def setpoints(self) -> list[SetpointState]:
        """The latest setpoint of every charger."""
        ...

    def chargers(self) -> list[ChargerState]:
        """Every charger with its state, setpoint and open session, by id."""
        ...

    def rejections(self) -> dict[str, int]:
        """Rejected readings since start, by reason."""
        ...

    def ingest(self) -> dict[str, int]:
        """Ingest counters since start (accepted, written, spooled, ...)."""
        ...

    def health(self) -> Health:
        """Broker, store and planning state for readiness."""
        ...

    def totals(self) -> Totals:
        """City totals now."""
        ...

    def renewable_share_today(self) -> float | None:
        """Share of today's EV energy covered by renewable surplus, None before any [-]."""
        ...

    def chart(self) -> ChartSeries:
        """The last 12 and next 12 hours, per slot."""
        ...

    def forecast(self) -> ForecastView | None:
        """The latest forecast, None before the first planning run."""
        ...

    def series(
        self, measurement: str, field: str, tags: dict[str, str], start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """Raw points from the store (blocking: call it in a worker thread)."""
        ...

    def run_now(self) -> bool:
        """Trigger a planning run out of turn; False when planning is off."""
        ...

    def dispatch_now(self) -> None:
        """Re-dispatch soon (after an override changed a limit)."""
        ...
