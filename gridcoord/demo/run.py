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
"""

from __future__ import annotations

import json
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
from gridcoord.demo.bound import Bound, perfect_foresight
from gridcoord.demo.fleet import DeviceFleet
from gridcoord.forecast.external import ExternalForecast
from gridcoord.outcomes import OUTCOME_KPI_KEYS, DispatchOutcome, PlanOutcome
from gridcoord.service import Service
from gridcoord.service_thread import ServiceThread
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.simulation.weather_service import WeatherService
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, reading_to_point
from gridcoord.timegrid import as_utc, format_local, parse_rfc3339

log = logging.getLogger(__name__)

TICK = timedelta(minutes=1)
ZERO = timedelta(0)
# A tick's messages normally arrive in milliseconds; this only bounds a stuck broker.
TICK_DEADLINE_S = 10.0
KPI_KEYS = OUTCOME_KPI_KEYS
# A run stopped with Ctrl-C after longer than this gets no bound: one solve over the whole run
# takes coarser slots the longer it is (30 minutes at four weeks; the optimizer's limit is
# 2,016 slots), and its replay stops meaning much.
MAX_BOUND_HOURS = 24.0 * 7 * 4
# How often the simulated weather service issues a forecast (operational models: 4 runs a day).
FORECAST_EVERY = timedelta(hours=6)

Kpis = dict[str, float | int]


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
        self.city = CitySimulation(self.layout, settings.seed, start)
        self.baseline = CitySimulation(self.layout, settings.seed, start, controlled=False)
        self.bound: Bound | None = None
        self._now = start
        self._expected = len(self.city.telemetry())
        self._cond = threading.Condition()
        self._readings = 0
        self._setpoints = 0
        self.floor_overloads = 0  # zone-minutes whose floors alone exceeded the headroom
        self._floor_zones: set[str] = set()
        self._city_lock = threading.Lock()
        self.weather = (
            WeatherService(self.layout, settings.seed) if settings.weather_service else None
        )
        self._forecasts_taken: set[tuple[str, datetime]] = set()

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
        """
        settings = self.settings
        prefix = settings.prefix
        # The service logs in as gridcoord; each device as itself (the broker's ACL holds
        # every login to its own topics, as in production).
        mqtt = self.config.mqtt.model_copy(
            update={
                "port": port,
                "username": accounts.service_user,
                "password": SecretStr(accounts.service_password),
            }
        )
        self.config = self.config.model_copy(update={"mqtt": mqtt})
        self.service = Service(self.config, clock=self._clock, scheduled=False)
        self.service.add_reading_listener(self._on_reading)
        self.service.add_forecast_listener(self._on_forecast)
        chargers = {c.id for c in self.layout.chargers}
        devices = {
            user.name: accounts.password(user.name) for user in accounts.users if user.device
        }
        if self.weather is not None:
            devices[FORECASTER_USER] = accounts.password(FORECASTER_USER)
        self._devices = DeviceFleet(
            port,
            devices,
            {a: f"{prefix}/setpoint/{a}" for a in devices if a in chargers},
            self._on_setpoint,
        )
        self._seed_history()
        runner = ServiceThread(self.service).start()
        planning = self.service.planning
        assert planning is not None, "the demo's service plans"
        start = self._now
        end = start + timedelta(hours=settings.hours) if settings.hours is not None else None
        began = time.monotonic()
        fallbacks = late = 0
        try:
            self._devices.start()
            if self._settle_heap:
                # After the service's start-up (imports, API, warm start) and the devices'
                # logins: what exists now lives as long as the run.
                heap.settle()
            while not stop.is_set() and (end is None or self._now < end):
                if settings.speed > 0:
                    due = began + (self._now - start).total_seconds() / settings.speed
                    if stop.wait(max(0.0, due - time.monotonic())):
                        break
                if self.weather is not None and (self._now - start) % FORECAST_EVERY == ZERO:
                    late += not self._publish_forecast(self.weather)
                late += not self._publish_telemetry()
                with self._cond:
                    self._setpoints = 0
                if self._now.minute % self.config.planning.interval_min == 0:
                    runner.call(planning.plan_once)
                    outcome = planning.last_plan
                    assert outcome is not None
                    fallbacks += outcome.status == "fallback"
                    self._say(self._plan_line(outcome))
                else:
                    runner.call(planning.dispatch_once)
                dispatch = planning.last_dispatch
                assert dispatch is not None
                late += not self._await_setpoints(dispatch)
                nxt = self._now + TICK
                with self._city_lock:
                    self.city.step(nxt)
                self.baseline.step(nxt)
                self._now = nxt
        finally:
            self._devices.stop()
            runner.stop()
        hours = (self._now - start).total_seconds() / 3600.0
        if self.baseline.trace and hours <= MAX_BOUND_HOURS:
            self.bound = perfect_foresight(
                self.layout,
                self.baseline.trace,
                self.baseline.visits(),
                self.baseline.energy_before,
            )
        elif self.baseline.trace:
            log.warning(
                "no perfect-foresight bound for a run of %.0f h (at most %.0f h)",
                hours,
                MAX_BOUND_HOURS,
            )
        return DemoResult(
            self.city.kpis(),
            self.baseline.kpis(),
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

    def _publish_forecast(self, weather: WeatherService) -> bool:
        """The weather service issues its forecast now; True when the service took all of it."""
        messages = weather.publications(self._now, self.settings.prefix)
        for topic, payload in messages:
            self._devices.publish(FORECASTER_USER, topic, payload, qos=1)
        wanted = {(topic.rsplit("/", 1)[-1], self._now) for topic, _ in messages}
        return self._wait(lambda: wanted <= self._forecasts_taken, "forecast")

    def _publish_telemetry(self) -> bool:
        """Every device publishes; True when the service took all of it in time."""
        with self._cond:
            self._readings = 0
        with self._city_lock:
            telemetry = self.city.telemetry()
        for asset_id, payload in telemetry.items():
            self._devices.publish(
                asset_id,
                f"{self.settings.prefix}/telemetry/{asset_id}",
                json.dumps(payload).encode(),
            )
        return self._wait(lambda: self._readings >= self._expected, "telemetry")

    def _await_setpoints(self, outcome: DispatchOutcome) -> bool:
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
        with self._city_lock:
            self.city.kpi.add_minima_over_limit(len(outcome.overloads))
        expected = len(outcome.order)
        return self._wait(lambda: self._setpoints >= expected, "setpoints")

    def _wait(self, done: Callable[[], bool], what: str) -> bool:
        with self._cond:
            if self._cond.wait_for(done, TICK_DEADLINE_S):
                return True
        log.warning("%s of %s incomplete after %.0f s", what, self._now, TICK_DEADLINE_S)
        return False

    # --- callbacks (the service's and paho's threads) ------------------------------------

    def _on_reading(self, reading: Reading) -> None:
        if reading.ts == self._now:
            with self._cond:
                self._readings += 1
                self._cond.notify_all()

    def _on_forecast(self, forecast: ExternalForecast) -> None:
        with self._cond:
            self._forecasts_taken.add((forecast.kind.value, forecast.issued_at))
            self._cond.notify_all()

    def _on_setpoint(self, topic: str, payload: bytes) -> None:
        charger_id = topic.rsplit("/", 1)[-1]
        try:
            message = json.loads(payload)
            sent = parse_rfc3339(str(message.get("ts")))
        except (ValueError, AttributeError):
            log.warning("malformed setpoint on %s ignored", topic)
            return
        with self._city_lock:
            self.city.receive_setpoint(charger_id, message)
        if sent == self._now:
            with self._cond:
                self._setpoints += 1
                self._cond.notify_all()

    # --- output --------------------------------------------------------------------------

    def _plan_line(self, outcome: PlanOutcome) -> str:
        city, base = self.city.kpis(), self.baseline.kpis()
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
