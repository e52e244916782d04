"""Telemetry decoding: the contract's payloads, mapped devices, and every way a payload goes bad."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.reading import AssetKind
from adapters.contract.validation import Reason, Rejected
from adapters.mqtt.telemetry import UNKNOWN_ASSET, TelemetryDecoder
from gridcoord.config import Config

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def decoder() -> TelemetryDecoder:
    config = Config(
        zones=[{"id": "lt-01", "capacity_kw": 630}],
        assets=[
            {"id": "pv-roof-01", "kind": "pv", "zone": "lt-01", "rated_kw": 10},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 11},
            {"id": "meter-0412", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
            {
                "id": "pv-park-02",
                "kind": "pv",
                "rated_kw": 2000,
                "mqtt": {
                    "topic": "vendor/park2/state",
                    "fields": {"power_w": {"path": "ac.p_kw", "scale": 1000}},
                    "ts_path": "time",
                },
            },
        ],
    )
    return TelemetryDecoder(config)


def decode(decoder: TelemetryDecoder, topic: str, payload: object | bytes):  # type: ignore[no-untyped-def]
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decoder.decode(topic, raw, now=NOW)


def test_contract_payload_becomes_reading(decoder: TelemetryDecoder) -> None:
    reading = decode(
        decoder,
        "gridcoord/telemetry/charger-001",
        {
            "power_w": 7400,
            "connected": True,
            "session_energy_wh": 1200.5,
            "departure": "2026-06-21T17:30:00+02:00",
            "ts": "2026-06-21T11:59:00+02:00",
            "vehicle_id": "WVWZZZ1KZ...",
            "firmware": "1.2.3",
            "temperature_c": 41.5,
        },
    )
    assert reading.asset_id == "charger-001"
    assert reading.kind is AssetKind.CHARGER
    assert reading.zone == "lt-01"
    assert reading.ts == datetime(2026, 6, 21, 9, 59, tzinfo=UTC)
    assert reading.fields["power_w"] == 7400.0
    assert reading.fields["connected"] is True
    assert reading.fields["departure"] == "2026-06-21T15:30:00+00:00"
    # Unknown numeric fields are kept; identifiers and text are not (DESIGN 3.2, 6).
    assert reading.fields["temperature_c"] == 41.5
    assert "vehicle_id" not in reading.fields and "firmware" not in reading.fields


def test_epoch_millisecond_timestamp_and_receive_time_default(decoder: TelemetryDecoder) -> None:
    ms = int((NOW - timedelta(seconds=30)).timestamp() * 1000)
    stamped = decode(decoder, "gridcoord/telemetry/pv-roof-01", {"power_w": 5000, "ts": ms})
    assert stamped.ts == NOW - timedelta(seconds=30)
    unstamped = decode(decoder, "gridcoord/telemetry/pv-roof-01", {"power_w": 5000})
    assert unstamped.ts == NOW


def test_mapped_device_by_path_and_scale(decoder: TelemetryDecoder) -> None:
    reading = decode(
        decoder, "vendor/park2/state", {"ac": {"p_kw": 1234.5}, "time": "2026-06-21T09:58:00Z"}
    )
    assert reading.asset_id == "pv-park-02"
    assert reading.fields == {"power_w": 1234500.0}
    assert reading.ts == datetime(2026, 6, 21, 9, 58, tzinfo=UTC)


HOSTILE = [
    ("gridcoord/telemetry/pv-roof-01", b"{", Reason.INVALID_JSON),
    ("gridcoord/telemetry/pv-roof-01", b"", Reason.INVALID_JSON),
    ("gridcoord/telemetry/pv-roof-01", b"\xff\xfe\x00", Reason.NOT_UTF8),
    ("gridcoord/telemetry/pv-roof-01", b"[1, 2]", Reason.NOT_OBJECT),
    ("gridcoord/telemetry/pv-roof-01", b"42", Reason.NOT_OBJECT),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": NaN}', Reason.NOT_FINITE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": Infinity}', Reason.NOT_FINITE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": 1e400}', Reason.NOT_FINITE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": "5000"}', Reason.WRONG_TYPE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": true}', Reason.WRONG_TYPE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": null}', Reason.WRONG_TYPE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": 40000}', Reason.OUT_OF_RANGE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": -9000}', Reason.OUT_OF_RANGE),
    ("gridcoord/telemetry/meter-0412", b'{"soc_pct": 101}', Reason.OUT_OF_RANGE),
    ("gridcoord/telemetry/charger-001", b'{"connected": "yes"}', Reason.WRONG_TYPE),
    ("gridcoord/telemetry/charger-001", b'{"connected": 1}', Reason.WRONG_TYPE),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": 1, "ts": "yesterday"}', Reason.BAD_TIMESTAMP),
    (
        "gridcoord/telemetry/pv-roof-01",
        b'{"power_w": 1, "ts": "2026-06-21T10:00:00"}',
        Reason.BAD_TIMESTAMP,
    ),
    (
        "gridcoord/telemetry/pv-roof-01",
        b'{"power_w": 1, "ts": "2030-01-01T00:00:00Z"}',
        Reason.BAD_TIMESTAMP,
    ),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": 1, "ts": 1e30}', Reason.BAD_TIMESTAMP),
    ("gridcoord/telemetry/pv-roof-01", b'{"power_w": 1, "ts": true}', Reason.BAD_TIMESTAMP),
    ("gridcoord/telemetry/pv-roof-01", b"{}", Reason.NO_VALUES),
    ("gridcoord/telemetry/pv-roof-01", b'{"note": "hello"}', Reason.NO_VALUES),
    ("gridcoord/telemetry/pv-roof-99", b'{"power_w": 1}', Reason.UNKNOWN_ASSET),
    ("gridcoord/telemetry/Max Mustermann", b'{"power_w": 1}', Reason.UNKNOWN_ASSET),
    ("gridcoord/telemetry/pv-roof-01", b"[" * 100_000, Reason.OVERSIZED),
    ("gridcoord/telemetry/pv-roof-01", b"[" * 10_000 + b"]" * 10_000, Reason.OVERSIZED),
    ("gridcoord/telemetry/pv-roof-01", b"[" * 5_000, Reason.OVERSIZED),  # too deep, then cut
    ("vendor/park2/state", b'{"ac": {"p_kw": "x"}}', Reason.WRONG_TYPE),
    ("vendor/park2/state", b'{"ac": {"p_kw": 1e308}}', Reason.OUT_OF_RANGE),
    ("vendor/park2/state", b'{"ac": {}}', Reason.NO_VALUES),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), HOSTILE)
def test_hostile_payload_rejected_with_reason(
    decoder: TelemetryDecoder, topic: str, payload: bytes, reason: Reason
) -> None:
    with pytest.raises(Rejected) as caught:
        decoder.decode(topic, payload, now=NOW)
    assert caught.value.reason is reason
    # The detail never echoes the payload (it may hold anything, personal data included).
    assert "Mustermann" not in caught.value.detail


def test_unknown_ids_are_not_echoed_unless_plausible(decoder: TelemetryDecoder) -> None:
    assert decoder.asset_for_topic("gridcoord/telemetry/pv-roof-99")[0] == "pv-roof-99"
    assert decoder.asset_for_topic("gridcoord/telemetry/Max Mustermann")[0] == UNKNOWN_ASSET
    assert decoder.asset_for_topic("elsewhere/x")[0] == UNKNOWN_ASSET


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from(["power_w", "energy_wh", "connected", "ts", "soc_pct", "x_y", "departure"])
        | st.text(max_size=10),
        json_values,
        max_size=6,
    ),
    asset=st.sampled_from(["pv-roof-01", "charger-001", "meter-0412"]),
)
def test_any_json_object_is_accepted_within_contract_or_rejected_with_reason(
    decoder: TelemetryDecoder, document: dict[str, object], asset: str
) -> None:
    payload = json.dumps(document, allow_nan=True).encode()
    try:
        reading = decoder.decode(f"gridcoord/telemetry/{asset}", payload, now=NOW)
    except Rejected as exc:
        assert isinstance(exc.reason, Reason)
        return
    assert reading.fields, "an accepted reading carries values"
    for name, value in reading.fields.items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    power = reading.fields.get("power_w")
    if isinstance(power, float):
        rated_w = {"pv-roof-01": 10_000, "charger-001": 11_000, "meter-0412": 30_000}[asset]
        low = {"pv": -0.05, "charger": -0.01, "meter": -1.1}[reading.kind.value] * rated_w
        assert low <= power <= 1.1 * rated_w
    assert reading.ts.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_exception(
    decoder: TelemetryDecoder, payload: bytes
) -> None:
    with contextlib.suppress(Rejected):
        decoder.decode("gridcoord/telemetry/meter-0412", payload, now=NOW)
