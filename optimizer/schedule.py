"""The optimizer's output (DESIGN 3.5): power per session and charger, KPIs, and what limited it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["optimal", "time_limit", "fallback"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionPlan(_Out):
    """The plan of one session."""

    power_kw: list[float] = Field(description="Charging power per slot [kW].")
    delivered_kwh: float = Field(description="Energy the plan delivers [kWh].")
    unmet_kwh: float = Field(description="Requested energy the plan does not deliver [kWh].")


class Kpis(_Out):
    """Figures of merit of one plan; the baselines are scored with the same function."""

    renewable_share: float = Field(
        description="Share of all consumption (base load + EV) covered by renewables [0..1]."
    )
    peak_import_kw: float = Field(description="Largest grid import in any slot [kW].")
    unmet_kwh: float = Field(description="Requested EV energy left undelivered [kWh].")
    delivered_kwh: float = Field(description="EV energy delivered [kWh].")
    import_kwh: float = Field(description="Grid import over the horizon [kWh].")
    import_cost: float = Field(description="Import weighted by import_weight [cost units].")
    peak_ev_kw: float = Field(description="Largest total EV charging power in any slot [kW].")
    zone_overloads: int = Field(description="Zone-slots above capacity (0 for every plan here).")


class Baselines(_Out):
    """KPIs of reference plans for the same problem."""

    uncontrolled: Kpis = Field(description="Every session at its max from arrival, within limits.")
    uncontrolled_ev_kw: list[float] = Field(
        default_factory=list,
        description="EV power of the uncontrolled plan per slot, all sessions [kW] (charts).",
    )
    renewable_surplus_first: Kpis | None = Field(
        None, description="Greedy home-charger heuristic: surplus first, then cheapest slots."
    )


class BindingZone(_Out):
    """A zone at its capacity in some slots."""

    kind: Literal["zone_capacity"] = "zone_capacity"
    zone: str = Field(description="Zone id.")
    slots: list[int] = Field(description="Slots in which the zone is at capacity.")


class BindingCharger(_Out):
    """A charger whose sessions share its full power in some slots."""

    kind: Literal["charger_capacity"] = "charger_capacity"
    charger: str = Field(description="Charger id.")
    slots: list[int] = Field(description="Slots in which the charger is at its max.")


class BindingSession(_Out):
    """A session left short, and why."""

    kind: Literal["session_short"] = "session_short"
    session: str = Field(description="Session id.")
    unmet_kwh: float = Field(description="Energy not delivered [kWh].")
    reason: Literal["window_too_short", "zone_headroom", "charger_shared", "plan_not_optimal"] = (
        Field(
            description="window_too_short: even full power over its whole window is not enough; "
            "zone_headroom / charger_shared: held back by the listed limits; plan_not_optimal: "
            "a time_limit or fallback plan left it short without a limit at capacity."
        )
    )
    limited_by: list[str] = Field(
        default_factory=list, description="Zones or chargers at capacity in the session's window."
    )


Binding = BindingZone | BindingCharger | BindingSession


class Schedule(_Out):
    """A feasible charging plan and its explanation (DESIGN 3.5)."""

    status: Status = Field(description="optimal, time_limit (best feasible found) or fallback.")
    solve_seconds: float = Field(description="Wall time spent in `solve` [s].")
    unmet_kwh_total: float = Field(description="Requested energy not delivered [kWh].")
    import_kwh: float = Field(description="Grid import over the horizon [kWh].")
    import_cost: float = Field(description="Grid import weighted by import_weight.")
    sessions: dict[str, SessionPlan] = Field(description="Plan per session id.")
    chargers: dict[str, list[float]] = Field(description="Power per charger id and slot [kW].")
    kpis: Kpis = Field(description="Figures of merit of this plan.")
    baseline: Baselines = Field(description="The same figures for reference plans.")
    binding: list[Binding] = Field(description="What limited the plan.")
    message: str | None = Field(None, description="Why the status is not optimal, if it is not.")
