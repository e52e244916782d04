"""The ingest pipeline: accepted readings → batches → store, or the disk spool while it is away.

One worker thread owns the store. Readings wait in a bounded in-memory queue; the worker takes
up to `batch_size` of them (or whatever arrived within `flush_interval_s`) and writes them. If the
store is unavailable the batch goes to the spool on disk instead, and the spool is replayed,
oldest first, before any new batch once the store answers again, so the store sees readings in
the order they were accepted. Each reading's `on_durable` callback (the MQTT acknowledgement)
runs only once it is in the store or the spool: a crash at any moment loses nothing that was
acknowledged. When memory and spool are both full, `submit` blocks; the MQTT client then stops
reading, and the broker keeps the messages in our session (back-pressure, not loss).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.contract.reading import Reading, ReadingRows, Row
from gridcoord.ingest.backoff import Backoff
from gridcoord.storage.base import Store, StoreRejected, StoreUnavailable
from gridcoord.storage.points import Point, reading_to_point
from gridcoord.storage.spool import Spool, SpoolFull

log = logging.getLogger(__name__)

DurableCallback = Callable[[], None]


@dataclass
class IngestStats:
    """Counters an operator reads in logs and the API; monotonic since start.

    ``accepted`` counts every point taken into a batch; of those, ``telemetry`` are the
    devices' readings and ``own_points`` what the service writes itself (plans, setpoints,
    audit entries), so neither hides the other in the stats line. The other counters are over
    all points.
    """

    accepted: int = 0
    telemetry: int = 0
    own_points: int = 0
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dead_lettered: int = 0
    store_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int) -> None:
        """Add ``amount`` to the counter ``name`` (thread-safe)."""
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        """Every counter at one instant."""
        with self.lock:
            return {
                "accepted": self.accepted,
                "written": self.written,
                "spooled": self.spooled,
                "replayed": self.replayed,
                "dead_lettered": self.dead_lettered,
                "store_failures": self.store_failures,
                "telemetry": self.telemetry,
                "own_points": self.own_points,
            }


def stats_line(stats: Mapping[str, int], rejected: Mapping[str, int]) -> str:
    """The service's periodic stats line: telemetry, then its own points, then the store.

    Parameters
    ----------
    stats
        `IngestStats.snapshot`.
    rejected
        rejected readings by reason.
    """
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()) if v)
    return (
        f"telemetry: {stats['telemetry']} readings accepted, {sum(rejected.values())} rejected"
        f"{f' ({reasons})' if reasons else ''}; own points (plans, setpoints, audit): "
        f"{stats['own_points']}; store: written {stats['written']}, spooled {stats['spooled']}, "
        f"replayed {stats['replayed']}, dead-lettered {stats['dead_lettered']}, "
        f"write failures {stats['store_failures']}"
    )


# One entry per message (its readings, in order) or per point; the callback of a message
# runs once all of its readings are durable. No tuple per reading.
_Item = tuple[Sequence[Reading] | Point, DurableCallback | None]


class IngestPipeline:
    """Batches readings into a store, spooling to disk while the store is unavailable.

    Parameters
    ----------
    store
        where points go; closed by `close()`.
    spool
        the durable FIFO used while the store is away.
    dead_letter
        file for batches the store refused as invalid (kept, never dropped).
    batch_size
        most points per write.
    flush_interval_s
        longest a point waits in memory before a write [s].
    max_queued
        readings held in memory before `submit` blocks.
    retry_min_s, retry_max_s
        backoff between attempts on an unavailable store [s].
    """

    def __init__(
        self,
        store: Store,
        spool: Spool,
        *,
        dead_letter: Path,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_queued: int = 200_000,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._store = store
        self._spool = spool
        self._dead_letter = dead_letter
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_queued = max_queued
        self._backoff = Backoff(retry_min_s, retry_max_s)
        self._failures_unlogged = 0
        self._last_failure_log = -math.inf
        self.stats = IngestStats()
        # The hot path (one call per MQTT message) is a locked list append; the writer swaps
        # the whole list out. A queue.Queue costs a condition notify per item.
        self._lock = threading.Lock()
        self._pending: list[_Item] = []
        self._queued = 0  # readings and points in `_pending` (entries hold many readings)
        self._space = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._submitted = 0
        self._durable = 0
        self._wake = threading.Event()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._worker.start()

    def submit(self, reading: Reading, on_durable: DurableCallback | None = None) -> None:
        """Accept a reading; `on_durable` runs once it is stored or spooled.

        Blocks while `max_queued` readings wait in memory (back-pressure). Thread-safe.
        """
        self._put((reading,), on_durable, 1)

    def submit_many(
        self, readings: Sequence[Reading], on_durable: DurableCallback | None = None
    ) -> None:
        """Accept the readings of one message; `on_durable` runs once, when all are durable.

        The readings enter the queue together and in order, and batches are persisted in
        queue order, so the callback rides on the last one. Blocks like `submit`; the queue
        may exceed `max_queued` by one message's readings.
        """
        if not readings:
            raise ValueError("submit_many needs at least one reading")
        self._put(readings, on_durable, len(readings))

    def submit_points(self, points: Sequence[Point]) -> None:
        """Accept already-built points (setpoints, plans); same guarantees as `submit`."""
        for point in points:
            self._put(point, None, 1)

    def _put(
        self, entry: Sequence[Reading] | Point, on_durable: DurableCallback | None, size: int
    ) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("pipeline is closed")
            while self._queued >= self._max_queued:
                self._space.wait()
            self._pending.append((entry, on_durable))
            self._queued += size
            self._submitted += size
            full = self._queued >= self._batch_size
        if full:
            self._wake.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is stored or spooled; True if it was."""
        with self._lock:
            target = self._submitted
            self._wake.set()
            return self._progress.wait_for(lambda: self._durable >= target, timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Drain: store or spool every accepted reading, stop the writer, close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._worker.join(timeout)
        if self._worker.is_alive():
            log.error("ingest writer did not finish within %.0f s", timeout)
            return
        self._store.close()

    @property
    def writer_alive(self) -> bool:
        """False once the writer thread has ended without being closed (watchdog)."""
        return self._closed or self._worker.is_alive()

    @property
    def store_available(self) -> bool:
        """False while writes are going to the spool."""
        return self._spool.batches_pending == 0

    # -- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = self._flush_interval_s
            if self._spool.batches_pending:
                # Come back in time for the next replay attempt.
                timeout = min(timeout, max(0.01, self._backoff.next_attempt - time.monotonic()))
            self._wake.wait(timeout)
            self._wake.clear()
            with self._lock:
                items, self._pending, self._queued = self._pending, [], 0
                closing = self._closed
                self._space.notify_all()
            for batch in _batches(items, self._batch_size):
                self._persist(batch)
            if self._spool.batches_pending:
                self._replay(force=closing)
            if closing:
                with self._lock:
                    if not self._pending:
                        return

    def _persist(self, batch: list[_Item]) -> None:
        rows: list[Row] = []
        points: list[Point] = []
        for entry, _ in batch:
            if isinstance(entry, Point):
                points.append(entry)
            else:
                # Rows, not readings: the typed decoder's `ReadingRows` go to the store as
                # they are (no `Reading` per reading); other adapters' readings become rows.
                rows += ReadingRows.of(entry).rows
        readings = ReadingRows(rows)
        with self.stats.lock:
            self.stats.accepted += len(readings) + len(points)
            self.stats.telemetry += len(readings)
            self.stats.own_points += len(points)
        # Telemetry in one write straight from the readings; setpoints and plans (few) apart.
        for part, write in ((readings, self._store.write_readings), (points, self._store.write)):
            if part:
                self._hold_until_durable(part, write)
        for _, on_durable in batch:
            if on_durable is not None:
                on_durable()
        with self._lock:
            self._durable += len(readings) + len(points)
            self._progress.notify_all()

    def _hold_until_durable(
        self, part: Sequence[Reading] | list[Point], write: Callable[[Any], None]
    ) -> None:
        while True:
            try:
                self._write_or_spool(part, write)
                return
            except SpoolFull:
                # Neither store nor disk can take it: hold it, stop taking more, retry later.
                log.error("store unavailable and spool full: holding %d readings", len(part))
                wait = self._backoff.next_attempt - time.monotonic()
                time.sleep(min(max(wait, 0.05), 5.0))  # back-off wait, not synchronisation
                self._replay(force=False)

    def _write_or_spool(
        self, part: Sequence[Reading] | list[Point], write: Callable[[Any], None]
    ) -> None:
        if not self._spool.batches_pending and self._backoff.due(time.monotonic()):
            try:
                write(part)
            except StoreUnavailable as exc:
                self._store_failed(exc)
            except StoreRejected as exc:
                self._backoff.succeeded()  # it answered
                self._dead_letter_batch(_as_points(part), exc)
                return
            else:
                self._store_succeeded()
                self.stats.add("written", len(part))
                return
        # The rare path (the store is away): the spool keeps points' line protocol.
        points = _as_points(part)
        try:
            self._spool.append(points)
        except ValueError as exc:
            # Points line protocol cannot carry; only a bug upstream makes them. Keep the rest.
            bad = [point for point in points if not _carriable(point)]
            good = [point for point in points if _carriable(point)]
            self._dead_letter_batch(points, StoreRejected(str(exc), bad))
            self._spool.append(good)
            points = good
        self.stats.add("spooled", len(points))

    def _replay(self, *, force: bool) -> None:
        """Send spooled batches oldest first; at a failure, wait out the backoff and go on."""
        if not force and not self._backoff.due(time.monotonic()):
            return
        while (points := self._spool.peek_oldest()) is not None:
            try:
                self._store.write(points)
            except StoreUnavailable as exc:
                self._store_failed(exc)
                return
            except StoreRejected as exc:
                self._backoff.succeeded()  # it answered
                self._dead_letter_batch(points, exc)
            else:
                self._store_succeeded()
                self.stats.add("replayed", len(points))
            self._spool.ack_oldest()
            if self._spool.batches_pending == 0:
                log.info("store is back; spool replayed")

    def _store_failed(self, exc: StoreUnavailable) -> None:
        self.stats.add("store_failures", 1)
        now = time.monotonic()
        delay = self._backoff.failed(now)
        self._failures_unlogged += 1
        # One line a minute at most: a flaky store fails often, a log must stay readable.
        if now - self._last_failure_log >= 60.0:
            log.warning(
                "store unavailable (%s); spooling to disk, next attempt in %.1f s "
                "(%d failed writes since the last report)",
                exc,
                delay,
                self._failures_unlogged,
            )
            self._last_failure_log = now
            self._failures_unlogged = 0

    def _store_succeeded(self) -> None:
        self._backoff.succeeded()

    def _dead_letter_batch(self, points: Sequence[Point], exc: StoreRejected) -> None:
        """Keep what the store refused on disk for an operator; the rest of the batch is stored."""
        refused = exc.rejected or list(points)
        self._dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with self._dead_letter.open("a", encoding="utf-8") as handle:
            for point in refused:
                try:
                    line = point.to_line()
                except ValueError:
                    # Not even line protocol can carry it (e.g. a NaN from a bug upstream).
                    line = "# " + repr(point).replace("\n", " ")
                handle.write(line + "\n")
        self.stats.add("written", len(points) - len(refused))
        self.stats.add("dead_lettered", len(refused))
        log.error("store refused %d points (%s); kept in %s", len(refused), exc, self._dead_letter)


def _batches(items: list[_Item], size: int) -> list[list[_Item]]:
    """Consecutive runs of about `size` readings; a message's readings are never split."""
    batches: list[list[_Item]] = []
    current: list[_Item] = []
    count = 0
    for item in items:
        current.append(item)
        count += 1 if isinstance(item[0], Point) else len(item[0])
        if count >= size:
            batches.append(current)
            current, count = [], 0
    if current:
        batches.append(current)
    return batches


def _as_points(part: Sequence[Reading] | Sequence[Point]) -> list[Point]:
    return [item if isinstance(item, Point) else reading_to_point(item) for item in part]


def _carriable(point: Point) -> bool:
    try:
        point.to_line()
    except ValueError:
        return False
    return True
