"""Pure parts of the InfluxDB HTTP layer: refusal isolation, URLs, InfluxQL, status mapping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.storage.base import StoreRejected, StoreUnavailable
from gridcoord.storage.influx_http import (
    Response,
    error_for,
    isolate_refused,
    select_field,
    series_values,
    split_url,
)
from gridcoord.storage.points import Point


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_isolation_stores_every_good_point_and_returns_exactly_the_bad(
    size: int, data: st.DataObject
) -> None:
    points = [Point("m", {}, {"f": float(i)}, i) for i in range(size)]
    bad = set(data.draw(st.sets(st.integers(min_value=0, max_value=size - 1))))
    stored: set[int] = set()

    def attempt(chunk: Sequence[Point]) -> None:
        # Like InfluxDB 2.x: one bad point refuses the whole request.
        if any(p.ts_ns in bad for p in chunk):
            raise StoreRejected("refused")
        stored.update(p.ts_ns for p in chunk)

    refused, reason = isolate_refused(points, attempt)
    assert sorted(p.ts_ns for p in refused) == sorted(bad)
    assert stored == set(range(size)) - bad
    assert reason == ("refused" if bad else "")


def test_isolation_stops_when_the_server_goes_away() -> None:
    def attempt(chunk: Sequence[Point]) -> None:
        raise StoreUnavailable("gone")

    with pytest.raises(StoreUnavailable):
        isolate_refused([Point("m", {}, {"f": 1.0}, i) for i in range(4)], attempt)


def test_credentials_are_taken_out_of_the_url() -> None:
    assert split_url("http://user:p%40ss@db.example:8086/influx/") == (
        "http://db.example:8086/influx",
        "user",
        "p@ss",
    )
    assert split_url("https://[::1]:8086") == ("https://[::1]:8086", None, None)
    with pytest.raises(ValueError, match="http://host:8086"):
        split_url("db.example:8086")


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, StoreUnavailable), (429, StoreUnavailable), (503, StoreUnavailable),
     (400, StoreRejected), (413, StoreRejected), (422, StoreRejected)],
)  # fmt: skip
def test_status_mapping(status: int, kind: type[Exception]) -> None:
    error = error_for(Response(status, b'{"error":"nope"}'), "http://h:1", "a write")
    assert isinstance(error, kind)
    assert str(error) == f"InfluxDB at http://h:1 answered a write with HTTP {status}: nope"


def test_long_server_messages_are_shortened() -> None:
    assert len(Response(400, b"x" * 5000).message()) == 301


def test_influxql_quotes_identifiers_and_strings() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    query = select_field('tele"metry', "power_w", {"asset_id": "it's\\"}, start, end)
    assert query == (
        'SELECT "power_w" FROM "tele\\"metry" WHERE "asset_id" = \'it\\\'s\\\\\' '
        "AND time >= 1767225600000000000 AND time < 1767312000000000000"
    )


def test_series_values_merge_in_time_order_numbers_only() -> None:
    series = [
        {"columns": ["time", "f"], "values": [[3, 1.5], [1, None], [2, "text"]]},
        {"columns": ["time", "f"], "values": [[2_000_000_000, True]]},
    ]
    got = series_values(series, "http://h:1")
    assert [(t.timestamp(), v) for t, v in got] == [(0.0, 1.5), (2.0, 1.0)]
    with pytest.raises(StoreRejected, match="does not run InfluxQL"):
        series_values([{"columns": ["name"], "values": [["db"]]}], "http://h:1")
