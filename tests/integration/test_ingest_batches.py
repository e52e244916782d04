"""Issue 16: batched telemetry end to end, hostile batches included.

Through a real Mosquitto (payloads published by Debian's `mosquitto_pub`, not our client) into
a real `gridcoord run` with InfluxDB 1.6 behind it: a device's JSON array of readings, a
gateway's `{"readings": [...]}` naming several assets, and hostile batches (one bad element
among good ones, an element naming an asset the gateway may not report, nested batches, a
batch above the element bound, one above the byte bound). Good elements are stored, each bad
one is rejected with its index, and a batch beyond the bounds is refused as a whole. On the
code before issue 16 every array was `not_object` and nothing of it was stored.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.ingest_rig import CITY, T0, RejectionObserver, Rig, eventually
from tests.fixtures.mosquitto import mosquitto_pub_command

pytestmark = pytest.mark.integration

BATCH_ASSETS = """\
  - {id: meter-a, kind: meter, zone: lt-01, rated_kw: 30, gateway: gw-01}
  - {id: meter-b, kind: meter, zone: lt-01, rated_kw: 30, gateway: gw-01}
  - {id: meter-c, kind: meter, zone: lt-01, rated_kw: 30, gateway: gw-02}
  - {id: meter-d, kind: meter, zone: lt-01, rated_kw: 30}
  - id: pv-vendor
    kind: pv
    zone: lt-01
    rated_kw: 500
    mqtt: {topic: vendor/x/state, fields: {power_w: {path: ac.p_kw, scale: 1000}}, ts_path: time}
"""
TELEMETRY = "gridcoord/telemetry/"
GATEWAY = "gridcoord/gateway/"


def reading(second: int, power: float = 500.0, **extra: Any) -> dict[str, Any]:
    return {"power_w": power, "ts": (T0 + timedelta(seconds=second)).isoformat(), **extra}


def epoch_reading(second: int, power: float = 500.0) -> dict[str, Any]:
    return {"power_w": power, "ts": int((T0 + timedelta(seconds=second)).timestamp() * 1000)}


def publish(rig: Rig, topic: str, payload: bytes) -> None:
    """One QoS 1 message with exactly these bytes (`-s`: the whole stdin is the message)."""
    command = [*mosquitto_pub_command(rig.broker), "-q", "1", "-t", topic]
    result = subprocess.run(
        [*command, "-s"], input=payload, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def stored_by_asset(rig: Rig) -> Counter[str]:
    try:
        rows = rig.influx.rows(
            'SELECT count("power_w") FROM "telemetry" GROUP BY "asset_id"', rig.database
        )
    except AssertionError as exc:
        if "database not found" in str(exc):
            return Counter()
        raise
    return Counter({row["asset_id"]: int(row["count"]) for row in rows})


def test_batches_store_good_elements_and_reject_bad_ones_by_index(rig: Rig) -> None:
    rig.config.write_text(CITY + BATCH_ASSETS, encoding="utf-8")
    rig.start(GRIDCOORD_MQTT__REJECTED_PER_S="1000000", GRIDCOORD_MQTT__MAX_BATCH_READINGS="500")
    observer = RejectionObserver(rig.broker)

    def send(topic: str, document: object) -> None:
        publish(rig, topic, json.dumps(document).encode())

    # A device's array: 100 readings, all good.
    send(TELEMETRY + "meter-d", [reading(i, 400.0 + i) for i in range(100)])
    # One bad element (index 3: far above the rating) among good ones.
    bad = [reading(1000 + i) for i in range(10)]
    bad[3]["power_w"] = 5e9
    send(TELEMETRY + "meter-d", bad)
    # A gateway's batch with mixed assets; index 10 names one of another gateway's assets,
    # index 11 an asset nobody configured, index 12 none at all.
    mixed = [reading(2000 + i, asset="meter-a") for i in range(5)]
    mixed += [reading(2000 + i, asset="meter-b") for i in range(5)]
    mixed += [reading(2100, asset="meter-c"), reading(2101, asset="meter-zz"), reading(2102)]
    send(GATEWAY + "gw-01", {"readings": mixed})
    # Nested batches: an array inside the array, a gateway batch inside a gateway batch.
    send(TELEMETRY + "meter-d", [reading(3000), [reading(3001)], reading(3002)])
    send(GATEWAY + "gw-02", {"readings": [{"readings": [reading(3003, asset="meter-c")]}]})
    # A device topic's element naming another asset (mixing assets on a device topic).
    send(TELEMETRY + "meter-d", [reading(3100), reading(3101, asset="meter-a")])
    # A mapped device's array (its own payload shape, element by element).
    send(
        "vendor/x/state", [{"ac": {"p_kw": 3.5}, "time": reading(4000 + i)["ts"]} for i in range(4)]
    )
    # Epoch milliseconds (the typed path's rows, instants by integer arithmetic): 50 good;
    # then 5 of which index 2 is ten minutes ahead (beyond the 5 min allowed): the others kept.
    send(TELEMETRY + "meter-d", [epoch_reading(8000 + i) for i in range(50)])
    ahead = [epoch_reading(8100 + i) for i in range(5)]
    ahead[2]["ts"] = int((datetime.now(UTC) + timedelta(minutes=10)).timestamp() * 1000)
    send(TELEMETRY + "meter-d", ahead)
    # Beyond the bounds, refused whole: 501 elements, and 300 KB (above max_batch_bytes).
    send(TELEMETRY + "meter-d", [reading(5000 + i) for i in range(501)])
    padded = [reading(6000 + i, note="x" * 1000) for i in range(300)]
    send(TELEMETRY + "meter-d", padded)
    # An unknown gateway, and a gateway payload that is a bare array.
    send(GATEWAY + "gw-99", {"readings": [reading(7000, asset="meter-a")]})
    send(GATEWAY + "gw-01", [reading(7001, asset="meter-a")])

    expected = {"meter-d": 100 + 9 + 2 + 1 + 50 + 4, "meter-a": 5, "meter-b": 5, "pv-vendor": 4}
    eventually(lambda: sum(stored_by_asset(rig).values()), sum(expected.values()))
    notices = observer.wait_for(12, timeout=60)
    observer.close()
    assert stored_by_asset(rig) == Counter(expected)
    # At their instants: the 50 epoch-ms readings and the 4 kept of 5 each in their second.
    start, end = (
        (T0 + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ") for second in (8000, 8105)
    )
    [row] = rig.influx.rows(
        f'SELECT count("power_w") FROM "telemetry" WHERE "asset_id" = \'meter-d\' '
        f"AND time >= '{start}' AND time < '{end}'",
        rig.database,
    )
    assert int(row["count"]) == 54

    got = sorted((topic, n["reason"], n["detail"].split(":")[0]) for topic, n in notices)
    rejected = "gridcoord/rejected/"
    assert got == sorted(
        [
            (rejected + "meter-d", "out_of_range", "element 3"),
            (rejected + "meter-c", "unknown_asset", "element 10"),
            (rejected + "meter-zz", "unknown_asset", "element 11"),
            (rejected + "_unknown", "unknown_asset", "element 12"),
            (rejected + "meter-d", "not_object", "element 1"),
            (rejected + "_unknown", "unknown_asset", "element 0"),
            (rejected + "meter-d", "unknown_asset", "element 1"),
            (rejected + "meter-d", "bad_timestamp", "element 2"),
            (rejected + "meter-d", "oversized", "more than 500 readings in one message"),
            (rejected + "meter-d", "oversized", "payload above 262144 bytes"),
            (
                rejected + "_unknown",
                "unknown_asset",
                "no configured asset reports through this gateway",
            ),
            (
                rejected + "_unknown",
                "not_object",
                "gateway payload must be an object with `readings`",
            ),
        ]
    )
    # The raw payload is never echoed, only the topic and the element's index.
    assert all("5000000000" not in n["detail"] for _, n in notices)
