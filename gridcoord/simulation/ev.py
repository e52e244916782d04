"""Simulated EV visits: when cars arrive at a charger, how long they stay and what they need.

Shaped like the three kinds of charging the issue names:

- home: most evenings, arriving around 18:00 and leaving around 07:00 (later at weekends);
- workplace: weekdays, arriving around 08:00 and staying a working day;
- public: a few short visits a day, around late morning and late afternoon.

Energy needs are log-normal around typical daily driving (10-15 kWh), at most what the stay
could deliver at 90 % of the vehicle's own limit (nobody expects 30 kWh from an hour at 7 kW).
Visits are drawn per charger and local day from a generator seeded by (city seed, charger id,
day), so a charger's day is the same however the demo is run. Nothing identifies a vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gridcoord.config import ChargerType
from gridcoord.simulation.noise import stream_seed


@dataclass(frozen=True, slots=True)
class EvVisit:
    """One vehicle's stay at a charger.

    Attributes
    ----------
    charger_id
        the charger.
    arrival
        plug-in [UTC].
    departure
        plug-out [UTC].
    energy_kwh
        energy the vehicle wants [kWh].
    max_kw
        the vehicle's own charging limit [kW].
    reports_departure
        whether the vehicle or app tells the charger its departure and need
        (``departure``, ``energy_request_wh`` in telemetry); otherwise defaults apply.
    """

    charger_id: str
    arrival: datetime
    departure: datetime
    energy_kwh: float
    max_kw: float
    reports_departure: bool


_VEHICLE_KW = (3.7, 7.4, 11.0, 11.0, 11.0, 22.0)


def _local(day: date, hours: float, zone: ZoneInfo) -> datetime:
    start = datetime.combine(day, time(0), tzinfo=zone)
    # Wall-clock hours after local midnight; on DST days resolved through UTC, so 02:30 on the
    # spring-forward day lands at 03:30 local rather than nowhere.
    return (start.astimezone(UTC) + timedelta(hours=hours)).astimezone(UTC)


def _energy(rng: np.random.Generator, median_kwh: float) -> float:
    return float(np.clip(rng.lognormal(np.log(median_kwh), 0.5), 2.0, 60.0))


def visits_on(
    charger_id: str,
    charger_type: ChargerType,
    day: date,
    seed: int,
    tz: str = "Europe/Berlin",
) -> list[EvVisit]:
    """The visits that *arrive* at one charger on one local day, in time order, not overlapping.

    Parameters
    ----------
    charger_id
        the charger.
    charger_type
        home, workplace or public.
    day
        local calendar day.
    seed
        the city's seed.
    tz
        the city's zone.
    """
    zone = ZoneInfo(tz)
    rng = np.random.default_rng(stream_seed(seed, "ev", charger_id, day.toordinal()))
    weekend = day.weekday() >= 5
    visits: list[EvVisit] = []

    def visit(arrive_h: float, leave: datetime, median_kwh: float) -> EvVisit:
        arrival = _local(day, arrive_h, zone)
        departure = max(leave, arrival + timedelta(minutes=20))
        vehicle_kw = float(rng.choice(_VEHICLE_KW))
        # Drivers ask for what the stay can give: at most 90 % of the vehicle's limit over it.
        hours = (departure - arrival).total_seconds() / 3600.0
        energy = min(_energy(rng, median_kwh), 0.9 * vehicle_kw * hours)
        return EvVisit(charger_id, arrival, departure, energy, vehicle_kw, bool(rng.random() < 0.5))

    if charger_type is ChargerType.HOME:
        if rng.random() < (0.45 if weekend else 0.65):
            arrive = float(np.clip(rng.normal(18.0, 1.5), 14.0, 23.5))
            leave_h = float(np.clip(rng.normal(9.5 if weekend else 7.0, 1.0), 5.0, 11.0))
            visits.append(visit(arrive, _local(day + timedelta(days=1), leave_h, zone), 12.0))
    elif charger_type is ChargerType.WORKPLACE:
        if not weekend and rng.random() < 0.8:
            arrive = float(np.clip(rng.normal(8.0, 0.75), 6.0, 11.0))
            stay = float(np.clip(rng.normal(8.5, 1.0), 3.0, 11.0))
            visits.append(visit(arrive, _local(day, arrive + stay, zone), 10.0))
    else:
        count = int(rng.poisson(2.0 if weekend else 3.0))
        peaks = rng.choice([11.5, 17.0], size=count)
        arrivals = sorted(float(np.clip(rng.normal(p, 2.0), 6.0, 22.0)) for p in peaks)
        free_from = 0.0
        for arrive in arrivals:
            stay = float(np.clip(rng.lognormal(np.log(1.5), 0.5), 0.3, 6.0))
            if arrive < free_from:
                continue  # the charger is taken: this driver goes elsewhere
            visits.append(visit(arrive, _local(day, arrive + stay, zone), 15.0))
            free_from = arrive + stay
    return visits
