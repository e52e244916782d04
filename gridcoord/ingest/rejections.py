"""Counting rejected telemetry by reason, and telling integrators, rate-limited (DESIGN 3.2)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from adapters.contract.validation import Reason

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes], None]
MAX_TOPIC_ECHO = 200


class RejectionReporter:
    """Counts every rejection; publishes at most `per_second` notices, logs a periodic summary.

    Parameters
    ----------
    publish
        sends (topic, payload); None when no broker is attached (Modbus only).
    topic_prefix
        the contract's first topic level.
    per_second
        sustained notices per second (a burst of the same size is allowed).
    summary_every_s
        how often a non-empty summary is logged [s].
    """

    def __init__(
        self,
        publish: Publisher | None,
        topic_prefix: str,
        *,
        per_second: float = 10.0,
        summary_every_s: float = 60.0,
    ) -> None:
        self._publish = publish
        self._prefix = topic_prefix
        self._rate = per_second
        self._tokens = per_second
        self._last_refill = time.monotonic()
        self._summary_every_s = summary_every_s
        self._last_summary = time.monotonic()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._since_summary: Counter[str] = Counter()
        self.suppressed = 0

    def reject(self, asset_id: str, reason: Reason, detail: str, topic: str) -> None:
        """Count one rejection and, budget permitting, publish a notice about it."""
        with self._lock:
            self._counts[reason.value] += 1
            self._since_summary[reason.value] += 1
            send = self._take_token()
            summary = self._due_summary()
        if summary:
            log.warning("rejected telemetry in the last period: %s", summary)
        if self._publish is None:
            return
        if not send:
            self.suppressed += 1
            return
        notice = {"reason": reason.value, "topic": topic[:MAX_TOPIC_ECHO], "detail": detail}
        self._publish(f"{self._prefix}/rejected/{asset_id}", json.dumps(notice).encode())

    def counts(self) -> dict[str, int]:
        """Rejections since start, by reason code."""
        with self._lock:
            return dict(self._counts)

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._last_refill) * self._rate)
        self._last_refill = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _due_summary(self) -> str:
        now = time.monotonic()
        if now - self._last_summary < self._summary_every_s or not self._since_summary:
            return ""
        self._last_summary = now
        text = ", ".join(f"{k}={v}" for k, v in sorted(self._since_summary.items()))
        self._since_summary.clear()
        return text
