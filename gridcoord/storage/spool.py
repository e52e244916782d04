"""A bounded, crash-safe on-disk FIFO of point batches for while the store is away.

Layout: one file per batch, ``<20-digit sequence>.batch`` in the spool directory. A batch is
written to a temporary file, fsync'd, renamed into place and the directory fsync'd, so after a
crash a batch is either wholly there or not there; leftover temporary files are removed on
open. The oldest batch is deleted only when the caller acknowledges it (after the store took
it), so a crash between write and acknowledgement replays the batch once more: InfluxDB and the
embedded store overwrite a point with the same series and time, so a replay is harmless.

File format: a fixed header (magic, point count, CRC-32 and length of the body), then the body:
zlib-compressed JSON list of line-protocol strings (`Point.to_line`). Line protocol keeps the
spool independent of Python types; JSON around it keeps string fields with line breaks intact;
compression makes a 10 min outage at 20,000 readings/s fit the default 1 GiB bound.

Bound: `append` raises `SpoolFull` when the batch would take the spool above ``max_bytes`` (or
the disk is full). Nothing already spooled is ever dropped to make room; the caller applies
back-pressure (stops taking new readings, so MQTT QoS 1 messages stay with the broker) until
the store returns.

A damaged batch file (bad header or checksum: disk trouble, not our crashes) is moved to
``quarantine/`` with an error log, never silently deleted, and replay continues after it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

from gridcoord.storage.points import Point, parse_lines

log = logging.getLogger(__name__)

_MAGIC = b"GCSPOOL1"
_HEADER = struct.Struct(">8sIIQ")  # magic, point count, crc32 of body, body length [bytes]
_SUFFIX = ".batch"
_TMP_SUFFIX = ".tmp"
_SEQ_DIGITS = 20


class SpoolFull(Exception):
    """The spool reached its size bound; the caller must slow down, not drop data."""


class Spool:
    """Append-only FIFO of batches on disk, bounded in size, safe to use from several threads.

    Parameters
    ----------
    directory
        where batch files live; created if missing.
    max_bytes
        upper bound of all batch files together [bytes].
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        # Owner-only: spooled readings are household data (docs/data-protection.md).
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # seq → (file size [bytes], point count), oldest first (dicts keep insertion order).
        self._index: dict[int, tuple[int, int]] = {}
        self._bytes = 0
        self._points = 0
        self._next_seq = 0
        self._peeked: tuple[int, list[Point]] | None = None
        self._recover()

    @property
    def bytes_used(self) -> int:
        """Size of all waiting batch files [bytes]."""
        return self._bytes

    @property
    def batches_pending(self) -> int:
        """Number of waiting batches."""
        return len(self._index)

    @property
    def points_pending(self) -> int:
        """Number of points in all waiting batches."""
        return self._points

    def append(self, points: Sequence[Point]) -> None:
        """Store a batch durably (fsync'd) behind all earlier ones; empty batches are ignored.

        Raises
        ------
        SpoolFull
            the batch does not fit under ``max_bytes``, or the disk is full;
            nothing was written.
        ValueError
            a point line protocol cannot carry (see `Point.to_line`).
        OSError
            another disk failure; nothing was written.
        """
        if not points:
            return
        body = zlib.compress(json.dumps([p.to_line() for p in points]).encode(), 1)
        header = _HEADER.pack(_MAGIC, len(points), zlib.crc32(body), len(body))
        size = len(header) + len(body)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                raise SpoolFull(
                    f"spool {self.directory} is full ({self._bytes} of {self.max_bytes} bytes, "
                    f"{len(self._index)} batches): {len(points)} points not accepted"
                )
            seq = self._next_seq
            final = self._path(seq)
            temporary = final.with_suffix(_TMP_SUFFIX)
            try:
                with temporary.open("wb") as handle:
                    handle.write(header)
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, final)
                self._fsync_directory()
            except OSError as exc:
                temporary.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    # A full disk is a full spool: the caller holds back, nothing is dropped.
                    raise SpoolFull(
                        f"spool {self.directory}: disk full: {len(points)} points not accepted"
                    ) from None
                raise
            self._next_seq = seq + 1
            self._index[seq] = (size, len(points))
            self._bytes += size
            self._points += len(points)

    def peek_oldest(self) -> list[Point] | None:
        """Return the points of the oldest waiting batch in append order, without removing it.

        Returns None when the spool is empty. Peeking again before `ack_oldest` returns the same
        batch without reading the disk again.
        """
        with self._lock:
            while self._index:
                seq = next(iter(self._index))
                if self._peeked is not None and self._peeked[0] == seq:
                    return self._peeked[1]
                points = self._read(seq)
                if points is not None:
                    self._peeked = (seq, points)
                    return points
                self._forget(seq)  # quarantined; go on with the next batch
            return None

    def ack_oldest(self) -> None:
        """Delete the oldest batch: the store has taken it. Does nothing when empty."""
        with self._lock:
            if not self._index:
                return
            seq = next(iter(self._index))
            self._path(seq).unlink(missing_ok=True)
            self._forget(seq)

    def _forget(self, seq: int) -> None:
        size, count = self._index.pop(seq)
        self._bytes -= size
        self._points -= count
        if self._peeked is not None and self._peeked[0] == seq:
            self._peeked = None

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:0{_SEQ_DIGITS}d}{_SUFFIX}"

    def _read(self, seq: int) -> list[Point] | None:
        path = self._path(seq)
        try:
            data = path.read_bytes()
            magic, count, crc, length = _HEADER.unpack_from(data)
            body = data[_HEADER.size :]
            if magic != _MAGIC or len(body) != length or zlib.crc32(body) != crc:
                raise ValueError("bad header or checksum")
            points = parse_lines(json.loads(zlib.decompress(body)))
            if len(points) != count:
                raise ValueError("point count does not match the header")
            return points
        except (OSError, ValueError, struct.error, zlib.error) as exc:
            self._quarantine(path, exc)
            return None

    def _quarantine(self, path: Path, exc: Exception) -> None:
        target = self.directory / "quarantine"
        target.mkdir(exist_ok=True)
        log.error("spool batch %s is damaged (%s); moved to %s", path.name, exc, target)
        try:
            os.replace(path, target / path.name)
        except OSError:
            log.exception("could not move damaged spool batch %s", path.name)

    def _recover(self) -> None:
        """Rebuild the index from the directory after a (re)start."""
        for leftover in self.directory.glob(f"*{_TMP_SUFFIX}"):
            leftover.unlink()  # an append that never completed; its caller saw it fail
        found: list[tuple[int, Path]] = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            if path.stem.isdigit():
                found.append((int(path.stem), path))
        found.sort()
        for seq, path in found:
            size = path.stat().st_size
            count = 0
            with path.open("rb") as handle:
                head = handle.read(_HEADER.size)
            if len(head) == _HEADER.size:
                magic, count, _, _ = _HEADER.unpack(head)
                if magic != _MAGIC:
                    count = 0  # quarantined when it is peeked
            self._index[seq] = (size, count)
            self._bytes += size
            self._points += count
        self._next_seq = found[-1][0] + 1 if found else 0
        if found:
            log.info(
                "spool %s holds %d batches (%d points) from before the restart",
                self.directory,
                len(self._index),
                self._points,
            )

    def _fsync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
