"""`TimedStore` times every write and hands every other `Store` method to the inner store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridcoord.storage.base import StoreUnavailable
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, datetime_to_ns
from gridcoord.storage.timed import STORE_METHODS, TimedStore

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _points(count: int) -> list[Point]:
    tags = {"asset_id": "pv-1", "kind": "pv", "zone": "z-1"}
    ns0 = datetime_to_ns(T0)
    return [Point("telemetry", tags, {"power_w": float(s)}, ns0 + s * 10**9) for s in range(count)]


def test_the_protocol_methods_are_found() -> None:
    # The set is derived from `Store` itself; if that derivation broke, nothing would pass on.
    assert {"write", "series", "bucket_totals", "close"} <= STORE_METHODS


#: The methods `TimedStore` times itself (everything that writes).
TIMED = {"write", "write_readings", "replace"}


def test_every_store_method_but_the_timed_ones_is_the_inner_stores_own(tmp_path: Path) -> None:
    inner = EmbeddedStore(tmp_path / "g.sqlite3")
    timed = TimedStore(inner, lambda seconds: None)
    assert TIMED <= STORE_METHODS
    for name in sorted(STORE_METHODS - TIMED):
        assert getattr(timed, name) == getattr(inner, name), name
    inner.close()


def test_writes_are_timed_and_reads_pass_through(tmp_path: Path) -> None:
    observed: list[float] = []
    timed = TimedStore(EmbeddedStore(tmp_path / "g.sqlite3"), observed.append)
    timed.write(_points(120))
    timed.write(_points(3))
    assert len(observed) == 2 and all(seconds >= 0.0 for seconds in observed)
    timed.replace([], [])
    assert len(observed) == 3  # the retention job's write is timed too
    timed.write_readings([])
    assert len(observed) == 4  # and the telemetry path's
    end = T0 + timedelta(minutes=2)
    series = timed.series("telemetry", "power_w", {"kind": "pv"}, T0, end)
    assert [value for _, value in series] == [float(s) for s in range(120)]
    totals = timed.bucket_totals("telemetry", "power_w", {}, T0, end, timedelta(minutes=1))
    assert totals == [(T0, 29.5), (T0 + timedelta(minutes=1), 89.5)]
    assert len(observed) == 4  # reads are not writes
    timed.close()


class _DownStore(EmbeddedStore):
    def write(self, points: Sequence[Point]) -> None:
        raise StoreUnavailable("down")


def test_a_failed_write_is_timed_too(tmp_path: Path) -> None:
    observed: list[float] = []
    timed = TimedStore(_DownStore(tmp_path / "g.sqlite3"), observed.append)
    with pytest.raises(StoreUnavailable):
        timed.write(_points(1))
    assert len(observed) == 1
    timed.close()


def test_names_outside_the_protocol_are_not_passed_on(tmp_path: Path) -> None:
    inner = EmbeddedStore(tmp_path / "g.sqlite3")
    timed = TimedStore(inner, lambda seconds: None)
    with pytest.raises(AttributeError, match="_rows"):
        getattr(timed, "_rows")  # noqa: B009  # the inner store has it; the wrapper must not
    inner.close()
