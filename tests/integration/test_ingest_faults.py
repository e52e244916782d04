"""Issue 9, defect 1: an exception in a handler is a counted rejection; a dead thread is fatal.

The real service runs as a subprocess with one fault injected (tests/fixtures/faulty_run.py)
against a real Mosquitto and InfluxDB 1.6. Before the fix, the decoding fault ended paho's
network thread (the process stayed up, deaf), and a dead thread or a stuck event loop left a
process that exited 0 on SIGTERM.
"""

from __future__ import annotations

import json

import pytest

from gridcoord.watchdog import EXIT_FATAL
from tests.fixtures.ingest_rig import ASSETS, RejectionObserver, Rig, mosquitto_pub, payloads

pytestmark = pytest.mark.integration


def test_an_exception_while_decoding_is_an_internal_error_rejection_not_a_dead_thread(
    rig: Rig,
) -> None:
    proc = rig.start(fault="decode-raises", GRIDCOORD_MQTT__REJECTED_PER_S="1000000")
    observer = RejectionObserver(rig.broker)
    try:
        sent = rig.publish_all(0, 10)
        boom = [json.dumps({"power_w": 1, "boom": i}) for i in range(5)]
        mosquitto_pub(rig.broker, "gridcoord/telemetry/pv-0002", boom)
        sent += rig.publish_all(10, 10)
        notices = observer.wait_for(len(boom))
    finally:
        observer.close()
    assert len(notices) == len(boom), notices
    for topic, notice in notices:
        assert topic == "gridcoord/rejected/pv-0002"
        assert notice["reason"] == "internal_error"
        assert notice["topic"] == "gridcoord/telemetry/pv-0002"
        assert "ZeroDivisionError" in notice["detail"]
    assert rig.wait_stored(sent) == sent  # the readings after the faulty ones still flow
    assert proc.process is not None and proc.process.poll() is None
    assert proc.terminate() == 0
    drained = proc.wait_for_log(r"ingest drained: .*; rejected \{'internal_error': (\d+)\}")
    assert int(drained.group(1)) == len(boom)
    # The traceback is logged once per exception type, without the payload.
    assert proc.output.count("ZeroDivisionError") >= 1
    assert '"boom"' not in proc.output
    # Acknowledged: a restart does not get the faulty messages again.
    again = rig.start("again")
    mosquitto_pub(rig.broker, "gridcoord/telemetry/pv-0001", payloads(0, 100, 1))
    assert rig.wait_stored(sent + 1) == sent + 1
    assert again.terminate() == 0
    assert "rejected {}" in again.output


@pytest.mark.parametrize(
    ("fault", "what"),
    [
        ("writer-dies", "the ingest writer thread died"),
        ("network-dies", "the MQTT network thread died"),
        ("loop-stalls", "the event loop ran no callback"),
    ],
)
def test_a_dead_thread_or_stuck_loop_ends_the_process_loudly_with_a_non_zero_status(
    rig: Rig, fault: str, what: str
) -> None:
    proc = rig.start(fault=fault)
    mosquitto_pub(rig.broker, f"gridcoord/telemetry/{ASSETS[0]}", payloads(0, 0, 3))
    assert proc.process is not None
    code = proc.process.wait(timeout=60)
    assert code == EXIT_FATAL, proc.output[-3000:]
    line = proc.wait_for_log(r"CRITICAL .*FATAL: (.*)")
    assert what in line.group(1)
    # Nothing was acknowledged that is not stored: a restart without the fault stores it all.
    survivor = rig.start("survivor")
    assert rig.wait_stored(3) == 3
    assert survivor.terminate() == 0
