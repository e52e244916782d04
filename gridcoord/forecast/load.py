"""Non-EV load from same-weekday history: what this slot of the week looked like lately.

Household and commercial demand follows the local clock and the day of the week, so history is
matched by *local* weekday and time of day (a Monday 18:00 in winter and in summer is the same
habit, though an hour apart in UTC). Where a slot of the week has no history yet, the same local
time on any day is used, then the overall mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gridcoord.forecast.series import FloatArray, Series, clamp_kw, window
from gridcoord.timegrid import as_utc, floor_slot


def forecast_load_kw(
    starts: Sequence[datetime],
    slot_minutes: int,
    history: Series,
    now: datetime,
    *,
    max_kw: float,
    weeks: int = 4,
    tz: str = "Europe/Berlin",
) -> FloatArray:
    """Non-EV load forecast per slot [kW].

    Parameters
    ----------
    starts
        slot starts of the horizon [UTC].
    slot_minutes
        slot length [min].
    history
        measured non-EV load [kW].
    now
        the planning time [UTC]; only history before it is used.
    max_kw
        largest plausible load, e.g. the sum of zone ratings [kW].
    weeks
        how many past weeks to average.
    tz
        the local zone whose clock the load follows.

    Returns
    -------
    FloatArray
        Forecast per slot in [0, max_kw]; zeros when there is no history [kW].
    """
    zone = ZoneInfo(tz)
    recent = window(history, now, timedelta(weeks=weeks))
    if not recent:
        return np.zeros(len(starts))

    # Average per slot first so a meter reporting every second weighs as much as one every minute.
    per_slot: dict[datetime, list[float]] = defaultdict(list)
    for instant, value in recent:
        per_slot[floor_slot(instant, slot_minutes)].append(value)
    by_week_slot: dict[tuple[int, int], list[float]] = defaultdict(list)
    by_day_slot: dict[int, list[float]] = defaultdict(list)
    for start, values in per_slot.items():
        local = start.astimezone(zone)
        minute = local.hour * 60 + local.minute
        mean = float(np.mean(values))
        by_week_slot[(local.weekday(), minute)].append(mean)
        by_day_slot[minute].append(mean)
    overall = float(np.mean([v for values in by_day_slot.values() for v in values]))

    forecast = []
    for start in starts:
        local = as_utc(start).astimezone(zone)
        minute = local.hour * 60 + local.minute
        same = by_week_slot.get((local.weekday(), minute)) or by_day_slot.get(minute)
        forecast.append(float(np.mean(same)) if same else overall)
    return clamp_kw(forecast, max_kw, fill_kw=overall)
