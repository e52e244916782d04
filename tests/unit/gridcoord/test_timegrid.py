"""The slot grid: alignment, horizons, DST days in Europe/Berlin, formatting at the edges."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord import timegrid

BERLIN = ZoneInfo("Europe/Berlin")
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def test_floor_and_next_slot() -> None:
    t = datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC)
    assert timegrid.floor_slot(t) == datetime(2026, 3, 29, 0, 45, tzinfo=UTC)
    assert timegrid.next_slot_start(t) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    on = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert timegrid.floor_slot(on) == on
    assert timegrid.ceil_slot(on) == on
    # A plan made exactly at a boundary starts at the next one: the current slot is under way.
    assert timegrid.next_slot_start(on) == on + timedelta(minutes=15)


def test_non_utc_input_is_converted_and_naive_refused() -> None:
    local = datetime(2026, 7, 1, 12, 7, tzinfo=BERLIN)  # 10:07 UTC
    assert timegrid.floor_slot(local) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        timegrid.floor_slot(datetime(2026, 7, 1, 12, 7))


@pytest.mark.parametrize("bad", [0, 7, 45, -15, 90])
def test_slot_minutes_must_divide_an_hour(bad: int) -> None:
    with pytest.raises(ValueError, match="divide 60"):
        timegrid.floor_slot(datetime(2026, 1, 1, tzinfo=UTC), bad)


@given(instants, st.sampled_from([1, 5, 15, 30, 60]))
@settings(max_examples=200)
def test_floor_properties(t: datetime, minutes: int) -> None:
    start = timegrid.floor_slot(t, minutes)
    assert start <= t < start + timedelta(minutes=minutes)
    assert start.second == 0 and start.microsecond == 0 and start.minute % minutes == 0
    assert timegrid.is_aligned(start, minutes)
    assert start.tzinfo is UTC
    assert timegrid.ceil_slot(t, minutes) >= t
    assert timegrid.slot_index(start, t, minutes) == 0


def test_horizon_slots() -> None:
    now = datetime(2026, 5, 4, 10, 3, tzinfo=UTC)
    slots = timegrid.horizon_slots(now, timedelta(hours=24))
    assert len(slots) == 96
    assert slots[0] == datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(slots))
    assert timegrid.slot_index(slots[0], slots[-1] + timedelta(minutes=14)) == 95
    assert timegrid.slot_index(slots[0], slots[0] - timedelta(seconds=1)) == -1


def test_slot_starts_refuses_unaligned_start() -> None:
    with pytest.raises(ValueError, match="boundary"):
        timegrid.slot_starts(datetime(2026, 5, 4, 10, 3, tzinfo=UTC), 4)


@pytest.mark.parametrize(
    ("day", "count", "first_utc"),
    [
        (date(2026, 3, 29), 92, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),  # spring forward
        (date(2026, 10, 25), 100, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),  # fall back
        (date(2026, 7, 1), 96, datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
        (date(2026, 1, 15), 96, datetime(2026, 1, 14, 23, 0, tzinfo=UTC)),
        (date(2025, 3, 30), 92, datetime(2025, 3, 29, 23, 0, tzinfo=UTC)),
        (date(2025, 10, 26), 100, datetime(2025, 10, 25, 22, 0, tzinfo=UTC)),
    ],
)
def test_local_day_slots_on_dst_days(day: date, count: int, first_utc: datetime) -> None:
    slots = timegrid.local_day_slots(day)
    assert len(slots) == count
    assert slots[0] == first_utc
    # Contiguous, and the day ends at the next local midnight.
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(slots))
    end = slots[-1] + timedelta(minutes=15)
    assert end.astimezone(BERLIN).hour == 0
    assert {timegrid.local_date(s) for s in slots} == {day}


def test_fall_back_day_has_the_repeated_hour_twice() -> None:
    local_hours = [s.astimezone(BERLIN).hour for s in timegrid.local_day_slots(date(2026, 10, 25))]
    assert local_hours.count(2) == 8  # 02:00-03:00 happens twice
    assert 2 not in [s.astimezone(BERLIN).hour for s in timegrid.local_day_slots(date(2026, 3, 29))]


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
@settings(max_examples=200)
def test_every_local_day_has_92_96_or_100_quarter_hours(day: date) -> None:
    slots = timegrid.local_day_slots(day)
    assert len(slots) in (92, 96, 100)
    nxt = timegrid.local_day_slots(day + timedelta(days=1))
    assert slots[-1] + timedelta(minutes=15) == nxt[0]


def test_rfc3339_round_trip_and_errors() -> None:
    t = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert timegrid.to_rfc3339(t) == "2026-10-25T01:30:00Z"
    assert timegrid.parse_rfc3339("2026-10-25T02:30:00+01:00") == t
    assert timegrid.parse_rfc3339("2026-10-25T01:30:00z") == t
    assert timegrid.to_rfc3339(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-01T00:00:00Z"
    )
    with pytest.raises(ValueError, match="no UTC offset"):
        timegrid.parse_rfc3339("2026-10-25T01:30:00")
    with pytest.raises(ValueError, match="not an RFC 3339"):
        timegrid.parse_rfc3339("yesterday")


def test_format_local_shows_the_berlin_offset() -> None:
    assert timegrid.format_local(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == (
        "2026-10-25T02:30+02:00"
    )
    assert timegrid.format_local(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == (
        "2026-10-25T02:30+01:00"
    )
