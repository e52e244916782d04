"""Rebuild the planner's histories from the store on start (state is a cache of the store).

The forecasts need a day of the city's PV and wind output and four weeks of its non-EV load;
a restart must not make the planner forget them. On start, `warm_from_store` asks the store
for exactly what `CityState` keeps, as per-bucket totals summed in the store
(`Store.bucket_totals`: one bounded query per history, one row per bucket):

- ``pv``: ``power_w`` of ``kind=pv``, per minute over 25 h;
- ``wind``: ``power_w`` of ``kind=wind``, per minute over 25 h;
- ``load``: ``power_w`` of the consumer meters (``kind=meter`` but the zone meters), per slot
  over four weeks and a day.

A city without consumer meters measures its load at the root zones' meters, net of
generation and charging: the load history is then rebuilt as root + PV + wind − EV per slot,
as `CityState` does reading by reading.

What is not rebuilt, and why: the *forecast error* of the first run after a restart needs the
previous run's forecast, which is not stored (each run reports the error of the one before, so
the second run has it again); *learnt car limits* belong to sessions, whose ids are made of the
plug-in time seen live, so they are learnt again within minutes of the first readings.

Completed stays (measurement ``stay``) of the last `STAY_WINDOW` are read back per charger
type, so the departure defaults learnt from them (`gridcoord.planning.stays`) survive a restart.

A store that cannot be read (down, or VictoriaMetrics, which serves no InfluxQL) costs only
the warm start: the service starts cold and says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.contract.reading import ChargerType
from gridcoord.config import Config
from gridcoord.planning.state import (
    GENERATION_WINDOW,
    LOAD_WINDOW,
    MINUTE,
    CityMeters,
    CityState,
)
from gridcoord.planning.stays import STAY_MEASUREMENT
from gridcoord.storage.base import Store, StoreRejected, StoreUnavailable
from gridcoord.timegrid import as_utc

log = logging.getLogger(__name__)

Series = list[tuple[datetime, float]]
STAY_WINDOW = timedelta(weeks=4)


@dataclass(frozen=True, slots=True)
class WarmStart:
    """What a warm start found.

    Attributes
    ----------
    buckets
        history → buckets filled from the store.
    failure
        why the store could not be read (then nothing was filled), else None.
    """

    buckets: dict[str, int] = field(default_factory=dict)
    failure: str | None = None


def warm_from_store(state: CityState, store: Store, config: Config, now: datetime) -> WarmStart:
    """Fill ``state``'s histories from ``store`` with what was measured before ``now``.

    Never raises for a store problem: the result says what went wrong.

    Parameters
    ----------
    state : CityState
        The state to fill; call before live readings arrive.
    store : Store
        The configured store.
    config : Config
        The deployment (which meters measure the load).
    now : datetime
        The service's clock at start [UTC]; the windows end here.
    """
    now = as_utc(now)
    meters = CityMeters.of(config)
    zone_meters = {z.meter for z in config.zones if z.meter is not None}
    slot = timedelta(minutes=config.planning.slot_minutes)

    def totals(kind: str, width: timedelta, window: timedelta, exclude: set[str]) -> Series:
        kw = store.bucket_totals(
            "telemetry", "power_w", {"kind": kind}, now - window, now, width, exclude
        )
        return [(ts, w / 1000.0) for ts, w in kw]

    filled: dict[str, int] = {}
    try:
        filled["pv"] = state.warm("pv", totals("pv", MINUTE, GENERATION_WINDOW, set()))
        filled["wind"] = state.warm("wind", totals("wind", MINUTE, GENERATION_WINDOW, set()))
        if meters.consumers:
            load = totals("meter", slot, LOAD_WINDOW, zone_meters)
        elif meters.roots:
            load = _net_root_load(totals, slot, meters.roots, zone_meters)
        else:
            load = []
        filled["load"] = state.warm("load", load)
        for kind in ChargerType:
            stays = store.series(
                STAY_MEASUREMENT, "stay_h", {"charger_type": kind.value}, now - STAY_WINDOW, now
            )
            filled[f"stays_{kind.value}"] = state.warm_stays(kind, (h for _, h in stays))
    except (StoreUnavailable, StoreRejected) as exc:
        log.warning("no warm start from the store (planning starts without history): %s", exc)
        return WarmStart(filled, str(exc))
    log.info("histories warmed from the store: %s buckets", filled)
    return WarmStart(filled)


def _net_root_load(
    totals: Callable[[str, timedelta, timedelta, set[str]], Series],
    slot: timedelta,
    roots: frozenset[str],
    zone_meters: set[str],
) -> Series:
    """Non-EV load per slot from the root meters: root + PV + wind − EV [kW]."""
    root = dict(totals("meter", slot, LOAD_WINDOW, zone_meters - roots))
    generation: dict[datetime, float] = {}
    for kind in ("pv", "wind"):
        for ts, kw in totals(kind, slot, LOAD_WINDOW, set()):
            generation[ts] = generation.get(ts, 0.0) + kw
    ev = dict(totals("charger", slot, LOAD_WINDOW, set()))
    return [
        (ts, max(0.0, kw + generation.get(ts, 0.0) - max(0.0, ev.get(ts, 0.0))))
        for ts, kw in sorted(root.items())
    ]
