"""MqttSession against a real Mosquitto: late acknowledgement, resumed sessions, reconnects."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt.client import ACKS_PER_WRITE, Message, MqttSession
from adapters.mqtt.settings import Mqtt
from gridcoord.broker.acl import BrokerUser, Rule
from gridcoord.broker.files import Accounts
from gridcoord.local_broker import LocalBroker
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration


PASSWORDS = {"gridcoord": "gc-session-pw", "device-1": "dev-1-pw", "watcher": "watch-pw"}


def mosquitto_accounts() -> Accounts:
    """These tests' accounts: gridcoord reads `t/#`, the devices write it."""
    field = (Rule("write", "t/#"), Rule("read", "city/setpoint/#"))
    users = (
        BrokerUser("gridcoord", (Rule("read", "t/#"), Rule("write", "city/setpoint/+"))),
        BrokerUser("device-1", field),
        BrokerUser("watcher", field),
    )
    return Accounts(users, PASSWORDS)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker for these tests alone (replaces the shared fixture): own topics, authenticated."""
    broker = LocalBroker(free_port(), tmp_path / "mosquitto", mosquitto_accounts())
    broker.start()
    yield broker
    broker.stop()


class Device:
    """A client that is not ours (paho with automatic acks), publishing and subscribing."""

    def __init__(self, broker: LocalBroker, client_id: str) -> None:
        self.received: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id
        )
        self.client.on_message = lambda _c, _u, message: self.received.put(message)
        self.client.username_pw_set(client_id, broker.accounts.password(client_id))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(60)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def device(mosquitto: LocalBroker) -> Iterator[Device]:
    client = Device(mosquitto, "device-1")
    yield client
    client.close()


def session(
    broker: LocalBroker, inbox: queue.Queue[Message] | Callable[[Message], None]
) -> MqttSession:
    """A gridcoord session on ``broker`` that hands each message to ``inbox`` (queue or handler)."""
    settings = Mqtt(
        port=broker.port,
        client_id="gc-session-test",
        reconnect_max_s=1.0,
        username="gridcoord",
        password=broker.accounts.password("gridcoord"),
    )
    return MqttSession(settings, ["t/#"], inbox.put if isinstance(inbox, queue.Queue) else inbox)


def redelivered_to_the_next_session(broker: LocalBroker, device: Device) -> list[str]:
    """Topics a new session of gridcoord's is sent before a marker published after it connects.

    In order on one session: what the previous session left unacknowledged comes before the
    marker, or not at all.
    """
    inbox: queue.Queue[Message] = queue.Queue()
    again = session(broker, inbox)
    again.start()
    try:
        assert again.wait_connected(60)
        device.publish("t/marker", b"m")
        topics = [inbox.get(timeout=60).topic]
        while topics[-1] != "t/marker":
            topics.append(inbox.get(timeout=60).topic)
        return topics[:-1]
    finally:
        again.stop()


def test_an_unacknowledged_message_comes_back_to_the_next_session_an_acknowledged_one_not(
    mosquitto: LocalBroker, device: Device
) -> None:
    inbox: queue.Queue[Message] = queue.Queue()
    first = session(mosquitto, inbox)
    first.start()
    assert first.wait_connected(60)
    device.publish("t/stored", b"1")
    device.publish("t/not-yet", b"2")
    stored, pending = inbox.get(timeout=60), inbox.get(timeout=60)
    assert (stored.topic, pending.topic) == ("t/stored", "t/not-yet")
    first.ack(stored)  # durable; `pending` is not, as if gridcoord died before the write
    first.stop()

    assert redelivered_to_the_next_session(mosquitto, device) == ["t/not-yet"]


def test_after_a_broker_restart_it_resubscribes_and_sends_what_was_queued_meanwhile(
    mosquitto: LocalBroker,
) -> None:
    inbox: queue.Queue[Message] = queue.Queue()
    ours = session(mosquitto, inbox)
    ours.start()
    try:
        assert ours.wait_connected(60)
        mosquitto.stop()
        wait_until(lambda: not ours.connected, "the session to notice the broker is gone")
        ours.publish("city/setpoint/c-1", b'{"max_power_w": 0.0}', qos=1, retain=True)
        mosquitto.start()
        assert ours.wait_connected(30), "the session did not reconnect"
        watcher = Device(mosquitto, "watcher")
        try:
            watcher.client.subscribe("city/setpoint/#", qos=1)
            queued = watcher.received.get(timeout=60)
            assert (queued.topic, queued.payload, queued.retain) == (
                "city/setpoint/c-1",
                b'{"max_power_w": 0.0}',
                True,
            )
            watcher.publish("t/after-restart", b"4")
            assert inbox.get(timeout=60).topic == "t/after-restart"
        finally:
            watcher.close()
    finally:
        ours.stop()


def test_a_flood_of_queued_messages_of_any_size_arrives_whole_and_in_order(
    mosquitto: LocalBroker, device: Device
) -> None:
    # Queued while we are away, the broker sends them back to back on reconnect: many
    # packets per read-ahead buffer (paho handles several per turn of its loop, see
    # `_Client.loop_read`), and packets split across buffers (70 kB > one 64 KiB recv).
    inbox: queue.Queue[Message] = queue.Queue()
    first = session(mosquitto, inbox)
    first.start()
    assert first.wait_connected(10)
    first.stop()
    sizes = [5, 3_000, 70_000, 1, 200]
    payloads = [bytes([65 + i % 26]) * sizes[i % len(sizes)] for i in range(600)]
    for i, payload in enumerate(payloads):
        device.client.publish(f"t/flood/{i}", payload, qos=1)
    device.publish("t/flood/end", b"end")

    flooded: queue.Queue[Message] = queue.Queue()
    second = session(mosquitto, flooded)
    second.start()
    try:
        got = []
        while not got or got[-1].topic != "t/flood/end":
            got.append(flooded.get(timeout=30))
        assert [m.topic for m in got[:-1]] == [f"t/flood/{i}" for i in range(600)]
        assert [m.payload for m in got[:-1]] == payloads
        for message in got:
            second.ack(message)
    finally:
        second.stop()


def test_outgoing_qos1_messages_beyond_the_in_flight_window_all_reach_a_subscriber(
    mosquitto: LocalBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Setpoints leave at QoS 1. The broker's plain PUBACKs settle them without paho's
    # decoder (`_Client._handle_pubackcomp`), and each one frees the in-flight window for a
    # queued message (`_update_inflight`): 2,500 messages through a window of 1,000 all
    # arrive, in order, and none stays unacknowledged.
    through_paho: list[str] = []
    real = paho.Client._handle_pubackcomp

    def counted(client: paho.Client, cmd: str) -> object:
        through_paho.append(cmd)
        return real(client, cmd)  # type: ignore[arg-type]

    monkeypatch.setattr(paho.Client, "_handle_pubackcomp", counted)
    watcher = Device(mosquitto, "watcher")
    ours = session(mosquitto, queue.Queue())
    ours.start()
    try:
        subscribed = threading.Event()
        watcher.client.on_subscribe = lambda *_args: subscribed.set()
        watcher.client.subscribe("city/setpoint/#", qos=1)
        assert subscribed.wait(30) and ours.wait_connected(30)
        count = 2_500
        for i in range(count):
            ours.publish(f"city/setpoint/c-{i}", str(i).encode(), qos=1)
        got = [watcher.received.get(timeout=60) for _ in range(count)]
        assert [(m.topic, m.payload) for m in got] == [
            (f"city/setpoint/c-{i}", str(i).encode()) for i in range(count)
        ]
        client = ours._client
        wait_until(lambda: not client._out_messages, "every message to be acknowledged")
        assert client._inflight_messages == 0
    finally:
        ours.stop()
        watcher.close()
    assert through_paho == []


def test_acknowledgements_written_together_each_reach_the_broker(
    mosquitto: LocalBroker, device: Device
) -> None:
    # Acks queued together leave as few writes of many PUBACKs (`ACKS_PER_WRITE` each): the
    # broker must take every one of them, and only those. Messages not acknowledged come back
    # to the next session; a malformed or lost PUBACK in a write would bring others back too.
    inbox: queue.Queue[Message] = queue.Queue()
    first = session(mosquitto, inbox)
    first.start()
    assert first.wait_connected(60)
    count = 2 * ACKS_PER_WRITE + 300
    for i in range(count):
        device.client.publish(f"t/many/{i}", b"x", qos=1)
    device.publish("t/many/end", b"end")
    got = []
    while not got or got[-1].topic != "t/many/end":
        got.append(inbox.get(timeout=60))
    kept = [f"t/many/{i}" for i in range(0, count, 97)]  # "not durable": never acknowledged
    never_acked = set(kept)
    for message in got:
        if message.topic not in never_acked:
            first.ack(message)
    first.stop()

    assert redelivered_to_the_next_session(mosquitto, device) == kept


@pytest.fixture
def publisher(mosquitto: LocalBroker) -> Iterator[paho.Client]:
    """An MQTT 5 device (`device-1`, not ours), connected, its network thread running."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="device-1",
        protocol=paho.MQTTv5,
    )
    client.username_pw_set("device-1", mosquitto.accounts.password("device-1"))
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def expiring_in_an_hour() -> Properties:
    """PUBLISH properties with a message expiry, which the broker forwards to subscribers."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = 3600
    return properties


def test_a_message_with_properties_takes_paho_s_path_and_is_acknowledged_like_any_other(
    mosquitto: LocalBroker, publisher: paho.Client
) -> None:
    # Plain QoS 1 messages skip paho's PUBLISH handler (`_Client._handle_publish`); one with
    # properties (here a message expiry, which the broker forwards) goes through it. Both
    # arrive whole, in order, and an acknowledged one of either kind does not come back.
    inbox: queue.Queue[Message] = queue.Queue()
    first = session(mosquitto, inbox)
    first.start()
    try:
        assert first.wait_connected(60)
        expiring = expiring_in_an_hour()
        sent = [
            ("t/plain", b"1", None),
            ("t/expiring", b"2", expiring),
            ("t/plain-again", b"3", None),
            ("t/expiring-kept", b"4", expiring),
        ]
        for topic, payload, properties in sent:
            info = publisher.publish(topic, payload, qos=1, properties=properties)
            info.wait_for_publish(60)
        got = [inbox.get(timeout=60) for _ in sent]
        assert [(m.topic, m.payload, m.qos) for m in got] == [(t, p, 1) for t, p, _ in sent]
        for message in got[:3]:
            first.ack(message)
    finally:
        first.stop()

    device = Device(mosquitto, "watcher")
    try:
        assert redelivered_to_the_next_session(mosquitto, device) == ["t/expiring-kept"]
    finally:
        device.close()


def test_qos0_messages_take_the_plain_path_unless_they_carry_properties(
    mosquitto: LocalBroker, publisher: paho.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Field devices may publish telemetry at QoS 0 (DESIGN 3). A plain one skips paho's
    # PUBLISH handler as a plain QoS 1 one does, with no packet id and nothing to
    # acknowledge; one with properties still goes through paho's handler. Mixed with QoS 1,
    # every message arrives whole, in order, with its own QoS.
    through_paho: list[str] = []
    real = paho.Client._handle_publish

    def counted(client: paho.Client) -> object:
        packet = client._in_packet["packet"]
        through_paho.append(packet[2 : 2 + int.from_bytes(packet[:2], "big")].decode())
        return real(client)

    monkeypatch.setattr(paho.Client, "_handle_publish", counted)
    inbox: queue.Queue[Message] = queue.Queue()
    first = session(mosquitto, inbox)
    first.start()
    try:
        assert first.wait_connected(60)
        expiring = expiring_in_an_hour()
        sent = [
            ("t/zero", b"1", 0, None),
            ("t/one", b"2", 1, None),
            ("t/zero-expiring", b"3", 0, expiring),
            ("t/zero-again", b"{}", 0, None),
        ]
        for topic, payload, qos, properties in sent:
            info = publisher.publish(topic, payload, qos=qos, properties=properties)
            info.wait_for_publish(60)
        got = [inbox.get(timeout=60) for _ in sent]
        assert [(m.topic, m.payload, m.qos) for m in got] == [(t, p, q) for t, p, q, _ in sent]
        assert [m.mid for m in got if m.qos == 0] == [0, 0, 0]
        assert got[1].mid > 0
        for message in got:
            first.ack(message)  # QoS 0: nothing to acknowledge, and no error
    finally:
        first.stop()
    assert through_paho == ["t/zero-expiring"]


class DefaultQueueBroker(LocalBroker):
    """Our broker but with Mosquitto's default write-queue cap (`max_queued_messages 1000`)."""

    def conf_text(self) -> str:
        return super().conf_text().replace("max_queued_messages 0", "max_queued_messages 1000")


def test_messages_the_broker_dropped_from_its_write_queue_come_again_after_the_id_gap(
    tmp_path: Path,
) -> None:
    # Mosquitto (2.0.11 here, and upstream since 2.0.16) drops packets from its write queue
    # to a client once `max_queued_messages` wait there, PUBLISH packets it already counts as
    # in flight among them, and on a live connection never sends those again: they stay in
    # our session (docs/performance.md, "The stall"). The next new message shows the gap in
    # the packet ids; the session reconnects and the broker sends them again. Without that
    # (`mqtt.reconnect_on_id_gap: false`, or the code before it) this test times out with
    # a few hundred of the 2,000 messages (167 in one run).
    broker = DefaultQueueBroker(free_port(), tmp_path / "mosquitto", mosquitto_accounts())
    broker.start()
    published = threading.Event()
    got: dict[str, int] = {}

    def handle(message: Message) -> None:
        # Blocks paho's thread on the first message (as `submit` does under back-pressure,
        # or a starved thread would) until the device has published everything: the
        # broker's writes back up past the kernel's buffers into its own write queue.
        published.wait(120)
        got[message.topic] = got.get(message.topic, 0) + 1
        ours.ack(message)

    ours = session(broker, handle)
    ours.start()
    device = Device(broker, "device-1")
    count = 2_000
    try:
        assert ours.wait_connected(60)
        payload = b"x" * 10_000  # 20 MB in all: more than the loopback's socket buffers hold
        for i in range(count - 1):
            device.client.publish(f"t/paused/{i}", payload, qos=1)
        device.publish(f"t/paused/{count - 1}", payload)
        log = broker.data_dir / "mosquitto.log"
        wait_until(
            lambda: "Outgoing messages are being dropped" in log.read_text(),
            "the broker to drop packets queued to us",
        )
        published.set()
        paused = {f"t/paused/{i}" for i in range(count)}
        after = iter(range(10_000))

        def all_arrived() -> bool:
            if paused <= set(got):
                return True
            # Telemetry goes on: a new message shows the gap once the broker's queue to us
            # has room again (one published per check, each a broker round trip).
            device.publish(f"t/after/{next(after)}", b"next")
            return False

        wait_until(all_arrived, f"all {count} messages paused for")
        assert ours.packet_id_gaps >= 1
    finally:
        published.set()
        device.close()
        ours.stop()
        broker.stop()
