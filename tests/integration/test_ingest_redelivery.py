"""Issue 9, defect 3: readings without `ts` are stored once, even when the broker redelivers.

Before the fix, the receive time stamped each delivery anew, so the copies the broker resends
after a restart (every message gridcoord had received but not yet acknowledged) became second
points: 308 duplicates in 30,000.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.ingest_rig import ASSETS, Rig, mosquitto_pub

pytestmark = pytest.mark.integration


def untimed(asset_index: int, start: int, count: int) -> list[str]:
    """Readings without `ts`, each with its own sequence number (an unknown numeric field)."""
    return [
        json.dumps({"power_w": 100.0 + asset_index, "seq": asset_index * 1_000_000 + i})
        for i in range(start, start + count)
    ]


def publish_untimed(rig: Rig, start: int, count: int) -> int:
    for index, asset in enumerate(ASSETS):
        mosquitto_pub(rig.broker, f"gridcoord/telemetry/{asset}", untimed(index, start, count))
    return count * len(ASSETS)


def test_broker_restart_stores_no_duplicate_of_a_reading_without_ts(rig: Rig) -> None:
    # Acks follow the 3 s flush: at the restart gridcoord holds received, unacknowledged
    # messages, which the broker sends again on the resumed session.
    proc = rig.start(GRIDCOORD_STORAGE__FLUSH_INTERVAL_S="3")
    sent = publish_untimed(rig, 0, 300)
    rig.broker.stop()
    rig.broker.start()
    mark = len(proc.lines)
    proc.wait_for_log(r"connected to broker .*session resumed", after=mark)
    sent += publish_untimed(rig, 300, 100)
    assert rig.wait_stored(sent) >= sent
    assert proc.terminate() == 0
    drained = proc.wait_for_log(r"ingest drained: .*; redelivered (\d+)")
    assert int(drained.group(1)) > 0, "the broker redelivered nothing: the test proved nothing"
    assert rig.stored() == sent  # each reading exactly once
    series = rig.influx.query('SELECT count(distinct("seq")) FROM "telemetry"', rig.database)
    assert int(series[0]["values"][0][1]) == sent
