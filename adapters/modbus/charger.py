"""Charger setpoints: from a power limit to a current the charger accepts, never above a limit.

Pure logic. A charger takes a current per phase; the power it may then draw is
current × phases × voltage. Every rounding goes down, so the power actually allowed never
exceeds the power asked for, the charger's rating, or the map's current range (DESIGN 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CurrentLimits:
    """What one charger accepts.

    Attributes
    ----------
    phases
        connected phases [-]
    voltage_v
        phase voltage [V]
    min_current_a
        lowest current it holds; below it charging pauses at 0 A [A]
    max_current_a
        highest current allowed (model and rating) [A]
    step_a
        resolution of the setpoint register (0 for a float register) [A]
    """

    phases: int
    voltage_v: float
    min_current_a: float
    max_current_a: float
    step_a: float = 0.0

    def power_w(self, current_a: float) -> float:
        """Power drawn at this current [W]."""
        return current_a * self.phases * self.voltage_v


def power_to_current(power_w: float, limits: CurrentLimits) -> float:
    """Current limit for a power limit, clamped and rounded down [A].

    Parameters
    ----------
    power_w : power limit asked for [W]; negative or non-finite means 0
    limits : the charger's limits

    Returns
    -------
    0, or a current in [min_current_a, max_current_a] on the register's step, whose power is
    at most `power_w`.
    """
    if not math.isfinite(power_w) or power_w <= 0:
        return 0.0
    current = min(power_w / (limits.phases * limits.voltage_v), limits.max_current_a)
    if limits.step_a > 0:
        # Small epsilon so 16.0 A on a 0.1 A step stays 16.0, not 15.9, after float division.
        steps = math.floor(current / limits.step_a + 1e-9)
        # round() strips float noise such as 10.100000000000001 from steps × step.
        current = min(round(steps * limits.step_a, 9), limits.max_current_a)
    if current < limits.min_current_a:
        return 0.0
    return current


@dataclass(frozen=True, slots=True)
class SetpointResult:
    """What happened to one setpoint written over Modbus.

    Attributes
    ----------
    asset_id
        the charger
    requested_w
        power limit asked for [W]
    current_a
        current limit written [A] (after clamping and rounding down)
    power_w
        power the charger may draw at that current [W]
    read_back_a
        current read back from the charger [A], None if the read failed
    clamped
        whether the request was cut to the charger's limits
    alarm
        why the setpoint is not known to be in force (write failed, read-back
        mismatch); None when it is
    ts
        when it was written, aware UTC
    valid_until
        after this the poller stops refreshing it and the charger falls back to
        its fail-safe current; None for until replaced
    read_back_w
        power at the current read back [W], None if the read failed
    """

    asset_id: str
    requested_w: float
    current_a: float
    power_w: float
    read_back_a: float | None
    clamped: bool
    alarm: str | None
    ts: datetime
    valid_until: datetime | None = None
    read_back_w: float | None = None

    @property
    def ok(self) -> bool:
        """Written and read back as written."""
        return self.alarm is None
