"""The pure building blocks in one loop, without services: simulated chargers → telemetry →
sessions → fallback plan → safety layer → setpoints → chargers that obey them.

Every minute of a simulated day (a DST day, 100 quarter hours) checks that no charger draws more
than its setpoint and no zone more than its headroom; then the dispatcher goes silent and the
chargers must drop to their fail-safe power once their setpoints expire.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from adapters.contract.reading import AssetKind, Reading
from gridcoord.config import ChargerType
from gridcoord.dispatch import (
    ChargerLimit,
    ZoneLimit,
    apply_limits,
    fair_share_kw,
    setpoint_payload,
    valid_until,
)
from gridcoord.sessions import EventKind, SessionTracker
from gridcoord.simulation import SimulatedCharger, visits_on
from gridcoord.timegrid import local_day_slots, parse_rfc3339

SEED = 11
DAY = date(2026, 10, 25)  # 25 hours in Europe/Berlin
TYPES = [ChargerType.HOME] * 12 + [ChargerType.WORKPLACE] * 8 + [ChargerType.PUBLIC] * 6


def test_a_day_of_the_loop_keeps_every_limit_and_fails_safe() -> None:
    zones = [
        ZoneLimit("sub", None, 40.0),
        ZoneLimit("f1", "sub", 22.0),
        ZoneLimit("f2", "sub", 25.0),
    ]
    limits = [
        ChargerLimit(f"c{i}", "f1" if i % 2 else "f2", 11.0, 1.4, 4.2 if i % 5 == 0 else 0.0)
        for i in range(len(TYPES))
    ]
    members = {
        "f1": [c.id for c in limits if c.zone == "f1"],
        "f2": [c.id for c in limits if c.zone == "f2"],
        "sub": [c.id for c in limits],
    }
    zone_limit = {z.id: z.headroom_kw for z in zones}
    chargers = {c.id: SimulatedCharger(c.id, c.max_kw, c.safe_power_kw) for c in limits}
    types = {c.id: t for c, t in zip(limits, TYPES, strict=True)}
    tracker = SessionTracker(types)
    visits = sorted(
        (v for d in (DAY - timedelta(days=1), DAY) for cid, t in types.items()
         for v in visits_on(cid, t, d, SEED)),
        key=lambda v: v.arrival,
    )  # fmt: skip
    slots = local_day_slots(DAY)
    assert len(slots) == 100
    start, silent_from = slots[0], slots[80]
    end = slots[-1] + timedelta(minutes=15)
    now, plugged, setpoints, busiest = start, 0, {}, 0.0
    pending = [v for v in visits if v.departure > start]

    while now < end:
        # Vehicles arrive.
        while pending and pending[0].arrival <= now:
            visit = pending.pop(0)
            chargers[visit.charger_id].plug_in(visit)
        # Telemetry → sessions.
        for cid, charger in chargers.items():
            fields = {k: v for k, v in charger.telemetry(now).items() if k != "ts"}
            for event in tracker.update(Reading(cid, AssetKind.CHARGER, None, now, fields)):
                plugged += event.kind is EventKind.PLUGGED_IN
        # Dispatch every minute until the dispatcher goes silent: the fallback plan (fair share
        # among chargers with an open session), through the safety layer.
        if now < silent_from:
            connected = {s.charger_id for s in tracker.open_sessions()}
            dispatch = fair_share_kw(connected, limits, zones)
            # The safety layer is idempotent on its own output (minima only for connected).
            again = apply_limits(dispatch.setpoints_kw, limits, zones, connected=connected)
            assert again.setpoints_kw == dispatch.setpoints_kw
            until = valid_until(now)
            for cid, kw in dispatch.setpoints_kw.items():
                payload = setpoint_payload(kw, now=now, until=until, schedule_id="fallback")
                assert chargers[cid].receive_setpoint(payload)
                setpoints[cid] = (kw, parse_rfc3339(payload["valid_until"]))
        # One minute of charging; nobody draws more than allowed.
        nxt = now + timedelta(minutes=1)
        draw = {cid: c.advance(now, nxt) * 60.0 for cid, c in chargers.items()}
        for cid, kw in draw.items():
            allowed, expires = setpoints.get(cid, (1.4, now))
            limit = allowed if nxt <= expires else max(allowed, 1.4) if now < expires else 1.4
            assert kw <= limit + 1e-9, (cid, now, kw, limit)
        if now < silent_from:
            for zone, ids in members.items():
                assert math.fsum(draw[i] for i in ids) <= zone_limit[zone] + 1e-9, (zone, now)
            busiest = max(busiest, math.fsum(kw for kw, _ in setpoints.values()))
        if now >= silent_from + timedelta(minutes=3):
            assert all(kw <= 1.4 + 1e-9 for kw in draw.values())  # expired: fail-safe power
        now = nxt

    arrived = [v for v in visits if start < v.arrival < end]
    assert plugged >= len(arrived) > 5
    delivered = sum(c.delivered_total_kwh for c in chargers.values())
    assert delivered > 20.0  # the loop did charge cars
    # ...and the zones bound the plan: at some minute the setpoints used the whole substation.
    assert busiest > 0.99 * zone_limit["sub"]
