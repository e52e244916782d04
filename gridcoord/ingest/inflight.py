"""Unacknowledged QoS 1 messages: first receive time, and one PUBACK however often delivered.

A reading without ``ts`` is stamped with the time gridcoord received it. The broker redelivers
every message we have not acknowledged when the connection comes back (a broker restart, a
network cut); stamped anew, the copy would be a second point in the store (issue 9: 308
duplicates in 30,000). MQTT keeps a message's packet identifier across redeliveries (MQTT 5
section 4.4: "using their original Packet Identifiers") and does not reuse it before our PUBACK,
so while a message is unacknowledged its packet id, topic and payload identify it. This table
keeps, per unacknowledged message, the first receive time and how many of its copies are still
on their way to the store: a redelivery gets the first time again (the store overwrites the
point with itself), and the PUBACK goes out once, when the last copy is durable. A second
PUBACK with the same packet id would acknowledge whichever newer message the broker had given
that id meanwhile, before it was stored.

Bounds: at most one entry per unacknowledged message (the broker sends at most our receive
maximum of them), each a hash, a time and a count. Not covered: a restart of gridcoord itself
forgets the table, so a reading without ``ts`` that was stored but not yet acknowledged when
gridcoord crashed is stored once more after the restart (the window is one batch write); a
reading with ``ts`` never is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

# A message's identity while unacknowledged: (packet id, hash of topic and payload).
Key = tuple[int, int]


@dataclass(slots=True)
class _Entry:
    first_received: datetime
    copies: int


class InFlight:
    """The unacknowledged QoS 1 messages of one MQTT session.

    `receive` runs on the MQTT network thread; `durable` on the ingest writer thread (or on
    the network thread for a rejected message).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}

    def receive(
        self, mid: int, topic: str, payload: bytes, qos: int, now: datetime
    ) -> tuple[datetime, Key | None]:
        """Register one delivery; return its receive time and the key to call `durable` with.

        Args:
            mid: the packet identifier.
            topic, payload: the message's content (a packet id alone is reused after an ack).
            qos: QoS 0 messages are never redelivered: `now` and no key.
            now: this delivery's receive time, aware UTC.
        """
        if qos == 0:
            return now, None
        key = (mid, hash((topic, payload)))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(now, 1)
                return now, key
            entry.copies += 1
            return entry.first_received, key

    def durable(self, key: Key | None) -> bool:
        """One copy is stored or rejected; True when the PUBACK is due (no copy left)."""
        if key is None:
            return False
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False  # already acknowledged
            entry.copies -= 1
            if entry.copies > 0:
                return False
            del self._entries[key]
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
