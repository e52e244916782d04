"""The demo's MQTT client for the simulated devices (the service has its own, MqttSession).

MQTT 3.1.1 through paho-mqtt: the devices need only the contract's topics and payloads, not
the service's MQTT 5 session with late acknowledgement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

OnMessage = Callable[[str, bytes], None]


class DemoClient:
    """A connected MQTT client that hands every message to ``on_message`` (paho's thread).

    Parameters
    ----------
    port
        broker port on 127.0.0.1.
    client_id
        MQTT client id.
    subscriptions
        topic filters, subscribed with QoS 1 on connect.
    on_message
        ``(topic, payload)``; must be quick.
    credentials
        ``(username, password)`` to log in with.
    """

    def __init__(
        self,
        port: int,
        client_id: str,
        subscriptions: list[str],
        on_message: OnMessage,
        *,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._subscribed = threading.Event()
        self._subscriptions = subscriptions
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if credentials is not None:
            client.username_pw_set(*credentials)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._connected
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_message = lambda _c, _u, m: on_message(m.topic, bytes(m.payload))
        self._client = client
        self._port = port

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and wait until the subscriptions are in place.

        Raises
        ------
        RuntimeError
            the broker did not accept us in time.
        """
        self._client.connect("127.0.0.1", self._port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise RuntimeError(f"no MQTT subscription on 127.0.0.1:{self._port} in {timeout_s} s")

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Queue one message."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Let queued messages leave, then disconnect."""
        deadline = time.monotonic() + timeout_s
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)  # paho offers no event for "send queue empty"
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason_code: object,
        properties: object,
    ) -> None:
        topics = [(topic, 1) for topic in self._subscriptions]
        if topics:
            client.subscribe(topics)
        else:
            self._subscribed.set()
