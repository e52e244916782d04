"""The service's MQTT 5 session (paho-mqtt): it survives restarts and acknowledges late.

Why manual acknowledgement: paho normally sends PUBACK as soon as `on_message` returns, so a
reading that was acknowledged but not yet stored would be lost if gridcoord crashed. Here the
ingest pipeline calls `ack()` only once a reading is in the store or the disk spool; until then
the broker keeps it in our persistent session (clean_start=False, a session expiry) and
redelivers it after a reconnect or a restart. The price is at-least-once delivery: a message may
arrive twice, which a store keyed by series and timestamp absorbs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.mqtt.settings import Mqtt

log = logging.getLogger(__name__)

# The most QoS 1 messages we let the broker have in flight to us unacknowledged: acks follow a
# batch write, so the window must hold several batches.
RECEIVE_MAXIMUM = 65535


class Message(NamedTuple):
    """One received message; `ack()` it once its data is durable.

    A named tuple, not a frozen dataclass: one is built per message on paho's thread, and
    a frozen dataclass's `__init__` (a guarded `__setattr__` per field) cost 0.6 µs more.
    """

    topic: str
    payload: bytes
    qos: int
    mid: int
    received_monotonic: float
    dup: bool = False  # the broker sent it before (redelivery after a reconnect)
    connection: int = 0  # the session's connection it came in on (its mid is valid only there)


MessageHandler = Callable[[Message], None]


class _ReadAheadSocket:
    """paho's socket with a read-ahead buffer: one recv() serves many packets.

    paho reads each packet with several small recv() calls (type byte, each length byte, body)
    and a select() before each packet. Measured here, those syscalls were a third of the
    network thread's time at 20,000 messages/s. With the buffer, paho's own `pending()` check
    (meant for TLS sockets) tells its loop that data is waiting, so select() does not block.
    Everything else goes to the real socket. paho is pinned to 2.x for this override.
    """

    __slots__ = ("_buffer", "_position", "_socket")

    def __init__(self, sock: Any) -> None:
        self._socket = sock
        self._buffer = b""
        self._position = 0

    def recv(self, size: int) -> bytes:
        if self._position >= len(self._buffer):
            data: bytes = self._socket.recv(max(size, 65536))
            if not data:
                return data
            self._buffer, self._position = data, 0
        start = self._position
        self._position = min(start + size, len(self._buffer))
        return self._buffer[start : self._position]

    def pending(self) -> int:
        inner = self._socket.pending() if hasattr(self._socket, "pending") else 0
        return len(self._buffer) - self._position + int(inner)

    @property
    def buffered(self) -> bool:
        """True while bytes already read from the kernel wait in the buffer."""
        return self._position < len(self._buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


# PUBACKs written in one send(): each is 4 bytes (type, remaining length 2, packet id; MQTT 5
# section 3.4.2.1: reason code and properties left out for Success), as paho writes them.
ACKS_PER_WRITE = 1024
_PUBACK = struct.Struct("!BBH")

# Reconnects for a gap in the broker's packet ids at most this often [s] (`_note_packet_id`);
# each reconnect that brings none of the skipped ids back doubles the interval, up to the
# longest: a broker whose ids are not consecutive (the spec does not ask for it) costs a few
# reconnects at start, then one an hour, instead of one every 5 s.
GAP_RECONNECT_INTERVAL_S = 5.0
GAP_RECONNECT_MAX_INTERVAL_S = 3600.0

# Packets paho handles per turn of its loop while the read-ahead buffer holds more (see
# `_Client.loop_read`); after them, its loop sends what is queued (acknowledgements) again.
PACKETS_PER_TURN = 256

_QOS_BITS = 0x06
_QOS_0 = 0x00
_QOS_1 = 0x02
_DUP_BIT = 0x08

# What the plain-publish path hands on: topic, payload, QoS, packet id (0 at QoS 0), DUP flag.
PublishHandler = Callable[[str, bytes, int, int, bool], None]


def plain_publish(packet: bytes | bytearray, qos: int) -> tuple[str, bytes, int] | None:
    """Topic, payload and packet id of an MQTT 5 PUBLISH without properties, else None.

    ``packet`` is what follows the fixed header (MQTT 5 section 3.3.2): topic length and
    topic, the packet id (QoS 1 and 2 only), property length, properties, payload. ``qos`` is
    0 or 1, from the fixed header; a QoS 0 packet has no id and gives 0. What a broker
    forwards to us is almost always this plain form (no expiry, alias, user property or
    subscription id); anything else (properties, an empty topic, a topic that is not UTF-8,
    a short packet) gives None and goes through paho's own decoder, which builds its
    `Properties` object.
    """
    size = len(packet)
    if size < 3:
        return None
    end = 2 + ((packet[0] << 8) | packet[1])
    if end == 2:
        return None
    # The packet id (2 bytes, QoS 1 only) and a property length of one byte, zero.
    properties = end + 2 if qos else end
    if size < properties + 1 or packet[properties] != 0:
        return None
    try:
        topic = packet[2:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    mid = (packet[end] << 8) | packet[end + 1] if qos else 0
    # bytes() returns a bytes slice as it is; paho types its buffer as either.
    return topic, bytes(packet[properties + 1 :]), mid


class _Client(paho.Client):
    """paho's client, fed better: a read-ahead socket, several packets per turn, batched acks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks_lock = threading.Lock()
        self._acks: list[tuple[int, int]] = []  # (connection number, mid), durable, not yet sent
        self.connection_number = 0  # counted in paho's thread, in `on_connect`
        self._handing_over = False  # taken from `_acks`, not yet in paho's queue
        self._ping_wanted = False  # `round_trip` asked paho's thread for a PINGREQ
        self._pong: threading.Event | None = None  # set by the PINGRESP that answers it
        self._pings_ahead = 0
        self.on_plain_publish: PublishHandler | None = None  # see `_handle_publish`
        self.hang_up_wanted = False  # drop the connection at the next turn, then reconnect
        self._wake_pending = False  # a wake-up byte is on its way to paho's thread

    def _handle_publish(self) -> MQTTErrorCode:
        """A plain QoS 0 or 1 PUBLISH straight to `on_plain_publish`; any other to paho's.

        paho builds a `Properties` object, an `MQTTMessage` and a topic-filter match for
        every PUBLISH before its `on_message` (measured: about two fifths of the network
        thread's time with one reading per message). A QoS 0 or 1 message without properties
        needs none of it with manual acknowledgement: paho would only call `on_message`
        (we register no per-topic callbacks) and send no PUBACK itself. QoS 2 (which paho
        answers with PUBREC) and properties keep paho's path.
        """
        handler = self.on_plain_publish
        command = self._in_packet["command"]
        qos_bits = command & _QOS_BITS
        if (
            handler is not None
            and qos_bits in (_QOS_0, _QOS_1)
            and self._manual_ack
            and self._protocol == MQTTProtocolVersion.MQTTv5
        ):
            qos = qos_bits >> 1
            plain = plain_publish(self._in_packet["packet"], qos)
            if plain is not None:
                topic, payload, mid = plain
                handler(topic, payload, qos, mid, bool(command & _DUP_BIT))
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_publish()

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        """A plain PUBACK (Success, no properties) settles its message; any other to paho's.

        paho decodes every PUBACK into a `ReasonCode` and a `Properties` object (measured: a
        sixth of the network thread's time in the demo, which sends 300 QoS 1 setpoints a
        minute). A PUBACK of remaining length 2 is Success without properties (MQTT 5
        section 3.4.2.1), and with no `on_publish` callback paho would only do what follows:
        mark the message published and let the next queued one fly.
        """
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or len(packet) != 2 or self._on_publish is not None:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            message = self._out_messages.pop(mid, None)
            if message is None:  # not ours (a duplicate ack): paho ignores it too
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            message.info._set_as_published()
            if message.qos > 0:
                self._inflight_messages -= 1
                if self._max_inflight_messages > 0:
                    return self._update_inflight()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _update_inflight(self) -> MQTTErrorCode:
        """paho's: send queued messages while the in-flight window has room; skipped if none.

        paho walks every unacknowledged message on each acknowledgement to find the queued
        ones: 45,000 steps for a minute's 300 setpoints. When every outgoing message is
        already in flight (the count paho keeps), none is queued and the walk finds nothing.
        """
        if self._inflight_messages >= len(self._out_messages):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._update_inflight()

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: paho.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        """paho's: queue a packet for paho's thread, but wake that thread once per turn.

        paho writes a wake-up byte to its socket pair for every packet queued, so a dispatch
        of 300 setpoints cost 300 system calls, and woke paho's thread for nearly every one
        (each time taking the interpreter lock from the sending thread). One byte unread is
        enough: paho's thread writes every queued packet on the turn it wakes for
        (`loop_write`, which clears the flag before it writes).
        """
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        wake = self._sockpairW  # None while paho's own thread queues (`loop_misc`)
        if wake is not None and not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(BlockingIOError):
                wake.send(b"0")
        if (
            self._thread is None
            and self._on_socket_register_write is None
            and self._in_callback_mutex.acquire(False)
        ):
            # As paho: no network thread and no external loop, so write at once.
            self._in_callback_mutex.release()
            return self.loop_write()
        self._call_socket_register_write()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_write(self) -> MQTTErrorCode:
        """paho's; first clears `_wake_pending`: a packet queued from now on wakes again."""
        self._wake_pending = False
        return super().loop_write()

    def queue_ack(self, connection: int, mid: int) -> None:
        """Acknowledge a QoS 1 message from any thread; paho's thread sends it on its next turn.

        paho's own `ack()` from another thread costs two system calls per message (a wake-up
        byte on its socket pair here, then the PUBACK), each handing the interpreter lock to
        another thread; with one reading per message that was a large part of the cost. Here
        a batch of acks costs one wake-up, and paho's thread queues them all at once.
        """
        with self._acks_lock:
            first = not self._acks
            self._acks.append((connection, mid))
        if first:
            self._wake()

    def _wake(self) -> None:
        wake = self._sockpairW  # None for a moment while paho's thread sends acks: it is awake
        if wake is not None:
            # What paho itself writes there to end its select() early. An error: closing
            # down, or the pair is full of wake-ups already.
            with contextlib.suppress(OSError):
                wake.send(b"0")

    def round_trip(self) -> threading.Event:
        """A PINGREQ after everything queued so far; the event is set when it is answered.

        The broker handles a connection's packets in order, so its PINGRESP means it has
        taken every PUBACK written before. Closing the connection right after the last write
        instead lost acknowledgements still unread on the broker's side (measured: hundreds of
        2,300, which came back to the next session as redeliveries).
        """
        pong = self._pong = threading.Event()
        self._ping_wanted = True
        self._wake()
        return pong

    def _handle_pingresp(self) -> MQTTErrorCode:
        rc = super()._handle_pingresp()
        pong = self._pong
        if pong is not None and not self._ping_wanted:
            if self._pings_ahead:  # a keep-alive ping's answer, sent before ours
                self._pings_ahead -= 1
            else:
                pong.set()
        return rc

    @property
    def acks_pending(self) -> bool:
        """True while queued acknowledgements have not been handed to paho yet."""
        # In this order: `loop_misc` sets the flag before it empties the list.
        return bool(self._acks) or self._handing_over

    def loop_misc(self) -> MQTTErrorCode:
        """Hand paho the acknowledgements queued since its last turn, then its housekeeping."""
        # Every turn of paho's loop ends here: whatever was queued before is written on the
        # next (its select() waits for the socket while `want_write()`), so a stuck flag
        # costs one turn at most.
        self._wake_pending = False
        if self._acks:
            with self._acks_lock:
                # Set first: `acks_pending` must not see an empty list before the hand-over.
                self._handing_over = True
                acks, self._acks = self._acks, []
            current = self.connection_number
            # A message id belongs to its connection: after a reconnect the broker
            # redelivers the message under an id that may now name another one.
            mids = [mid for connection, mid in acks if connection == current]
            # In paho's own thread: no wake-up needed (its next turn writes what is queued).
            wake, self._sockpairW = self._sockpairW, None
            try:
                # Many PUBACKs as one queued write: paho sends each queued packet with its own
                # send(), a system call (and the loopback's delivery) per message otherwise.
                for start in range(0, len(mids), ACKS_PER_WRITE):
                    chunk = mids[start : start + ACKS_PER_WRITE]
                    packet = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in chunk])
                    self._packet_queue(paho.PUBACK, packet, 0, 1)
            finally:
                self._handing_over = False  # queued by now: paho's `want_write()` says so
                if self._sockpairW is None:
                    self._sockpairW = wake
            if self._acks:  # queued while the wake-up was away: come back at once
                self._wake()
        if self.hang_up_wanted:
            # Outside packet handling: close the socket as a lost connection, so that paho's
            # loop reconnects (with backoff) to the same session.
            self.hang_up_wanted = False
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if self._ping_wanted:  # after the acks above: the broker answers it after them
            self._pings_ahead = 1 if self._ping_t else 0  # paho's keep-alive ping in flight
            self._ping_wanted = False
            self._send_pingreq()
        return super().loop_misc()

    def _create_socket(self) -> Any:
        return _ReadAheadSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Run the read step of paho again while the buffer holds more packets (bounded).

        paho reads one packet per turn of its loop with QoS 1 traffic (its count covers only
        outgoing and QoS 2 messages), and each turn costs a select() and its bookkeeping:
        measured at about a tenth of a process's time with one reading per message. The
        packets are paho's own `_packet_read` calls, in order; nothing else changes.
        """
        rc = super().loop_read(max_packets)
        for _ in range(PACKETS_PER_TURN):
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, _ReadAheadSocket):
                break
            if not sock.buffered:
                break
            rc = super().loop_read(max_packets)
        return rc


class MqttSession:
    """A reconnecting MQTT 5 client for one broker, with late acknowledgement.

    Parameters
    ----------
    settings
        the `mqtt` section of the configuration.
    subscriptions
        topic filters to (re)subscribe on every connect, QoS 1.
    on_message
        called on paho's network thread for every message; must be quick.
    client_id_suffix
        appended to the configured client id (several instances).
    """

    def __init__(
        self,
        settings: Mqtt,
        subscriptions: list[str],
        on_message: MessageHandler,
        *,
        client_id_suffix: str = "",
    ) -> None:
        self._settings = settings
        self._subscriptions = [self._shared(topic) for topic in subscriptions]
        self._on_message = on_message
        self._connected = threading.Event()
        self._stopping = False
        self._unreachable_logged = False
        self._client_id = settings.client_id + client_id_suffix
        self._thread: threading.Thread | None = None
        self._connections = 0
        self._next_mid: int | None = None  # the broker's next new QoS 1 packet id, if known
        self._last_gap_reconnect = -math.inf
        self._gap_interval_s = GAP_RECONNECT_INTERVAL_S  # see GAP_RECONNECT_MAX_INTERVAL_S
        self.packet_id_gaps = 0  # gaps seen (see `_note_packet_id`)
        self._missing: set[int] = set()  # ids skipped, not yet received again
        self._missing_at_hang_up = 0  # how many were missing when we last hung up for them
        self._retry_pending = False  # a reconnect brought some of them back, not all
        client = _Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls.enabled:
            client.tls_set(
                ca_certs=str(settings.tls.ca_file) if settings.tls.ca_file else None,
                certfile=str(settings.tls.cert_file) if settings.tls.cert_file else None,
                keyfile=str(settings.tls.key_file) if settings.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(settings.tls.insecure)
        client.reconnect_delay_set(
            min_delay=max(1, round(settings.reconnect_min_s)),
            max_delay=max(1, round(settings.reconnect_max_s)),
        )
        # Outgoing (setpoints, rejections): never drop a queued publish while reconnecting.
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_connect_fail = self._handle_connect_fail
        client.on_message = self._handle_message
        client.on_plain_publish = self._handle_plain_publish
        client.on_subscribe = self._handle_subscribe
        self._client = client

    def _shared(self, topic: str) -> str:
        group = self._settings.shared_group
        return f"$share/{group}/{topic}" if group else topic

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._connected.is_set()

    @property
    def connections(self) -> int:
        """Successful connects so far; the number of the current (or last) connection."""
        return self._connections

    @property
    def network_alive(self) -> bool:
        """False once paho's network thread has ended while we did not ask it to (watchdog)."""
        return self._stopping or (self._thread is not None and self._thread.is_alive())

    def start(self) -> None:
        """Connect in the background; paho's thread reconnects with backoff until `stop()`."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._settings.session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        host = self._settings.host or "127.0.0.1"
        self._client.connect_async(
            host,
            self._settings.port,
            keepalive=self._settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        # paho forgets its thread when it ends; keep our own reference for `network_alive`.
        self._thread = self._client._thread

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected and subscribed (or the timeout passes); True if so."""
        return self._connected.wait(timeout)

    def ack(self, message: Message) -> None:
        """Acknowledge a QoS 1 message whose data is now durable (from any thread).

        Sent by paho's thread on its next turn, and only if the connection the message came
        in on is still the current one: after a reconnect the broker redelivers it, with an
        id that may name another message by then.
        """
        if message.qos > 0:
            self._client.queue_ack(message.connection, message.mid)

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Queue a publish; paho sends it now or after the next reconnect."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Disconnect cleanly; unacknowledged messages stay queued in our broker session."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        # Let acks and publishes already queued leave before we hang up.
        while (
            self._client.acks_pending or self._client.want_write()
        ) and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.connected:
            # Until the broker has read them: see `_Client.round_trip`.
            self._client.round_trip().wait(max(0.0, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            # Never echo credentials; the reason code says enough (e.g. "Not authorized").
            log.error("broker refused the connection: %s", reason_code)
            return
        self._unreachable_logged = False
        self._connections += 1
        self._next_mid = None  # a new connection: the first new message sets it
        self._client.connection_number = self._connections
        log.info(
            "connected to broker %s:%s (session %s)",
            self._settings.host or "127.0.0.1",
            self._settings.port,
            "resumed" if flags.session_present else "new",
        )
        if not flags.session_present:
            # Expected on the very first start only. Otherwise the broker lost our session
            # (expired, restarted without persistence, or crashed before its last autosave).
            log.warning(
                "the broker has no session for client id %r: telemetry published while we "
                "were away was not queued for us and may be lost (expected on the first start "
                "only; otherwise the session expired after mqtt.session_expiry_s=%d s or the "
                "broker lost its persistence, see README, Broker settings)",
                self._client_id,
                self._settings.session_expiry_s,
            )
        options = SubscribeOptions(qos=1)
        result, _ = client.subscribe([(topic, options) for topic in self._subscriptions])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("subscribe failed: %s", paho.error_string(result))

    def _handle_connect_fail(self, client: paho.Client, userdata: object) -> None:
        # Said at once, and once per outage: a wrong host must not look like a quiet city.
        if not self._unreachable_logged:
            self._unreachable_logged = True
            log.error(
                "cannot reach the broker at %s:%s; retrying with backoff",
                self._settings.host or "127.0.0.1",
                self._settings.port,
            )

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [
            topic
            for topic, code in zip(self._subscriptions, reason_codes, strict=False)
            if code.is_failure
        ]
        for topic in refused:
            log.error("broker refused the subscription to %s", topic)
        # Ready only now: a message published before the SUBACK would not reach a new session.
        log.info("subscribed to %d topic filters", len(self._subscriptions) - len(refused))
        self._connected.set()

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("lost the broker (%s); reconnecting with backoff", reason_code)

    def _handle_plain_publish(
        self, topic: str, payload: bytes, qos: int, mid: int, dup: bool
    ) -> None:
        """A QoS 0 or 1 message without properties (`_Client._handle_publish`), paho's thread."""
        if qos:
            self._note_packet_id(mid, dup)
        try:
            self._on_message(
                Message(topic, payload, qos, mid, time.monotonic(), dup, self._connections)
            )
        except Exception:
            # As in `_handle_message`: contained, and acknowledged so it is not redelivered.
            log.exception("message handler failed on a message of %d bytes", len(payload))
            if qos:
                self._client.ack(mid, 1)

    def _note_packet_id(self, mid: int, dup: bool) -> None:
        """Watch the broker's packet ids for a gap, and reconnect when there is one.

        Mosquitto numbers the QoS 1 messages it sends one client consecutively (1 to 65535,
        then 1 again). It also drops packets from its write queue to a client that reads
        slowly once `max_queued_messages` wait there (2.0.11 here, with Debian's fix of
        CVE-2023-28366; upstream since 2.0.16), PUBLISH packets it already counts as in
        flight among them, and on a live connection it never sends those again (MQTT 5
        resends only on a reconnect): they wait in our session, and once Receive Maximum of
        them are stuck, nothing comes at all. A new message whose id is not the next one
        shows that gap; a reconnect makes the broker send what it holds again (redeliveries
        keep their first receive time, `gridcoord/ingest/inflight.py`). Measured and
        reproduced in docs/performance.md ("The stall"). Redeliveries (DUP) keep their old
        ids and are not counted.
        """
        missing = self._missing
        missing.discard(mid)
        if dup:
            return
        expected, self._next_mid = self._next_mid, mid % 65535 + 1
        if expected is not None and mid != expected:
            self.packet_id_gaps += 1
            skipped = (mid - expected) % 65535
            missing.update((expected + i - 1) % 65535 + 1 for i in range(skipped))
        elif not missing:
            return  # in sequence, nothing outstanding
        elif expected is None:
            # The first new message since a reconnect: the broker has resent what it holds.
            if len(missing) >= self._missing_at_hang_up:
                # None of them came: the broker does not hold them (dropped for good: a full
                # session queue, an expiry; or a broker whose ids are not consecutive).
                self._gap_interval_s = min(2 * self._gap_interval_s, GAP_RECONNECT_MAX_INTERVAL_S)
                log.warning(
                    "%d skipped packet ids did not come again after a reconnect; not retrying "
                    "them, and the next gap reconnects %.0f s after this one at the earliest",
                    len(missing),
                    self._gap_interval_s,
                )
                missing.clear()
                self._retry_pending = False
                return
            self._gap_interval_s = GAP_RECONNECT_INTERVAL_S  # the reconnect brought some back
            self._retry_pending = True  # some came, others were dropped again: once more
        elif not self._retry_pending:
            return
        # A gap now, or skipped ids that a reconnect did not all bring again (a broker
        # resends before it sends anything new, so it dropped some once more resending).
        now = time.monotonic()
        if not self._settings.reconnect_on_id_gap:
            return
        if now - self._last_gap_reconnect < self._gap_interval_s:
            return
        self._last_gap_reconnect = now
        self._missing_at_hang_up = len(missing)
        self._retry_pending = False
        log.warning(
            "the broker skipped %d packet ids (before %d): messages it counts as sent to us "
            "did not arrive (Mosquitto drops packets queued to a slow reader beyond its "
            "max_queued_messages); reconnecting so that it sends them again",
            len(missing),
            mid,
        )
        self._client.hang_up_wanted = True

    def _handle_message(
        self, client: paho.Client, userdata: object, message: paho.MQTTMessage
    ) -> None:
        if message.qos == 1:
            self._note_packet_id(message.mid, bool(message.dup))
        try:
            received = Message(
                message.topic,
                bytes(message.payload),
                message.qos,
                message.mid,
                time.monotonic(),
                bool(message.dup),
                self._connections,
            )
            self._on_message(received)
        except Exception:
            # The handler gives every message its verdict; this is the last line of defence:
            # an exception escaping here would end paho's network thread and make us deaf.
            # Acknowledged, so that the broker does not hand it back to us again and again.
            log.exception("message handler failed on a message of %d bytes", len(message.payload))
            if message.qos > 0:
                client.ack(message.mid, message.qos)
