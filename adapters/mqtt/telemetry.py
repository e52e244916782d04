"""Decode telemetry messages (DESIGN 3.2) into validated readings, or say why not.

Three topics carry telemetry: the contract's `<prefix>/telemetry/<asset_id>` with a flat JSON
object of contract field names; devices with their own topic and payload, mapped in the config
by dotted field paths and a scale (no code per device); and `<prefix>/gateway/<gateway_id>`,
where a data concentrator reports the assets configured with that gateway. A device topic may
carry a JSON array of its readings instead of one; a gateway sends `{"readings": [...]}` whose
elements name their `asset`. A batch is judged element by element: a bad element is rejected
with its index and the others are kept. Pure: no network, the clock is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    timestamp_window,
)
from adapters.mqtt.json_payload import MAX_DEPTH, decode_json
from adapters.mqtt.settings import Mqtt, MqttSource
from adapters.mqtt.typed_payload import NOT_TYPED, TypedDecoder

UNKNOWN_ASSET = "_unknown"


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

    @property
    def gateway(self) -> str | None:
        """The gateway that may also report this asset, if any."""
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

    def __init__(self, config: TelemetrySettings, *, typed: bool = True) -> None:
        self._prefix = f"{config.mqtt.topic_prefix}/telemetry/"
        self._gateway_prefix = f"{config.mqtt.topic_prefix}/gateway/"
        self._max_bytes = config.mqtt.max_payload_bytes
        self._max_batch_bytes = config.mqtt.max_batch_bytes
        self._max_batch_readings = config.mqtt.max_batch_readings
        self._contract: dict[str, MqttAsset] = {}
        self._mapped: dict[str, MqttAsset] = {}
        self._gateways: dict[str, dict[str, MqttAsset]] = {}
        # Contract payloads are tried on a typed struct first (validated while parsed); what
        # it does not take is judged by the general path below. `typed=False`: general only.
        self._typed: dict[str, TypedDecoder] | None = {} if typed else None
        for asset in config.assets:
            if asset.modbus is not None:
                continue
            if asset.mqtt is not None:
                self._mapped[asset.mqtt.topic] = asset
            else:
                self._contract[asset.id] = asset
                if asset.gateway is not None:
                    self._gateways.setdefault(asset.gateway, {})[asset.id] = asset

    @property
    def subscriptions(self) -> list[str]:
        """Topic filters that cover every MQTT-read asset (gateways only if configured)."""
        gateways = [self._gateway_prefix + "+"] if self._gateways else []
        return [self._prefix + "+", *gateways, *sorted(self._mapped)]

    def gateway_ids(self) -> list[str]:
        """Gateways named by at least one asset."""
        return sorted(self._gateways)

    def asset_for_topic(self, topic: str) -> tuple[str, MqttAsset | None]:
        """The asset id a topic names (even if unknown) and the configured asset, if any."""
        mapped = self._mapped.get(topic)
        if mapped is not None:
            return mapped.id, mapped
        if topic.startswith(self._gateway_prefix):
            return UNKNOWN_ASSET, None  # a gateway's elements name their assets themselves
        if topic.startswith(self._prefix):
            asset_id = topic[len(self._prefix) :]
            asset = self._contract.get(asset_id)
            # An unknown id is echoed in the rejection topic only if it is a plausible id.
            if asset is None and not _plausible_id(asset_id):
                asset_id = UNKNOWN_ASSET
            return asset_id, asset
        return UNKNOWN_ASSET, None

    def decode(self, topic: str, payload: bytes, *, now: datetime) -> Reading:
        """Validate a message that must carry exactly one reading (a flat object).

        Raises
        ------
        Rejected
            with the reason code; a batch is `not_object` here.
        """
        decoded = self.decode_message(topic, payload, now=now)
        if decoded.rejected:
            raise decoded.rejected[0].error
        if len(decoded.readings) != 1:
            raise Rejected(Reason.NOT_OBJECT, "payload must be one JSON object")
        return decoded.readings[0]

    def decode_message(self, topic: str, payload: bytes, *, now: datetime) -> Decoded:
        """Validate one message: a single reading, a device's batch or a gateway's batch.

        Parameters
        ----------
        topic
            the MQTT topic it arrived on.
        payload
            raw bytes.
        now
            receive time, aware UTC; used when a reading carries no `ts`.

        Returns
        -------
        Decoded
            the readings to store and, for a batch, the elements rejected (with their index).

        Raises
        ------
        Rejected
            the message as a whole cannot be used (the caller counts and reports it).
        """
        if topic.startswith(self._gateway_prefix):
            return self._decode_gateway(topic[len(self._gateway_prefix) :], payload, now)
        _, asset = self.asset_for_topic(topic)
        if asset is None:
            raise Rejected(Reason.UNKNOWN_ASSET, "no configured asset publishes on this topic")
        batch = payload[:1] == b"[" or payload.lstrip()[:1] == b"["
        limit = self._max_batch_bytes if batch else self._max_bytes
        if len(payload) > limit:
            raise Rejected(Reason.OVERSIZED, f"payload above {limit} bytes")
        window = timestamp_window(now)
        if self._typed is not None and asset.mqtt is None:
            typed = self._typed.get(asset.id)
            if typed is None:
                typed = self._typed[asset.id] = TypedDecoder(asset)
            try:
                if batch:
                    limit = self._max_batch_readings
                    return Decoded(typed.decode_many(payload, now, window, limit), [])
                return Decoded(typed.decode_one(payload, now, window), [])
            except NOT_TYPED:
                pass  # judged below, with the exact reason of each element
        document = decode_json(payload)
        if isinstance(document, dict):
            self._check_depth(payload, document)
            return Decoded([self._element(asset, document, now, window)], [])
        if not isinstance(document, list):
            raise Rejected(Reason.NOT_OBJECT, "payload must be a JSON object or an array of them")
        self._check_batch(document)
        deep = _may_nest(payload, document, outer=1)
        readings: list[Reading] = []
        decoded = Decoded(readings, [])
        element_of = self._element
        for index, element in enumerate(document):
            try:
                if type(element) is not dict:
                    raise Rejected(Reason.NOT_OBJECT, "must be a JSON object")
                named = element.get("asset")
                if named is not None and named != asset.id:
                    raise Rejected(Reason.UNKNOWN_ASSET, "names another asset than its topic")
                if deep:
                    _check_element_depth(element)
                readings.append(element_of(asset, element, now, window))
            except Rejected as exc:
                decoded.rejected.append(ElementRejected.of(index, asset.id, exc))
        return decoded

    def _decode_gateway(self, gateway_id: str, payload: bytes, now: datetime) -> Decoded:
        assets = self._gateways.get(gateway_id)
        if assets is None:
            raise Rejected(Reason.UNKNOWN_ASSET, "no configured asset reports through this gateway")
        if len(payload) > self._max_batch_bytes:
            raise Rejected(Reason.OVERSIZED, f"payload above {self._max_batch_bytes} bytes")
        document = decode_json(payload)
        elements = document.get("readings") if isinstance(document, dict) else None
        if not isinstance(elements, list):
            raise Rejected(Reason.NOT_OBJECT, "gateway payload must be an object with `readings`")
        self._check_batch(elements)
        window = timestamp_window(now)
        deep = _may_nest(payload, elements, outer=2)
        readings: list[Reading] = []
        decoded = Decoded(readings, [])
        for index, element in enumerate(elements):
            asset_id = UNKNOWN_ASSET
            try:
                if type(element) is not dict:
                    raise Rejected(Reason.NOT_OBJECT, "must be a JSON object")
                named = element.get("asset")
                if not isinstance(named, str):
                    raise Rejected(Reason.UNKNOWN_ASSET, "`asset` must name the asset")
                asset = assets.get(named)
                if asset is None:
                    if _plausible_id(named):
                        asset_id = named
                    raise Rejected(Reason.UNKNOWN_ASSET, "asset not configured for this gateway")
                asset_id = asset.id
                if deep:
                    _check_element_depth(element)
                readings.append(self._element(asset, element, now, window))
            except Rejected as exc:
                decoded.rejected.append(ElementRejected.of(index, asset_id, exc))
        return decoded

    def _check_batch(self, elements: list[object]) -> None:
        if not elements:
            raise Rejected(Reason.NO_VALUES, "an empty batch")
        if len(elements) > self._max_batch_readings:
            limit = self._max_batch_readings
            raise Rejected(Reason.OVERSIZED, f"more than {limit} readings in one message")

    @staticmethod
    def _check_depth(payload: bytes, document: dict[str, object]) -> None:
        # Cheap first: fewer brackets than the limit cannot nest deeper than it.
        if payload.count(b"{") + payload.count(b"[") > MAX_DEPTH and _depth(document) > MAX_DEPTH:
            raise Rejected(Reason.OVERSIZED, f"nested deeper than {MAX_DEPTH} levels")

    @staticmethod
    def _element(
        asset: MqttAsset,
        document: dict[str, object],
        now: datetime,
        window: tuple[datetime, datetime],
    ) -> Reading:
        if asset.mqtt is not None:
            values, raw_ts = _extract_mapped(asset.mqtt, document)
        else:
            values, raw_ts = document, document.get("ts")
        ts = now if raw_ts is None else parse_timestamp(raw_ts, now=now, window=window)
        return build_reading(asset, values, ts=ts, now=now)


@dataclass(frozen=True, slots=True)
class ElementRejected:
    """One element of a batch that was not stored; the others were."""

    index: int
    asset_id: str  # the asset it named, if plausible, else `_unknown` (the rejection topic)
    error: Rejected

    @classmethod
    def of(cls, index: int, asset_id: str, exc: Rejected) -> ElementRejected:
        """The element's rejection, its index put in front of the detail."""
        return cls(index, asset_id, Rejected(exc.reason, f"element {index}: {exc.detail}"))


@dataclass(slots=True)
class Decoded:
    """What one message yields: readings to store and, for a batch, rejected elements.

    ``readings`` is a list from the general path, `ReadingRows` from the typed one (readings
    built only when asked for; the stores take the rows as they are).
    """

    readings: Sequence[Reading]
    rejected: list[ElementRejected]


# A tuple, not `dict | list`: that expression builds a union object on every call (hot path).
_CONTAINERS = (dict, list)


def _may_nest(payload: bytes, elements: list[object], *, outer: int) -> bool:
    """False when no element of the batch can hold a container at all, by counting brackets.

    Every object or array has its opening bracket in the raw bytes (brackets inside strings
    only add to the count), so the batch's ``outer`` containers and one per element object
    leave the rest for anything nested. Fewer than one element could need to reach the depth
    bound means none can exceed it: the per-element walk is skipped for flat batches.
    """
    brackets = payload.count(b"{") + payload.count(b"[")
    objects = sum(type(element) is dict for element in elements)
    return brackets - outer - objects >= MAX_DEPTH - 2


def _check_element_depth(element: dict[str, object]) -> None:
    # An element sits one or two levels down in its message; a flat one cannot be too deep.
    for value in element.values():
        if isinstance(value, _CONTAINERS):
            if _depth(element) > MAX_DEPTH - 2:
                raise Rejected(Reason.OVERSIZED, f"nested deeper than {MAX_DEPTH} levels")
            return


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
