"""The typed fast path (msgspec structs) decides exactly as the general path, or not at all."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.contract.reading import ReadingRows
from adapters.contract.validation import Rejected, field_ranges, timestamp_window
from adapters.mqtt.telemetry import Decoded, TelemetryDecoder
from adapters.mqtt.typed_payload import NOT_TYPED, TypedDecoder
from gridcoord.config import Config
from gridcoord.storage.points import parse_line, reading_to_point, telemetry_lines

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
CONFIG = Config(
    mqtt={"max_batch_readings": 20, "max_batch_bytes": 65536},
    zones=[{"id": "lt-01", "capacity_kw": 630}],
    assets=[
        {"id": "meter-c", "kind": "meter", "zone": "lt-01", "rated_kw": 30},
        {"id": "cp-1", "kind": "charger", "zone": "lt-01", "rated_kw": 11},
        {"id": "pv-1", "kind": "pv", "rated_kw": 10},
    ],
)
TYPED = TelemetryDecoder(CONFIG)
GENERAL = TelemetryDecoder(CONFIG, typed=False)

field_names = st.sampled_from(
    [
        "power_w",
        "energy_wh",
        "current_a",
        "voltage_v",
        "soc_pct",
        "session_energy_wh",
        "energy_request_wh",
        "connected",
        "departure",
        "ts",
        "asset",
        "vehicle_id",
        "id_tag",
        "vin",
        "frequency_hz",  # unknown numeric: kept by the contract
        "Bad-Name",
        "",
    ]
)
timestamps = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(
        min_value=int((NOW - timedelta(days=40)).timestamp() * 1000),
        max_value=int((NOW + timedelta(minutes=10)).timestamp() * 1000),
    ),
    st.datetimes(
        min_value=datetime(2026, 5, 1), max_value=datetime(2026, 7, 1), timezones=st.just(UTC)
    ).map(lambda ts: ts.isoformat()),
    st.sampled_from(["2026-06-21T09:59:00", "not a time", "2026-06-21T09:00:00Z"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-40_000, max_value=40_000),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=6),
    timestamps,
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
elements = st.dictionaries(field_names, values, max_size=6)
# Each asset's power bounds and the floats just beside them: a range one ulp off must show.
_EDGES = sorted(
    {
        edge
        for asset in CONFIG.assets
        for bound in field_ranges(asset.kind, asset.rated_kw)["power_w"]
        for edge in (bound, math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf))
    }
)
powers = st.one_of(st.floats(min_value=-40_000, max_value=40_000), st.sampled_from(_EDGES))
# Mostly well-formed readings (the typed path's case), and anything else besides.
good_timestamps = st.one_of(
    st.integers(
        min_value=int((NOW - timedelta(days=30)).timestamp() * 1000),
        max_value=int((NOW + timedelta(minutes=4)).timestamp() * 1000),
    ),
    st.datetimes(
        min_value=datetime(2026, 6, 1), max_value=datetime(2026, 6, 21), timezones=st.just(UTC)
    ).map(lambda ts: ts.isoformat()),
)
good_elements = st.fixed_dictionaries(
    {"power_w": powers, "ts": good_timestamps},
    optional={
        "energy_wh": st.floats(min_value=0, max_value=1e15),
        "voltage_v": st.integers(min_value=0, max_value=1000),
        "connected": st.booleans(),
        "vin": st.text(max_size=4),
        "asset": st.sampled_from(["meter-c", "cp-1", "pv-1", None]),
    },
)
documents = st.one_of(
    good_elements,
    st.lists(good_elements, min_size=1, max_size=25),
    elements,
    st.lists(st.one_of(good_elements, good_elements, elements, scalars), max_size=25),
    st.lists(st.lists(good_elements, max_size=2), max_size=2),  # nested batches
    scalars,
)


def verdict(decoder: TelemetryDecoder, topic: str, payload: bytes) -> object:
    """What a decoder makes of a message, in comparable form."""
    try:
        decoded: Decoded = decoder.decode_message(topic, payload, now=NOW)
    except Rejected as exc:
        return ("rejected", exc.reason, exc.detail)
    rejected = [(e.index, e.asset_id, e.error.reason, e.error.detail) for e in decoded.rejected]
    return (decoded.readings, rejected)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["meter-c", "cp-1", "pv-1"]),
    documents,
    st.sampled_from(["", " ", "\n", "x", "\xff"]),
)
def test_typed_and_general_paths_give_the_same_verdict(
    asset: str, document: Any, trailer: str
) -> None:
    payload = json.dumps(document).encode()
    if trailer:
        payload = payload + trailer.encode("latin-1")  # mostly invalid JSON after the value
    topic = f"gridcoord/telemetry/{asset}"
    assert verdict(TYPED, topic, payload) == verdict(GENERAL, topic, payload)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["meter-c", "cp-1", "pv-1"]),
    st.one_of(good_elements, st.lists(good_elements, min_size=1, max_size=25)),
)
def test_near_valid_payloads_get_the_same_verdict_on_both_paths(asset: str, document: Any) -> None:
    # Where the typed path decides most: well-formed readings, values at the bounds (one ulp
    # either side), assets named right and wrong.
    topic = f"gridcoord/telemetry/{asset}"
    payload = json.dumps(document).encode()
    assert verdict(TYPED, topic, payload) == verdict(GENERAL, topic, payload)


@pytest.mark.parametrize(
    "document",
    [
        {"power_w": 40_000.0},  # above the rating: out_of_range
        {"power_w": 100.0, "ts": 10**25},  # bad timestamp
        {"power_w": 100.0, "frequency_hz": 50.0},  # unknown numeric field: the general path
        {"power_w": None},
        {"ts": 1_781_999_000_000},  # no values
        [{"power_w": 1.0, "asset": "cp-1"}],  # names another asset
        [],
        [{"power_w": 1.0}] * 21,  # above max_batch_readings
        [{"power_w": 1.0, "x": {"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}],  # deep
    ],
)
def test_the_typed_path_leaves_every_doubtful_payload_to_the_general_one(
    document: object,
) -> None:
    [asset] = [a for a in CONFIG.assets if a.id == "meter-c"]
    typed = TypedDecoder(asset)
    payload = json.dumps(document).encode()
    window = timestamp_window(NOW)
    with pytest.raises(NOT_TYPED):
        if isinstance(document, list):
            typed.decode_many(payload, NOW, window, 20)
        else:
            typed.decode_one(payload, NOW, window)


def test_the_typed_path_takes_clean_contract_payloads() -> None:
    [asset] = [a for a in CONFIG.assets if a.id == "cp-1"]
    typed = TypedDecoder(asset)
    window = timestamp_window(NOW)
    ts = int((NOW - timedelta(minutes=1)).timestamp() * 1000)
    batch = [{"power_w": 7400, "connected": True, "ts": ts, "id_tag": "A1"}, {"power_w": 0.0}]
    readings = typed.decode_many(json.dumps(batch).encode(), NOW, window, 20)
    assert [r.fields for r in readings] == [
        {"power_w": 7400.0, "connected": True},
        {"power_w": 0.0},
    ]
    assert [r.ts for r in readings] == [NOW - timedelta(minutes=1), NOW]
    assert type(readings[0].fields["power_w"]) is float


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["meter-c", "cp-1", "pv-1"]),
    st.one_of(good_elements, st.lists(good_elements, min_size=1, max_size=25)),
)
def test_the_typed_paths_rows_are_stored_as_the_general_paths_readings(
    asset: str, document: Any
) -> None:
    # The stores take the typed path's rows as they are (no `Reading` in between): the lines
    # they make must be the general path's readings' points, instants to the nanosecond
    # included. (Field order may differ: the struct's order, which line protocol ignores.)
    topic = f"gridcoord/telemetry/{asset}"
    payload = json.dumps(document).encode()
    try:
        typed = TYPED.decode_message(topic, payload, now=NOW)
        general = GENERAL.decode_message(topic, payload, now=NOW)
    except Rejected:
        return
    assert isinstance(general.readings, list)
    expected = [reading_to_point(reading) for reading in general.readings]
    assert [parse_line(line) for line in telemetry_lines(typed.readings)] == expected
    if isinstance(typed.readings, ReadingRows):
        assert all(ts_ns % 1000 == 0 for _, ts_ns, _ in typed.readings.rows)


def test_reading_rows_are_a_sequence_of_the_readings() -> None:
    ts = int((NOW - timedelta(minutes=1)).timestamp() * 1000)
    payload = json.dumps([{"power_w": 1.0, "ts": ts}, {"power_w": 2.0}]).encode()
    rows = TYPED.decode_message("gridcoord/telemetry/meter-c", payload, now=NOW).readings
    assert isinstance(rows, ReadingRows)
    readings = GENERAL.decode_message("gridcoord/telemetry/meter-c", payload, now=NOW).readings
    assert len(rows) == 2 and rows == readings and list(rows) == readings
    assert rows[1] == readings[1] and rows[-1].ts == NOW
    assert rows[:1] == readings[:1] and isinstance(rows[:1], ReadingRows)
    assert ReadingRows.of(readings).rows == rows.rows and ReadingRows.of(rows) is rows
    assert rows != readings[:1] and rows != "not readings"
