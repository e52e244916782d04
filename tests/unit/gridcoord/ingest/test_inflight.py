"""InFlight: redeliveries keep their first receive time; one PUBACK per message and connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.ingest.inflight import InFlight

T1 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
T2 = T1 + timedelta(seconds=7)
T3 = T1 + timedelta(seconds=30)


def test_a_copy_before_the_ack_gets_the_first_time_and_one_puback_for_both() -> None:
    table = InFlight()
    first, a = table.receive(5, "t", b"{}", qos=1, dup=False, connection=1, now=T1)
    again, b = table.receive(5, "t", b"{}", qos=1, dup=True, connection=2, now=T2)
    assert first == again == T1
    assert table.durable(a, 2) is False  # a copy is still on its way
    assert table.durable(b, 2) is True
    assert table.redelivered == 1


def test_a_copy_that_crossed_our_puback_on_this_connection_is_not_acked_again() -> None:
    table = InFlight()
    _, a = table.receive(5, "t", b"{}", qos=1, dup=False, connection=2, now=T1)
    assert table.durable(a, 2) is True
    when, b = table.receive(5, "t", b"{}", qos=1, dup=True, connection=2, now=T2)
    assert when == T1
    assert table.durable(b, 2) is False


def test_a_copy_after_a_puback_lost_with_its_connection_is_acked_again() -> None:
    table = InFlight()
    _, a = table.receive(5, "t", b"{}", qos=1, dup=False, connection=1, now=T1)
    assert table.durable(a, 1) is True  # this PUBACK never reached the broker
    when, b = table.receive(5, "t", b"{}", qos=1, dup=True, connection=2, now=T2)
    assert when == T1
    assert table.durable(b, 2) is True


def test_the_same_content_on_a_reused_packet_id_is_a_new_message() -> None:
    table = InFlight()
    _, a = table.receive(5, "t", b'{"power_w": 0}', qos=1, dup=False, connection=1, now=T1)
    assert table.durable(a, 1)
    when, b = table.receive(5, "t", b'{"power_w": 0}', qos=1, dup=False, connection=1, now=T3)
    assert when == T3  # a meter repeating itself is a second reading
    assert table.durable(b, 1)
    assert table.redelivered == 0


def test_qos0_is_not_tracked() -> None:
    table = InFlight()
    when, token = table.receive(0, "t", b"{}", qos=0, dup=False, connection=1, now=T1)
    assert when == T1 and token is None and not table.durable(token, 1) and len(table) == 0


# One message's life: deliveries (DUP after the first) on growing connection numbers, each
# made durable at some later point, interleaved at random.
events = st.lists(st.sampled_from(["deliver", "durable", "reconnect"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(events=events)
def test_every_copy_gets_the_first_time_and_each_connection_sees_at_most_one_puback(
    events: list[str],
) -> None:
    table = InFlight()
    connection = 1
    pending: list[tuple[int, int] | None] = []
    acks: list[int] = []
    times: set[datetime] = set()
    now = T1
    delivered = False
    for event in events:
        now += timedelta(seconds=1)
        if event == "reconnect":
            connection += 1
        elif event == "deliver":
            when, token = table.receive(
                9, "t", b"x", qos=1, dup=delivered, connection=connection, now=now
            )
            delivered = True
            times.add(when)
            pending.append(token)
        elif pending and table.durable(pending.pop(0), connection):
            acks.append(connection)
    assert len(times) <= 1  # the one receive time of the first delivery
    assert len(acks) == len(set(acks))  # never two PUBACKs for it on one connection
    if delivered and not pending:
        assert acks, "a message whose copies are all durable was acknowledged"
    assert len(table) <= 1  # one entry per packet id
