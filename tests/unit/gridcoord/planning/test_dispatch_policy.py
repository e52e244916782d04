"""The dispatch policy's cut ranks: who gives way in a full zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridcoord.planning.dispatch_policy import cut_ranks
from gridcoord.sessions import ChargingSession, Source

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def session(charger: str, hours_left: float, need_kwh: float) -> ChargingSession:
    return ChargingSession(
        id=f"{charger}@x",
        charger_id=charger,
        plugged_in_at=NOW - timedelta(hours=1),
        departure=NOW + timedelta(hours=hours_left),
        departure_source=Source.DEVICE,
        requested_kwh=need_kwh,
        request_source=Source.DEVICE,
        delivered_kwh=0.0,
        power_kw=0.0,
        last_seen=NOW,
    )


def test_the_most_slack_gives_way_first() -> None:
    sessions = [
        session("home", 12.0, 15.0),  # 11 kW x 12 h / 15 kWh: 8.8x its charging time
        session("work", 4.0, 20.0),  # 2.2x
        session("public", 1.0, 10.0),  # 1.1x: a short public stay
        session("full", 1.0, 0.0),  # nothing needed
        session("gone", -1.0, 5.0),  # past its departure and still here: tightest
    ]
    power = {s.charger_id: 11.0 for s in sessions}
    ranks = cut_ranks(sessions, power, NOW)
    assert ranks == {"home": 0, "work": 1, "public": 2, "gone": 2}
