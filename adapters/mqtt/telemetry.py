"""Decode telemetry messages (DESIGN 3.2) into validated readings, or say why not.

Two shapes arrive: the contract's `<prefix>/telemetry/<asset_id>` with a flat JSON object of
contract field names, and devices with their own topic and payload, mapped in the config by
dotted field paths and a scale (no code per device). Pure: no network, the clock is a parameter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from adapters.contract.asset import ASSET_ID_RE, AssetInfo
from adapters.contract.reading import Reading
from adapters.contract.validation import (
    Reason,
    Rejected,
    as_float,
    build_reading,
    parse_timestamp,
)
from adapters.mqtt.settings import Mqtt, MqttSource

UNKNOWN_ASSET = "_unknown"
# Bounds on what one payload may make us do, beyond its size in bytes.
MAX_DEPTH = 16  # objects and arrays inside each other


class MqttAsset(AssetInfo, Protocol):
    """An asset as the decoder sees it: read over MQTT unless another source is configured."""

    @property
    def mqtt(self) -> MqttSource | None:
        """Own topic and payload mapping; the contract topic when absent."""
        ...

    @property
    def modbus(self) -> object | None:
        """A Modbus source, if the asset is polled instead."""
        ...


class TelemetrySettings(Protocol):
    """The part of the deployment configuration the decoder needs."""

    @property
    def mqtt(self) -> Mqtt:
        """The broker section (topic prefix, payload size limit)."""
        ...

    @property
    def assets(self) -> Sequence[MqttAsset]:
        """Every configured asset."""
        ...


class TelemetryDecoder:
    """Turns (topic, payload) into a `Reading` for the assets of one configuration."""

    def __init__(self, config: TelemetrySettings) -> None:
        self._prefix = f"{config.mqtt.topic_prefix}/telemetry/"
        self._max_bytes = config.mqtt.max_payload_bytes
        self._contract: dict[str, MqttAsset] = {}
        self._mapped: dict[str, MqttAsset] = {}
        for asset in config.assets:
            if asset.modbus is not None:
                continue
            if asset.mqtt is not None:
                self._mapped[asset.mqtt.topic] = asset
            else:
                self._contract[asset.id] = asset

    @property
    def subscriptions(self) -> list[str]:
        """Topic filters that cover every MQTT-read asset."""
        return [self._prefix + "+", *sorted(self._mapped)]

    def asset_for_topic(self, topic: str) -> tuple[str, MqttAsset | None]:
        """The asset id a topic names (even if unknown) and the configured asset, if any."""
        mapped = self._mapped.get(topic)
        if mapped is not None:
            return mapped.id, mapped
        if topic.startswith(self._prefix):
            asset_id = topic[len(self._prefix) :]
            asset = self._contract.get(asset_id)
            # An unknown id is echoed in the rejection topic only if it is a plausible id.
            if asset is None and not _plausible_id(asset_id):
                asset_id = UNKNOWN_ASSET
            return asset_id, asset
        return UNKNOWN_ASSET, None

    def decode(self, topic: str, payload: bytes, *, now: datetime) -> Reading:
        """Validate one message.

        Parameters
        ----------
        topic
            the MQTT topic it arrived on.
        payload
            raw bytes.
        now
            receive time, aware UTC; used when the message carries no `ts`.

        Raises
        ------
        Rejected
            with the reason code; the caller counts and reports it.
        """
        _, asset = self.asset_for_topic(topic)
        if asset is None:
            raise Rejected(Reason.UNKNOWN_ASSET, "no configured asset publishes on this topic")
        if len(payload) > self._max_bytes:
            raise Rejected(Reason.OVERSIZED, f"payload above {self._max_bytes} bytes")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected(Reason.NOT_UTF8, "payload is not UTF-8") from None
        try:
            document = _JSON.decode(text)
        except _NonFiniteConstant:
            raise Rejected(Reason.NOT_FINITE, "NaN and Infinity are not JSON numbers") from None
        except RecursionError:
            raise Rejected(Reason.OVERSIZED, f"nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            if "integer string conversion" in str(exc):
                # Python's own bound (4,300 digits); shorter huge integers fail the range checks.
                raise Rejected(Reason.OUT_OF_RANGE, "an integer with thousands of digits") from None
            raise Rejected(Reason.INVALID_JSON, "payload is not valid JSON") from None
        if not isinstance(document, dict):
            raise Rejected(Reason.NOT_OBJECT, "payload must be a JSON object")
        # Cheap first: fewer brackets than the limit cannot nest deeper than it.
        if text.count("{") + text.count("[") > MAX_DEPTH and _depth(document) > MAX_DEPTH:
            raise Rejected(Reason.OVERSIZED, f"nested deeper than {MAX_DEPTH} levels")
        if asset.mqtt is not None:
            values, raw_ts = _extract_mapped(asset.mqtt, document)
        else:
            values, raw_ts = document, document.get("ts")
        ts = now if raw_ts is None else parse_timestamp(raw_ts, now=now)
        return build_reading(asset, values, ts=ts, now=now)


class _NonFiniteConstant(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFiniteConstant(name)


# Built once: json.loads with a keyword argument builds a new decoder for every message.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _depth(document: object) -> int:
    """Deepest nesting of objects and arrays, without recursion (the document is untrusted)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _plausible_id(text: str) -> bool:
    return ASSET_ID_RE.match(text) is not None


def _extract_mapped(
    source: MqttSource, document: Mapping[str, object]
) -> tuple[dict[str, object], object]:
    values: dict[str, object] = {}
    for name, mapping in source.fields.items():
        found, raw = _lookup(document, mapping.path)
        if not found:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            if name == "connected" and isinstance(raw, bool):
                values[name] = raw
                continue
            raise Rejected(Reason.WRONG_TYPE, f"{mapping.path} must be a number")
        scaled = as_float(mapping.path, raw) * mapping.scale
        if not math.isfinite(scaled):
            # A finite JSON number (JSON has no others) beyond float's range once scaled.
            raise Rejected(Reason.OUT_OF_RANGE, f"{mapping.path} times its scale above 1e308")
        values[name] = scaled
    raw_ts: object = None
    if source.ts_path is not None:
        _, raw_ts = _lookup(document, source.ts_path)
    return values, raw_ts


def _lookup(document: object, path: str) -> tuple[bool, object]:
    """Follow a dotted path through objects and (by integer index) arrays."""
    node = document
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node
