"""When to try an unavailable store again: back off per failure, recover on success.

Issue 9, defect 4: the delay used to double on every failure and return to its minimum only
once the whole spool was replayed. Against a store that fails a third of its writes the spool
then never empties, the delay sits at its maximum, and replay starves (25 writes in 4 minutes
while 1,000 readings/s arrived). Here every successful write resets the delay, so an
intermittent store costs one short pause per failure and replay keeps draining; only failures
in a row grow the delay, up to `max_s`, for a store that is really down.
"""

from __future__ import annotations


class Backoff:
    """Exponential backoff between attempts, reset by any success.

    Parameters
    ----------
    min_s
        the delay after a first failure [s].
    max_s
        the longest delay, after many failures in a row [s].
    """

    def __init__(self, min_s: float, max_s: float) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("need 0 < min_s <= max_s")
        self.min_s = min_s
        self.max_s = max_s
        self._delay = min_s
        self._next_attempt = 0.0
        self.failures_in_row = 0

    def failed(self, now: float) -> float:
        """Record a failure at `now` [s, monotonic]; return the delay until the next attempt [s]."""
        delay = self._delay
        self._next_attempt = now + delay
        self._delay = min(self._delay * 2, self.max_s)
        self.failures_in_row += 1
        return delay

    def succeeded(self) -> None:
        """Record a success: the next failure waits `min_s` again; try at once."""
        self._delay = self.min_s
        self._next_attempt = 0.0
        self.failures_in_row = 0

    def due(self, now: float) -> bool:
        """True when an attempt may be made at `now` [s, monotonic]."""
        return now >= self._next_attempt

    @property
    def next_attempt(self) -> float:
        """Earliest monotonic time of the next attempt [s]."""
        return self._next_attempt
