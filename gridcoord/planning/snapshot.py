"""Freeze a planning run's inputs: configuration, latest readings, sessions and forecast.

A run works on one consistent snapshot (STYLE: freeze the inputs of a cycle): it is taken once,
at the start, and nothing the run does afterwards reads live state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import Config
from gridcoord.dispatch.inputs import zone_state
from gridcoord.forecast.horizon import Forecast
from gridcoord.planning.problem_builder import PlanCharger, PlanZone, Snapshot, zone_headroom_series
from gridcoord.sessions import ChargingSession


def take_snapshot(
    config: Config,
    latest: Mapping[str, Reading],
    sessions: Sequence[ChargingSession],
    forecast: Forecast,
    now: datetime,
) -> Snapshot:
    """The snapshot a planning run solves, on the forecast's slot grid.

    Parameters
    ----------
    config
        the deployment (zones, chargers).
    latest
        asset id → latest reading (copied by the caller under its lock).
    sessions
        open charging sessions.
    forecast
        the horizon's forecast; its slots are the plan's.
    now
        the run's start.

    Zone headroom per slot: the zone's non-EV load now, projected along the city's non-EV load
    forecast (`zone_headroom_series`); a stale meter holds the zone at its limit throughout.
    """
    if not forecast.starts:
        raise ValueError("the forecast has no slots")
    stale_after = timedelta(seconds=config.planning.zone_meter_stale_after_s)
    state = zone_state(config, latest, now, stale_after)
    load = [float(v) for v in forecast.load_kw]
    reference = load[0] if load else 0.0
    zones = [
        PlanZone(
            z.id,
            z.parent,
            zone_headroom_series(z.capacity_kw, state.non_ev_kw[z.id], load, reference),
        )
        for z in config.zones
    ]
    chargers = [
        PlanCharger(a.id, a.zone, a.rated_kw) for a in config.assets if a.kind is AssetKind.CHARGER
    ]
    return Snapshot(
        start=forecast.starts[0],
        slot_minutes=forecast.slot_minutes,
        slots=len(forecast.starts),
        sessions=tuple(sessions),
        chargers=tuple(chargers),
        zones=tuple(zones),
        renewable_kw=[float(v) for v in forecast.renewable_kw],
        base_load_kw=load,
    )
