"""Setpoints over MQTT (DESIGN 3.2): retained QoS 1 on ``<prefix>/setpoint/<charger_id>``.

The message a charger reads is a flat JSON object ``{"ts", "max_power_w", "valid_until",
"schedule_id"}`` with RFC 3339 UTC times. Retained, so a charger that (re)connects gets its
current limit at once; QoS 1, so the broker delivers it at least once. The broker's PUBACK
says nothing about the charger, hence a delivery over MQTT is only ever ``sent``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from adapters.sink import Delivery, Setpoint

Publish = Callable[[str, bytes, int, bool], None]
"""Queue one MQTT message: ``(topic, payload, qos, retain)``; may raise when it cannot."""


def setpoint_topic(charger_id: str, prefix: str = "gridcoord") -> str:
    """The retained QoS 1 topic a charger's setpoint is published to."""
    return f"{prefix}/setpoint/{charger_id}"


def setpoint_message(setpoint: Setpoint) -> dict[str, Any]:
    """The DESIGN 3.2 setpoint JSON object for one setpoint (see `setpoint_json`)."""
    return setpoint_json(
        setpoint.max_power_w,
        issued_at=setpoint.issued_at,
        valid_until=setpoint.valid_until,
        schedule_id=setpoint.schedule_id,
    )


def setpoint_json(
    max_power_w: float, *, issued_at: datetime, valid_until: datetime, schedule_id: str
) -> dict[str, Any]:
    """The DESIGN 3.2 setpoint JSON object.

    Parameters
    ----------
    max_power_w : float
        The limit after the safety layer [W]; finite and >= 0.
    issued_at : datetime
        Send time (the ``ts`` field), aware.
    valid_until : datetime
        Expiry, aware and after ``issued_at``.
    schedule_id : str
        The plan the value comes from (a fallback plan has its own id).

    Returns
    -------
    dict
        ``{"ts", "max_power_w", "valid_until", "schedule_id"}`` with RFC 3339 UTC times.

    Raises
    ------
    ValueError
        For a value the safety layer cannot produce (a bug upstream; never sent).
    """
    if not (math.isfinite(max_power_w) and max_power_w >= 0):
        raise ValueError(f"max_power_w must be finite and >= 0, got {max_power_w}")
    if _utc(valid_until) <= _utc(issued_at):
        raise ValueError("valid_until must be after ts")
    return {
        "ts": _rfc3339(issued_at),
        "max_power_w": max_power_w,
        "valid_until": _rfc3339(valid_until),
        "schedule_id": schedule_id,
    }


class MqttSetpointSink:
    """Publishes setpoints of the chargers that read them over MQTT.

    Parameters
    ----------
    publish : Publish
        Queues a message on the broker connection (e.g. `MqttSession.publish`).
    charger_ids : iterable of str
        The chargers this sink serves.
    prefix : str
        First topic level (``mqtt.topic_prefix``).
    """

    def __init__(self, publish: Publish, charger_ids: Iterable[str], *, prefix: str) -> None:
        self._publish = publish
        self._charger_ids = frozenset(charger_ids)
        self._prefix = prefix

    @property
    def charger_ids(self) -> frozenset[str]:
        """The chargers this sink reaches."""
        return self._charger_ids

    async def send(self, setpoint: Setpoint) -> Delivery:
        """Publish one setpoint retained with QoS 1; ``failed`` when it cannot be queued."""
        charger_id = setpoint.charger_id
        if charger_id not in self._charger_ids:
            return Delivery(charger_id, "failed", "not a charger of this MQTT sink")
        payload = json.dumps(setpoint_message(setpoint), allow_nan=False).encode()
        try:
            self._publish(setpoint_topic(charger_id, self._prefix), payload, 1, True)
        except Exception as exc:  # the transport's problem, reported, not raised (the protocol)
            return Delivery(charger_id, "failed", f"publish failed: {type(exc).__name__}")
        return Delivery(charger_id, "sent")


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} refused: give a UTC offset")
    return instant.astimezone(UTC)


def _rfc3339(instant: datetime) -> str:
    # The same text as gridcoord.timegrid.to_rfc3339: UTC with a Z suffix.
    return _utc(instant).isoformat().removesuffix("+00:00") + "Z"
