"""One demo run: the simulated city and the real `Service` over MQTT, on a simulated clock.

The service is the one `gridcoord run` starts — MqttSession, the decoder and validation, the
ingest pipeline into the embedded store, the coordinator and `PlanningLoop`, sending setpoints
the way the service always does — with two differences only: its clock is the simulation's,
and instead of APScheduler the demo tells it when a planning run or a dispatch is due
(`PlanningLoop.plan_once`, `dispatch_once`).

Every simulated minute (a *tick*):

1. the city advances one minute; every asset publishes its DESIGN 3.2 telemetry to
   ``<prefix>/telemetry/<asset>``; the tick waits until the service has taken all of it (a
   listener on its accepted readings) or a deadline passes, which is logged;
2. at every quarter hour a planning run and its dispatch (one KPI line printed), else a
   dispatch: the service sends the setpoints (retained, QoS 1) to
   ``<prefix>/setpoint/<charger>``; the simulated chargers take them, obey them, and fall back
   after ``valid_until``; the tick waits until every charger has its own.

At the start and every `FORECAST_EVERY` (6 h) a simulated weather service
(`gridcoord.simulation.weather_service`) publishes day-ahead PV and wind forecasts to
``<prefix>/forecast/<kind>`` as the broker's ``forecaster`` account, and the tick waits until
the service has taken them.

Before the service starts, the store gets a week of the city's past (PV, wind and loads,
as a running service would have left it), which the service's warm start reads back. The
controlled KPIs are the city's physics under the setpoints the service sent; the count of
plans is what the service stored. An uncontrolled baseline of the same city (same seed: same
weather, loads and cars) runs alongside without MQTT; at the end, the perfect-foresight bound
is solved on its realised data (`gridcoord.demo.bound`). All three are judged by the same
KPI definitions (`gridcoord.outcomes`). With ``speed`` > 0 ticks are paced to simulated
seconds per real second.

Two processes: this one runs the service and drives the ticks; everything else — the city,
its devices' MQTT logins, the weather service, the baseline and the bound — runs in a spawned
child (`gridcoord.demo.city_process`), so that the devices' MQTT work does not share the
service's interpreter lock and both cores work. Each step above is a request to the child,
answered when done; the waits on the service (readings, forecasts taken) end when the child
ends too, and a child that ends mid-run is `CityProcessError`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from adapters.contract.reading import Reading
from adapters.contract.validation import build_reading
from gridcoord import heap
from gridcoord.broker.acl import FORECASTER_USER
from gridcoord.broker.files import Accounts
from gridcoord.config import Config
from gridcoord.demo.bound import Bound
from gridcoord.demo.city_process import (
    TICK_DEADLINE_S,
    CityProcess,
    CitySpec,
    Kpis,
)
from gridcoord.demo.dashboard import dashboard_api
from gridcoord.forecast.external import ExternalForecast
from gridcoord.logging_setup import current_format
from gridcoord.outcomes import OUTCOME_KPI_KEYS, DispatchOutcome, PlanOutcome
from gridcoord.service import Service
from gridcoord.service_thread import ServiceThread
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, reading_to_point
from gridcoord.timegrid import as_utc, format_local

log = logging.getLogger(__name__)

TICK = timedelta(minutes=1)
ZERO = timedelta(0)
KPI_KEYS = OUTCOME_KPI_KEYS
# How often the simulated weather service issues a forecast (operational models: 4 runs a day).
FORECAST_EVERY = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What a demo run simulates.

    Attributes
    ----------
    start
        first simulated instant [UTC] (a quarter hour).
    hours
        simulated hours to run, None = until stopped.
    speed
        simulated seconds per real second, 0 = as fast as possible.
    seed
        city, weather and cars.
    season
        the season the start falls in (a label for the output; the weather follows
        ``start``'s month).
    chargers
        chargers in the city.
    warmup_days
        days of PV, wind and load history in the store before the start
        (the same-weekday load forecast needs a week).
    solver_time_limit_s
        the solver's budget per run [s].
    prefix
        MQTT topic prefix.
    weather_service
        a simulated weather service publishes day-ahead PV and wind forecasts (at the
        start and every `FORECAST_EVERY`) as the broker's ``forecaster`` account.
    import_weights
        ``planning.import_weights`` of the service (``net_load`` or ``early``).
    """

    start: datetime
    hours: float | None = 24.0
    speed: float = 0.0
    seed: int = 1
    season: str = ""
    chargers: int = 300
    warmup_days: int = 7
    solver_time_limit_s: float = 20.0
    prefix: str = "gridcoord"
    weather_service: bool = True
    import_weights: str = "net_load"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The final KPIs of the controlled city, the uncontrolled baseline and the bound."""

    controlled: Kpis
    baseline: Kpis
    simulated_hours: float
    plans: int
    fallback_plans: int
    late_ticks: int
    floor_overloads: int = 0
    bound: Bound | None = None
    forecast_error: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """DESIGN 3.1's ``--json`` object (docs/cli.md), with the forecast error by lead time."""
        out: dict[str, object] = {
            **{k: self.controlled[k] for k in KPI_KEYS},
            "baseline": {k: self.baseline[k] for k in KPI_KEYS},
            "forecast_error": self.forecast_error,
        }
        if self.bound is not None:
            out["bound"] = {k: self.bound.kpis[k] for k in KPI_KEYS}
            out["bound_status"] = self.bound.status
        return out


class DemoRun:
    """The city, its devices' MQTT client, and the real service on the simulated clock.

    Parameters
    ----------
    settings
        what to simulate.
    store_path
        the embedded store's file (its directory also holds the spool).
    say
        prints one line for people (a planning run's KPIs).
    settle_heap
        once the service and the devices are up, apply `gridcoord run`'s collector settings
        (`gridcoord.heap.settle`: freeze what lives as long as the process, young collections
        rarer). Only for a process that runs one demo (the command), never in a test's.
    """

    def __init__(
        self,
        settings: DemoSettings,
        store_path: Path,
        say: Callable[[str], None],
        *,
        settle_heap: bool = False,
    ) -> None:
        self.settings = settings
        self._say = say
        self._settle_heap = settle_heap
        start = as_utc(settings.start)
        self.layout = demo_city(settings.seed, settings.chargers)
        self.store_path = store_path
        self.config = Config(
            **self.layout.config(),
            mqtt={
                "host": "127.0.0.1",
                "port": 1883,  # the broker's port is known in `run`
                "topic_prefix": settings.prefix,
                "client_id": "gridcoord-demo",
            },
            planning={
                "solver_time_limit_s": settings.solver_time_limit_s,
                "import_weights": settings.import_weights,
            },
            storage={
                "kind": "embedded",
                "path": store_path,
                "spool_dir": store_path.parent / "spool",
            },
        )
        self.bound: Bound | None = None
        self._now = start
        self._cond = threading.Condition()
        self._readings = 0
        self._expected = 0  # readings a tick brings (the city's process counts them)
        self.ticks = 0  # simulated minutes done
        self.floor_overloads = 0  # zone-minutes whose floors alone exceeded the headroom
        self._floor_zones: set[str] = set()
        self._forecasts_taken: set[tuple[str, datetime]] = set()
        self.city_process: CityProcess | None = None
        self._city_gone = False

    # --- the run -------------------------------------------------------------------------

    def run(self, stop: threading.Event, port: int, accounts: Accounts) -> DemoResult:
        """Tick until ``hours`` have passed or ``stop`` is set; return the KPIs.

        Parameters
        ----------
        stop
            set to end the run after the current tick.
        port
            the broker's port on 127.0.0.1.
        accounts
            the broker's accounts for ``self.config`` (each device logs in as
            itself, the coordinator's side as gridcoord).

        Raises
        ------
        CityProcessError
            the simulated city's process died, failed or stopped answering.
        DashboardPortError
            the configured dashboard port is taken (`gridcoord.demo.dashboard`).
        """
        settings = self.settings
        # The service logs in as gridcoord; each device as itself (the broker's ACL holds
        # every login to its own topics, as in production).
        mqtt = self.config.mqtt.model_copy(
            update={
                "port": port,
                "username": accounts.service_user,
                "password": SecretStr(accounts.service_password),
            }
        )
        api = dashboard_api(self.config.api)
        self.config = self.config.model_copy(update={"mqtt": mqtt, "api": api})
        devices = {
            user.name: accounts.password(user.name) for user in accounts.users if user.device
        }
        if settings.weather_service:
            devices[FORECASTER_USER] = accounts.password(FORECASTER_USER)
        # The city, its devices, the baseline and the bound in a process of their own: the
        # devices' MQTT work alone took a quarter of the CPU under the service's one GIL.
        city = CityProcess(
            CitySpec(
                seed=settings.seed,
                chargers=settings.chargers,
                start=self._now,
                prefix=settings.prefix,
                port=port,
                passwords=devices,
                weather_service=settings.weather_service,
                settle_heap=self._settle_heap,
                log_level=logging.getLogger().getEffectiveLevel(),
                log_format=current_format(),
            ),
            self._on_city_exit,
        )
        self.city_process = city
        try:
            return self._run(stop, city)
        finally:
            city.close()

    def _run(self, stop: threading.Event, city: CityProcess) -> DemoResult:
        settings = self.settings
        self.service = Service(self.config, clock=self._clock, scheduled=False)
        self.service.add_reading_listener(self._on_reading)
        self.service.add_forecast_listener(self._on_forecast)
        self._seed_history()  # while the child starts
        runner = ServiceThread(self.service).start()
        planning = self.service.planning
        assert planning is not None, "the demo's service plans"
        start = self._now
        end = start + timedelta(hours=settings.hours) if settings.hours is not None else None
        began = time.monotonic()
        fallbacks = late = 0
        try:
            city.ready()
            self._expected = city.expected_readings
            if self._settle_heap:
                # After the service's start-up (imports, API, warm start) and the devices'
                # logins: what exists now lives as long as the run.
                heap.settle()
            while not stop.is_set() and (end is None or self._now < end):
                if settings.speed > 0:
                    due = began + (self._now - start).total_seconds() / settings.speed
                    if stop.wait(max(0.0, due - time.monotonic())):
                        break
                if settings.weather_service and (self._now - start) % FORECAST_EVERY == ZERO:
                    late += not self._publish_forecast(city)
                planning_run = self._now.minute % self.config.planning.interval_min == 0
                with self._cond:
                    self._readings = 0
                city.telemetry(self._now, kpis=planning_run)
                late += not self._wait(lambda: self._readings >= self._expected, "telemetry")
                if planning_run:
                    runner.call(planning.plan_once)
                    outcome = planning.last_plan
                    assert outcome is not None
                    fallbacks += outcome.status == "fallback"
                    so_far = city.telemetry_done()
                    assert so_far is not None
                    self._say(self._plan_line(outcome, *so_far))
                else:
                    runner.call(planning.dispatch_once)
                    city.telemetry_done()
                dispatch = planning.last_dispatch
                assert dispatch is not None
                late += not self._await_setpoints(city, dispatch)
                self._now += TICK
                self.ticks += 1
            hours = (self._now - start).total_seconds() / 3600.0
            city.finish(self._now, hours)
        finally:
            runner.stop()
        # The child solves the bound after `finish`: the bound has no deadline of a tick.
        result = city.result(timeout_s=None)
        self.bound = result.bound
        return DemoResult(
            result.controlled,
            result.baseline,
            hours,
            self._stored_plans(start),
            fallbacks,
            int(late),
            self.floor_overloads,
            self.bound,
            self._forecast_error(),
        )

    def _clock(self) -> datetime:
        """The service's clock: the simulated minute under way."""
        return self._now

    def _seed_history(self) -> None:
        """Put the city's past week (PV, wind, loads; no chargers) in the store."""
        days = self.settings.warmup_days
        if days <= 0:
            return
        start = self._now - timedelta(days=days)
        past = CitySimulation(self.layout, self.settings.seed, start, controlled=False)
        step = timedelta(minutes=self.config.planning.slot_minutes)
        chargers = {c.id for c in self.layout.chargers}
        points: list[Point] = []
        now = start
        while now < self._now:
            now += step
            past.step(now)
            for asset_id, payload in past.telemetry().items():
                asset = self.config.asset(asset_id)
                if asset is None or asset_id in chargers:
                    continue
                values = {k: v for k, v in payload.items() if k != "ts"}
                points.append(reading_to_point(build_reading(asset, values, ts=now, now=now)))
        store = EmbeddedStore(self.store_path)
        try:
            store.write(points)
        finally:
            store.close()

    def _stored_plans(self, start: datetime) -> int:
        """Planning runs the service stored since ``start``."""
        store = EmbeddedStore(self.store_path)
        try:
            return len(store.series("plan", "solve_s", {}, start, self._now + TICK))
        finally:
            store.close()

    def _forecast_error(self) -> dict[str, object]:
        coordinator = self.service.coordinator
        return dict(coordinator.forecast_error()) if coordinator is not None else {}

    def _publish_forecast(self, city: CityProcess) -> bool:
        """The weather service issues its forecast now; True when the service took all of it."""
        wanted = {(kind, self._now) for kind in city.forecast(self._now)}
        return self._wait(lambda: wanted <= self._forecasts_taken, "forecast")

    def _await_setpoints(self, city: CityProcess, outcome: DispatchOutcome) -> bool:
        """True when every charger got this dispatch's setpoint in time; counts overloads."""
        for overload in outcome.overloads:
            # DESIGN 4: reported, never silent; once per zone here, then counted.
            if overload.zone not in self._floor_zones:
                log.error(
                    "zone %s: guaranteed minima alone (%.1f kW) exceed its headroom (%.1f kW); "
                    "further minutes are counted",
                    overload.zone,
                    overload.floors_kw,
                    overload.limit_kw,
                )
                self._floor_zones.add(overload.zone)
            self.floor_overloads += 1
        return city.setpoints(self._now, len(outcome.order), len(outcome.overloads))

    def _wait(self, done: Callable[[], bool], what: str) -> bool:
        """Until ``done``; False after `TICK_DEADLINE_S` (logged).

        Raises
        ------
        CityProcessError
            the city's process ended meanwhile (what it should have sent will not come).
        """
        with self._cond:
            finished = self._cond.wait_for(lambda: done() or self._city_gone, TICK_DEADLINE_S)
            if finished and not self._city_gone:
                return True
        if self._city_gone:
            assert self.city_process is not None
            self.city_process.raise_failure()
        log.warning("%s of %s incomplete after %.0f s", what, self._now, TICK_DEADLINE_S)
        return False

    # --- callbacks (the service's and paho's threads) ------------------------------------

    def _on_reading(self, reading: Reading) -> None:
        if reading.ts == self._now:
            with self._cond:
                self._readings += 1
                # Woken once a tick, not per reading: each wake-up took the interpreter lock
                # from the thread that decodes the readings.
                if self._readings >= self._expected:
                    self._cond.notify_all()

    def _on_forecast(self, forecast: ExternalForecast) -> None:
        with self._cond:
            self._forecasts_taken.add((forecast.kind.value, forecast.issued_at))
            self._cond.notify_all()

    def _on_city_exit(self) -> None:
        with self._cond:
            self._city_gone = True
            self._cond.notify_all()

    # --- output --------------------------------------------------------------------------

    def _plan_line(self, outcome: PlanOutcome, city: Kpis, base: Kpis) -> str:
        plan = outcome.kpis
        why = f" ({outcome.failure})" if outcome.failure else ""
        return (
            f"{format_local(self._now, self.config.site.timezone)}  plan {outcome.status:<10}"
            f"{outcome.solve_s:5.2f} s {outcome.sessions:4d} sessions, plans "
            f"{plan.get('unmet_kwh', math.nan):6.1f} kWh unmet{why} | so far: EV renewable "
            f"{city['renewable_share']:6.1%} (baseline {base['renewable_share']:6.1%}), "
            f"unmet above floor {city['unmet_above_floor_kwh']:6.1f} "
            f"({base['unmet_above_floor_kwh']:6.1f}) kWh, peak import "
            f"{city['peak_import_kw']:6.0f} ({base['peak_import_kw']:6.0f}) kW, zone overloads "
            f"{city['zone_overloads']} ({base['zone_overloads']})"
        )
