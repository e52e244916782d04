"""Mosquitto's autosave setting: acknowledged QoS 1 rate, and what survives `kill -9`.

For each setting a real Mosquitto (the loopback broker's configuration, only the autosave lines
changed) holds a persistent MQTT 5 session for an absent subscriber (gridcoord away); one
publisher sends `--messages` QoS 1 messages and waits for every PUBACK; then the broker is
killed with SIGKILL (no last save), restarted, and the subscriber counts what comes back.
The first row is the reference (the old loopback broker: a save every 5 s). Prints a table.

    .venv/bin/python bench/broker_autosave.py [--messages 30000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from gridcoord.broker.conf import AUTOSAVE_CHANGES  # noqa: E402
from gridcoord.local_broker import LocalBroker  # noqa: E402
from tests.fixtures.mosquitto import FIELD_USER, rig_accounts  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

CASES = [
    ("every 5 s (old loopback)", False, 5),
    ("every 30 s (old shipped)", False, 30),
    # "after 1 change" rewrites the whole file per message: 113 acks/s at 3,000 messages, and
    # quadratic in the backlog, so it is not run here.
    ("after 100 changes", True, 100),
    (f"after {AUTOSAVE_CHANGES} changes (ours)", True, AUTOSAVE_CHANGES),
]


class Broker(LocalBroker):
    """The loopback broker with another autosave setting."""

    def __init__(self, data_dir: Path, on_changes: bool, interval: int) -> None:
        super().__init__(free_port(), data_dir, rig_accounts())
        self._autosave = (on_changes, interval)

    def conf_text(self) -> str:
        """The loopback broker's configuration with this case's autosave lines."""
        on_changes, interval = self._autosave
        lines = [
            line
            for line in super().conf_text().splitlines()
            if not line.startswith(("autosave_on_changes", "autosave_interval"))
        ]
        lines += [f"autosave_on_changes {str(on_changes).lower()}", f"autosave_interval {interval}"]
        return "\n".join(lines) + "\n"


def subscriber(broker: LocalBroker) -> tuple[paho.Client, list[int]]:
    """Gridcoord's persistent session: connected, subscribed; counts what it receives."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, "bench-gc", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set("gridcoord", broker.accounts.password("gridcoord"))
    received = [0]
    subscribed = threading.Event()
    client.on_message = lambda *_: received.__setitem__(0, received[0] + 1)
    client.on_subscribe = lambda *_: subscribed.set()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    client.subscribe("gridcoord/telemetry/+", qos=1)
    client.loop_start()
    # After a restart the broker first redelivers the whole queue: the SUBACK comes after it.
    assert subscribed.wait(300)
    return client, received


def run_case(
    label: str, on_changes: bool, interval: int, messages: int, tmp: Path
) -> dict[str, object]:
    """One table row: a broker with this autosave setting, measured, then stopped."""
    broker = Broker(tmp / "mosquitto", on_changes, interval)
    broker.start()
    try:
        return measure(broker, label, messages)
    finally:
        broker.stop()


def measure(broker: LocalBroker, label: str, messages: int) -> dict[str, object]:
    """Queue `messages` for the absent subscriber, kill -9 the broker, count what came back."""
    client, _ = subscriber(broker)
    client.disconnect()
    client.loop_stop()
    pub = paho.Client(CallbackAPIVersion.VERSION2, "bench-pub", protocol=MQTTProtocolVersion.MQTTv5)
    pub.username_pw_set(FIELD_USER, broker.accounts.password(FIELD_USER))
    pub.max_queued_messages_set(0)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    started = time.monotonic()
    infos = [pub.publish("gridcoord/telemetry/m-1", str(i), qos=1) for i in range(messages)]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.monotonic() - started
    broker.kill()
    pub.loop_stop()
    broker.start()
    client, received = subscriber(broker)
    last = -1
    while received[0] != last:  # drained when nothing more arrives for a second
        last = received[0]
        time.sleep(1.0)
    client.disconnect()
    client.loop_stop()
    return {
        "autosave": label,
        "acked_per_s": round(messages / elapsed),
        "acked": messages,
        "kept_after_kill_9": received[0],
        "lost": messages - received[0],
    }


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--only", default="", help="Run only cases whose label contains this.")
    args = parser.parse_args()
    rows = []
    for label, on_changes, interval in CASES:
        if args.only not in label and not label.startswith("every 5 s"):
            continue
        with tempfile.TemporaryDirectory(prefix="gridcoord-bench-") as tmp:
            rows.append(run_case(label, on_changes, interval, args.messages, Path(tmp)))
        print(rows[-1], file=sys.stderr)
    reference = float(str(rows[0]["acked_per_s"]))
    for row in rows:
        row["rate_vs_reference"] = f"{float(str(row['acked_per_s'])) / reference:.2f}"
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
