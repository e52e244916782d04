"""Unacknowledged QoS 1 messages: first receive time, and one PUBACK however often delivered.

A reading without ``ts`` is stamped with the time gridcoord received it. The broker resends
every message we have not acknowledged when the connection comes back (a broker restart, a
network cut); stamped anew, the copy would be a second point in the store (issue 9: 308
duplicates in 30,000). MQTT keeps a message's packet identifier across redeliveries (MQTT 5
section 4.4: "using their original Packet Identifiers"), sets DUP on them, and does not reuse
an identifier before our PUBACK. So this table keeps, per packet id, the last message that
carried it (a hash of topic and payload), its first receive time, how many of its copies are
still on their way to the store, and the connection on which we acknowledged it:

- a copy of a message still unacknowledged gets the first receive time; the PUBACK goes out
  once, when the last copy is durable. (A second PUBACK with the same packet id would
  acknowledge whichever newer message the broker had given that id meanwhile, unstored.)
- a DUP copy of a message we acknowledged on this connection crossed our PUBACK (the broker
  resends at once on reconnect): same receive time, no second PUBACK.
- a DUP copy of a message we acknowledged on an earlier connection means that PUBACK was lost
  with it: same receive time, and acknowledged again once durable.
- anything else is a new message (even with the same content: a meter may repeat itself).

Bounds: one entry per packet id, so at most 65,535, each a hash, a time and two integers.
Not covered: a restart of gridcoord forgets the table, so a reading without ``ts`` that was
stored but not yet acknowledged when gridcoord crashed is stored once more after the restart
(the window is one batch write); a reading with ``ts`` never is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

# What `durable` needs to find a delivery's entry: (packet id, hash of topic and payload).
Token = tuple[int, int]


@dataclass(slots=True)
class _Entry:
    identity: int
    first_received: datetime
    copies: int  # deliveries received and not yet durable
    acked_on: int | None  # the connection our PUBACK went out on, None while unacknowledged


class InFlight:
    """The QoS 1 messages of one MQTT session by packet id.

    `receive` runs on the MQTT network thread; `durable` on the ingest writer thread (or on
    the network thread for a rejected message). Connections are numbered by the caller, one
    more for each successful connect.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self.redelivered = 0  # copies that got the receive time of an earlier delivery

    def receive(
        self,
        mid: int,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        dup: bool,
        connection: int,
        now: datetime,
    ) -> tuple[datetime, Token | None]:
        """Register one delivery; return its receive time and the token for `durable`.

        Parameters
        ----------
        mid
            the packet identifier.
        topic, payload
            the message's content (a packet id alone is reused after a PUBACK).
        qos
            QoS 0 messages are never redelivered: `now` and no token.
        dup
            the broker's DUP flag (it sent this message before).
        connection
            the number of the connection it arrived on.
        now
            this delivery's receive time, aware UTC.
        """
        if qos == 0:
            return now, None
        identity = hash((topic, payload))
        token = (mid, identity)
        with self._lock:
            entry = self._entries.get(mid)
            same = entry is not None and entry.identity == identity
            if entry is not None and same and (entry.acked_on is None or dup):
                if entry.acked_on is not None and entry.acked_on != connection:
                    entry.acked_on = None  # that PUBACK was lost with its connection
                entry.copies += 1
                self.redelivered += 1
                return entry.first_received, token
            self._entries[mid] = _Entry(identity, now, 1, None)
        return now, token

    def durable(self, token: Token | None, connection: int) -> bool:
        """One delivery is stored or rejected; True when its PUBACK is to be sent now.

        Parameters
        ----------
        token
            what `receive` returned for the delivery.
        connection
            the number of the connection the PUBACK would go out on.
        """
        if token is None:
            return False
        mid, identity = token
        with self._lock:
            entry = self._entries.get(mid)
            if entry is None or entry.identity != identity:
                return True  # not ours to track (a protocol violation): acknowledge as is
            entry.copies -= 1
            if entry.acked_on is not None or entry.copies > 0:
                return False
            entry.acked_on = connection
            return True

    def __len__(self) -> int:
        """The number of packets not yet acknowledged."""
        with self._lock:
            return len(self._entries)
