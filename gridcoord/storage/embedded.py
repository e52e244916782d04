"""The embedded default store: one SQLite file, for users with no InfluxDB.

Schema (narrow): ``series`` gives each (measurement, tag set, field) an integer id; ``samples``
holds (series id, time [ns], value) with that pair as primary key in a WITHOUT ROWID table, so
a point written twice (a spool replay after a crash) overwrites itself, as in InfluxDB. Tags
are kept as canonical JSON and matched with SQLite's JSON functions.

WAL mode with ``synchronous=FULL``: a returned `write` is on disk, which the ingest pipeline
relies on before it acknowledges readings. One connection, shared by the threads that use the
store (the pipeline writes from a worker thread, the API reads) behind a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.contract.reading import Reading, ReadingRows, Series
from gridcoord.storage.base import Deletion, StoreUnavailable
from gridcoord.storage.points import (
    Point,
    bucket_width_ns,
    datetime_to_ns,
    ns_to_datetime,
    telemetry_tags,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    field TEXT NOT NULL,
    UNIQUE (measurement, field, tags)
);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts_ns INTEGER NOT NULL,
    value ANY,
    PRIMARY KEY (series_id, ts_ns)
) WITHOUT ROWID;
"""

BUSY_TIMEOUT_S = 60.0  # longest wait for another process's write lock [s]

_SeriesKey = tuple[str, str, str]  # measurement, canonical tags JSON, field


class EmbeddedStore:
    """A store in one SQLite file.

    Parameters
    ----------
    path
        the database file; its directory is created if missing. ``:memory:`` for tests.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                # Owner-only from the start (SQLite gives its -wal and -shm files the same
                # mode): the file holds household series (docs/data-protection.md).
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StoreUnavailable(
                    f"embedded store {path} cannot be opened: {exc.strerror}"
                ) from None
        self.path = path
        self._lock = threading.Lock()
        try:
            # Wait for the write lock rather than fail: two ingest processes on one file take
            # turns, and one write with fsync can take seconds on a loaded disk; with sqlite3's
            # default 5 s the loser's batch would go to the spool and wait out the backoff.
            self._db = sqlite3.connect(
                str(path),
                check_same_thread=False,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_S,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Deleted rows are overwritten, not left in free pages: what the retention job
            # deletes is gone from the file, not just unlinked.
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"embedded store {path} cannot be opened: {exc}") from None
        self._series: dict[_SeriesKey, int] = {}
        self._load_series()

    def write(self, points: Sequence[Point]) -> None:
        """Write all points in one transaction; see `gridcoord.storage.base.Store.write`.

        Raises
        ------
        StoreUnavailable
            the file cannot be written (disk full, locked, read-only).
        """
        if points:
            self.replace(points, ())

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        """Write the points and delete the deletions' points in one transaction.

        See `gridcoord.storage.base.Store.replace`: either both happen or neither.

        Raises
        ------
        StoreUnavailable
            the file cannot be written (disk full, locked, read-only).
        """
        if not points and not deletions:
            return
        self._write_rows(lambda: self._rows(points), deletions)

    def _write_rows(
        self,
        make_rows: Callable[[], list[tuple[int, int, object]]],
        deletions: Sequence[Deletion],
    ) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = make_rows()  # inside the transaction: new series ids are ours
                    self._db.executemany(
                        "INSERT OR REPLACE INTO samples (series_id, ts_ns, value) VALUES (?, ?, ?)",
                        rows,
                    )
                    for deletion in deletions:
                        self._delete(deletion)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._load_series()  # ids handed out in this transaction are gone
                    raise
            except sqlite3.Error as exc:
                message = f"embedded store {self.path} cannot be written: {exc}"
                raise StoreUnavailable(message) from None

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write readings in one transaction, rows straight from them; see `Store.write_readings`.

        Raises
        ------
        StoreUnavailable
            as `write`.
        """
        if readings:
            self._write_rows(lambda: self._reading_rows(readings), ())

    def series(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[datetime, float]]:
        """Read one numeric field; see `gridcoord.storage.base.Store.series`."""
        conditions, tag_values = _tag_conditions(tags)
        parameters: list[object] = [measurement, field, *tag_values]
        parameters += [datetime_to_ns(start), datetime_to_ns(end)]
        query = (
            "SELECT x.ts_ns, x.value FROM samples x JOIN series s ON s.id = x.series_id "
            f"WHERE s.measurement = ? AND s.field = ?{conditions} "
            "AND x.ts_ns >= ? AND x.ts_ns < ? AND typeof(x.value) IN ('integer', 'real') "
            "ORDER BY x.ts_ns"
        )
        rows = self._read(query, parameters)
        return [(ns_to_datetime(ts_ns), float(value)) for ts_ns, value in rows]

    def bucket_totals(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
        width: timedelta,
        exclude_assets: Collection[str] = (),
    ) -> list[tuple[datetime, float]]:
        """Sum over assets of their mean per bucket; see `Store.bucket_totals`."""
        width_ns = bucket_width_ns(width)
        conditions, tag_values = _tag_conditions(tags)
        parameters: list[object] = [width_ns, measurement, field, *tag_values]
        excluded = sorted(set(exclude_assets))
        if excluded:
            marks = ", ".join("?" for _ in excluded)
            conditions += f" AND coalesce(json_extract(s.tags, '$.asset_id'), '') NOT IN ({marks})"
            parameters += excluded
        parameters += [datetime_to_ns(start), datetime_to_ns(end)]
        query = (
            "SELECT b, sum(v) FROM ("
            "SELECT json_extract(s.tags, '$.asset_id') AS a, x.ts_ns / ? AS b, avg(x.value) AS v "
            "FROM samples x JOIN series s ON s.id = x.series_id "
            f"WHERE s.measurement = ? AND s.field = ?{conditions} "
            "AND x.ts_ns >= ? AND x.ts_ns < ? AND typeof(x.value) IN ('integer', 'real') "
            "GROUP BY a, b) GROUP BY b ORDER BY b"
        )
        rows = self._read(query, parameters)
        return [(ns_to_datetime(bucket * width_ns), float(total)) for bucket, total in rows]

    def oldest(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        end: datetime,
        group_by: Sequence[str],
    ) -> list[tuple[dict[str, str], datetime]]:
        """Series with points before ``end`` and their oldest point; see `Store.oldest`."""
        conditions, tag_values = _tag_conditions(tags)
        keys = ", ".join("coalesce(json_extract(s.tags, ?), '')" for _ in group_by)
        parameters: list[object] = [_json_path(key) for key in group_by]
        parameters += [measurement, field, *tag_values]
        parameters.append(datetime_to_ns(end))
        group = ", ".join(str(i + 1) for i in range(len(group_by))) or "NULL"
        query = (
            f"SELECT {keys}{', ' if group_by else ''}min(x.ts_ns) "
            "FROM samples x JOIN series s ON s.id = x.series_id "
            f"WHERE s.measurement = ? AND s.field = ?{conditions} AND x.ts_ns < ? "
            f"GROUP BY {group}"
        )
        rows = self._read(query, parameters)
        found = []
        for row in rows:
            if row[-1] is None:  # an aggregate over no rows (group_by empty)
                continue
            found.append((dict(zip(group_by, row[:-1], strict=True)), ns_to_datetime(row[-1])))
        return found

    def _read(self, query: str, parameters: Sequence[object]) -> list[Any]:
        """Rows of one read query; `StoreUnavailable` if the file cannot be read."""
        with self._lock:
            try:
                return self._db.execute(query, parameters).fetchall()
            except sqlite3.Error as exc:
                message = f"embedded store {self.path} cannot be read: {exc}"
                raise StoreUnavailable(message) from None

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def _delete(self, deletion: Deletion) -> None:
        conditions = " AND ".join("json_extract(tags, ?) = ?" for _ in deletion.tags)
        parameters: list[object] = [deletion.measurement]
        for key, value in deletion.tags.items():
            parameters += [f"$.{json.dumps(key)}", value]
        parameters += [datetime_to_ns(deletion.start), datetime_to_ns(deletion.end)]
        self._db.execute(
            "DELETE FROM samples WHERE series_id IN "
            f"(SELECT id FROM series WHERE measurement = ? AND {conditions}) "
            "AND ts_ns >= ? AND ts_ns < ?",
            parameters,
        )

    def _rows(self, points: Sequence[Point]) -> list[tuple[int, int, object]]:
        rows: list[tuple[int, int, object]] = []
        tag_cache: dict[tuple[tuple[str, str], ...], str] = {}
        for point in points:
            tag_items = tuple(sorted((k, v) for k, v in point.tags.items() if v))
            tags = tag_cache.get(tag_items)
            if tags is None:
                tags = tag_cache[tag_items] = json.dumps(dict(tag_items), separators=(",", ":"))
            for field, value in point.fields.items():
                key = (point.measurement, tags, field)
                series_id = self._series.get(key)
                if series_id is None:
                    series_id = self._new_series(key)
                rows.append((series_id, point.ts_ns, value))
        return rows

    def _reading_rows(self, readings: Sequence[Reading]) -> list[tuple[int, int, object]]:
        rows: list[tuple[int, int, object]] = []
        tag_cache: dict[Series, str] = {}
        series_ids = self._series
        # `ReadingRows` (the typed decoder's) as they are: no `Reading` per reading.
        for series, ts_ns, fields in ReadingRows.of(readings).rows:
            tags = tag_cache.get(series)
            if tags is None:
                # As `_rows` makes of `reading_to_point(reading)`: sorted, empty values left out.
                tag_items = sorted(telemetry_tags(series).items())
                tags = json.dumps({k: v for k, v in tag_items if v}, separators=(",", ":"))
                tag_cache[series] = tags
            for field, value in fields.items():
                key = ("telemetry", tags, field)
                series_id = series_ids.get(key)
                if series_id is None:
                    series_id = self._new_series(key)
                rows.append((series_id, ts_ns, value))
        return rows

    def _new_series(self, key: _SeriesKey) -> int:
        # Another process on the same file (two ingest instances) may have created this series
        # since we loaded ours: a plain INSERT then failed on UNIQUE, the whole batch went to
        # the spool and the retry backoff held the store still (issue 16). Inside the write
        # transaction we hold the write lock, so the SELECT sees whichever row exists.
        self._db.execute(
            "INSERT OR IGNORE INTO series (measurement, tags, field) VALUES (?, ?, ?)", key
        )
        row = self._db.execute(
            "SELECT id FROM series WHERE measurement = ? AND tags = ? AND field = ?", key
        ).fetchone()
        series_id = int(row[0])
        self._series[key] = series_id
        return series_id

    def _load_series(self) -> None:
        rows = self._db.execute("SELECT id, measurement, tags, field FROM series")
        self._series = {(m, t, f): i for i, m, t, f in rows}


def _json_path(key: str) -> str:
    """The JSON path of one tag in the ``series.tags`` column."""
    return f"$.{json.dumps(key)}"


def _tag_conditions(tags: dict[str, str]) -> tuple[str, list[object]]:
    """SQL conditions matching every tag of ``tags``, and their parameters."""
    conditions = "".join(" AND json_extract(s.tags, ?) = ?" for _ in tags)
    values: list[object] = []
    for key, value in tags.items():
        values += [_json_path(key), value]
    return conditions, values
