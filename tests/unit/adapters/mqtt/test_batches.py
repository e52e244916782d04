"""Batched telemetry (issue 16): a device's array, a gateway's readings, judged one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.validation import Reason, Rejected
from adapters.mqtt.telemetry import UNKNOWN_ASSET, TelemetryDecoder
from gridcoord.config import Config

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def decoder() -> TelemetryDecoder:
    config = Config(
        mqtt={"max_batch_readings": 50, "max_batch_bytes": 8192},
        zones=[{"id": "lt-01", "capacity_kw": 630}],
        assets=[
            {"id": "meter-a", "kind": "meter", "zone": "lt-01", "rated_kw": 30, "gateway": "gw-1"},
            {"id": "meter-b", "kind": "meter", "zone": "lt-01", "rated_kw": 30, "gateway": "gw-1"},
            {"id": "meter-c", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
        ],
    )
    return TelemetryDecoder(config)


def element(second: int, power: float = 100.0, **extra: Any) -> dict[str, Any]:
    return {"power_w": power, "ts": (NOW - timedelta(seconds=second)).isoformat(), **extra}


def raw(document: object) -> bytes:
    return json.dumps(document).encode()


def test_gateway_topic_is_subscribed_only_when_an_asset_names_a_gateway(
    decoder: TelemetryDecoder,
) -> None:
    assert "gridcoord/gateway/+" in decoder.subscriptions
    plain = TelemetryDecoder(Config(assets=[{"id": "meter-c", "kind": "meter", "rated_kw": 30}]))
    assert plain.subscriptions == ["gridcoord/telemetry/+"]


def test_device_array_keeps_order_and_rejects_the_bad_element_by_index(
    decoder: TelemetryDecoder,
) -> None:
    batch = [element(i, 100.0 + i) for i in range(5)]
    batch[2]["power_w"] = "high"
    decoded = decoder.decode_message("gridcoord/telemetry/meter-c", raw(batch), now=NOW)
    assert [r.fields["power_w"] for r in decoded.readings] == [100.0, 101.0, 103.0, 104.0]
    [bad] = decoded.rejected
    assert (bad.index, bad.asset_id, bad.error.reason) == (2, "meter-c", Reason.WRONG_TYPE)
    assert bad.error.detail.startswith("element 2: ")


def test_gateway_reports_only_its_own_assets(decoder: TelemetryDecoder) -> None:
    readings = [element(1, asset="meter-a"), element(1, asset="meter-c"), element(2, asset="b")]
    decoded = decoder.decode_message("gridcoord/gateway/gw-1", raw({"readings": readings}), now=NOW)
    assert [r.asset_id for r in decoded.readings] == ["meter-a"]
    assert [(e.index, e.asset_id, e.error.reason) for e in decoded.rejected] == [
        (1, "meter-c", Reason.UNKNOWN_ASSET),
        (2, "b", Reason.UNKNOWN_ASSET),
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("gridcoord/telemetry/meter-c", raw([element(i) for i in range(51)]), Reason.OVERSIZED),
        ("gridcoord/telemetry/meter-c", raw([element(1, pad="x" * 9000)]), Reason.OVERSIZED),
        ("gridcoord/telemetry/meter-c", b"[]", Reason.NO_VALUES),
        ("gridcoord/gateway/gw-1", raw({"readings": []}), Reason.NO_VALUES),
        ("gridcoord/gateway/gw-1", raw([element(1, asset="meter-a")]), Reason.NOT_OBJECT),
        ("gridcoord/gateway/gw-1", raw({"readings": {"asset": "meter-a"}}), Reason.NOT_OBJECT),
        ("gridcoord/gateway/gw-9", raw({"readings": [element(1)]}), Reason.UNKNOWN_ASSET),
        ("gridcoord/gateway/gw-1", b'{"readings": [{"power_w": NaN}]}', Reason.NOT_FINITE),
    ],
)
def test_a_batch_beyond_the_bounds_or_of_the_wrong_shape_is_refused_whole(
    decoder: TelemetryDecoder, topic: str, payload: bytes, reason: Reason
) -> None:
    with pytest.raises(Rejected) as caught:
        decoder.decode_message(topic, payload, now=NOW)
    assert caught.value.reason is reason


def test_nested_batches_and_deep_elements_are_rejected_elements(decoder: TelemetryDecoder) -> None:
    deep = {"power_w": 1, "x": json.loads("[" * 15 + "]" * 15)}
    batch = [element(1), [element(2)], {"readings": [element(3)]}, deep]
    decoded = decoder.decode_message("gridcoord/telemetry/meter-c", raw(batch), now=NOW)
    assert len(decoded.readings) == 1
    assert [(e.index, e.error.reason) for e in decoded.rejected] == [
        (1, Reason.NOT_OBJECT),
        (2, Reason.NO_VALUES),
        (3, Reason.OVERSIZED),
    ]
    gateway = {"readings": [{"readings": [element(1, asset="meter-a")]}]}
    decoded = decoder.decode_message("gridcoord/gateway/gw-1", raw(gateway), now=NOW)
    assert decoded.readings == []
    assert [(e.index, e.asset_id) for e in decoded.rejected] == [(0, UNKNOWN_ASSET)]


def test_decode_still_takes_exactly_one_reading(decoder: TelemetryDecoder) -> None:
    assert decoder.decode("gridcoord/telemetry/meter-c", raw(element(1)), now=NOW).asset_id
    with pytest.raises(Rejected):
        decoder.decode("gridcoord/telemetry/meter-c", raw([element(1), element(2)]), now=NOW)


good = st.builds(lambda s, p: element(s, p), st.integers(0, 3600), st.floats(-30_000, 30_000))
bad = st.sampled_from(
    [
        {"power_w": 1e9},
        {"power_w": "x"},
        {"ts": "yesterday", "power_w": 1},
        {},
        [1],
        None,
        {"power_w": 1, "asset": "meter-b"},
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), good, bad), min_size=1, max_size=50))
def test_every_element_is_either_stored_or_rejected_with_its_own_index(
    decoder: TelemetryDecoder, picks: list[tuple[bool, dict[str, Any], object]]
) -> None:
    batch = [g if keep else b for keep, g, b in picks]
    decoded = decoder.decode_message("gridcoord/telemetry/meter-c", raw(batch), now=NOW)
    bad_indices = [i for i, (keep, _, _) in enumerate(picks) if not keep]
    assert [e.index for e in decoded.rejected] == bad_indices
    kept = [g["power_w"] for keep, g, _ in picks if keep]
    assert [r.fields["power_w"] for r in decoded.readings] == kept
