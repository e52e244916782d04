"""The ingest pipeline with real stores: batching, the spool while the store is away, acks."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.reading import AssetKind, Reading
from gridcoord.ingest.pipeline import IngestPipeline
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.spool import Spool
from tests.fixtures.ports import free_port

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def reading(i: int, asset: str = "meter-0001") -> Reading:
    return Reading(
        asset, AssetKind.METER, "lt-01", T0 + timedelta(seconds=i), {"power_w": float(i)}
    )


def stored(store: EmbeddedStore, asset: str = "meter-0001") -> list[float]:
    rows = store.series("telemetry", "power_w", {"asset_id": asset}, T0, T0 + timedelta(days=30))
    return [value for _, value in rows]


def test_batches_reach_the_store_in_order_and_acks_follow(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db.sqlite3")
    pipeline = IngestPipeline(
        store,
        Spool(tmp_path / "spool", 10_000_000),
        dead_letter=tmp_path / "dead.lp",
        batch_size=7,
        flush_interval_s=0.05,
    )
    pipeline.start()
    acked: list[int] = []
    for i in range(100):
        pipeline.submit(reading(i), lambda i=i: acked.append(i))  # type: ignore[misc]
    assert pipeline.flush(10)
    assert acked == list(range(100))
    pipeline.close()
    reopened = EmbeddedStore(tmp_path / "db.sqlite3")
    assert stored(reopened) == [float(i) for i in range(100)]
    assert pipeline.stats.snapshot()["written"] == 100


def test_unreachable_store_spools_to_disk_and_acks_once_durable(tmp_path: Path) -> None:
    # A real InfluxDB 1.x client pointed at a port nobody listens on: connection refused.
    down = InfluxV1Store(f"http://127.0.0.1:{free_port()}", "city", timeout_s=0.5)
    spool = Spool(tmp_path / "spool", 10_000_000)
    pipeline = IngestPipeline(
        down, spool, dead_letter=tmp_path / "dead.lp", batch_size=50, flush_interval_s=0.05
    )
    pipeline.start()
    acked = threading.Semaphore(0)
    for i in range(120):
        pipeline.submit(reading(i), acked.release)
    assert pipeline.flush(20)
    assert all(acked.acquire(timeout=0) for _ in range(120))
    assert not pipeline.store_available
    pipeline.close()
    # Survives a restart: a new spool on the same directory holds every reading, in order.
    reopened = Spool(tmp_path / "spool", 10_000_000)
    values: list[float] = []
    while (batch := reopened.peek_oldest()) is not None:
        values += [float(p.fields["power_w"]) for p in batch]
        reopened.ack_oldest()
    assert values == [float(i) for i in range(120)]


def test_spool_is_replayed_before_new_readings(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 10_000_000)
    down = InfluxV1Store(f"http://127.0.0.1:{free_port()}", "city", timeout_s=0.5)
    first = IngestPipeline(down, spool, dead_letter=tmp_path / "d.lp", flush_interval_s=0.05)
    first.start()
    for i in range(30):
        first.submit(reading(i))
    first.close()
    store = EmbeddedStore(tmp_path / "db.sqlite3")
    second = IngestPipeline(
        store,
        Spool(tmp_path / "spool", 10_000_000),
        dead_letter=tmp_path / "d.lp",
        flush_interval_s=0.05,
    )
    second.start()
    for i in range(30, 40):
        second.submit(reading(i))
    assert second.flush(10)
    second.close()
    assert stored(EmbeddedStore(tmp_path / "db.sqlite3")) == [float(i) for i in range(40)]
    stats = second.stats.snapshot()
    # New readings that arrive while the spool drains queue behind it (order), so 30..40.
    assert stats["replayed"] >= 30 and stats["replayed"] + stats["written"] == 40


@settings(max_examples=25, deadline=None)
@given(
    batch_size=st.integers(1, 40),
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=5),
)
def test_every_submitted_reading_is_stored_exactly_once(
    tmp_path_factory: object, batch_size: int, counts: list[int]
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = EmbeddedStore(root / "db.sqlite3")
        pipeline = IngestPipeline(
            store,
            Spool(root / "spool", 10_000_000),
            dead_letter=root / "d.lp",
            batch_size=batch_size,
            flush_interval_s=0.01,
        )
        pipeline.start()
        expected: dict[str, list[float]] = {}
        for n, count in enumerate(counts):
            asset = f"meter-{n:04d}"
            for i in range(count):
                pipeline.submit(reading(i, asset))
            expected[asset] = [float(i) for i in range(count)]
        pipeline.close()
        check = EmbeddedStore(root / "db.sqlite3")
        for asset, values in expected.items():
            assert stored(check, asset) == values
        check.close()


def test_a_point_no_store_can_carry_is_kept_aside_and_the_rest_flows(tmp_path: Path) -> None:
    from gridcoord.storage.points import Point

    down = InfluxV1Store(f"http://127.0.0.1:{free_port()}", "city", timeout_s=0.5)
    pipeline = IngestPipeline(
        down,
        Spool(tmp_path / "spool", 10_000_000),
        dead_letter=tmp_path / "dead.lp",
        flush_interval_s=0.05,
    )
    pipeline.start()
    broken = Point("plan", {"schedule_id": "s1"}, {"unmet_kwh": float("nan")}, 1)
    pipeline.submit(reading(1))
    pipeline.submit_points([broken])
    pipeline.submit(reading(2))
    assert pipeline.flush(10)
    pipeline.submit(reading(3))  # the writer is still alive
    assert pipeline.flush(10)
    pipeline.close()
    assert pipeline.stats.snapshot()["dead_lettered"] == 1
    assert "unmet_kwh" in (tmp_path / "dead.lp").read_text()
    assert Spool(tmp_path / "spool", 10_000_000).points_pending == 3


def test_one_message_of_many_readings_is_acknowledged_once_after_all_are_stored(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path / "db.sqlite3")
    pipeline = IngestPipeline(
        store,
        Spool(tmp_path / "spool", 10_000_000),
        dead_letter=tmp_path / "dead.lp",
        batch_size=7,  # below one message's 25 readings
        flush_interval_s=0.05,
    )
    pipeline.start()
    seen_at_ack: list[int] = []
    pipeline.submit_many(
        [reading(i) for i in range(25)], lambda: seen_at_ack.append(len(stored(store)))
    )
    assert pipeline.flush(10)
    pipeline.close()
    assert seen_at_ack == [25]


class _CountingStore(EmbeddedStore):
    """The real embedded store, remembering how many readings each write carried."""

    writes: list[int]

    def write_readings(self, readings: Sequence[Reading]) -> None:
        self.writes.append(len(readings))
        super().write_readings(readings)


def test_writes_take_whole_messages_up_to_the_batch_size_in_one_request(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path / "db.sqlite3")
    store.writes = []
    pipeline = IngestPipeline(
        store,
        Spool(tmp_path / "spool", 10_000_000),
        dead_letter=tmp_path / "dead.lp",
        batch_size=100,
        flush_interval_s=60,  # only a full batch or the flush writes
    )
    acks: list[int] = []
    for message in range(10):  # 10 messages of 30 readings, queued before the writer runs
        batch = [reading(message * 30 + i) for i in range(30)]
        pipeline.submit_many(batch, lambda m=message: acks.append(m))
    pipeline.start()
    assert pipeline.flush(10)
    assert stored(store) == [float(i) for i in range(300)]
    pipeline.close()
    # A message is never split: writes of 4 messages (120 readings), 4, then the last 2.
    assert store.writes == [120, 120, 60]
    assert acks == list(range(10))


def test_stats_tell_telemetry_from_the_service_s_own_points(tmp_path: Path) -> None:
    from gridcoord.ingest.pipeline import stats_line
    from gridcoord.storage.points import Point

    store = EmbeddedStore(tmp_path / "db.sqlite3")
    pipeline = IngestPipeline(
        store, Spool(tmp_path / "spool", 10_000_000), dead_letter=tmp_path / "dead.lp"
    )
    pipeline.start()
    for i in range(5):
        pipeline.submit(reading(i))
    own = [Point("setpoint", {"asset_id": f"c-{i}"}, {"max_power_w": 1.0}, T0) for i in range(3)]
    pipeline.submit_points(own)
    assert pipeline.flush(10)
    pipeline.close()
    stats = pipeline.stats.snapshot()
    assert (stats["telemetry"], stats["own_points"], stats["accepted"]) == (5, 3, 8)
    line = stats_line(stats, {"invalid_json": 2, "unknown_asset": 0})
    assert line.startswith("telemetry: 5 readings accepted, 2 rejected (invalid_json 2); ")
    assert "own points (plans, setpoints, audit): 3; store: written 8," in line
