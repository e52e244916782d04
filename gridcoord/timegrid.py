"""The quarter-hour slot grid: UTC instants aligned to slot boundaries, horizons, local days.

Everything inside gridcoord is timezone-aware UTC; Europe/Berlin (or the site's zone) appears only
at the edges: turning a local calendar day into its slots, and formatting for people. Slots align
to the UNIX epoch, so with a slot length that divides an hour they fall on the quarter hours of
every zone whose offset is a whole number of quarter hours (Berlin's is +1 h or +2 h).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_SLOT_MINUTES = 15
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_slot_minutes(slot_minutes: int) -> int:
    """Return ``slot_minutes`` if it is a whole divisor of an hour, else raise ValueError.

    Only divisors of 60 keep slots on the quarter-hour and hour boundaries.
    """
    if isinstance(slot_minutes, bool) or not isinstance(slot_minutes, int):
        raise ValueError(f"slot_minutes must be an integer, got {slot_minutes!r}")
    if slot_minutes <= 0 or 60 % slot_minutes != 0:
        raise ValueError(f"slot_minutes must divide 60 (e.g. 5, 15, 30, 60), got {slot_minutes}")
    return slot_minutes


def as_utc(instant: datetime) -> datetime:
    """Return ``instant`` converted to UTC; a naive datetime is refused.

    Parameters
    ----------
    instant
        a timezone-aware datetime in any zone.

    Raises
    ------
    ValueError
        if ``instant`` is naive (its meaning would be a guess).
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} refused: give a UTC offset")
    return instant.astimezone(UTC)


def slot_length(slot_minutes: int = DEFAULT_SLOT_MINUTES) -> timedelta:
    """The duration of one slot."""
    return timedelta(minutes=check_slot_minutes(slot_minutes))


def floor_slot(instant: datetime, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> datetime:
    """Start of the slot containing ``instant`` [UTC]."""
    instant = as_utc(instant)
    step = slot_length(slot_minutes)
    return _EPOCH + ((instant - _EPOCH) // step) * step


def ceil_slot(instant: datetime, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> datetime:
    """The first slot boundary at or after ``instant`` [UTC]."""
    start = floor_slot(instant, slot_minutes)
    return start if start == as_utc(instant) else start + slot_length(slot_minutes)


def next_slot_start(instant: datetime, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> datetime:
    """The first slot boundary strictly after ``instant`` [UTC]: where a plan made now starts."""
    return floor_slot(instant, slot_minutes) + slot_length(slot_minutes)


def is_aligned(instant: datetime, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> bool:
    """Whether ``instant`` lies exactly on a slot boundary."""
    return floor_slot(instant, slot_minutes) == as_utc(instant)


def slot_starts(
    start: datetime, count: int, slot_minutes: int = DEFAULT_SLOT_MINUTES
) -> list[datetime]:
    """The starts of ``count`` consecutive slots from ``start`` (which must be aligned) [UTC]."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not is_aligned(start, slot_minutes):
        raise ValueError(
            f"start {as_utc(start).isoformat()} is not on a {slot_minutes}-minute boundary"
        )
    first, step = as_utc(start), slot_length(slot_minutes)
    return [first + i * step for i in range(count)]


def horizon_slot_count(horizon: timedelta, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> int:
    """Number of whole slots in a horizon (at least one)."""
    step = slot_length(slot_minutes)
    if horizon <= timedelta(0):
        raise ValueError(f"horizon must be positive, got {horizon}")
    return max(1, horizon // step)


def horizon_slots(
    now: datetime, horizon: timedelta, slot_minutes: int = DEFAULT_SLOT_MINUTES
) -> list[datetime]:
    """Slot starts of a plan made at ``now``: from the next boundary, for ``horizon`` [UTC]."""
    return slot_starts(
        next_slot_start(now, slot_minutes), horizon_slot_count(horizon, slot_minutes), slot_minutes
    )


def slot_index(start: datetime, instant: datetime, slot_minutes: int = DEFAULT_SLOT_MINUTES) -> int:
    """Index of the slot containing ``instant`` on the grid beginning at ``start``.

    Negative for instants before ``start``; not bounded above (callers clip to their horizon).
    """
    return (as_utc(instant) - as_utc(start)) // slot_length(slot_minutes)


def local_day_bounds(day: date, tz: str = "Europe/Berlin") -> tuple[datetime, datetime]:
    """Local midnight of ``day`` and of the next day, as UTC instants.

    Uses the zone database, so a DST day in Europe/Berlin is 23 h or 25 h long.
    """
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_day_slots(
    day: date, tz: str = "Europe/Berlin", slot_minutes: int = DEFAULT_SLOT_MINUTES
) -> list[datetime]:
    """Slots of one local calendar day as UTC starts: 96 quarter hours, 92 or 100 on DST days."""
    start, end = local_day_bounds(day, tz)
    step = slot_length(slot_minutes)
    return slot_starts(floor_slot(start, slot_minutes), (end - start) // step, slot_minutes)


def local_date(instant: datetime, tz: str = "Europe/Berlin") -> date:
    """The local calendar date of a UTC instant."""
    return as_utc(instant).astimezone(ZoneInfo(tz)).date()


def to_rfc3339(instant: datetime) -> str:
    """Format an instant as RFC 3339 in UTC with a ``Z`` suffix (seconds, or microseconds)."""
    text = as_utc(instant).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 with an offset (``Z`` accepted) into aware UTC.

    Raises
    ------
    ValueError
        naming the text when it is not RFC 3339 or has no offset.
    """
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return parsed.astimezone(UTC)


def format_local(instant: datetime, tz: str = "Europe/Berlin") -> str:
    """Local wall-clock time with its offset, for people (logs, CLI, dashboard)."""
    return as_utc(instant).astimezone(ZoneInfo(tz)).isoformat(timespec="minutes")
