"""The demo's simulated city in a process of its own, so that it and the service use two cores.

The child holds everything of the demo that is not the service: the city's physics
(`CitySimulation`), its devices' MQTT logins (`DeviceFleet`), the simulated weather service,
the uncontrolled baseline and, at the end, the perfect-foresight bound. The parent
(`gridcoord.demo.run.DemoRun`) holds the real service and tells the child, tick by tick, what
to do over a `multiprocessing` pipe; every request is answered, and the lock-step is the
same as with one process (events, never sleeps):

``forecast(now)``
    the weather service publishes its forecasts of ``now``; the answer names their kinds
    (the parent waits until the service took them).
``telemetry(now, kpis)``
    every device publishes its telemetry of ``now`` (the parent waits until the service took
    all of it); then the baseline steps to ``now`` (it overlaps the service's decoding), and
    the answer carries both cities' KPIs so far when asked (a planning run's line).
``setpoints(now, expected, minima_over_limit)``
    the child waits until every charger got this dispatch's setpoint (or `TICK_DEADLINE_S`),
    steps the city one minute and answers whether the setpoints came in time.
``finish()``
    the devices disconnect (answered at once), then the final KPIs and the bound.

A child that dies (or fails: its traceback is the answer) ends the demo with
`CityProcessError`; a parent that dies leaves the child its pipe's end of file, and it exits.
The child ignores SIGINT: a Ctrl-C in the terminal reaches both processes, and the parent
ends the run (the tick under way, the final KPIs from the child, the bound).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection, wait
from typing import Any, NoReturn

from gridcoord import heap
from gridcoord.broker.acl import FORECASTER_USER
from gridcoord.demo.bound import Bound, perfect_foresight
from gridcoord.demo.fleet import DeviceFleet
from gridcoord.logging_setup import LogFormat, configure, set_defaults
from gridcoord.simulation import CitySimulation, demo_city
from gridcoord.simulation.weather_service import WeatherService
from gridcoord.timegrid import parse_rfc3339

log = logging.getLogger(__name__)

TICK = timedelta(minutes=1)
# A tick's messages normally arrive in milliseconds; this only bounds a stuck broker.
TICK_DEADLINE_S = 10.0
# An answer to a tick's request comes within its own deadline; this bounds a child that
# hangs (alive, but silent) so that the demo ends instead.
ANSWER_DEADLINE_S = 120.0
# A run stopped with Ctrl-C after longer than this gets no bound: one solve over the whole run
# takes coarser slots the longer it is (30 minutes at four weeks; the optimizer's limit is
# 2,016 slots), and its replay stops meaning much.
MAX_BOUND_HOURS = 24.0 * 7 * 4

Kpis = dict[str, float | int]


class CityProcessError(RuntimeError):
    """The simulated city's process died, failed or stopped answering: the demo cannot go on."""


@dataclass(frozen=True, slots=True)
class CitySpec:
    """What the child needs to build the same city as the parent's configuration describes.

    Attributes
    ----------
    seed
        city, weather and cars.
    chargers
        chargers in the city.
    start
        first simulated instant [UTC].
    prefix
        MQTT topic prefix.
    port
        the broker's port on 127.0.0.1.
    passwords
        device login (asset id, and the forecaster when `weather_service`) → its password.
    weather_service
        the simulated weather service publishes day-ahead forecasts when asked.
    settle_heap
        apply `gridcoord.heap.settle` once the devices are logged in.
    log_level
        the parent's root log level.
    log_format
        the parent's log format (``--log-format``): the child's records look like the parent's.
    """

    seed: int
    chargers: int
    start: datetime
    prefix: str
    port: int
    passwords: dict[str, str]
    weather_service: bool
    settle_heap: bool
    log_level: int
    log_format: LogFormat = "text"


@dataclass(frozen=True, slots=True)
class CityResult:
    """The child's final answer: both cities' KPIs and the bound (None: not solved)."""

    controlled: Kpis
    baseline: Kpis
    bound: Bound | None


class CityProcess:
    """The parent's handle on the child: start it, ask it, and learn at once when it ends.

    Parameters
    ----------
    spec
        the city to simulate.
    on_exit
        called once, from a watcher thread, when the child's process ends (normally or not),
        so that a wait on something the child should have done can stop waiting.
    """

    def __init__(self, spec: CitySpec, on_exit: Callable[[], None]) -> None:
        # spawn, not fork: the parent runs threads (the service's, paho's) by the time a
        # test starts a second demo, and a forked copy of their locks could deadlock.
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child_main, args=(child_conn, spec), name="gridcoord-demo-city", daemon=True
        )
        self._process.start()
        child_conn.close()
        self._on_exit = on_exit
        self._watcher = threading.Thread(target=self._watch, name="demo-city-watch", daemon=True)
        self._watcher.start()
        self.expected_readings = 0

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """True while the child's process runs."""
        return self._process.is_alive()

    def ready(self, timeout_s: float = ANSWER_DEADLINE_S) -> None:
        """Wait until every device is logged in; learn how many readings a tick brings."""
        self.expected_readings = int(self._answer(timeout_s))

    def forecast(self, now: datetime) -> list[str]:
        """The weather service publishes its forecasts of ``now``; their kinds."""
        self._send(("forecast", now))
        return list(self._answer())

    def telemetry(self, now: datetime, *, kpis: bool) -> None:
        """Every device publishes its telemetry of ``now`` (answered by `telemetry_done`)."""
        self._send(("telemetry", now, kpis))

    def telemetry_done(self) -> tuple[Kpis, Kpis] | None:
        """The answer to `telemetry`: the city's and the baseline's KPIs so far, if asked."""
        answer: tuple[Kpis, Kpis] | None = self._answer()
        return answer

    def setpoints(self, now: datetime, expected: int, minima_over_limit: int) -> bool:
        """Wait for every charger's setpoint of ``now``, step the city; True if in time."""
        self._send(("setpoints", now, expected, minima_over_limit))
        return bool(self._answer())

    def finish(self, now: datetime, hours: float) -> None:
        """Disconnect the devices (the service may stop then); `result` gives the KPIs."""
        self._send(("finish", now, hours))
        self._answer()

    def result(self, timeout_s: float | None = None) -> CityResult:
        """The final KPIs and the bound (which the child solves after `finish`)."""
        answer: CityResult = self._answer(timeout_s)
        return answer

    def raise_failure(self) -> NoReturn:
        """Once the child has ended: raise why (its traceback if it sent one).

        Raises
        ------
        CityProcessError
            always.
        """
        while True:
            self._answer(5.0)  # answers it sent before it ended are passed over

    def close(self, timeout_s: float = 10.0) -> None:
        """End the child: it is asked to, then terminated, then killed."""
        if self._process.is_alive():
            # OSError: its end is closed already, it is on its way out.
            with contextlib.suppress(OSError):
                self._conn.send(("stop",))
            self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _send(self, request: tuple[Any, ...]) -> None:
        try:
            self._conn.send(request)
        except OSError:
            raise self._gone() from None

    def _answer(self, timeout_s: float | None = ANSWER_DEADLINE_S) -> Any:
        # A message the child sent before it died is still read; only then its death counts.
        ready = wait([self._conn, self._process.sentinel], timeout_s)
        if not ready:
            raise CityProcessError(
                f"the simulated city's process (pid {self.pid}) did not answer within "
                f"{timeout_s:g} s"
            )
        try:
            if self._conn not in ready and not self._conn.poll():
                raise self._gone()
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            # A child killed mid-answer resets the pipe (ConnectionResetError), or closed it.
            raise self._gone() from None
        if kind == "error":
            raise CityProcessError(f"the simulated city's process failed:\n{value}")
        return value

    def _gone(self) -> CityProcessError:
        self._process.join(5.0)
        code = self._process.exitcode
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        return CityProcessError(f"the simulated city's process (pid {self.pid}) {how}")

    def _watch(self) -> None:
        wait([self._process.sentinel])
        self._on_exit()


# --- the child ------------------------------------------------------------------------------


class _City:
    """The child's side: the simulated city, its devices, the weather service, the baseline."""

    def __init__(self, spec: CitySpec) -> None:
        self.spec = spec
        self.layout = demo_city(spec.seed, spec.chargers)
        self.city = CitySimulation(self.layout, spec.seed, spec.start)
        self.baseline = CitySimulation(self.layout, spec.seed, spec.start, controlled=False)
        self.baseline_at = spec.start
        self.weather = WeatherService(self.layout, spec.seed) if spec.weather_service else None
        self.now = spec.start
        self._cond = threading.Condition()
        self._setpoints = 0
        self._setpoints_expected: float = math.inf  # this tick's, once `setpoints` asks
        self._city_lock = threading.Lock()
        chargers = {c.id for c in self.layout.chargers}
        self.devices = DeviceFleet(
            spec.port,
            spec.passwords,
            {a: f"{spec.prefix}/setpoint/{a}" for a in spec.passwords if a in chargers},
            self._on_setpoint,
        )

    def start(self) -> int:
        """Log every device in; the number of readings a tick brings."""
        self.devices.start()
        if self.spec.settle_heap:
            heap.settle()  # what exists now lives as long as the run
        return len(self.city.telemetry())

    def forecast(self, now: datetime) -> list[str]:
        assert self.weather is not None, "the demo's weather service is off"
        messages = self.weather.publications(now, self.spec.prefix)
        for topic, payload in messages:
            self.devices.publish(FORECASTER_USER, topic, payload, qos=1)
        return [topic.rsplit("/", 1)[-1] for topic, _ in messages]

    def telemetry(self, now: datetime, kpis: bool) -> tuple[Kpis, Kpis] | None:
        with self._cond:
            self.now = now
            self._setpoints = 0
            self._setpoints_expected = math.inf
        with self._city_lock:
            telemetry = self.city.telemetry()
        prefix = self.spec.prefix
        self.devices.publish_many(
            (asset_id, f"{prefix}/telemetry/{asset_id}", json.dumps(payload).encode())
            for asset_id, payload in telemetry.items()
        )
        # The baseline needs nothing of the service: it steps while the service decodes.
        self._baseline_to(now)
        if not kpis:
            return None
        with self._city_lock:
            return self.city.kpis(), self.baseline.kpis()

    def setpoints(self, now: datetime, expected: int, minima_over_limit: int) -> bool:
        with self._city_lock:
            self.city.kpi.add_minima_over_limit(minima_over_limit)
        with self._cond:
            self._setpoints_expected = expected
            done = self._cond.wait_for(lambda: self._setpoints >= expected, TICK_DEADLINE_S)
        if not done:
            log.warning("setpoints of %s incomplete after %.0f s", now, TICK_DEADLINE_S)
        with self._city_lock:
            self.city.step(now + TICK)
        return done

    def finish(self, now: datetime) -> None:
        self.devices.stop()
        self._baseline_to(now)

    def result(self, hours: float) -> CityResult:
        bound: Bound | None = None
        if self.baseline.trace and hours <= MAX_BOUND_HOURS:
            bound = perfect_foresight(
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
        return CityResult(self.city.kpis(), self.baseline.kpis(), bound)

    def _baseline_to(self, now: datetime) -> None:
        # The baseline steps minute by minute, as the city does, whatever the requests' pace.
        while self.baseline_at < now:
            self.baseline_at += TICK
            self.baseline.step(self.baseline_at)

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
        with self._cond:
            if sent == self.now:
                self._setpoints += 1
                # Woken once, not per setpoint: each wake-up took the lock from this thread.
                if self._setpoints >= self._setpoints_expected:
                    self._cond.notify_all()


def configure_child_logging(spec: CitySpec) -> None:
    """Log as the parent does: its level and its ``--log-format``.

    A spawned child starts with neither; a collector reading the demo's stderr sees one format.
    """
    set_defaults(None, spec.log_format)
    configure(spec.log_level)


def _child_main(conn: Connection, spec: CitySpec) -> None:
    """The child process: build the city, then answer the parent's requests until told to end."""
    # Ctrl-C reaches the whole process group: the parent ends the run and asks for the KPIs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_child_logging(spec)
    city: _City | None = None
    try:
        city = _City(spec)
        conn.send(("ok", city.start()))
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return  # the parent is gone
            match request:
                case ("forecast", now):
                    conn.send(("ok", city.forecast(now)))
                case ("telemetry", now, kpis):
                    conn.send(("ok", city.telemetry(now, kpis)))
                case ("setpoints", now, expected, minima):
                    conn.send(("ok", city.setpoints(now, expected, minima)))
                case ("finish", now, hours):
                    city.finish(now)
                    conn.send(("ok", None))
                    conn.send(("ok", city.result(hours)))
                    return
                case _:  # ("stop",): the parent ends the run early
                    return
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone: nobody to tell
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        conn.close()
