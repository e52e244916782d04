"""Setpoint messages (DESIGN 3.2): expiry, the MQTT payload, and a safe order of sending.

The wire format itself is the MQTT adapter's (`adapters.mqtt.setpoints`); this module gives
it in kW for the planner and the simulated city.

A setpoint is refreshed every minute and expires at ``valid_until``, after which the charger
falls back to its own fail-safe limit. The validity spans a few refresh intervals so that one
late or lost refresh does not make a whole fleet drop to its fail-safe power at once, yet a dead
dispatcher releases the chargers within minutes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from adapters.mqtt.setpoints import setpoint_json
from adapters.mqtt.setpoints import setpoint_topic as setpoint_topic
from gridcoord.timegrid import as_utc

DEFAULT_REFRESH_S = 60.0
DEFAULT_MISSED_REFRESHES = 2


def valid_until(
    now: datetime,
    refresh_s: float = DEFAULT_REFRESH_S,
    missed_refreshes: int = DEFAULT_MISSED_REFRESHES,
) -> datetime:
    """When a setpoint sent at ``now`` expires [UTC].

    Parameters
    ----------
    now
        the instant the setpoint is sent, aware.
    refresh_s
        interval between refreshes of the same setpoint [s].
    missed_refreshes
        refreshes that may be lost before the charger falls back.

    Returns
    -------
    datetime
        ``now + (missed_refreshes + 1) * refresh_s``, rounded up to a whole second.
    """
    if not (math.isfinite(refresh_s) and refresh_s > 0):
        raise ValueError(f"refresh_s must be a positive number of seconds, got {refresh_s}")
    if missed_refreshes < 0:
        raise ValueError(f"missed_refreshes must be >= 0, got {missed_refreshes}")
    end = as_utc(now) + timedelta(seconds=(missed_refreshes + 1) * refresh_s)
    return end if end.microsecond == 0 else end.replace(microsecond=0) + timedelta(seconds=1)


def setpoint_payload(
    max_power_kw: float, *, now: datetime, until: datetime, schedule_id: str
) -> dict[str, Any]:
    """The DESIGN 3.2 setpoint JSON object for a limit in kW (see `setpoint_json`).

    Parameters
    ----------
    max_power_kw
        the limit after the safety layer [kW]; must be finite and >= 0.
    now
        send time (``ts``), aware.
    until
        expiry (``valid_until``), aware and after ``now``.
    schedule_id
        the plan the value comes from (a fallback plan has its own id).

    Returns
    -------
    dict[str, Any]
        ``{"ts", "max_power_w", "valid_until", "schedule_id"}`` with RFC 3339 UTC times.
    """
    if not (math.isfinite(max_power_kw) and max_power_kw >= 0):
        raise ValueError(f"max_power_kw must be finite and >= 0, got {max_power_kw}")
    return setpoint_json(
        max_power_kw * 1000.0, issued_at=now, valid_until=until, schedule_id=schedule_id
    )


def sending_order(previous_kw: Mapping[str, float], new_kw: Mapping[str, float]) -> list[str]:
    """Charger ids in the order their new setpoints should go out: decreases first.

    Setpoints reach chargers one by one; lowering before raising keeps every intermediate
    state of a zone at or below the larger of its old and new sums, both of which were within
    its limit. Chargers never sent a setpoint count as raised.
    """

    def change(charger_id: str) -> float:
        before = previous_kw.get(charger_id)
        return math.inf if before is None else new_kw[charger_id] - before

    return sorted(new_kw, key=lambda c: (change(c) > 0, change(c), c))
