"""Line protocol both ways: escaping, refusals, and parse(to_line(p)) == p for any point."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract.reading import AssetKind, Reading
from gridcoord.storage.points import (
    Point,
    datetime_to_ns,
    ns_to_datetime,
    parse_line,
    reading_to_point,
    telemetry_line,
    telemetry_lines,
)

# Names line protocol can carry: anything but line breaks and backslashes, never empty.
names = st.text(
    st.characters(blacklist_characters="\n\r\\", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
values = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
points = st.builds(
    Point,
    measurement=names,
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, values, min_size=1, max_size=4),
    ts_ns=st.integers(min_value=-(2**62), max_value=2**62),
)


@settings(max_examples=300, deadline=None)
@given(points)
def test_parse_reads_back_what_to_line_writes(point: Point) -> None:
    parsed = parse_line(point.to_line())
    assert parsed.measurement == point.measurement
    assert parsed.tags == point.tags
    assert parsed.ts_ns == point.ts_ns
    assert list(parsed.fields) == list(point.fields)
    for key, value in point.fields.items():
        back = parsed.fields[key]
        assert back == value and type(back) is (float if type(value) is int else type(value))


def test_escapes_separators_in_names_and_quotes_in_strings() -> None:
    point = Point("tele metry", {"zone": "a b,c=d"}, {"st atus": 'say "hi" \\o/'}, 5)
    line = point.to_line()
    assert line == 'tele\\ metry,zone=a\\ b\\,c\\=d st\\ atus="say \\"hi\\" \\\\o/" 5'
    assert parse_line(line) == point


def test_numbers_are_written_as_floats_and_tags_sorted_without_empty_ones() -> None:
    point = Point("telemetry", {"zone": "", "kind": "pv", "asset_id": "pv-1"}, {"power_w": 3}, 7)
    assert point.to_line() == "telemetry,asset_id=pv-1,kind=pv power_w=3.0 7"


@pytest.mark.parametrize(
    ("point", "named"),
    [
        (Point("m", {"asset_id": "a\nb"}, {"f": 1.0}, 0), "tag 'asset_id'"),
        (Point("m", {}, {"back\\slash": 1.0}, 0), "field key"),
        (Point("", {}, {"f": 1.0}, 0), "measurement"),
        (Point("m", {}, {"power_w": float("nan")}, 0), "'power_w'"),
        (Point("m", {}, {}, 0), "no fields"),
    ],
)
def test_refuses_what_line_protocol_cannot_carry(point: Point, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        point.to_line()


def test_reading_becomes_a_telemetry_point() -> None:
    ts = datetime(2026, 3, 29, 1, 15, 0, 123456, tzinfo=UTC)
    reading = Reading("pv-7", AssetKind.PV, "zone-a", ts, {"power_w": 1500.0})
    point = reading_to_point(reading)
    assert point.tags == {"asset_id": "pv-7", "kind": "pv", "zone": "zone-a"}
    assert point.ts_ns == 1_774_746_900_123_456_000
    assert ns_to_datetime(point.ts_ns) == ts


@given(st.datetimes(timezones=st.just(UTC)))
def test_datetime_ns_round_trip(ts: datetime) -> None:
    assert ns_to_datetime(datetime_to_ns(ts)) == ts


# Readings as adapters make them, and odder: names with separators, quotes in strings, no zone.
readings = st.builds(
    Reading,
    asset_id=st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    kind=st.sampled_from(AssetKind),
    zone=st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)),
    ts=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    fields=st.dictionaries(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
        st.one_of(
            values,
            st.sampled_from([float("nan"), float("inf"), -0.0, 5e-324, 1e308]),
        ),
        max_size=5,
    ),
)


@settings(max_examples=500, deadline=None)
@given(readings)
def test_telemetry_line_is_the_point_path_byte_for_byte(reading: Reading) -> None:
    # The hot path builds lines without a Point: it must write exactly what the Point did,
    # and refuse (ValueError) exactly what the Point refused.
    try:
        expected = reading_to_point(reading).to_line()
    except ValueError:
        with pytest.raises(ValueError):
            telemetry_line(reading)
        return
    assert telemetry_line(reading) == expected
    assert telemetry_lines([reading, reading]) == [expected, expected]
