"""A simulated charger that obeys its setpoints and falls back to its fail-safe power.

It behaves as DESIGN 3.2 asks of a real one: it draws no more than ``max_power_w`` of the last
setpoint while ``valid_until`` has not passed, and no more than its own fail-safe power after;
malformed setpoints are ignored (and counted). Time only moves when `advance` is called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridcoord.simulation.ev import EvVisit
from gridcoord.timegrid import as_utc, parse_rfc3339, to_rfc3339


@dataclass
class SimulatedCharger:
    """One charge point with at most one vehicle.

    Attributes
    ----------
    id
        charger id.
    max_kw
        rating [kW].
    failsafe_kw
        power it falls back to with no valid setpoint [kW].
    """

    id: str
    max_kw: float
    failsafe_kw: float
    setpoint_kw: float | None = None
    valid_until: datetime | None = None
    schedule_id: str | None = None
    rejected_setpoints: int = 0
    visit: EvVisit | None = None
    session_energy_kwh: float = 0.0
    power_kw: float = 0.0
    delivered_total_kwh: float = 0.0
    finished: list[tuple[EvVisit, float]] = field(default_factory=list)

    def receive_setpoint(self, payload: Mapping[str, Any]) -> bool:
        """Take a DESIGN 3.2 setpoint; return False (and ignore it) when it is malformed."""
        try:
            watts = payload["max_power_w"]
            if isinstance(watts, bool) or not isinstance(watts, int | float):
                raise TypeError
            if not math.isfinite(watts) or watts < 0:
                raise ValueError
            until = parse_rfc3339(payload["valid_until"])
            schedule = str(payload.get("schedule_id", ""))
        except (KeyError, TypeError, ValueError):
            self.rejected_setpoints += 1
            return False
        self.setpoint_kw, self.valid_until, self.schedule_id = watts / 1000.0, until, schedule
        return True

    def limit_kw(self, now: datetime) -> float:
        """What it may draw at ``now``: the valid setpoint, else its fail-safe power [kW]."""
        valid = self.valid_until is not None and as_utc(now) < self.valid_until
        if self.setpoint_kw is not None and valid:
            return min(self.max_kw, self.setpoint_kw)
        return min(self.max_kw, self.failsafe_kw)

    def plug_in(self, visit: EvVisit, energy_kwh: float = 0.0) -> None:
        """A vehicle arrives (a vehicle still plugged in leaves first).

        ``energy_kwh`` is what the session already got [kWh] (a car in progress when a
        simulation starts); it is not counted in `delivered_total_kwh`.
        """
        if self.visit is not None:
            self._unplug()
        self.visit, self.session_energy_kwh = visit, max(0.0, energy_kwh)

    def advance(self, start: datetime, end: datetime) -> float:
        """Charge from ``start`` to ``end``; return the energy delivered [kWh].

        The interval is split where the setpoint expires and where the vehicle leaves, so the
        draw never exceeds the limit in force at any instant.
        """
        start, end = as_utc(start), as_utc(end)
        delivered = 0.0
        cursor = start
        while cursor < end:
            stop = end
            if self.valid_until is not None and cursor < self.valid_until < stop:
                stop = self.valid_until
            if self.visit is not None and cursor < self.visit.departure < stop:
                stop = self.visit.departure
            delivered += self._charge(cursor, stop)
            cursor = stop
            if self.visit is not None and cursor >= self.visit.departure:
                self._unplug()
        self.delivered_total_kwh += delivered
        return delivered

    def telemetry(self, now: datetime) -> dict[str, Any]:
        """The contract telemetry payload (DESIGN 3.2) at ``now``."""
        payload: dict[str, Any] = {
            "ts": to_rfc3339(now),
            "power_w": self.power_kw * 1000.0,
            "connected": self.visit is not None,
            "session_energy_wh": self.session_energy_kwh * 1000.0,
        }
        if self.visit is not None and self.visit.reports_departure:
            payload["departure"] = to_rfc3339(self.visit.departure)
            payload["energy_request_wh"] = self.visit.energy_kwh * 1000.0
        return payload

    def _charge(self, start: datetime, end: datetime) -> float:
        hours = (end - start).total_seconds() / 3600.0
        if self.visit is None or hours <= 0 or start < self.visit.arrival:
            self.power_kw = 0.0
            return 0.0
        remaining = max(0.0, self.visit.energy_kwh - self.session_energy_kwh)
        power = max(0.0, min(self.limit_kw(start), self.visit.max_kw))
        if power * hours >= remaining:
            # Full within the interval: charge at ``power`` until then, idle after.
            self.power_kw, energy = 0.0, remaining
        else:
            self.power_kw, energy = power, power * hours
        self.session_energy_kwh += energy
        return energy

    def _unplug(self) -> None:
        assert self.visit is not None
        self.finished.append((self.visit, self.session_energy_kwh))
        self.visit, self.power_kw = None, 0.0
