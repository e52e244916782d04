"""Readiness (`/health/ready`): whether a load balancer or orchestrator may rely on us."""

from __future__ import annotations

from datetime import datetime

from gridcoord.api.view import Health


def readiness(health: Health, now: datetime) -> tuple[bool, dict[str, str]]:
    """Whether the service is ready, and each check's verdict (``ok`` or why not).

    Ready means: connected and subscribed to the broker; the store takes writes, or the spool
    does while it is away (not full); and, when planning is on, a plan younger than two
    planning intervals (the first one runs at start).
    """
    checks: dict[str, str] = {}
    checks["broker"] = "ok" if health.broker_connected else "not connected and subscribed"
    if health.spool_full:
        checks["store"] = "store unavailable and spool full"
    elif health.store_writable or health.spooling:
        checks["store"] = "ok" if health.store_writable else "ok (spooling)"
    else:
        checks["store"] = "ingest writer not running"
    if health.planning_enabled:
        last = health.last_plan_at
        if last is None:
            checks["plan"] = "no plan yet"
        elif (now - last).total_seconds() > 2 * health.plan_interval_s:
            checks["plan"] = f"last plan {(now - last).total_seconds():.0f} s old"
        else:
            checks["plan"] = "ok"
    ok = all(value.startswith("ok") for value in checks.values())
    return ok, checks
