"""The one interface every protocol adapter offers for sending charger setpoints (DESIGN 2).

Dispatch decides *what* a charger may draw (after the safety layer of DESIGN 4); a
`SetpointSink` decides *how* it reaches the device: an MQTT message, a Modbus register write
read back, an OCPP charging profile. Dispatch picks the sink from each charger's configured
source, so a new protocol is one adapter package implementing this protocol plus one config
source, and no branch in the planning loop.

Every value handed to a sink has already been clamped; a sink never raises a setpoint, it may
only fail to deliver it (and say so in its `Delivery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

DeliveryState = Literal["sent", "acknowledged", "read_back", "mismatch", "failed"]
"""How far a setpoint got.

``sent``: handed to the transport, no confirmation available (e.g. MQTT QoS 1 publish queued);
``acknowledged``: the device or its protocol confirmed it (OCPP ``Accepted``);
``read_back``: read back from the device and equal to what was written;
``mismatch``: read back and different (an alarm); ``failed``: not delivered (an alarm).
"""


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A power limit for one charger, valid until a time.

    Parameters
    ----------
    charger_id : str
        The charger's pseudonymous asset id.
    max_power_w : float
        The most the charger may draw [W], already inside every charger and zone limit.
    valid_until : datetime
        Aware UTC; after it the charger must fall back to its own fail-safe limit.
    schedule_id : str
        The plan this setpoint comes from (for the audit trail).
    issued_at : datetime
        Aware UTC time dispatch decided it.
    periods : sequence of (datetime, float)
        Optional later steps of the plan, each ``(start, max_power_w)`` with aware UTC starts
        before ``valid_until``, each already clamped. A sink that can hold a schedule (OCPP
        charging profiles) may send them; the others send ``max_power_w`` alone.
    """

    charger_id: str
    max_power_w: float
    valid_until: datetime
    schedule_id: str
    issued_at: datetime
    periods: Sequence[tuple[datetime, float]] = field(default=())


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one setpoint.

    Parameters
    ----------
    charger_id : str
        The charger it was meant for.
    state : DeliveryState
        How far it got.
    detail : str
        A short reason for ``mismatch`` or ``failed`` (no secrets, no device free text).
    read_back_w : float or None
        The limit read back from the device [W], where the protocol can read it.
    """

    charger_id: str
    state: DeliveryState
    detail: str = ""
    read_back_w: float | None = None


@runtime_checkable
class SetpointSink(Protocol):
    """Sends setpoints to the chargers one protocol serves."""

    @property
    def charger_ids(self) -> frozenset[str]:
        """The chargers this sink reaches."""
        ...

    async def send(self, setpoint: Setpoint) -> Delivery:
        """Deliver one setpoint; never raise for a device problem (return ``failed``)."""
        ...
