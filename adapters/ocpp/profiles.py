"""Setpoints → OCPP charging profiles, and composite schedules → the limit read back: pure.

One station connector gets at most three profiles, each with a fixed id and stack level so a
new one replaces the old (no profile piles up on the station):

===================  ===========  ===========  =============================================
purpose              id           stack level  schedule
===================  ===========  ===========  =============================================
TxProfile            100 + evse   1            the setpoint and the plan's later steps,
                                               ``validTo`` = the setpoint's ``valid_until``
TxDefaultProfile     200 + evse   0            min(setpoint, safe power) until
                                               ``valid_until``, then the safe power: the
                                               fail-safe while the connection is lost
ChargingStationMax   300          0            (fallback only) like TxDefault, station-wide
===================  ===========  ===========  =============================================

When a station rejects the TxProfile, the TxDefaultProfile carries the setpoint itself; when it
rejects that too, the station-wide maximum profile does. Every profile ends on the safe power
without an expiry, so nothing high outlives the plan. Limits are rounded *down* to 0.1 of the
unit (OCPP 1.6 allows one decimal): a sent limit never exceeds the setpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

TX_STACK_LEVEL = 1
DEFAULT_STACK_LEVEL = 0


class ProfileKind(StrEnum):
    """The profile purposes we use, in fallback order."""

    TX = "TxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    STATION_MAX = "StationMax"


FALLBACK_ORDER = (ProfileKind.TX, ProfileKind.TX_DEFAULT, ProfileKind.STATION_MAX)


@dataclass(frozen=True, slots=True)
class Electrical:
    """What converts power to the station's unit.

    Attributes
    ----------
    rate_unit : {"A", "W"}
        The unit of the station's charging profiles.
    voltage_v : float
        Phase voltage [V].
    phases : int
        Phases the charger draws on (1 or 3).
    safe_power_w : float
        The charger's fail-safe power [W].
    """

    rate_unit: Literal["A", "W"]
    voltage_v: float
    phases: int
    safe_power_w: float

    def limit(self, power_w: float) -> float:
        """A power [W] as a profile limit in the station's unit, rounded down to 0.1."""
        value = power_w if self.rate_unit == "W" else power_w / (self.voltage_v * self.phases)
        return max(0.0, math.floor(round(value * 10.0, 6)) / 10.0)

    def power_w(self, limit: float) -> float:
        """A profile limit in the station's unit as power [W]."""
        return limit if self.rate_unit == "W" else limit * self.voltage_v * self.phases


@dataclass(frozen=True, slots=True)
class Target:
    """Where a profile goes: the version and the connector/EVSE."""

    version: Literal["2.0.1", "1.6"]
    evse_id: int
    connector_id: int

    @property
    def outlet(self) -> int:
        """The id the version addresses: the EVSE (2.0.1) or the connector (1.6)."""
        return self.evse_id if self.version == "2.0.1" else self.connector_id


def profile_id(kind: ProfileKind, target: Target) -> int:
    """The fixed id of a profile kind on this outlet (a new profile replaces the old)."""
    if kind is ProfileKind.TX:
        return 100 + target.outlet
    if kind is ProfileKind.TX_DEFAULT:
        return 200 + target.outlet
    return 300


def schedule_periods(
    first_w: float,
    periods: Sequence[tuple[datetime, float]],
    start: datetime,
    valid_until: datetime,
    tail_w: float | None,
    electrical: Electrical,
) -> list[dict[str, Any]]:
    """Schedule periods (offsets from `start` [s]) in the station's unit.

    Parameters
    ----------
    first_w : float
        Limit from `start` [W].
    periods : sequence of (datetime, float)
        Later steps ``(start, power [W])``; steps before `start` or from `valid_until` on are
        dropped, steps at the same second keep the last.
    start, valid_until : datetime
        Aware UTC.
    tail_w : float or None
        Limit from `valid_until` on [W] (None: no tail, the profile's validTo ends it).
    electrical : Electrical
        Unit conversion.
    """
    steps: dict[int, float] = {0: first_w}
    for at, power in periods:
        offset = math.ceil((at - start).total_seconds())
        if offset > 0 and at < valid_until:
            steps[offset] = power
    if tail_w is not None:
        steps[max(1, math.ceil((valid_until - start).total_seconds()))] = tail_w
    return [
        {"start_period": offset, "limit": electrical.limit(power)}
        for offset, power in sorted(steps.items())
    ]


def charging_profile(
    kind: ProfileKind,
    target: Target,
    electrical: Electrical,
    *,
    setpoint_w: float,
    periods: Sequence[tuple[datetime, float]],
    start: datetime,
    valid_until: datetime,
    transaction_id: str | None,
    carries_setpoint: bool,
) -> dict[str, Any]:
    """The keyword arguments of the version's ``call.SetChargingProfile`` (snake_case).

    Parameters
    ----------
    kind : ProfileKind
        Purpose of the profile.
    target : Target
        Version and outlet.
    electrical : Electrical
        Unit conversion and the safe power.
    setpoint_w : float
        The setpoint [W] (already within every limit).
    periods : sequence of (datetime, float)
        The plan's later steps [W].
    start, valid_until : datetime
        Aware UTC: when the profile starts, when the setpoint expires.
    transaction_id : str or None
        The running transaction (TxProfile only).
    carries_setpoint : bool
        For TxDefault and StationMax: the setpoint itself (the TxProfile was rejected) rather
        than the fail-safe min(setpoint, safe power).
    """
    safe_w = electrical.safe_power_w
    if kind is ProfileKind.TX:
        schedule = schedule_periods(setpoint_w, periods, start, valid_until, None, electrical)
    elif carries_setpoint:
        schedule = schedule_periods(setpoint_w, periods, start, valid_until, safe_w, electrical)
    else:
        schedule = schedule_periods(
            min(setpoint_w, safe_w), (), start, valid_until, safe_w, electrical
        )
    body: dict[str, Any] = {
        "stack_level": TX_STACK_LEVEL if kind is ProfileKind.TX else DEFAULT_STACK_LEVEL,
        "charging_profile_purpose": purpose(kind, target),
        "charging_profile_kind": "Absolute",
    }
    if kind is ProfileKind.TX:
        body["transaction_id"] = _transaction_id(transaction_id, target)
        body["valid_to"] = timestamp(valid_until)
    charging_schedule = {
        "start_schedule": timestamp(start),
        "charging_rate_unit": electrical.rate_unit,
        "charging_schedule_period": schedule,
    }
    outlet = 0 if kind is ProfileKind.STATION_MAX else target.outlet
    if target.version == "2.0.1":
        body["id"] = profile_id(kind, target)
        body["charging_schedule"] = [{"id": profile_id(kind, target), **charging_schedule}]
        return {"evse_id": outlet, "charging_profile": body}
    body["charging_profile_id"] = profile_id(kind, target)
    body["charging_schedule"] = charging_schedule
    return {"connector_id": outlet, "cs_charging_profiles": body}


def expected_limit_w(
    kind: ProfileKind, electrical: Electrical, setpoint_w: float, *, in_transaction: bool
) -> float:
    """What the station's composite schedule should show now, after sending `kind` [W]."""
    if kind is ProfileKind.TX_DEFAULT and not in_transaction:
        # Only the fail-safe went out (no transaction to bind a TxProfile to).
        return electrical.power_w(electrical.limit(min(setpoint_w, electrical.safe_power_w)))
    return electrical.power_w(electrical.limit(setpoint_w))


def composite_limit(result: Mapping[str, Any], version: str) -> float | None:
    """The limit in force now from a GetCompositeSchedule result (snake_case), or None."""
    schedule = result.get("schedule" if version == "2.0.1" else "charging_schedule")
    if not isinstance(schedule, Mapping):
        return None
    periods = schedule.get("charging_schedule_period")
    if not isinstance(periods, Sequence) or not periods:
        return None
    current = [
        p
        for p in periods
        if isinstance(p, Mapping)
        and isinstance(p.get("start_period"), int)
        and p["start_period"] <= 0
    ]
    if not current:
        return None
    limit = current[-1].get("limit")
    # The ocpp package hands 1.6 decimals over as Decimal.
    if isinstance(limit, bool) or not isinstance(limit, int | float | Decimal):
        return None
    value = float(limit)
    return value if math.isfinite(value) else None


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with a `Z`, whole seconds (what every station parses)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def purpose(kind: ProfileKind, target: Target) -> str:
    """The OCPP name of the purpose for the target's version."""
    if kind is ProfileKind.STATION_MAX:
        return "ChargingStationMaxProfile" if target.version == "2.0.1" else "ChargePointMaxProfile"
    return kind.value


def _transaction_id(transaction_id: str | None, target: Target) -> str | int:
    if transaction_id is None:
        raise ValueError("a TxProfile needs the running transaction")
    if target.version == "1.6":
        return int(transaction_id)
    return transaction_id
