"""The scheduled side of `gridcoord run`: planning runs and setpoint dispatch (DESIGN 2, 4).

APScheduler (3.x, asyncio flavour, on the service's event loop) runs two jobs:

- **plan** at every `planning.interval_min` boundary of the UTC clock (quarter hours by
  default, which are quarter hours of Europe/Berlin too), never two at once, misfires
  coalesced; `run_now()` triggers one out of turn. The coordinator solves in a worker thread
  so the loop keeps ingesting and dispatching meanwhile.
- **dispatch** every `planning.dispatch_interval_s`: the active plan's current slot through
  the safety layer, sent to every charger (MQTT retained QoS 1, or Modbus), decreases first.

Plans and setpoints go to the store through the ingest pipeline; a failed or fallback plan is
logged as an error and published on `<prefix>/plan/latest` (retained) for operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapters.sink import Delivery, Setpoint, SetpointSink
from gridcoord.config import Config
from gridcoord.storage.points import Point

if TYPE_CHECKING:
    from adapters.modbus.poller import ModbusPoller
    from gridcoord.planning.coordinator import Coordinator, DispatchOutcome, PlanOutcome

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The service clock: aware UTC."""
    return datetime.now(UTC)


class PlanningLoop:
    """Runs planning and dispatch on a schedule for one coordinator.

    Args:
        config: the deployment.
        coordinator: turns observations into plans and setpoints.
        publish: sends an MQTT message (None: no broker, Modbus only).
        store: hands points to the ingest pipeline.
        modbus: the poller that owns the Modbus chargers, if any.
        sinks: further setpoint sinks (e.g. the OCPP central system); each charger they
            reach gets its setpoint from them instead of MQTT.
        clock: returns aware UTC now (tests may pass another).
    """

    def __init__(
        self,
        config: Config,
        coordinator: Coordinator,
        *,
        publish: Publish | None,
        store: Callable[[Sequence[Point]], None],
        modbus: ModbusPoller | None = None,
        sinks: Sequence[SetpointSink] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._config = config
        self._coordinator = coordinator
        self._publish = publish
        self._store = store
        self._modbus = modbus
        self._modbus_chargers = set(modbus.charger_ids) if modbus is not None else set()
        self._sink_for = {c: sink for sink in sinks for c in sink.charger_ids}
        self._undelivered: set[str] = set()
        self._clock = clock
        self._prefix = config.mqtt.topic_prefix
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._plan_lock = asyncio.Lock()
        # Separate from the plan lock: a long solve must not hold back the minute's refresh.
        self._dispatch_lock = asyncio.Lock()
        self.last_plan: PlanOutcome | None = None
        self.last_dispatch: DispatchOutcome | None = None
        self._overloaded: set[str] = set()
        # APScheduler logs every job run at INFO; our own lines say what matters.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        """Schedule the jobs; a first plan and dispatch run at once."""
        planning = self._config.planning
        minutes = planning.interval_min
        # A divisor of 60 keeps runs on the same wall-clock minutes every hour.
        minute_spec = f"*/{minutes}" if 60 % minutes == 0 else "0"
        now = self._clock()
        self._scheduler.add_job(
            self._plan_job,
            CronTrigger(minute=minute_spec, second=0, timezone=UTC),
            id="plan",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(30, minutes * 30),
            next_run_time=now,
        )
        self._scheduler.add_job(
            self._dispatch_job,
            IntervalTrigger(seconds=planning.dispatch_interval_s, timezone=UTC),
            id="dispatch",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(planning.dispatch_interval_s),
        )
        self._scheduler.start()
        log.info(
            "planning every %d min (%s UTC minutes), dispatch every %.0f s",
            minutes,
            minute_spec,
            planning.dispatch_interval_s,
        )

    def run_now(self) -> None:
        """Trigger a planning run out of turn (it waits for one under way)."""
        self._scheduler.modify_job("plan", next_run_time=self._clock())

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling and let a planning run under way finish (its plan gets stored)."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()  # no new runs; the one under way goes on
        try:
            async with asyncio.timeout(timeout), self._plan_lock, self._dispatch_lock:
                pass
        except TimeoutError:
            log.warning("a planning run was still going after %.0f s; not waiting", timeout)
        self._scheduler.shutdown(wait=False)

    async def _plan_job(self) -> None:
        try:
            await self._plan_and_dispatch()
        except asyncio.CancelledError:
            # Only at shutdown, after `stop` gave the run its time; nothing half-sent.
            log.warning("planning run cancelled by shutdown")

    async def _plan_and_dispatch(self) -> None:
        async with self._plan_lock:
            now = self._clock()
            outcome = await asyncio.to_thread(self._coordinator.plan, now)
            self.last_plan = outcome
            self._store(outcome.points())
            summary = {
                "schedule_id": outcome.schedule_id,
                "status": outcome.status,
                "failure": outcome.failure,
                "solve_s": round(outcome.solve_s, 3),
                "sessions": outcome.sessions,
                "kpis": outcome.kpis,
            }
            if outcome.failure:
                log.error("planning run %s fell back: %s", outcome.schedule_id, outcome.failure)
            else:
                log.info(
                    "planning run %s: %s in %.2f s, %d sessions, %s",
                    outcome.schedule_id,
                    outcome.status,
                    outcome.solve_s,
                    outcome.sessions,
                    _kpi_text(outcome.kpis),
                )
            if self._publish is not None:
                self._publish(f"{self._prefix}/plan/latest", json.dumps(summary).encode(), 1, True)
            # Inside the plan lock: `stop` waits for this dispatch too, so it is stored.
            await self._dispatch_job()

    async def _dispatch_job(self) -> None:
        async with self._dispatch_lock:
            await self._dispatch(self._clock())

    async def _dispatch(self, now: datetime) -> None:
        outcome = self._coordinator.dispatch(now)
        self.last_dispatch = outcome
        overloaded = {o.zone: o for o in outcome.overloads}
        if set(overloaded) != self._overloaded:
            # Reported when it changes, not every minute: the state is what matters.
            for zone in sorted(set(overloaded) - self._overloaded):
                o = overloaded[zone]
                log.error(
                    "zone %s: guaranteed minima and stale chargers need %.1f kW, limit %.1f kW",
                    zone,
                    o.floors_kw,
                    o.limit_kw,
                )
            for zone in sorted(self._overloaded - set(overloaded)):
                log.info("zone %s: back within its limit", zone)
            self._overloaded = set(overloaded)
        to_sinks: list[Setpoint] = []
        for charger_id in outcome.order:
            kw = outcome.setpoints_kw[charger_id]
            if charger_id in self._sink_for:
                to_sinks.append(
                    Setpoint(charger_id, kw * 1000.0, outcome.valid_until, outcome.schedule_id, now)
                )
            elif charger_id in self._modbus_chargers and self._modbus is not None:
                await self._send_modbus(charger_id, kw, outcome.valid_until)
            elif self._publish is not None:
                payload = json.dumps(outcome.payloads[charger_id]).encode()
                self._publish(f"{self._prefix}/setpoint/{charger_id}", payload, 1, True)
        if to_sinks:
            await self._send_to_sinks(to_sinks)
        self._store(outcome.points())

    async def _send_to_sinks(self, setpoints: Sequence[Setpoint]) -> None:
        """Every sink's chargers at once (their first frames leave in sending order)."""
        results = await asyncio.gather(
            *(self._sink_for[s.charger_id].send(s) for s in setpoints), return_exceptions=True
        )
        failed = set()
        for setpoint, result in zip(setpoints, results, strict=True):
            if isinstance(result, BaseException):
                # A sink must not raise; one that does must not stop the others' dispatch.
                result = Delivery(setpoint.charger_id, "failed", type(result).__name__)
            if result.state == "failed":
                failed.add(setpoint.charger_id)
                if setpoint.charger_id not in self._undelivered:
                    log.warning(
                        "setpoint to %s not delivered: %s", setpoint.charger_id, result.detail
                    )
        for charger_id in sorted(self._undelivered - failed):
            log.info("setpoints reach %s again", charger_id)
        self._undelivered = failed

    async def _send_modbus(self, charger_id: str, kw: float, valid_until: datetime) -> None:
        assert self._modbus is not None
        try:
            # An alarm in the result (write failed, read-back mismatch) is logged by the poller.
            await self._modbus.set_charger_power(charger_id, kw * 1000.0, valid_until=valid_until)
        except Exception as exc:  # a device problem must not stop the other chargers' dispatch
            log.error("setpoint to %s over Modbus failed: %s", charger_id, exc)
            return


def _kpi_text(kpis: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(kpis.items()))
