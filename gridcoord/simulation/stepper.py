"""The demo city in motion: step it through time, read its telemetry, feed it setpoints.

`CitySimulation` is pure: time moves only when `step` is called, with the instant to step to,
so the demo can run at any speed (or as fast as possible) and a test can drive it minute by
minute. Run one *controlled* simulation (its chargers obey setpoints) and one *uncontrolled*
baseline (every car charges at full power from arrival) with the same seed: they see the same
weather, loads and cars, and their `kpis()` compare like with like (DESIGN 3.1 ``--json``).

No start-up artefact: a car already plugged in at ``start`` arrives with the energy it got
since its plug-in (at its full rate, as before any coordination) and keeps its true request
and departure. Every step's realised non-EV data (base load, renewable output, each zone's
net load without EVs) is kept in `trace`, from which the demo computes the perfect-foresight
bound (`gridcoord.demo.bound`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from gridcoord.forecast.pv import PvFleet, clear_sky_kw
from gridcoord.outcomes import KpiAccumulator, SessionRecord
from gridcoord.simulation.charger import SimulatedCharger
from gridcoord.simulation.city import CityLayout
from gridcoord.simulation.ev import EvVisit, visits_on
from gridcoord.simulation.load import commercial_kw, household_kw
from gridcoord.simulation.noise import stream_seed
from gridcoord.simulation.weather import clear_sky_index, wind_speed_ms
from gridcoord.timegrid import as_utc, local_date, local_day_bounds, to_rfc3339
from gridcoord.zones import ancestors, parents_of

_CLEAR_SKY_STEP = timedelta(minutes=5)


class CitySimulation:
    """The demo city from ``start`` on.

    Parameters
    ----------
    layout
        the city.
    seed
        weather, loads and cars.
    start
        first instant [UTC].
    controlled
        chargers obey setpoints (else: the uncontrolled baseline, every charger at
        its rating whatever it is sent).
    tz
        the city's zone (local days for EV visits and load habits).
    """

    def __init__(
        self,
        layout: CityLayout,
        seed: int,
        start: datetime,
        *,
        controlled: bool = True,
        tz: str = "Europe/Berlin",
    ) -> None:
        self.layout, self.seed, self.tz, self.controlled = layout, seed, tz, controlled
        self.now = as_utc(start)
        self.chargers = {
            c.id: SimulatedCharger(c.id, c.max_kw, c.safe_power_kw if controlled else c.max_kw)
            for c in layout.chargers
        }
        self._zone_of_charger = {c.id: c.zone for c in layout.chargers}
        self._types = {c.id: c.type for c in layout.chargers}
        self._ancestors = zone_ancestors(layout)
        self._fleet = PvFleet(layout.latitude, layout.longitude, rated_kw=1.0)
        self._clear_sky: dict[date, tuple[np.ndarray, np.ndarray]] = {}
        self._pending: list[EvVisit] = []
        self._days_loaded: set[date] = set()
        self._energy_wh: dict[str, float] = defaultdict(float)
        self._power_kw: dict[str, float] = {}
        self._zone_kw: dict[str, float] = {}
        self.kpi = KpiAccumulator({z.id: z.rating_kw for z in layout.zones})
        self.trace: list[TraceStep] = []
        # Energy each visit had before the run began [kWh] (cars plugged in at the start).
        self.energy_before: dict[EvVisit, float] = {}
        self._load_visits(local_date(self.now, tz) - timedelta(days=1))
        self._load_visits(local_date(self.now, tz))
        self._plug_in_arrived()
        self._sample(self.now)

    # --- driving it -------------------------------------------------------------------------

    def step(self, end: datetime) -> None:
        """Advance the city from `now` to ``end``: cars arrive, charge and leave.

        Loads and generation are sampled at the start of the step and held through it.
        """
        end = as_utc(end)
        if end <= self.now:
            return
        self._load_visits(local_date(end, self.tz))
        self._plug_in_arrived()
        hours = (end - self.now).total_seconds() / 3600.0
        ev_by_zone: dict[str, float] = defaultdict(float)
        for cid, charger in self.chargers.items():
            kw = charger.advance(self.now, end) / hours
            self._power_kw[cid] = kw
            for zone in self._ancestors[self._zone_of_charger[cid]]:
                ev_by_zone[zone] += kw
        ev_kw = math.fsum(self._power_kw[c] for c in self.chargers)
        zone_kw = {z: self._zone_kw[z] + ev_by_zone[z] for z in self._zone_kw}
        self.kpi.add(hours, ev_kw, self._base_kw, self._renewable_kw, zone_kw, self._zone_kw)
        self.trace.append(
            TraceStep(self.now, end, self._base_kw, self._renewable_kw, dict(self._zone_kw))
        )
        for asset, kw in self._power_kw.items():
            if asset not in self.chargers:
                self._energy_wh[asset] += max(0.0, kw) * hours * 1000.0
        self.now = end
        self._sample(end)

    def receive_setpoint(self, charger_id: str, payload: Mapping[str, Any]) -> bool:
        """Deliver a DESIGN 3.2 setpoint to a charger (the baseline ignores them)."""
        charger = self.chargers.get(charger_id)
        if charger is None or not self.controlled:
            return False
        return charger.receive_setpoint(payload)

    def telemetry(self) -> dict[str, dict[str, Any]]:
        """Every asset's DESIGN 3.2 telemetry payload at `now`, by asset id."""
        ts = to_rfc3339(self.now)
        out: dict[str, dict[str, Any]] = {}
        net = dict(self._zone_kw)
        for cid, charger in self.chargers.items():
            for zone_id in self._ancestors[self._zone_of_charger[cid]]:
                net[zone_id] += charger.power_kw
        for zone in self.layout.zones:
            out[zone.meter] = {"ts": ts, "power_w": net[zone.id] * 1000.0}
        for asset, kw in self._power_kw.items():
            if asset in self.chargers:
                continue
            out[asset] = {
                "ts": ts,
                "power_w": kw * 1000.0,
                "energy_wh": self._energy_wh[asset],
            }
        for cid, charger in self.chargers.items():
            out[cid] = charger.telemetry(self.now)
        return out

    def kpis(self) -> dict[str, float | int]:
        """The outcome KPIs so far (`gridcoord.outcomes.OUTCOME_KPI_KEYS`).

        Every visit plugged in during the run is judged: one that left on its request, one
        still plugged in on the shortfall already certain (`SessionRecord.unmet_kwh`).
        """
        return self.kpi.result(self.session_records())

    def session_records(self) -> list[SessionRecord]:
        """Every visit plugged in since the start, as the outcome KPIs judge it."""
        records = []
        for charger in self.chargers.values():
            for visit, delivered in charger.finished:
                records.append(session_record(visit, charger.max_kw, delivered, self.now))
            if charger.visit is not None:
                records.append(
                    session_record(
                        charger.visit, charger.max_kw, charger.session_energy_kwh, self.now
                    )
                )
        return records

    def visits(self) -> list[EvVisit]:
        """Every visit plugged in since the start (left or still plugged in), in time order."""
        out = [v for c in self.chargers.values() for v, _ in c.finished]
        out += [c.visit for c in self.chargers.values() if c.visit is not None]
        return sorted(out, key=lambda v: (v.arrival, v.charger_id))

    # --- internals --------------------------------------------------------------------------

    def _plug_in_arrived(self) -> None:
        """Plug in every visit that has arrived by `now` and not yet left."""
        while self._pending and self._pending[0].arrival <= self.now:
            visit = self._pending.pop(0)
            if visit.departure <= self.now:
                continue
            charger = self.chargers[visit.charger_id]
            before = 0.0
            if visit.arrival < self.now:
                # In progress at the start: what it got since plug-in at its full rate.
                hours = (self.now - visit.arrival).total_seconds() / 3600.0
                before = min(visit.energy_kwh, min(charger.max_kw, visit.max_kw) * hours)
                self.energy_before[visit] = before
            charger.plug_in(visit, before)

    def _load_visits(self, day: date) -> None:
        for d in (day, day + timedelta(days=1)):
            if d in self._days_loaded:
                continue
            self._days_loaded.add(d)
            for cid, kind in self._types.items():
                self._pending += visits_on(cid, kind, d, self.seed, self.tz)
        self._pending.sort(key=lambda v: (v.arrival, v.charger_id))

    def _sample(self, instant: datetime) -> None:
        """Loads and generation at an instant; zone net load without EV."""
        unit_pv = self._unit_pv(instant)
        index = clear_sky_index(self.seed, instant, self.tz)
        power: dict[str, float] = {}
        zone_kw: dict[str, float] = defaultdict(float)
        base = renewable = 0.0
        for load in self.layout.loads:
            noise_seed = stream_seed(self.seed, load.id) % (2**31)
            if load.kind == "household":
                kw = household_kw(instant, load.mean_kw, noise_seed, self.tz)
            else:
                kw = commercial_kw(instant, load.mean_kw, noise_seed, self.tz)
            power[load.id] = kw
            base += kw
            for zone_id in self._ancestors[load.zone]:
                zone_kw[zone_id] += kw
        for plant in self.layout.pv:
            kw = plant.rated_kw * unit_pv * index
            power[plant.id] = kw
            renewable += kw
            for zone_id in self._ancestors[plant.zone]:
                zone_kw[zone_id] -= kw
        wind = float(self.layout.wind_farm.output_kw([wind_speed_ms(self.seed, instant)])[0])
        power[self.layout.wind_id] = wind
        renewable += wind
        for zone_id in self._ancestors[self.layout.wind_zone]:
            zone_kw[zone_id] -= wind
        for zone in self.layout.zones:
            zone_kw.setdefault(zone.id, 0.0)
        charger_kw = {c: self._power_kw.get(c, 0.0) for c in self.chargers}
        self._power_kw = {**power, **charger_kw}
        self._zone_kw = dict(zone_kw)
        self._base_kw, self._renewable_kw = base, renewable

    def _unit_pv(self, instant: datetime) -> float:
        """Clear-sky output of 1 kW of PV, interpolated from a 5-minute grid per local day."""
        day = local_date(instant, self.tz)
        cached = self._clear_sky.get(day)
        if cached is None:
            begin, end = local_day_bounds(day, self.tz)
            grid = [
                begin + i * _CLEAR_SKY_STEP for i in range((end - begin) // _CLEAR_SKY_STEP + 1)
            ]
            seconds = np.array([t.timestamp() for t in grid])
            cached = (seconds, clear_sky_kw(self._fleet, grid))
            self._clear_sky[day] = cached
        return float(np.interp(instant.timestamp(), cached[0], cached[1]))


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step's realised non-EV data.

    Attributes
    ----------
    start, end
        the step [UTC].
    base_kw
        non-EV consumption [kW].
    renewable_kw
        renewable output [kW].
    zone_kw
        zone id → net load without EVs [kW] (negative where generation exceeds load).
    """

    start: datetime
    end: datetime
    base_kw: float
    renewable_kw: float
    zone_kw: dict[str, float]


def session_record(
    visit: EvVisit, charger_max_kw: float, delivered_kwh: float, now: datetime
) -> SessionRecord:
    """A visit judged at ``now``, with ``delivered_kwh`` over its whole stay so far."""
    stay = (visit.departure - visit.arrival).total_seconds() / 3600.0
    left = max(0.0, (visit.departure - now).total_seconds() / 3600.0)
    rate = min(charger_max_kw, visit.max_kw)
    return SessionRecord(visit.energy_kwh, delivered_kwh, rate, stay, left)


def zone_ancestors(layout: CityLayout) -> dict[str, list[str]]:
    """Zone id → itself and every zone above it."""
    parents = parents_of(layout.zones)
    return {zone: ancestors(zone, parents) for zone in parents}
