"""Build the optimizer's problem (DESIGN 3.5, an `optimizer.Problem`) from a planning snapshot.

The snapshot is frozen at the start of a run: open charging sessions, the chargers and the zone
tree with each zone's EV headroom, and the forecasts of the horizon. Times become slot indices
here and nowhere else, so the optimizer never sees a clock (or a DST change).

Decisions (see docs/coordination.md):

- every open session is plugged in now: arrival slot 0;
- the slot containing the departure is planned only when the need does not fit before it:
  the plan counts a slot whole, the car is there for part of it, so energy planned there is
  delivered only in part (issue 12: with the `net_load` weights that slot is often the
  cheapest of a short stay, and public stays lost 1-3 kWh each to it). A need that fits in
  the whole slots before, at the car's rate (its learnt limit, else the charger's rating),
  is planned there; one that does not gets the partial slot too (a short stay's last
  minutes are a large share of it; the old builder dropped it always). A departure in the
  past or within the first slot still gets slot 0, since the car is still plugged in as far
  as we know; a departure beyond the horizon is clipped to its end;
- the energy asked for is the session's remaining need; sessions with none left are omitted;
- a zone's headroom for future slots follows the forecast of non-EV load: its non-EV load now
  scaled by forecast / current city load (`zone_headroom_series`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import optimizer
from gridcoord.sessions import ChargingSession
from gridcoord.timegrid import as_utc, check_slot_minutes, is_aligned, slot_index, to_rfc3339

Series = float | Sequence[float]


@dataclass(frozen=True, slots=True)
class PlanCharger:
    """A charger as the optimizer sees it: id, zone, rating [kW]."""

    id: str
    zone: str | None
    max_kw: float


@dataclass(frozen=True, slots=True)
class PlanZone:
    """A zone with its EV headroom, one value or one per slot [kW]."""

    id: str
    parent: str | None
    capacity_kw: Series


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a planning run works on, frozen at its start.

    Attributes
    ----------
    start
        start of slot 0, on the slot grid [UTC].
    slot_minutes
        slot length [min].
    slots
        number of slots T.
    sessions
        open charging sessions.
    chargers
        every charger.
    zones
        the zone tree with headroom.
    renewable_kw
        forecast PV + wind per slot [kW].
    base_load_kw
        forecast non-EV load per slot [kW].
    import_weight
        price or CO2 weight per slot (default 1).
    vehicle_max_kw
        session id → the vehicle's own limit, when known [kW].
    """

    start: datetime
    slot_minutes: int
    slots: int
    sessions: Sequence[ChargingSession]
    chargers: Sequence[PlanCharger]
    zones: Sequence[PlanZone]
    renewable_kw: Series = 0.0
    base_load_kw: Series = 0.0
    import_weight: Series = 1.0
    vehicle_max_kw: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuiltProblem:
    """The DESIGN 3.5 problem, validated, and the sessions left out with the reason."""

    problem: optimizer.Problem
    skipped: dict[str, str]


def build_problem(snapshot: Snapshot) -> BuiltProblem:
    """Turn a snapshot into the optimizer's problem.

    Raises
    ------
    ValueError
        naming the element, when a series has the wrong length or a negative or
        non-finite value, or the start is not on the slot grid; or the optimizer's own
        checks refuse the problem (a pydantic ``ValidationError``, also a ValueError).
    """
    check_slot_minutes(snapshot.slot_minutes)
    if snapshot.slots <= 0:
        raise ValueError(f"slots must be > 0, got {snapshot.slots}")
    if not is_aligned(snapshot.start, snapshot.slot_minutes):
        raise ValueError(f"start {to_rfc3339(snapshot.start)} is not on the slot grid")
    count = snapshot.slots
    chargers = {c.id: c for c in snapshot.chargers}
    sessions: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for s in snapshot.sessions:
        if s.charger_id not in chargers:
            skipped[s.id] = f"unknown charger {s.charger_id!r}"
            continue
        if not s.is_open:
            skipped[s.id] = "not plugged in"
            continue
        energy = s.remaining_kwh
        if not (math.isfinite(energy) and energy > 0):
            skipped[s.id] = "no energy needed"
            continue
        vehicle = snapshot.vehicle_max_kw.get(s.id)
        if vehicle is not None and not (math.isfinite(vehicle) and vehicle > 0):
            vehicle = None
        rate = chargers[s.charger_id].max_kw
        departure = _departure_slot(
            snapshot.start,
            s.departure,
            snapshot.slot_minutes,
            count,
            energy,
            rate if vehicle is None else min(rate, vehicle),
        )
        item: dict[str, Any] = {
            "id": s.id,
            "charger": s.charger_id,
            "arrival_slot": 0,
            "departure_slot": departure,
            "energy_kwh": energy,
        }
        if vehicle is not None:
            item["max_kw"] = vehicle
        sessions.append(item)

    problem: dict[str, Any] = {
        "slot_minutes": snapshot.slot_minutes,
        "slots": count,
        "start": to_rfc3339(as_utc(snapshot.start)),
        "renewable_kw": _series("renewable_kw", snapshot.renewable_kw, count),
        "base_load_kw": _series("base_load_kw", snapshot.base_load_kw, count),
        "import_weight": _series("import_weight", snapshot.import_weight, count, positive=True),
        "zones": [
            {
                "id": z.id,
                **({"parent": z.parent} if z.parent is not None else {}),
                "capacity_kw": _series(f"zone {z.id!r} capacity_kw", z.capacity_kw, count),
            }
            for z in snapshot.zones
        ],
        "chargers": [
            {"id": c.id, **({"zone": c.zone} if c.zone is not None else {}), "max_kw": c.max_kw}
            for c in snapshot.chargers
        ],
        "sessions": sessions,
    }
    return BuiltProblem(optimizer.Problem.model_validate(problem), skipped)


def zone_headroom_series(
    rating_kw: float,
    non_ev_now_kw: float | None,
    city_load_forecast_kw: Sequence[float],
    city_load_now_kw: float,
) -> list[float]:
    """A zone's EV headroom per slot: rating minus its non-EV load, projected [kW].

    Parameters
    ----------
    rating_kw
        rating of the zone's transformer or feeder [kW].
    non_ev_now_kw
        the zone's non-EV load now (meter minus EV draw) [kW]; None when the
        meter is stale — the zone is then at its limit for the whole horizon.
    city_load_forecast_kw
        forecast non-EV load of the city per slot [kW].
    city_load_now_kw
        the city's non-EV load now [kW].

    Returns
    -------
    list[float]
        Headroom per slot in [0, rating_kw] [kW].
    """
    count = len(city_load_forecast_kw)
    if non_ev_now_kw is None or not math.isfinite(non_ev_now_kw):
        return [0.0] * count
    rating = max(0.0, rating_kw) if math.isfinite(rating_kw) else 0.0
    now = max(0.0, non_ev_now_kw)
    out = []
    for forecast in city_load_forecast_kw:
        ratio = forecast / city_load_now_kw if city_load_now_kw > 0 and forecast >= 0 else 1.0
        # Never assume the zone's load falls below half of now: a forecast error there would
        # hand out headroom that is not there.
        projected = now * max(0.5, ratio) if math.isfinite(ratio) else now
        out.append(min(rating, max(0.0, rating - projected)))
    return out


def _departure_slot(
    start: datetime,
    departure: datetime,
    slot_minutes: int,
    count: int,
    energy_kwh: float,
    rate_kw: float,
) -> int:
    """The session's exclusive last slot: its partial last slot only when the need needs it.

    Whole slots before the departure's slot that can deliver ``energy_kwh`` at ``rate_kw``
    make the departure's slot (where the car is for part of the time only) the end; else it
    is planned too. At least 1, at most ``count``.
    """
    index = slot_index(start, departure, slot_minutes)
    through = _slots_until(start, departure, slot_minutes)
    if index < through <= count and index >= 1:
        whole_kwh = rate_kw * index * slot_minutes / 60.0
        if energy_kwh <= whole_kwh:
            return index
    return min(count, max(1, through))


def _slots_until(start: datetime, departure: datetime, slot_minutes: int) -> int:
    """Slots from ``start`` up to and including the one ``departure`` falls in (exclusive end)."""
    index = slot_index(start, departure, slot_minutes)
    begins = start + timedelta(minutes=slot_minutes * index)
    return index + 1 if departure > begins else index


def _series(name: str, value: Series, count: int, *, positive: bool = False) -> float | list[float]:
    values = [value] if isinstance(value, int | float) else list(value)
    if not isinstance(value, int | float) and len(values) != count:
        raise ValueError(f"{name}: {len(values)} values for {count} slots")
    for i, v in enumerate(values):
        bad = not math.isfinite(v) or v < 0 or (positive and v <= 0)
        if bad:
            where = name if isinstance(value, int | float) else f"{name}[{i}]"
            need = "> 0" if positive else ">= 0"
            raise ValueError(f"{where}: must be finite and {need}, got {v}")
    return float(value) if isinstance(value, int | float) else [float(v) for v in values]
