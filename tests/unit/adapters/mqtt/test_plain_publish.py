"""The plain-publish path decodes a PUBLISH exactly as paho does, or leaves it to paho."""

from __future__ import annotations

import struct

from hypothesis import example, given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt.client import plain_publish

# PUBLISH, no DUP, no retain, by QoS.
HEADER = {0: 0x30, 1: 0x32}


def _properties(expiry: int | None, user: tuple[str, str] | None) -> bytes:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry is not None:
        properties.MessageExpiryInterval = expiry
    if user is not None:
        properties.UserProperty = user
    packed: bytes = properties.pack()  # type: ignore[no-untyped-call]
    return packed


def _body(topic: bytes, qos: int, mid: int, properties: bytes, payload: bytes) -> bytes:
    """A PUBLISH after its fixed header (MQTT 5 section 3.3.2), as a broker sends it.

    The packet id is there at QoS 1 only; ``mid`` is 0 at QoS 0.
    """
    packet_id = struct.pack("!H", mid) if qos else b""
    return struct.pack("!H", len(topic)) + topic + packet_id + properties + payload


@given(
    topic=st.one_of(
        st.text(max_size=60).map(lambda t: t.encode("utf-8")),
        st.binary(max_size=20),  # often not UTF-8
    ),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(1, 65535),
    expiry=st.none() | st.integers(0, 2**32 - 1),
    user=st.none() | st.tuples(st.text(max_size=5), st.text(max_size=5)),
    payload=st.binary(max_size=300),
)
# A user property with U+0000, which paho refuses: hypothesis found it once in a gate run.
@example(topic=b"t/a", qos=1, mid=1, expiry=None, user=("a\x00", "b"), payload=b"x")
@example(topic=b"t/a", qos=0, mid=1, expiry=None, user=("a\x00", "b"), payload=b"x")
def test_it_decodes_as_paho_or_leaves_the_packet_to_paho(
    topic: bytes,
    qos: int,
    mid: int,
    expiry: int | None,
    user: tuple[str, str] | None,
    payload: bytes,
) -> None:
    mid = mid if qos else 0
    packet = _body(topic, qos, mid, _properties(expiry, user), payload)
    plain = plain_publish(packet, qos)
    try:
        paho = _packet.decode_publish(HEADER[qos], packet, MQTTProtocolVersion.MQTTv5)
    except MalformedPacket:
        # paho refuses a user property with U+0000 (MQTT 5 section 1.5.4): such a packet
        # must reach paho's decoder and its refusal, never bypass it on the plain path.
        assert plain is None
        return
    try:
        text: str | None = paho.topic.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    has_properties = expiry is not None or user is not None
    if has_properties or not topic or text is None:
        assert plain is None  # paho's decoder and handler take it, properties and all
        return
    # Every other packet takes this path, and gets what paho would have made of it.
    assert plain == (text, paho.payload, paho.mid)
    assert paho.properties is not None and not paho.properties.json()  # type: ignore[no-untyped-call]


@given(packet=st.binary(max_size=12), qos=st.sampled_from([0, 1]))
def test_a_short_or_garbled_packet_never_raises(packet: bytes, qos: int) -> None:
    plain = plain_publish(packet, qos)
    if plain is not None:
        topic, payload, mid = plain
        assert _body(topic.encode("utf-8"), qos, mid, b"\x00", payload) == packet


def test_a_payload_that_starts_like_properties_is_the_payload() -> None:
    packet = _body(b"t/a", 1, 7, b"\x00", b"\x02\x00\x00\x00\x05{}")
    assert plain_publish(packet, 1) == ("t/a", b"\x02\x00\x00\x00\x05{}", 7)


def test_a_qos0_packet_has_no_packet_id() -> None:
    # Read as QoS 1, "\\x00{" would be the packet id and "}" the property length.
    packet = _body(b"t/a", 0, 0, b"\x00", b"{}")
    assert plain_publish(packet, 0) == ("t/a", b"{}", 0)
    assert plain_publish(packet, 1) is None  # read as QoS 1: "{" would be a property length
