"""Which adapter reaches which charger: one `SetpointSink` per protocol, from the config.

Each charger's configured source decides: a ``modbus:`` source → the Modbus poller's sink;
an ``ocpp:`` station → the OCPP central system (charging profiles); otherwise (the contract
topic, or an ``mqtt:`` mapping) → the MQTT sink, retained QoS 1 on ``<prefix>/setpoint/<id>``.
A new protocol adds its sink here, next to its config source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from adapters.contract.reading import AssetKind
from adapters.modbus.poller import ModbusPoller
from adapters.modbus.setpoints import ModbusSetpointSink
from adapters.mqtt.setpoints import MqttSetpointSink, Publish
from adapters.ocpp.server import OcppServer
from adapters.sink import SetpointSink
from gridcoord.config import Config


def setpoint_sinks(
    config: Config,
    *,
    publish: Publish | None,
    modbus: ModbusPoller | None,
    ocpp: OcppServer | None = None,
) -> list[SetpointSink]:
    """The sinks that reach the configured chargers.

    Parameters
    ----------
    config : Config
        The deployment; its chargers' sources choose the sink.
    publish : Publish or None
        The broker connection's publish; None when there is no broker (MQTT chargers are then
        unreachable, which the planning loop reports).
    modbus : ModbusPoller or None
        The poller owning the Modbus chargers, if any are configured.
    ocpp : OcppServer or None
        The central system of the OCPP chargers, if any are configured.

    Returns
    -------
    list of SetpointSink
        At most one per protocol, each serving at least one charger.
    """
    chargers = [a for a in config.assets if a.kind is AssetKind.CHARGER]
    over_mqtt = [a.id for a in chargers if a.modbus is None and a.ocpp is None]
    sinks: list[SetpointSink] = []
    if modbus is not None and modbus.charger_ids:
        sinks.append(ModbusSetpointSink(modbus))
    if ocpp is not None and ocpp.charger_ids:
        sinks.append(ocpp)
    if publish is not None and over_mqtt:
        sinks.append(MqttSetpointSink(publish, over_mqtt, prefix=config.mqtt.topic_prefix))
    return sinks


def routes(sinks: Sequence[SetpointSink], charger_ids: Iterable[str]) -> dict[str, SetpointSink]:
    """Charger id → the one sink that serves it (chargers no sink serves are left out).

    Raises
    ------
    ValueError
        When two sinks claim one charger (only one protocol may command a charger).
    """
    wanted = set(charger_ids)
    found: dict[str, SetpointSink] = {}
    for sink in sinks:
        for charger_id in sink.charger_ids & wanted:
            other = found.get(charger_id)
            if other is not None:
                raise ValueError(
                    f"charger {charger_id!r} is served by both {type(other).__name__} "
                    f"and {type(sink).__name__}"
                )
            found[charger_id] = sink
    return found
