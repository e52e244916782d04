"""Who may do what on the broker (DESIGN 3.6a), and Mosquitto's `acl_file` text for it.

- a device (username = its asset id) publishes only `<prefix>/telemetry/<id>` (or exactly its
  mapped vendor topic instead) and `<prefix>/status/<id>`, and reads only `<prefix>/setpoint/<id>`;
- gridcoord's own user reads telemetry, status and every mapped vendor topic, and writes
  setpoints, the plan and rejections: nobody else can command a charger;
- `operator` reads everything (also `$SYS`) and writes nothing;
- `forecaster` (an external forecast service) writes only `<prefix>/forecast/+`;
- a gateway (username = the `gateway:` id its assets name) writes only
  `<prefix>/gateway/<its id>`; which assets it may report is gridcoord's check, not the broker's.

Assets polled over Modbus get no broker user: they never speak MQTT. Mosquitto denies what no
line allows, so the rules are the whole truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gridcoord.config import Config

SERVICE_USER = "gridcoord"
OPERATOR_USER = "operator"
FORECASTER_USER = "forecaster"

Access = Literal["read", "write", "readwrite"]


class AccessError(ValueError):
    """The asset list cannot be expressed as broker users (a clash or an unsafe topic)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ACL line: `access` on a topic (filter)."""

    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """A broker account: its name, what it may do, and whether it is a field device."""

    name: str
    rules: tuple[Rule, ...]
    device: bool = False


def service_rules(prefix: str, vendor_topics: Iterable[str] = ()) -> tuple[Rule, ...]:
    """What gridcoord itself may do under topic prefix `prefix`."""
    return (
        Rule("read", f"{prefix}/telemetry/+"),
        Rule("read", f"{prefix}/status/+"),
        Rule("read", f"{prefix}/forecast/+"),
        Rule("read", f"{prefix}/gateway/+"),
        *(Rule("read", topic) for topic in sorted(vendor_topics)),
        Rule("write", f"{prefix}/setpoint/+"),
        Rule("write", f"{prefix}/plan/#"),
        Rule("write", f"{prefix}/rejected/+"),
    )


def operator_rules() -> tuple[Rule, ...]:
    """Read everything, write nothing."""
    return (Rule("read", "#"), Rule("read", "$SYS/#"))


def forecaster_rules(prefix: str) -> tuple[Rule, ...]:
    """An external forecast service: its forecasts, nothing else."""
    return (Rule("write", f"{prefix}/forecast/+"),)


def device_rules(prefix: str, asset_id: str, vendor_topic: str | None) -> tuple[Rule, ...]:
    """What the device `asset_id` may do: its own telemetry and status, its own setpoints."""
    telemetry = vendor_topic if vendor_topic is not None else f"{prefix}/telemetry/{asset_id}"
    return (
        Rule("write", telemetry),
        Rule("write", f"{prefix}/status/{asset_id}"),
        Rule("read", f"{prefix}/setpoint/{asset_id}"),
    )


def broker_users(config: Config, *, service_user: str = SERVICE_USER) -> list[BrokerUser]:
    """Every broker account the configuration implies: gridcoord, operator, each MQTT device.

    Raises
    ------
    AccessError
        An asset id that is also a service account, or a vendor topic Mosquitto's ACL file
        cannot hold safely (whitespace, control characters, a `$` topic).
    """
    prefix = config.mqtt.topic_prefix
    errors: list[str] = []
    devices: list[BrokerUser] = []
    vendor: list[str] = []
    reserved = (OPERATOR_USER, FORECASTER_USER)
    if service_user in reserved:
        errors.append(f"mqtt.username: {service_user!r} is another service account")
    for i, asset in enumerate(config.assets):
        if asset.modbus is not None:
            continue
        if asset.id in (service_user, *reserved):
            errors.append(f"assets[{i}].id: {asset.id!r} is a service account name")
        topic = asset.mqtt.topic if asset.mqtt is not None else None
        if topic is not None:
            problem = _unsafe_topic(topic, prefix)
            if problem:
                errors.append(f"assets[{i}].mqtt.topic: {problem}")
            vendor.append(topic)
        devices.append(BrokerUser(asset.id, device_rules(prefix, asset.id, topic), device=True))
    gateways = sorted({a.gateway for a in config.assets if a.gateway is not None})
    for gateway in gateways:
        if gateway in (service_user, *reserved) or any(d.name == gateway for d in devices):
            errors.append(f"gateway {gateway!r} is also an asset id or a service account name")
        rules = (Rule("write", f"{prefix}/gateway/{gateway}"),)
        devices.append(BrokerUser(gateway, rules, device=True))
    if errors:
        raise AccessError("; ".join(errors))
    return [
        BrokerUser(service_user, service_rules(prefix, vendor)),
        BrokerUser(OPERATOR_USER, operator_rules()),
        BrokerUser(FORECASTER_USER, forecaster_rules(prefix)),
        *devices,
    ]


def _unsafe_topic(topic: str, prefix: str) -> str | None:
    if any(c.isspace() or ord(c) < 32 for c in topic):
        return "must not contain whitespace or control characters (broker ACL)"
    if topic.startswith("$"):
        return "must not start with '$' (reserved by the broker)"
    for contract in ("setpoint", "plan", "rejected", "telemetry", "status", "forecast", "gateway"):
        if topic.startswith(f"{prefix}/{contract}/"):
            return f"must not lie under {prefix}/{contract}/ (a contract topic)"
    return None


def acl_text(users: Sequence[BrokerUser]) -> str:
    """Mosquitto's `acl_file`: one `user` block per account, no `pattern` lines."""
    blocks = ["# Generated by `gridcoord broker-config`; what no line allows is denied.\n"]
    for user in users:
        lines = [f"user {user.name}"] + [f"topic {r.access} {r.topic}" for r in user.rules]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
