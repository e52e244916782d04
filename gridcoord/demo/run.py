"""One demo run: the simulated city and the coordinator talking MQTT on an accelerated clock.

Every simulated minute (a *tick*):

1. the city advances one minute; every asset publishes its DESIGN 3.2 telemetry to
   ``<prefix>/telemetry/<asset>``;
2. the coordinator's side decodes and validates each message (the service's decoder), feeds
   the coordinator and queues the reading for the embedded store; the tick waits until every
   message of the tick has arrived (or a deadline passes, which is logged);
3. at every quarter hour a planning run (one KPI line printed);
4. a dispatch: setpoints go out retained, QoS 1, to ``<prefix>/setpoint/<charger>``, decreases
   first; the simulated chargers take them, obey them, and fall back after ``valid_until``;
   the tick waits until every charger has its setpoint.

An uncontrolled baseline of the same city (same seed: same weather, loads and cars) runs
alongside without MQTT. With ``speed`` > 0 ticks are paced to simulated seconds per real second.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from adapters.contract.validation import Rejected, build_reading
from adapters.mqtt.telemetry import TelemetryDecoder
from gridcoord.config import Config
from gridcoord.demo.link import DemoClient
from gridcoord.planning.coordinator import Coordinator, PlanOutcome
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.points import Point, reading_to_point
from gridcoord.timegrid import as_utc, format_local, parse_rfc3339

log = logging.getLogger(__name__)

TICK = timedelta(minutes=1)
# A tick's messages normally arrive in milliseconds; this only bounds a stuck broker.
TICK_DEADLINE_S = 10.0
KPI_KEYS = ("renewable_share", "unmet_kwh", "peak_import_kw", "zone_overloads")

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
    chargers
        chargers in the city.
    warmup_days
        days of PV, wind and load history fed to the forecasts before the start
        (the same-weekday load forecast needs a week).
    solver_time_limit_s
        the solver's budget per run [s].
    prefix
        MQTT topic prefix.
    """

    start: datetime
    hours: float | None = 24.0
    speed: float = 0.0
    seed: int = 1
    chargers: int = 300
    warmup_days: int = 7
    solver_time_limit_s: float = 20.0
    prefix: str = "gridcoord"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The final KPIs of the controlled city and of the uncontrolled baseline."""

    controlled: Kpis
    baseline: Kpis
    simulated_hours: float
    plans: int
    fallback_plans: int
    late_ticks: int
    floor_overloads: int = 0

    def as_json(self) -> dict[str, object]:
        """DESIGN 3.1's ``--json`` object."""
        return {
            **{k: self.controlled[k] for k in KPI_KEYS},
            "baseline": {k: self.baseline[k] for k in KPI_KEYS},
        }


class DemoRun:
    """The city, its devices' MQTT client, the coordinator's MQTT client and the store.

    Parameters
    ----------
    settings
        what to simulate.
    port
        the broker's port on 127.0.0.1.
    store_path
        the embedded store's file.
    say
        prints one line for people (a planning run's KPIs).
    """

    def __init__(
        self, settings: DemoSettings, port: int, store_path: Path, say: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self._say = say
        start = as_utc(settings.start)
        self.layout = demo_city(settings.seed, settings.chargers)
        self.config = Config(
            **self.layout.config(),
            mqtt={"topic_prefix": settings.prefix},
            planning={"solver_time_limit_s": settings.solver_time_limit_s},
            storage={"kind": "embedded", "path": store_path},
        )
        self.coordinator = Coordinator(self.config)
        self.city = CitySimulation(self.layout, settings.seed, start)
        self.baseline = CitySimulation(self.layout, settings.seed, start, controlled=False)
        self.store = EmbeddedStore(store_path)
        self._decoder = TelemetryDecoder(self.config)
        self._now = start
        self._expected = len(self.city.telemetry())
        self._cond = threading.Condition()
        self._readings = 0
        self._setpoints = 0
        self._points: list[Point] = []
        self.rejected = 0
        self.floor_overloads = 0  # zone-minutes whose floors alone exceeded the headroom
        self._floor_zones: set[str] = set()
        self._city_lock = threading.Lock()
        prefix = settings.prefix
        self._devices = DemoClient(
            port, "demo-devices", [f"{prefix}/setpoint/+"], self._on_setpoint
        )
        self._service = DemoClient(
            port, "demo-coordinator", [f"{prefix}/telemetry/+"], self._on_telemetry
        )

    # --- the run -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> DemoResult:
        """Tick until ``hours`` have passed or ``stop`` is set; return the KPIs."""
        settings = self.settings
        self._warm_up()
        self._service.start()
        self._devices.start()
        start = self._now
        end = start + timedelta(hours=settings.hours) if settings.hours is not None else None
        began = time.monotonic()
        plans = fallbacks = late = 0
        try:
            while not stop.is_set() and (end is None or self._now < end):
                if settings.speed > 0:
                    due = began + (self._now - start).total_seconds() / settings.speed
                    if stop.wait(max(0.0, due - time.monotonic())):
                        break
                late += not self._publish_telemetry()
                if self._now.minute % self.config.planning.interval_min == 0:
                    outcome = self.coordinator.plan(self._now)
                    plans += 1
                    fallbacks += outcome.status == "fallback"
                    self._points += outcome.points()
                    self._say(self._plan_line(outcome))
                late += not self._dispatch()
                self._flush()
                nxt = self._now + TICK
                with self._city_lock:
                    self.city.step(nxt)
                self.baseline.step(nxt)
                self._now = nxt
        finally:
            self._flush()
            self._devices.stop()
            self._service.stop()
            self.store.close()
        hours = (self._now - start).total_seconds() / 3600.0
        return DemoResult(
            self.city.kpis(),
            self.baseline.kpis(),
            hours,
            plans,
            fallbacks,
            int(late),
            self.floor_overloads,
        )

    def _warm_up(self) -> None:
        """Feed the forecasts a history of PV, wind and non-EV load (no chargers, no MQTT)."""
        days = self.settings.warmup_days
        if days <= 0:
            return
        start = self._now - timedelta(days=days)
        past = CitySimulation(self.layout, self.settings.seed, start, controlled=False)
        step = timedelta(minutes=self.config.planning.slot_minutes)
        chargers = {c.id for c in self.layout.chargers}
        now = start
        while now < self._now:
            now += step
            past.step(now)
            for asset_id, payload in past.telemetry().items():
                asset = self.config.asset(asset_id)
                if asset is None or asset_id in chargers:
                    continue
                values = {k: v for k, v in payload.items() if k != "ts"}
                self.coordinator.observe(build_reading(asset, values, ts=now, now=now))

    def _publish_telemetry(self) -> bool:
        """Every device publishes; True when the coordinator got all of it in time."""
        with self._cond:
            self._readings = 0
        with self._city_lock:
            telemetry = self.city.telemetry()
        for asset_id, payload in telemetry.items():
            self._devices.publish(
                f"{self.settings.prefix}/telemetry/{asset_id}", json.dumps(payload).encode()
            )
        return self._wait(lambda: self._readings >= self._expected, "telemetry")

    def _dispatch(self) -> bool:
        """Setpoints to every charger; True when every charger got its own in time."""
        outcome = self.coordinator.dispatch(self._now)
        with self._cond:
            self._setpoints = 0
        for charger_id in outcome.order:
            payload = json.dumps(outcome.payloads[charger_id]).encode()
            topic = f"{self.settings.prefix}/setpoint/{charger_id}"
            self._send_setpoint(topic, payload)
        self._points += outcome.points()
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
        expected = len(outcome.order)
        return self._wait(lambda: self._setpoints >= expected, "setpoints")

    def _send_setpoint(self, topic: str, payload: bytes) -> None:
        # The coordinator's side sends setpoints (retained, QoS 1, as the service does).
        self._service.publish(topic, payload, qos=1, retain=True)

    def _wait(self, done: Callable[[], bool], what: str) -> bool:
        with self._cond:
            if self._cond.wait_for(done, TICK_DEADLINE_S):
                return True
        log.warning("%s of %s incomplete after %.0f s", what, self._now, TICK_DEADLINE_S)
        return False

    def _flush(self) -> None:
        with self._cond:
            points, self._points = self._points, []
        if not points:
            return
        try:
            self.store.write(points)
        except Exception as exc:  # the demo goes on; the store is only its record
            log.warning("embedded store refused %d points: %s", len(points), exc)

    # --- MQTT callbacks (paho's threads) -------------------------------------------------

    def _on_telemetry(self, topic: str, payload: bytes) -> None:
        try:
            reading = self._decoder.decode(topic, payload, now=self._now)
        except Rejected as exc:
            self.rejected += 1
            log.warning("telemetry on %s rejected: %s", topic, exc)
            return
        self.coordinator.observe(reading)
        with self._cond:
            self._points.append(reading_to_point(reading))
            if reading.ts == self._now:
                self._readings += 1
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
            f"unmet {city['unmet_kwh']:6.1f} ({base['unmet_kwh']:6.1f}) kWh, peak import "
            f"{city['peak_import_kw']:6.0f} ({base['peak_import_kw']:6.0f}) kW, zone overloads "
            f"{city['zone_overloads']} ({base['zone_overloads']})"
        )
