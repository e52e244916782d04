"""Dispatch: the safety layer between a plan and the chargers, and the setpoint payloads."""

from gridcoord.dispatch.inputs import (
    ZoneState,
    charger_limits,
    stale_chargers,
    stale_zones,
    zone_state,
)
from gridcoord.dispatch.limits import (
    RULE_MINIMA_SCALED,
    RULE_ZONE_CUT,
    ChargerLimit,
    Dispatch,
    Limiter,
    LimitsError,
    MinimumRule,
    ZoneLimit,
    ZoneOverload,
    ZoneShortfall,
    apply_limits,
    fair_share_kw,
    zone_headroom_kw,
)
from gridcoord.dispatch.plan import current_slot_kw
from gridcoord.dispatch.setpoints import (
    sending_order,
    setpoint_payload,
    setpoint_topic,
    valid_until,
)

__all__ = [
    "RULE_MINIMA_SCALED",
    "RULE_ZONE_CUT",
    "ChargerLimit",
    "Dispatch",
    "Limiter",
    "LimitsError",
    "MinimumRule",
    "ZoneLimit",
    "ZoneOverload",
    "ZoneShortfall",
    "ZoneState",
    "apply_limits",
    "charger_limits",
    "current_slot_kw",
    "fair_share_kw",
    "sending_order",
    "setpoint_payload",
    "setpoint_topic",
    "stale_chargers",
    "stale_zones",
    "valid_until",
    "zone_headroom_kw",
    "zone_state",
]
