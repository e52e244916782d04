"""When the session reconnects for a gap in the broker's packet ids, and when it gives up."""

from __future__ import annotations

import pytest

from adapters.mqtt.client import MqttSession
from adapters.mqtt.settings import Mqtt


def _session() -> MqttSession:
    return MqttSession(Mqtt(client_id="gc-gaps"), ["t/#"], lambda message: None)


def _receive(session: MqttSession, *mids: int, dup: bool = False) -> None:
    for mid in mids:
        session._note_packet_id(mid, dup)


def _reconnected(session: MqttSession) -> None:
    """What `_handle_connect` and `_Client.loop_misc` do around a reconnect."""
    session._client.hang_up_wanted = False
    session._next_mid = None
    session._last_gap_reconnect = float("-inf")  # the rate limit is not under test here


def test_consecutive_ids_across_the_wrap_are_no_gap() -> None:
    session = _session()
    _receive(session, 65533, 65534, 65535, 1, 2)
    assert session.packet_id_gaps == 0 and not session._client.hang_up_wanted


def test_a_gap_hangs_up_and_the_resent_ids_settle_it() -> None:
    session = _session()
    _receive(session, 10, 11, 15)  # 12, 13, 14 were dropped by the broker
    assert session.packet_id_gaps == 1 and session._client.hang_up_wanted
    _reconnected(session)
    _receive(session, 12, 13, 14, 15, dup=True)  # resent on the new connection
    _receive(session, 16, 17)
    assert not session._client.hang_up_wanted and not session._missing


def test_ids_dropped_again_while_resending_bring_another_reconnect() -> None:
    session = _session()
    _receive(session, 1, 5)
    _reconnected(session)
    _receive(session, 2, dup=True)  # 3 and 4 dropped once more
    _receive(session, 6)
    assert session._client.hang_up_wanted and session._missing == {3, 4}


@pytest.mark.parametrize("resent", [(), (7,)])
def test_ids_a_reconnect_does_not_bring_at_all_are_given_up(resent: tuple[int, ...]) -> None:
    session = _session()
    _receive(session, 1, 5)  # 2, 3, 4 gone for good (a full session queue, an expiry)
    if resent:  # a redelivery of something else does not count as progress
        _reconnected(session)
        _receive(session, *resent, dup=True)
    else:
        _reconnected(session)
    _receive(session, 6)
    assert not session._client.hang_up_wanted and not session._missing
