"""Setpoints over Modbus TCP: the poller's chargers as a `SetpointSink`.

The poller owns each connection, so a setpoint is handed to it: clamped to the charger's
current range, written, read back (a mismatch is an alarm) and re-written well inside the
charger's fail-safe timeout until ``valid_until``.
"""

from __future__ import annotations

from adapters.modbus.charger import SetpointResult
from adapters.modbus.poller import ModbusPoller
from adapters.sink import Delivery, DeliveryState, Setpoint


class ModbusSetpointSink:
    """Sends setpoints to the Modbus chargers of one poller.

    Parameters
    ----------
    poller : ModbusPoller
        The poller that owns the chargers' connections; `send` must run on the event loop
        that runs `ModbusPoller.run`.
    """

    def __init__(self, poller: ModbusPoller) -> None:
        self._poller = poller
        self._charger_ids = frozenset(poller.charger_ids)

    @property
    def charger_ids(self) -> frozenset[str]:
        """The Modbus chargers of the poller."""
        return self._charger_ids

    async def send(self, setpoint: Setpoint) -> Delivery:
        """Write one setpoint and read it back; never raises for a device problem."""
        charger_id = setpoint.charger_id
        if charger_id not in self._charger_ids:
            return Delivery(charger_id, "failed", "not a charger of this Modbus poller")
        try:
            result = await self._poller.set_charger_power(
                charger_id, setpoint.max_power_w, valid_until=setpoint.valid_until
            )
        except Exception as exc:  # contained: one charger must not stop the others' dispatch
            return Delivery(charger_id, "failed", f"setpoint write raised {type(exc).__name__}")
        return delivery_of(result)


def delivery_of(result: SetpointResult) -> Delivery:
    """What a poller's `SetpointResult` means as a `Delivery`.

    Parameters
    ----------
    result : SetpointResult
        The outcome of one write and read-back.

    Returns
    -------
    Delivery
        ``read_back`` when it reads back as written, ``mismatch`` when it reads back
        differently, ``failed`` when the write or the read failed.
    """
    if result.ok:
        return Delivery(result.asset_id, "read_back", read_back_w=result.read_back_w)
    state: DeliveryState = "mismatch" if result.read_back_a is not None else "failed"
    return Delivery(result.asset_id, state, result.alarm or "", read_back_w=result.read_back_w)
