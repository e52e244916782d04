"""Dispatch policy: which power each charger may draw now, from a frozen image and the plans.

`DispatchPolicy.decide` reads one `StateImage` (latest readings, open sessions, learnt car
limits, the previous setpoints) and the plans kept so far; nothing live. It picks the plan
for ``now``, adds what the plan cannot know, and hands everything to the safety layer
(`gridcoord.dispatch.limits`), which no step here can override.

Decisions where the issue and DESIGN are silent:

- *Which plan is dispatched*: the newest plan whose first slot has begun, while it is less
  than two planning intervals old (a plan made at 12:00 covers 12:15 on, so 12:00-12:15 is
  dispatched from the 11:45 run); a fallback outcome, or none, means fair share now.
- *Cars the plan does not know* (arrived after its snapshot) ask, in the same safety pass as
  the planned cars, for their full rating during their first `PROBE` minutes (what a car
  draws then tells its own limit, which the next plan needs), then for the even power that
  would meet their need in half the time to their departure as the planner sees it
  (`paced_kw`: a default departure hedged early), at most their rating: a short public stay
  gets its full rating, a car plugged in for the night does not draw full grid power for up
  to two slots before the next plan can move it to the windy or sunny hours (issue 12: full
  power until a plan knew them cost 7-8 points of renewable share, docs/performance.md). In
  a slot with renewable surplus they take their share of it like the planned cars. A session
  the plan left out because its (default) need looked met charges at full power, as before.
- *Tight cars* (cut rank 2, see below) the plan knows may take the zones' headroom the plan
  leaves now, before anyone else: the plan's forecast of a zone's headroom may have had no
  room for them where the zone has it now (issue 12: a public stay the plans left short in
  a morning its feeder was forecast full got 5.6 of 9.8 kWh, its feeder not cut once).
- *Cars past a default need* (no request from the device, the assumed energy delivered) may
  still charge from the headroom the plan leaves: the default is a guess, not their need.
- *Renewable surplus*: connected cars may take what the plan's charging leaves of the
  renewable surplus *measured now* (PV + wind − non-EV load of the latest readings), not of
  the one the plan forecast: the LP is indifferent between slots without import, and the
  forecast errs in level and timing while the measurement is minute by minute (issue 12:
  about 5 points of renewable share on spring, seed 3; docs/performance.md). Without a
  measurement, the plan's expected leftover.
- *A surplus that is not there*: the part of the slot's planned charging that counted on the
  forecast surplus, and that the measured surplus does not cover, would be imported. The
  cars that can wait hold it back (`hold_back_kw`), each the same share of its planned
  power: cars whose driver gave departure and need and that are not tight (cut rank 0 or
  1, `flexible_chargers`); the next plan moves their energy. Import
  now is irrevocable, while a car that waits keeps the surplus that comes later. The other
  cars' slot powers stand: a guessed departure or need does not gamble on the weather.
- *Cars that showed they are full* (`StateImage.vehicle_full`: they stopped drawing, or
  never drew for five minutes, while allowed clearly more) draw nothing, so they take no
  share of the surplus or of the headroom before the others, and their setpoints are not
  counted as charging against the measured surplus; one left out of the plan with its need
  met asks for nothing. Last, they get what headroom is left, so that a car that draws again
  shows it (issue 12: on winter, seed 4, 170 of 805 kWh of midday surplus went unused beside
  cars that wanted it).
- *Who gives way in a full zone* (`cut_ranks`): the cars with the most slack. A session's
  slack is the energy it could still draw at its power before its departure over the energy
  it needs; below `TIGHT_SLACK` it ranks 2, below `SOME_SLACK` 1, else 0. A car whose need
  is met ranks 0, except one past a default need (a guess, planned for another default
  chunk until its car is full): it ranks -1, cut before any car with a need. A car in its
  `PROBE` minutes ranks 3 (cut last): its limit shows only if it is allowed more than it can
  draw.
- *Minima*: only chargers with a car plugged in (an open session) get their §14a minimum,
  and (``planning.guaranteed_minimum: when_limited``) only under a zone that binds in this
  dispatch: the plan may defer a car below its minimum where the grid has room.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from gridcoord.config import Config
from gridcoord.dispatch import (
    ChargerLimit,
    Dispatch,
    Limiter,
    ZoneLimit,
    apply_limits,
    charger_limits,
    current_slot_kw,
    fair_share_kw,
    sending_order,
    setpoint_payload,
    valid_until,
    zone_state,
)
from gridcoord.outcomes import ActivePlan, DispatchOutcome
from gridcoord.planning.planner import PROBE, hedged, probing
from gridcoord.planning.state import StateImage
from gridcoord.planning.timing import schedule_id
from gridcoord.sessions import ChargingSession, Source
from gridcoord.timegrid import floor_slot, slot_index
from gridcoord.zones import ancestors, parents_of

# A new car no plan knows is paced to meet its need in half the time to its planned departure:
# a margin for a guessed need or departure until the next plan (issue 12, seed 1: at 1x the
# unmet energy rose by 2-6 kWh a day against full power, at 2x by 1-3 kWh, for 1-1.5 points
# less renewable share).
PACE_MARGIN = 2.0

# A car's learnt limit as the dispatch allows it: a margin to grow, so that an estimate that
# was too low (a car tapering near full) rises again — a car that can draw more does so up to
# its setpoint. The plan counts on the learnt limit itself: with this margin in the plan, a
# 3.7 kW car was planned at 4.6 kW and its energy packed into too few slots (issue 12: 54.5
# -> 31.2 kWh unmet above the floor on spring, seed 2, docs/performance.md).
VEHICLE_GROWTH = 1.1
VEHICLE_GROWTH_KW = 0.5

# Slack bounds of the cut ranks [-]: a public stay at 1.1x its charging time is tight.
TIGHT_SLACK = 1.5
SOME_SLACK = 3.0
# The rank of a tight session (below `TIGHT_SLACK`).
TIGHT_RANK = 2
# The rank of a car past a default need (a guess; planned for another chunk until it is
# full): cut before every car with a need, so that a guess never takes a real need's power.
GUESS_RANK = -1
# The rank of a car in its probe: cut after every other (issue 12: a slow car whose first
# minutes a zone cut below its own limit never showed that limit, and the plans counted on
# the charger's rating for it).
PROBE_RANK = 3


def paced_kw(
    session: ChargingSession,
    now: datetime,
    full_kw: float,
    slot: timedelta,
    margin: float = PACE_MARGIN,
) -> float:
    """The power that meets ``session``'s need in 1/``margin`` of the time to its departure.

    Parameters
    ----------
    session
        an open session no plan knows yet.
    now
        the dispatch instant [UTC].
    full_kw
        the most the car there can draw (charger or learnt car limit) [kW].
    slot
        the schedule's slot: a departure within one slot gets ``full_kw``.
    margin
        the need is met in 1/``margin`` of the time left (`PACE_MARGIN`) [-].

    Returns
    -------
    float
        ``margin`` × ``remaining_kwh`` over the hours to the departure the planner plans
        for (a default one hedged early, `hedged`), in [0, ``full_kw``] [kW].
    """
    need = session.remaining_kwh
    if not need > 0:
        return 0.0
    left = hedged(session, now).departure - now
    if left <= slot:
        return full_kw
    return min(full_kw, margin * need / (left.total_seconds() / 3600.0))


def cut_ranks(
    sessions: Sequence[ChargingSession],
    power_kw: Mapping[str, float],
    now: datetime,
    probes: Collection[str] = (),
) -> dict[str, int]:
    """Charger id → its rank in a zone cut (higher: cut later), from its session's slack.

    Parameters
    ----------
    sessions
        open sessions.
    power_kw
        charger id → the most the car there can draw (charger or learnt car limit) [kW].
    now
        the dispatch instant [UTC].
    probes
        chargers whose car is in its `PROBE` minutes (`probing`): ranked above every slack
        rank (`PROBE_RANK`), so that a zone cut leaves it the power that shows its limit.

    A session past a default need ranks `GUESS_RANK`, below every other: its need is a guess.
    """
    ranks: dict[str, int] = {}
    for s in sessions:
        if s.charger_id in probes:
            ranks[s.charger_id] = PROBE_RANK
            continue
        need = s.remaining_kwh
        if not need > 0:
            if s.request_source is Source.DEFAULT:
                ranks[s.charger_id] = GUESS_RANK
            continue
        hours = max(0.0, (s.departure - now).total_seconds() / 3600.0)
        slack = power_kw.get(s.charger_id, 0.0) * hours / need
        ranks[s.charger_id] = TIGHT_RANK if slack < TIGHT_SLACK else 1 if slack < SOME_SLACK else 0
    return ranks


def flexible_chargers(sessions: Sequence[ChargingSession], ranks: Mapping[str, int]) -> set[str]:
    """Chargers whose car can wait: its driver gave departure and need, and it is not tight.

    Not tight: cut rank 0 or 1 (`cut_ranks`: at least `TIGHT_SLACK` x the time its need
    takes is left, a need to meet, not in its probe). A guessed departure or need (a charger
    type's default) never waits: a car that waited for a surplus and then left before its
    guessed departure, or wanted more than the guess, goes short (issue 12: with guessed cars
    waiting too, spring, seed 7 lost 10.9 kWh more than without, and went above 1 % of its
    requests unmet).
    """
    return {
        s.charger_id
        for s in sessions
        if s.departure_source is Source.DEVICE
        and s.request_source is Source.DEVICE
        and 0 <= ranks.get(s.charger_id, TIGHT_RANK) < TIGHT_RANK
    }


def hold_back_kw(
    planned_kw: Mapping[str, float],
    flexible: Collection[str],
    forecast_spare_kw: float,
    measured_spare_kw: float,
) -> dict[str, float]:
    """The plan's slot powers with what counted on a missing surplus held back [kW].

    The plan put part of its slot's charging on the renewable surplus it forecast
    (``min(charging, forecast spare)``); where the meters now see less spare power, that part
    of it would be imported. The flexible cars give the difference back, each the same share
    of its planned power, at most all of it; the others keep theirs. Importing now is
    irrevocable while a car that waits keeps the surplus that comes later (issue 12: on
    summer, seed 1, a night's plans counted on wind the meters then saw weaker, the cars
    charged from the grid, and the burst that came an hour later found them full).

    Parameters
    ----------
    planned_kw
        charger id → the plan's power now, for the planned cars that draw [kW].
    flexible
        the chargers of those whose car can wait (`flexible_chargers`).
    forecast_spare_kw
        the plan's forecast of PV + wind − non-EV load for the slot [kW].
    measured_spare_kw
        the same measured now [kW].

    Returns
    -------
    dict
        charger id → power for the flexible ones whose power changed [kW], each in
        [0, planned].
    """
    if not (math.isfinite(forecast_spare_kw) and math.isfinite(measured_spare_kw)):
        return {}
    drawing = {c: kw for c, kw in planned_kw.items() if math.isfinite(kw) and kw > 0}
    counted = min(math.fsum(drawing.values()), max(0.0, forecast_spare_kw))
    missing = counted - max(0.0, measured_spare_kw)
    waiting = {c: kw for c, kw in drawing.items() if c in flexible}
    total = math.fsum(waiting.values())
    if not (missing > 0 and total > 0):
        return {}
    keep = max(0.0, 1.0 - missing / total)
    return {c: kw * keep for c, kw in waiting.items()}


def surplus_left_kw(plan_left_kw: float, measured_spare_kw: float | None, ev_kw: float) -> float:
    """The renewable surplus still free for top-ups beside ``ev_kw`` of charging [kW].

    Measured now where the city's generation and non-EV load are measured: what is left of
    ``measured_spare_kw`` (PV + wind − non-EV load) beside the charging. The surplus follows
    the wind and the clouds minute by minute and the plan's forecast of it errs in level and
    timing (issue 12: a night wind burst an hour later than forecast, a midday sun brighter
    than it); the plan's slot powers stay as they are, only the top-up follows the
    measurement. Without a measurement, what the plan expected left over in the slot.

    Parameters
    ----------
    plan_left_kw
        the renewable power the plan expects left over in the slot after its charging [kW].
    measured_spare_kw
        measured renewable output minus non-EV load now, None when unknown [kW].
    ev_kw
        the charging's total so far (the plan's slot and earlier top-ups) [kW].

    Returns
    -------
    float
        >= 0 and finite [kW].
    """
    if measured_spare_kw is None or not math.isfinite(measured_spare_kw):
        return max(0.0, plan_left_kw) if math.isfinite(plan_left_kw) else 0.0
    left = measured_spare_kw - ev_kw
    return left if left > 0 and math.isfinite(left) else 0.0


class DispatchPolicy:
    """Turns a frozen image and the kept plans into safe setpoints for one deployment.

    Parameters
    ----------
    config : Config
        The deployment (chargers, zones, planning and dispatch settings).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._slot_minutes = config.planning.slot_minutes
        self._limits = charger_limits(config)

    def decide(self, image: StateImage, plans: Sequence[ActivePlan]) -> DispatchOutcome:
        """The setpoints for ``image.at``: the active plan's slot, or the fallback, made safe.

        The plan used is the newest whose slots contain ``now`` and whose first slot began
        less than two planning intervals ago (a plan older than that no longer knows the
        cars that arrived since). A car whose session the plan does not know asks, in the
        same safety pass as the planned cars, for its rating during its first `PROBE`
        minutes, then for the power that meets its need with a margin by its departure
        (`paced_kw`). No plan → fair share of each zone's headroom among connected
        chargers. Stale chargers get their safe power; zones with a stale meter are held at
        their limit (DESIGN 4).

        Parameters
        ----------
        image : StateImage
            The city frozen at the dispatch instant.
        plans : sequence of ActivePlan
            The plans kept, oldest first.
        """
        now = image.at
        planning = self.config.planning
        open_sessions = image.sessions
        state = zone_state(
            self.config, image.latest, now, timedelta(seconds=planning.zone_meter_stale_after_s)
        )
        connected = {s.charger_id for s in open_sessions}
        learnt = image.vehicle_max_kw
        vehicle = {
            s.charger_id: learnt[s.id] * VEHICLE_GROWTH + VEHICLE_GROWTH_KW
            for s in open_sessions
            if s.id in learnt
        }
        power = {
            c.id: min(c.max_kw, vehicle.get(c.id, math.inf))
            for c in self._limits
            if c.id in connected
        }
        stale: dict[str, Any] = {
            "stale_chargers": state.stale_chargers,
            "stale_zones": state.stale_zones,
            "connected": connected,
            "cut_rank": cut_ranks(
                open_sessions,
                power,
                now,
                {s.charger_id for s in open_sessions if probing(s, now, learnt)},
            ),
            "minimum": planning.guaranteed_minimum,
        }
        plan = self._plan_for(plans, image)
        result: Dispatch | None = None
        if plan is not None:
            requested = current_slot_kw(plan.chargers_kw, plan.start, self._slot_minutes, now)
            if requested is not None:
                # Cars that arrived after the plan was made compete with it for the zones,
                # after their first minutes at full power, at the pace that meets their need
                # by their departure (the next plan may be up to two slots away; the plan's
                # value for their charger was another car's);
                # cars past the energy a default assumed for them (a guess, not their need)
                # charge from what the plan leaves; the others, arrivals too, may take
                # renewable surplus the plan leaves.
                fresh = connected - state.stale_chargers
                arriving = [s for s in open_sessions if s.id not in plan.session_ids]
                arrivals = {s.charger_id for s in arriving} & fresh
                beyond = {
                    s.charger_id
                    for s in open_sessions
                    if s.request_source is Source.DEFAULT and s.remaining_kwh <= 0
                } & fresh - arrivals
                wanted = dict(requested)
                slot = timedelta(minutes=self._slot_minutes)
                # Cars that showed they are full draw nothing: a share of the surplus or
                # of the headroom given to them is lost to the cars that can take it.
                idle = {s.charger_id for s in open_sessions if s.id in image.vehicle_full}
                idle &= fresh
                for s in arriving:
                    if s.charger_id not in arrivals:
                        continue
                    if s.charger_id in idle and s.remaining_kwh <= 0:
                        # Left out of the plan, its need met, and the car has stopped: it
                        # asks for nothing (the last top-up below lets it show otherwise).
                        wanted[s.charger_id] = 0.0
                        continue
                    full = power.get(s.charger_id, 0.0)
                    if s.remaining_kwh > 0 and now - s.plugged_in_at >= PROBE:
                        wanted[s.charger_id] = paced_kw(s, now, full, slot)
                    else:
                        # Its first minutes at full power, so that the car's own limit is
                        # learnt before a plan counts on the charger's rating; and a session
                        # left out because its (default) need looked met — a guess — charges
                        # at full power within the limits, as before.
                        wanted[s.charger_id] = max(wanted.get(s.charger_id, 0.0), full)
                index = slot_index(plan.start, now, self._slot_minutes)
                # Planned cars whose need is tight (cut last) may take the headroom the
                # plan leaves now, before anyone: the plan's zone forecast may have had no
                # room for them where the zone has it now.
                ranks = stale["cut_rank"]
                tight = {c for c in fresh - arrivals if ranks.get(c) == TIGHT_RANK}
                idle -= tight
                if index < len(plan.spare_kw) and image.spare_kw is not None:
                    # The plan's charging that counted on a surplus the meters do not see
                    # waits where its car can wait; the next plan moves it.
                    planned = fresh - arrivals - beyond - idle
                    wanted.update(
                        hold_back_kw(
                            {c: wanted.get(c, 0.0) for c in planned},
                            flexible_chargers(
                                [s for s in open_sessions if s.charger_id in planned], ranks
                            ),
                            plan.spare_kw[index],
                            image.spare_kw,
                        )
                    )
                result = self._planned(
                    wanted,
                    [tight, beyond - tight - idle],
                    fresh - beyond - idle,
                    (plan.surplus_kw[index], image.spare_kw),
                    vehicle,
                    state.limits,
                    stale,
                    idle=idle,
                )
        if result is None:
            plan = None
            # Fair share (DESIGN 4): every connected car asks for what it can draw.
            result = apply_limits(power, self._limits, state.limits, **stale)
        sid = (
            plan.schedule_id
            if plan is not None
            else schedule_id(floor_slot(now, self._slot_minutes), fallback=True)
        )
        until = valid_until(now, refresh_s=planning.dispatch_interval_s)
        setpoints = dict(result.setpoints_kw)
        payloads: dict[str, dict[str, object]] = {
            cid: setpoint_payload(kw, now=now, until=until, schedule_id=sid)
            for cid, kw in setpoints.items()
        }
        limited = {
            cid: f"zone:{result.zone_of_cut[cid]}"
            if why is Limiter.ZONE and cid in result.zone_of_cut
            else why.value
            for cid, why in result.limiter.items()
        }
        return DispatchOutcome(
            schedule_id=sid,
            at=now,
            valid_until=until,
            setpoints_kw=setpoints,
            payloads=payloads,
            order=sending_order(dict(image.previous_setpoints_kw), setpoints),
            shortfalls=list(result.shortfalls),
            limited=limited,
            fallback=plan is None,
            zone_rules=dict(result.rules),
            connected=frozenset(connected),
        )

    def _plan_for(self, plans: Sequence[ActivePlan], image: StateImage) -> ActivePlan | None:
        """The newest plan (not a fallback) whose slots contain ``now`` and is recent enough."""
        now = image.at
        slot = timedelta(minutes=self._slot_minutes)
        max_age = 2 * timedelta(minutes=self.config.planning.interval_min)
        for plan in reversed(plans):
            if plan.start > now:
                continue
            # The newest plan that has begun decides; a fallback one means fair share now.
            if plan.slots == 0 or now - plan.start >= max(max_age, slot):
                return None
            return plan if now < plan.start + plan.slots * slot else None
        return None

    def _planned(
        self,
        requested: Mapping[str, float],
        headroom_groups: Sequence[set[str]],
        others: set[str],
        surplus: tuple[float, float | None],
        vehicle: Mapping[str, float],
        zones: list[ZoneLimit],
        stale: Mapping[str, Any],
        idle: Collection[str] = frozenset(),
    ) -> Dispatch:
        """The plan's slot, then top-ups from the headroom it leaves, then every limit again.

        Top-ups, each from the zones' headroom the passes before left: first each of
        ``headroom_groups`` in turn (the tight planned cars, then the cars past a default
        need); then the ``others`` from the renewable surplus left beside the charging so
        far (``surplus``: what the plan expects left over in the slot and the spare renewable
        power measured now, `surplus_left_kw`) [kW]: the plan is indifferent between slots
        without import, and energy delivered early is energy a car that leaves early does not
        miss; last the ``idle`` chargers (cars that showed they are full) from the headroom
        left, so that one that draws again shows it. Their setpoints are not counted as
        charging against the surplus: they draw nothing (issue 12: winter, seed 4, lost 170
        kWh of its 805 kWh surplus so, with cars plugged in that wanted it).
        """
        setpoints = apply_limits(requested, self._limits, zones, **stale).setpoints_kw
        for group in headroom_groups:
            if group:
                extra = self._top_up(setpoints, group, vehicle, zones, None)
                setpoints = {c: kw + extra.get(c, 0.0) for c, kw in setpoints.items()}
        drawing = math.fsum(kw for c, kw in setpoints.items() if c not in idle)
        cap = surplus_left_kw(*surplus, drawing)
        if others and cap > 0:
            extra = self._top_up(setpoints, others, vehicle, zones, cap)
            setpoints = {c: kw + extra.get(c, 0.0) for c, kw in setpoints.items()}
        if idle:
            extra = self._top_up(setpoints, set(idle), vehicle, zones, None)
            setpoints = {c: kw + extra.get(c, 0.0) for c, kw in setpoints.items()}
        # Once more through every limit: the sums of the passes may round a few ulp over.
        return apply_limits(setpoints, self._limits, zones, **stale)

    def _top_up(
        self,
        setpoints: Mapping[str, float],
        group: set[str],
        vehicle: Mapping[str, float],
        zones: list[ZoneLimit],
        cap_kw: float | None,
    ) -> dict[str, float]:
        """Extra power for ``group`` within each zone's headroom left by ``setpoints`` [kW]."""
        parents = parents_of(zones)
        used: dict[str, float] = {z.id: 0.0 for z in zones}
        for limit in self._limits:
            for zone_id in ancestors(limit.zone, parents):
                used[zone_id] += setpoints[limit.id]
        top = "_cap" if cap_kw is not None else None
        leftover = [
            ZoneLimit(z.id, z.parent or top, max(0.0, z.headroom_kw - used[z.id])) for z in zones
        ]
        if cap_kw is not None:
            leftover.append(ZoneLimit("_cap", None, cap_kw))
        chargers = [
            ChargerLimit(
                c.id,
                c.zone or top,
                max(0.0, min(c.max_kw, vehicle.get(c.id, math.inf)) - setpoints[c.id]),
            )
            for c in self._limits
            if c.id in group
        ]
        return fair_share_kw(group, chargers, leftover).setpoints_kw
