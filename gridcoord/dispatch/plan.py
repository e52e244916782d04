"""Which slot of a schedule applies now: the optimizer's power per charger for the current slot.

A schedule (DESIGN 3.5) gives each charger a list of powers, one per slot from the plan's
start. Dispatch refreshes setpoints every minute and picks the slot containing the present
instant; before the plan starts or after it ends there is no plan, and the caller dispatches
the fallback (fair share) instead of guessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from gridcoord.timegrid import slot_index


def current_slot_kw(
    chargers_kw: Mapping[str, Sequence[float]],
    plan_start: datetime,
    slot_minutes: int,
    now: datetime,
) -> dict[str, float] | None:
    """The planned power of every charger in the slot containing ``now`` [kW].

    Parameters
    ----------
    chargers_kw
        charger id → planned power per slot (the schedule's ``chargers``) [kW].
    plan_start
        start of the plan's slot 0 [UTC].
    slot_minutes
        slot length [min].
    now
        the present instant.

    Returns
    -------
    dict[str, float] | None
        charger id → power [kW] (NaN where a charger's list is too short, which the safety layer
        turns into 0), or None when ``now`` is outside the plan.
    """
    index = slot_index(plan_start, now, slot_minutes)
    longest = max((len(v) for v in chargers_kw.values()), default=0)
    if index < 0 or index >= longest:
        return None
    return {cid: float(v[index]) if index < len(v) else math.nan for cid, v in chargers_kw.items()}
