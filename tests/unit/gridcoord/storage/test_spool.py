"""The disk spool: FIFO order, nothing lost across reopen, bounded, damaged files quarantined."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gridcoord.storage.points import Point
from gridcoord.storage.spool import Spool, SpoolFull


def _batch(first: int, size: int) -> list[Point]:
    return [
        Point("telemetry", {"asset_id": f"pv-{i % 7}"}, {"power_w": float(i), "ok": True}, i)
        for i in range(first, first + size)
    ]


class SpoolMachine(RuleBasedStateMachine):
    """Random appends, acknowledgements and restarts against a deque of what must remain."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="spool-"))
        self.spool = Spool(self.directory, max_bytes=1 << 30)
        self.model: deque[list[Point]] = deque()
        self.counter = 0

    @rule(size=st.integers(min_value=1, max_value=40))
    def append(self, size: int) -> None:
        batch = _batch(self.counter, size)
        self.counter += size
        self.spool.append(batch)
        self.model.append(batch)

    @precondition(lambda self: bool(self.model))
    @rule()
    def ack(self) -> None:
        peeked = self.spool.peek_oldest()
        assert peeked == self.model[0]
        self.spool.ack_oldest()
        self.model.popleft()

    @rule()
    def reopen(self) -> None:
        self.spool = Spool(self.directory, max_bytes=1 << 30)

    @invariant()
    def oldest_and_counts_match(self) -> None:
        assert self.spool.batches_pending == len(self.model)
        assert self.spool.points_pending == sum(len(b) for b in self.model)
        peeked = self.spool.peek_oldest()
        assert peeked == (self.model[0] if self.model else None)

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


SpoolMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestSpoolFifo = SpoolMachine.TestCase


def test_full_spool_refuses_new_batches_and_keeps_old_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=2000)
    spool.append(_batch(0, 10))
    with pytest.raises(SpoolFull, match="full"):
        for first in range(10, 10_000, 10):
            spool.append(_batch(first, 10))
    kept = spool.batches_pending
    assert spool.bytes_used <= 2000
    assert spool.peek_oldest() == _batch(0, 10)
    spool.ack_oldest()
    spool.append(_batch(90_000, 10))  # room again after an acknowledgement
    assert spool.batches_pending == kept


def test_leftover_temporary_file_of_a_crashed_append_is_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_batch(0, 3))
    (tmp_path / "00000000000000000001.tmp").write_bytes(b"half a batch")
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.batches_pending == 1
    assert not list(tmp_path.glob("*.tmp"))
    reopened.append(_batch(3, 2))
    assert sorted(p.name for p in tmp_path.glob("*.batch")) == [
        "00000000000000000000.batch",
        "00000000000000000001.batch",
    ]


def test_damaged_batch_is_quarantined_and_replay_continues(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_batch(0, 3))
    spool.append(_batch(3, 3))
    first = tmp_path / "00000000000000000000.batch"
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    batch = reopened.peek_oldest()
    assert batch == _batch(3, 3)
    assert (tmp_path / "quarantine" / first.name).exists()
    assert reopened.batches_pending == 1


def test_strings_with_line_breaks_and_escapes_survive(tmp_path: Path) -> None:
    points = [Point("plan", {"schedule_id": "s 1,x=y"}, {"status": 'a\n"b"\\c'}, 1)]
    Spool(tmp_path, max_bytes=1 << 20).append(points)
    batch = Spool(tmp_path, max_bytes=1 << 20).peek_oldest()
    assert batch == points


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 30)

    def writer(offset: int) -> None:
        for k in range(20):
            spool.append(_batch(offset + 10 * k, 10))

    threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen: list[int] = []
    while (batch := spool.peek_oldest()) is not None:
        seen += [p.ts_ns for p in batch]
        spool.ack_oldest()
    assert sorted(seen) == sorted(n * 1000 + i for n in range(4) for i in range(200))
    assert spool.bytes_used == 0 and spool.points_pending == 0
