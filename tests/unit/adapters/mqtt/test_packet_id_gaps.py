"""When the session reconnects for a gap in the broker's packet ids, and when it gives up."""

from __future__ import annotations

import pytest

from adapters.mqtt.client import (
    GAP_RECONNECT_INTERVAL_S,
    GAP_RECONNECT_MAX_INTERVAL_S,
    MqttSession,
)
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


def test_a_broker_whose_ids_are_not_consecutive_is_reconnected_to_ever_more_rarely() -> None:
    """Each reconnect that brings nothing back doubles the wait, up to an hour."""
    session = _session()
    mid, intervals = 100, []
    for _ in range(12):
        _receive(session, mid, mid + 7)  # the broker numbers its messages in steps of 7
        assert session._client.hang_up_wanted
        _reconnected(session)
        mid += 50
        _receive(session, mid)  # none of the skipped ids come: they never existed
        intervals.append(session._gap_interval_s)
        mid += 50
    assert intervals[:3] == [
        2 * GAP_RECONNECT_INTERVAL_S,
        4 * GAP_RECONNECT_INTERVAL_S,
        8 * GAP_RECONNECT_INTERVAL_S,
    ]
    assert intervals[-1] == GAP_RECONNECT_MAX_INTERVAL_S


def test_within_the_interval_a_gap_does_not_hang_up() -> None:
    session = _session()
    _receive(session, 1, 5)
    assert session._client.hang_up_wanted
    session._client.hang_up_wanted = False
    session._next_mid = None  # reconnected, but just now: the rate limit holds
    _receive(session, 2, dup=True)  # 3 and 4 dropped again
    _receive(session, 9)
    assert not session._client.hang_up_wanted


def test_a_reconnect_that_brings_ids_back_resets_the_interval() -> None:
    session = _session()
    session._gap_interval_s = 8 * GAP_RECONNECT_INTERVAL_S
    _receive(session, 1, 5)
    _reconnected(session)
    _receive(session, 2, dup=True)
    _receive(session, 6)
    assert session._gap_interval_s == GAP_RECONNECT_INTERVAL_S
