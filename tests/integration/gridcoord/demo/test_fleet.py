"""The demo's device fleet against a real Mosquitto: each device its own login, Nagle off."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridcoord.broker.acl import BrokerUser, Rule
from gridcoord.broker.files import Accounts
from gridcoord.demo.fleet import DeviceFleet
from gridcoord.local_broker import LocalBroker
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

DEVICES = [f"meter-{i:03d}" for i in range(40)]
PASSWORDS = {"watcher": "watch-pw", **{d: f"{d}-pw" for d in DEVICES}}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    users = tuple(BrokerUser(d, (Rule("write", f"t/{d}"),)) for d in DEVICES)
    accounts = Accounts((*users, BrokerUser("watcher", (Rule("read", "t/#"),))), PASSWORDS)
    local = LocalBroker(free_port(), tmp_path / "mosquitto", accounts)
    local.start()
    yield local
    local.stop()


def test_a_batch_of_telemetry_reaches_a_subscriber_whole_from_sockets_without_nagle(
    broker: LocalBroker,
) -> None:
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed = threading.Event()
    watcher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="watcher")
    watcher.username_pw_set("watcher", PASSWORDS["watcher"])
    watcher.on_message = lambda _c, _u, m: received.put((m.topic, bytes(m.payload)))
    watcher.on_subscribe = lambda *_args: subscribed.set()
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    fleet = DeviceFleet(broker.port, {d: PASSWORDS[d] for d in DEVICES}, {}, lambda t, p: None)
    try:
        watcher.subscribe("t/#", qos=0)
        assert subscribed.wait(30)
        fleet.start()
        # Every device's socket says TCP_NODELAY: its telemetry never waits for the
        # broker's delayed acknowledgement of the packet before.
        for client in fleet._clients.values():
            sock = client.socket()
            assert isinstance(sock, socket.socket)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for round_ in range(3):
            sent = [(d, f"t/{d}", f"{round_}:{d}".encode()) for d in DEVICES]
            fleet.publish_many(sent)
            got = sorted(received.get(timeout=30) for _ in sent)
            assert got == sorted((topic, payload) for _, topic, payload in sent)
    finally:
        fleet.stop()
        watcher.loop_stop()
        watcher.disconnect()
    assert received.empty()
