"""The scheduled side of `gridcoord run`: planning runs and setpoint dispatch (DESIGN 2, 4).

APScheduler (3.x, asyncio flavour, on the service's event loop) runs two jobs:

- **plan** at every `planning.interval_min` boundary of the UTC clock (quarter hours by
  default, which are quarter hours of Europe/Berlin too), never two at once, misfires
  coalesced; `run_now()` triggers one out of turn. The coordinator solves in a worker thread
  so the loop keeps ingesting, dispatching and serving the API meanwhile.
- **dispatch** every `planning.dispatch_interval_s`: the active plan's current slot through
  the safety layer, sent to every charger through the `SetpointSink` of its configured
  source (`gridcoord.sinks`: MQTT retained QoS 1, Modbus written and read back), decreases
  first; each `Delivery` is counted, failures and mismatches logged when they start and end.
  Deciding the setpoints (freeze, safety layer, overrides) and building the stored points run
  in a worker thread too: for 10,000 chargers they take a CPU-bound fraction of a second, which
  on the loop held up every other task, `/health/live` included. Only the sends are on the
  loop.

Plans and setpoints go to the store through the ingest pipeline; a failed or fallback plan is
logged as an error and published on `<prefix>/plan/latest` (retained) for operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapters.contract.reading import AssetKind
from adapters.sink import Delivery, Setpoint, SetpointSink
from gridcoord.config import Config
from gridcoord.sinks import routes
from gridcoord.storage.outcomes import plan_points, setpoint_points
from gridcoord.storage.points import Point

if TYPE_CHECKING:
    from gridcoord.outcomes import DispatchOutcome, PlanOutcome
    from gridcoord.planning.coordinator import Coordinator

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain
Clock = Callable[[], datetime]
_O = TypeVar("_O")


def utc_now() -> datetime:
    """The service clock: aware UTC."""
    return datetime.now(UTC)


class PlanningLoop:
    """Runs planning and dispatch on a schedule for one coordinator.

    Parameters
    ----------
    config
        the deployment.
    coordinator
        turns observations into plans and setpoints.
    publish
        sends an MQTT message (the plan summary); None: not published.
    store
        hands points to the ingest pipeline.
    sinks
        reach the chargers (`gridcoord.sinks.setpoint_sinks`); a charger no sink
        serves is reported once and skipped.
    clock
        returns aware UTC now (tests may pass another).
    adjust
        applied to every dispatch before it is sent (operator overrides); it may only
        lower setpoints, through the safety layer.

    Raises
    ------
    ValueError
        two sinks claim the same charger.
    """

    def __init__(
        self,
        config: Config,
        coordinator: Coordinator,
        *,
        publish: Publish | None,
        store: Callable[[Sequence[Point]], None],
        sinks: Sequence[SetpointSink] = (),
        clock: Clock = utc_now,
        adjust: Callable[[DispatchOutcome], DispatchOutcome] | None = None,
    ) -> None:
        self._config = config
        self._coordinator = coordinator
        self._publish = publish
        self._store = store
        chargers = [a.id for a in config.assets if a.kind is AssetKind.CHARGER]
        self._routes = routes(sinks, chargers)
        self._clock = clock
        self._adjust = adjust
        self._prefix = config.mqtt.topic_prefix
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._plan_lock = asyncio.Lock()
        # Separate from the plan lock: a long solve must not hold back the minute's refresh.
        self._dispatch_lock = asyncio.Lock()
        self.last_plan: PlanOutcome | None = None
        self.last_dispatch: DispatchOutcome | None = None
        self._overloaded: set[str] = set()
        # Zone alarms wait until meters have had their staleness limit to report: before that
        # a zone is held at its limit because its meter is silent, not because it is full.
        self._alarms_from = clock() + timedelta(seconds=config.planning.zone_meter_stale_after_s)
        self._held_noted = False
        # Delivery states by count ("unreachable": no sink serves the charger).
        self.deliveries: Counter[str] = Counter()
        self._trouble: dict[str, str] = {}  # charger → state of its ongoing delivery problem
        self._unreachable: set[str] = set()
        self._sent_kw: dict[str, float] = {}  # last setpoint handed to a sink [kW]
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

    @property
    def running(self) -> bool:
        """True while the scheduler runs the jobs (between `start` and `stop`)."""
        return bool(self._scheduler.running)

    def run_now(self) -> None:
        """Trigger a planning run out of turn (it waits for one under way)."""
        self._scheduler.modify_job("plan", next_run_time=self._clock())

    def dispatch_soon(self) -> None:
        """Dispatch out of turn (a limit changed); thread-safe."""
        self._scheduler.modify_job("dispatch", next_run_time=self._clock())

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
            await self.plan_once()
        except asyncio.CancelledError:
            # Only at shutdown, after `stop` gave the run its time; nothing half-sent.
            log.warning("planning run cancelled by shutdown")

    async def plan_once(self) -> None:
        """One planning run at the clock's now, then a dispatch of its first slot."""
        async with self._plan_lock:
            now = self._clock()
            outcome = await asyncio.to_thread(self._coordinator.plan, now)
            self.last_plan = outcome
            await asyncio.to_thread(self._store_points, plan_points, outcome)
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
            await self.dispatch_once()

    async def _dispatch_job(self) -> None:
        await self.dispatch_once()

    async def dispatch_once(self) -> None:
        """Send every charger its setpoint for the clock's now, and store them."""
        async with self._dispatch_lock:
            await self._dispatch(self._clock())

    def _decide(self, now: datetime) -> DispatchOutcome:
        """The setpoints for ``now`` after the operators' caps (in a worker thread)."""
        outcome = self._coordinator.dispatch(now)
        return self._adjust(outcome) if self._adjust is not None else outcome

    def _store_points(self, make: Callable[[_O], list[Point]], outcome: _O) -> None:
        self._store(make(outcome))

    async def _dispatch(self, now: datetime) -> None:
        # The dispatch lock keeps one decision at a time; a plan may be solving meanwhile
        # (the coordinator locks what both touch).
        outcome = await asyncio.to_thread(self._decide, now)
        self.last_dispatch = outcome
        overloaded = {o.zone: o for o in outcome.overloads}
        if overloaded and now < self._alarms_from:
            if not self._held_noted:
                log.info(
                    "%d zone(s) held at their limit until their meters report (zone alarms "
                    "from %s)",
                    len(overloaded),
                    self._alarms_from.isoformat(timespec="seconds"),
                )
                self._held_noted = True
        elif set(overloaded) != self._overloaded:
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
        decreases: list[tuple[SetpointSink, Setpoint]] = []
        others: list[tuple[SetpointSink, Setpoint]] = []
        for charger_id in outcome.order:
            sink = self._routes.get(charger_id)
            if sink is None:
                self._report_unreachable(charger_id)
                continue
            kw = outcome.setpoints_kw[charger_id]
            setpoint = Setpoint(
                charger_id=charger_id,
                max_power_w=kw * 1000.0,
                valid_until=outcome.valid_until,
                schedule_id=outcome.schedule_id,
                issued_at=outcome.at,
            )
            lower = kw < self._sent_kw.get(charger_id, math.inf)
            (decreases if lower else others).append((sink, setpoint))
            self._sent_kw[charger_id] = kw
        # Every decrease has reached its charger before any increase leaves; within each group
        # all chargers at once (an OCPP station takes three round trips, thousands of them
        # one after another would not fit in a dispatch interval).
        for group in (decreases, others):
            deliveries = await asyncio.gather(*(self._deliver(k, s) for k, s in group))
            for delivery in deliveries:
                self._account(delivery)
        await asyncio.to_thread(self._store_points, setpoint_points, outcome)

    async def _deliver(self, sink: SetpointSink, setpoint: Setpoint) -> Delivery:
        try:
            return await sink.send(setpoint)
        except Exception as exc:  # a sink breaking its promise must not stop the others
            log.error(
                "setpoint to %s via %s raised: %r", setpoint.charger_id, type(sink).__name__, exc
            )
            return Delivery(setpoint.charger_id, "failed", f"sink raised {type(exc).__name__}")

    def _account(self, delivery: Delivery) -> None:
        self.deliveries[delivery.state] += 1
        charger_id = delivery.charger_id
        before = self._trouble.get(charger_id)
        if delivery.state in ("failed", "mismatch"):
            if before != delivery.state:
                # Reported when it starts, not every minute (the adapter logs each alarm).
                log.warning("setpoint to %s %s: %s", charger_id, delivery.state, delivery.detail)
            self._trouble[charger_id] = delivery.state
        elif before is not None:
            log.info("setpoint to %s delivered again (%s)", charger_id, delivery.state)
            del self._trouble[charger_id]

    def _report_unreachable(self, charger_id: str) -> None:
        self.deliveries["unreachable"] += 1
        if charger_id not in self._unreachable:
            log.error("charger %s: no setpoint sink serves it (is its source running?)", charger_id)
            self._unreachable.add(charger_id)


def _kpi_text(kpis: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(kpis.items()))
