"""The embedded SQLite store: round trips, tag matching, idempotent replays, threads, reopen."""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.reading import AssetKind, Reading
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, datetime_to_ns, reading_to_point

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NS0 = datetime_to_ns(T0)


def _point(asset: str, second: int, power: float, zone: str = "z-1") -> Point:
    tags = {"asset_id": asset, "kind": "meter", "zone": zone}
    return Point("telemetry", tags, {"power_w": power, "connected": True}, NS0 + second * 10**9)


def test_round_trip_with_tag_subsets_and_half_open_range(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "g.sqlite3")
    store.write([_point("m-1", s, float(s)) for s in range(10)])
    store.write([_point("m-2", s, -float(s), zone="z-2") for s in range(10)])
    end = T0 + timedelta(seconds=3)
    assert store.series("telemetry", "power_w", {"asset_id": "m-1"}, T0, end) == [
        (T0 + timedelta(seconds=s), float(s)) for s in range(3)
    ]
    both = store.series("telemetry", "power_w", {"kind": "meter"}, T0, end)
    assert [v for _, v in both] == [0.0, -0.0, 1.0, -1.0, 2.0, -2.0]
    assert store.series("telemetry", "power_w", {"zone": "z-3"}, T0, end) == []
    assert store.series("telemetry", "connected", {"asset_id": "m-2"}, T0, end) == [
        (T0 + timedelta(seconds=s), 1.0) for s in range(3)
    ]
    store.close()


def test_replayed_points_overwrite_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite3"
    store = EmbeddedStore(path)
    batch = [_point("m-1", s, float(s)) for s in range(5)]
    store.write(batch)
    store.write(batch)  # a spool replay after a crash
    store.close()
    reopened = EmbeddedStore(path)
    end = T0 + timedelta(minutes=1)
    assert len(reopened.series("telemetry", "power_w", {}, T0, end)) == 5
    reopened.write([_point("m-1", 5, 5.0)])
    assert len(reopened.series("telemetry", "power_w", {"asset_id": "m-1"}, T0, end)) == 6
    reopened.close()


def test_text_fields_are_stored_but_not_returned_as_numbers(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "g.sqlite3")
    store.write([Point("plan", {"schedule_id": "s 1"}, {"status": "optimal", "solve_s": 2}, NS0)])
    end = T0 + timedelta(seconds=1)
    assert store.series("plan", "status", {}, T0, end) == []
    assert store.series("plan", "solve_s", {"schedule_id": "s 1"}, T0, end) == [(T0, 2.0)]
    store.close()


def test_writes_from_several_threads(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "g.sqlite3")

    def writer(asset: str) -> None:
        for block in range(10):
            store.write([_point(asset, block * 50 + s, 1.0) for s in range(50)])

    threads = [threading.Thread(target=writer, args=(f"m-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end = T0 + timedelta(hours=1)
    assert len(store.series("telemetry", "power_w", {}, T0, end)) == 4 * 500
    store.close()


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=10_000),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=30,
    )
)
def test_every_written_value_reads_back_in_time_order(values: dict[int, float]) -> None:
    store = EmbeddedStore(":memory:")
    store.write([_point("m-1", second, value) for second, value in values.items()])
    got = store.series("telemetry", "power_w", {"asset_id": "m-1"}, T0, T0 + timedelta(days=1))
    assert got == [(T0 + timedelta(seconds=s), values[s]) for s in sorted(values)]
    store.close()


def test_a_write_waits_for_another_process_s_lock_longer_than_sqlite_s_default(
    tmp_path: Path,
) -> None:
    """Issue 16: two ingest processes on one file; a write must wait, not fail after 5 s."""
    import sqlite3

    path = tmp_path / "g.sqlite3"
    store = EmbeddedStore(path)
    other = sqlite3.connect(path, isolation_level=None)  # the other process's connection
    other.execute("BEGIN IMMEDIATE")  # it holds the write lock (a slow fsync on a loaded disk)
    errors: list[Exception] = []
    started = threading.Event()

    def write() -> None:
        started.set()
        try:
            store.write([_point("m-1", 0, 1.0)])
        except Exception as exc:  # recorded: the assertion below names it
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert started.wait(5)
    # Held well beyond sqlite3's default busy timeout (5 s, after which the old store raised
    # StoreUnavailable; more on a loaded machine, whose sleeps overshoot).
    writer.join(12.0)
    assert writer.is_alive(), f"the write gave up while the lock was held: {errors}"
    other.execute("COMMIT")
    writer.join(10)
    other.close()
    assert errors == []
    assert store.series("telemetry", "power_w", {"asset_id": "m-1"}, T0, T0 + timedelta(1)) == [
        (T0, 1.0)
    ]


def test_two_stores_on_one_file_create_the_same_series_without_failing(tmp_path: Path) -> None:
    """Issue 16: two ingest processes; the second to see a new series must reuse the first's id.

    The old store inserted the series row again, failed on UNIQUE and raised StoreUnavailable
    (its batch went to the spool, the retry backoff stalled it for up to 30 s).
    """
    path = tmp_path / "g.sqlite3"
    first, second = EmbeddedStore(path), EmbeddedStore(path)  # both opened before any series
    first.write([_point("m-1", 0, 1.0)])
    second.write([_point("m-1", 1, 2.0)])
    end = T0 + timedelta(seconds=10)
    for store in (first, second, EmbeddedStore(path)):
        assert store.series("telemetry", "power_w", {"asset_id": "m-1"}, T0, end) == [
            (T0, 1.0),
            (T0 + timedelta(seconds=1), 2.0),
        ]


_readings = st.lists(
    st.builds(
        Reading,
        asset_id=st.sampled_from(["pv-1", "meter-2", "cp 3,x"]),
        kind=st.sampled_from(AssetKind),
        zone=st.sampled_from([None, "", "z-1"]),
        ts=st.integers(min_value=0, max_value=10**6).map(
            lambda s: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
        ),
        fields=st.dictionaries(
            st.sampled_from(["power_w", "connected", "departure", "x_y"]),
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=5)
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(_readings)
def test_readings_are_stored_as_their_points_are(readings: list[Reading]) -> None:
    # write_readings builds rows straight from readings: the same rows as via their points.
    with tempfile.TemporaryDirectory() as tmp:
        direct = EmbeddedStore(Path(tmp) / "direct.sqlite3")
        via_points = EmbeddedStore(Path(tmp) / "points.sqlite3")
        direct.write_readings(readings)
        via_points.write([reading_to_point(r) for r in readings])
        query = (
            "SELECT s.measurement, s.tags, s.field, v.ts_ns, v.value FROM samples v "
            "JOIN series s ON s.id = v.series_id ORDER BY 1, 2, 3, 4"
        )
        assert direct._db.execute(query).fetchall() == via_points._db.execute(query).fetchall()
        direct.close()
        via_points.close()
