"""`gridcoord run`: wire adapters, ingest and storage together, and stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from adapters.contract.reading import Reading
from adapters.contract.validation import Reason, Rejected
from adapters.modbus.poller import ModbusPoller
from adapters.mqtt.client import Message, MqttSession
from adapters.mqtt.settings import Mqtt
from adapters.mqtt.telemetry import UNKNOWN_ASSET, TelemetryDecoder
from adapters.ocpp.credentials import CredentialsError
from adapters.ocpp.server import OcppServer
from gridcoord import heap
from gridcoord.api.metrics import Instruments
from gridcoord.api.overrides import OverrideBook
from gridcoord.broker.credentials import DEVICE_FILE
from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError
from gridcoord.forecast.external import ExternalForecast, ForecastKind
from gridcoord.forecast.subscription import decode_forecast, forecast_topic_filter
from gridcoord.ingest.inflight import InFlight, Token
from gridcoord.ingest.pipeline import IngestPipeline, stats_line
from gridcoord.ingest.rejections import RejectionReporter
from gridcoord.local_broker import LocalBroker, port_open
from gridcoord.outcomes import DispatchOutcome, PlanOutcome
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.loop import Clock, PlanningLoop, utc_now
from gridcoord.planning.planner import forecast_capacity_kw
from gridcoord.planning.scope import planning_scope
from gridcoord.planning.state import StateImage
from gridcoord.planning.warmup import WarmStart, warm_from_store
from gridcoord.sinks import setpoint_sinks
from gridcoord.storage.base import Store
from gridcoord.storage.timed import TimedStore
from gridcoord.watchdog import EXIT_FATAL, Watchdog

if TYPE_CHECKING:
    from gridcoord.api.server import ApiServer

log = logging.getLogger("gridcoord")


def configure_logging(level: int = logging.INFO) -> None:
    """One-line log records on stderr (text or JSON, as the command line chose)."""
    from gridcoord.logging_setup import configure

    configure(level)


def run_service(config_path: Path, config: Config | None = None) -> int:
    """Run until SIGINT/SIGTERM; exit code 0 after a clean drain, 2 for a bad configuration.

    `config`, when given, is `config_path` already loaded (the CLI checks it before importing
    this module, so a bad file is refused without loading the forecasting stack).
    """
    if config is None:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            print(exc.report(), file=sys.stderr)
            return 2
    configure_logging()
    try:
        service = Service(config)
        heap.settle()  # after the imports and the configuration: see gridcoord/heap.py
        asyncio.run(service.serve())
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    return 0


class StartupError(Exception):
    """Something the user must fix before the service can start (no traceback shown)."""


class Service:
    """The running service: ingest over MQTT (and Modbus), into the configured store.

    Parameters
    ----------
    config : Config
        The deployment.
    client_id_suffix : str
        Appended to the MQTT client id (tests run several services on one broker).
    clock : callable
        Returns aware UTC now; the wall clock by default. The demo passes its simulated
        clock, tests a fake one: receive times, the warm start and planning all read it.
    scheduled : bool
        Plan and dispatch on the clock's quarter hours and minutes (APScheduler). False: a
        driver with its own clock calls ``planning.plan_once()`` / ``dispatch_once()`` (the
        demo, tests).

    on_fatal : callable, optional
        Called with the reason when a thread dies or the event loop is stuck (the
        watchdog); exits the process with `EXIT_FATAL` by default.

    Read-only views for an API (safe from any thread): `city_state`, `last_plan`,
    `last_dispatch`.
    """

    def __init__(
        self,
        config: Config,
        *,
        client_id_suffix: str = "",
        clock: Clock = utc_now,
        scheduled: bool = True,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._client_id_suffix = client_id_suffix
        self.clock = clock
        self._scheduled = scheduled
        self._listeners: list[Callable[[Reading], None]] = []
        # Set once ingest and planning are up (for a driver in another thread).
        self.started = threading.Event()
        self._on_fatal = on_fatal or self._exit_fatal
        self._inflight = InFlight()
        self._internal_errors_logged: set[str] = set()
        self.watchdog: Watchdog | None = None
        self._stop = asyncio.Event()
        self._accepting = True
        self.broker: LocalBroker | None = None
        self.session: MqttSession | None = None
        self.pipeline: IngestPipeline | None = None
        self.rejections: RejectionReporter | None = None
        self.decoder = TelemetryDecoder(config)
        self.modbus: ModbusPoller | None = None
        self.ocpp: OcppServer | None = None
        self.coordinator: Coordinator | None = None
        self.planning: PlanningLoop | None = None
        self.instruments = Instruments()
        # What this instance plans and commands (`planning.roots`; the whole city without).
        self.planning_config = planning_scope(config)
        self.overrides = OverrideBook(self.planning_config, config.api.state_dir / "overrides.json")
        self.api: ApiServer | None = None
        self.store: Store | None = None
        self.warm_start: WarmStart | None = None
        self._forecast_topics = forecast_topic_filter(config.mqtt.topic_prefix).removesuffix("+")
        self._forecast_capacity = forecast_capacity_kw(config)
        self._forecast_listeners: list[Callable[[ExternalForecast], None]] = []
        self._forecast_lock = threading.Lock()
        self._early_forecasts: dict[ForecastKind, ExternalForecast] = {}

    def city_state(self) -> StateImage | None:
        """The city's state frozen now (latest readings, sessions, learnt car limits).

        None before planning has started or when planning is disabled. An immutable image:
        reading it never blocks ingest for longer than one copy.
        """
        coordinator = self.coordinator
        return coordinator.image(self.clock()) if coordinator is not None else None

    @property
    def last_plan(self) -> PlanOutcome | None:
        """The latest planning run's outcome (None before the first)."""
        return self.planning.last_plan if self.planning is not None else None

    @property
    def last_dispatch(self) -> DispatchOutcome | None:
        """The latest dispatch's setpoints (None before the first)."""
        return self.planning.last_dispatch if self.planning is not None else None

    def add_reading_listener(self, listener: Callable[[Reading], None]) -> None:
        """Call ``listener`` with every accepted reading, after the planner took it.

        Called on the adapters' threads; it must be quick. An exception in it is logged once
        per type and contained. Add listeners before `serve`.
        """
        self._listeners.append(listener)

    def add_forecast_listener(self, listener: Callable[[ExternalForecast], None]) -> None:
        """Call ``listener`` with every accepted external forecast, after the planner took it.

        Called on the MQTT thread; it must be quick. An exception in it is logged once per
        type and contained. Add listeners before `serve`.
        """
        self._forecast_listeners.append(listener)

    def request_stop(self) -> None:
        """Ask the service to drain and stop (signal handlers and tests call this)."""
        self._stop.set()

    def request_plan(self) -> None:
        """Plan now, out of turn (SIGUSR1).

        Before the planning loop has started there is nothing to do: its first run starts at
        once anyway. An ingest-only instance logs that it does not plan.
        """
        if self.planning is not None and self.planning.running:
            self.planning.run_now()
        elif not self.config.planning.enabled:
            log.info("SIGUSR1 ignored: planning is disabled on this instance")

    async def serve(self) -> None:
        """Start everything, wait for a stop request, then drain in order."""
        loop = asyncio.get_running_loop()
        # All handlers before anything starts: a SIGUSR1 that arrived while planning was still
        # being set up (the warm start takes a moment) used to find no handler and kill it.
        handlers = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
            signal.SIGUSR1: self.request_plan,
        }
        for sig, handler in handlers.items():
            # Only the main thread may install handlers; tests run the service in another.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        self._start()
        self._start_watchdog(loop)
        tasks = [asyncio.create_task(self._log_stats())]
        if self._scheduled and self.config.privacy.retention_in_service:
            tasks.append(asyncio.create_task(self._retention_loop()))
        tasks += self._start_modbus()
        try:
            tasks += await self._start_ocpp()
        except StartupError:
            # Ingest is already up: drain it rather than leave its threads holding the exit.
            if self.watchdog is not None:
                self.watchdog.stop()  # before the threads it watches stop on purpose
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self._shutdown)
            raise
        await self._start_planning()
        try:
            self._start_api()
            # After the API: a driver (the demo, a test) may read its address at once.
            self.started.set()
            await self._stop.wait()
        finally:
            log.info("stopping: draining buffers")
            if self.watchdog is not None:
                self.watchdog.stop()
            if self.api is not None:
                await self.api.stop()
            if self.planning is not None:
                await self.planning.stop()
            if self.coordinator is not None:
                # Its planner's incremental solver keeps a LEMON child between runs.
                await asyncio.to_thread(self.coordinator.close)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self._shutdown)

    def _start(self) -> None:
        from gridcoord.storage.factory import open_spool, open_store

        mqtt = self.config.mqtt
        if mqtt.host is None and port_open("127.0.0.1", mqtt.port):
            log.info(
                "no broker configured: using the one already on 127.0.0.1:%d "
                "(logging in with mqtt.username/password)",
                mqtt.port,
            )
        elif mqtt.host is None:
            mqtt = self._start_local_broker()
        raw_store = self.store = open_store(self.config)
        store = TimedStore(raw_store, self.instruments.store_write.observe)
        storage = self.config.storage
        self.pipeline = IngestPipeline(
            store,
            open_spool(self.config),
            dead_letter=storage.spool_dir / "rejected-by-store.lp",
            batch_size=storage.batch_size,
            flush_interval_s=storage.flush_interval_s,
        )
        self.pipeline.start()
        subscriptions = self.decoder.subscriptions
        if self.config.planning.enabled:
            # Only the planner needs forecasts (an ingest-only instance has no use for them).
            subscriptions = [*subscriptions, forecast_topic_filter(mqtt.topic_prefix)]
        self.session = MqttSession(
            mqtt,
            subscriptions,
            self._on_message,
            client_id_suffix=self._client_id_suffix,
        )
        self.rejections = RejectionReporter(
            self.session.publish, mqtt.topic_prefix, per_second=mqtt.rejected_per_s
        )
        self.session.start()
        log.info(
            "ingesting %d assets into the %s store",
            len(self.config.assets),
            storage.kind.value,
        )

    def _start_local_broker(self) -> Mqtt:
        """Start the loopback broker; return the MQTT settings that log in to it."""
        mqtt = self.config.mqtt
        data_dir = Path("var/mosquitto")
        try:
            self.broker = LocalBroker.for_config(mqtt.port, data_dir, self.config)
            self.broker.start()
        except (RuntimeError, ValueError, OSError) as exc:
            raise StartupError(f"local broker: {exc}") from None
        accounts = self.broker.accounts
        log.info(
            "no broker configured: started mosquitto on 127.0.0.1:%d (no anonymous access; "
            "device credentials in %s)",
            mqtt.port,
            data_dir / DEVICE_FILE,
        )
        return mqtt.model_copy(
            update={
                "username": accounts.service_user,
                "password": SecretStr(accounts.service_password),
            }
        )

    def _start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        session, pipeline = self.session, self.pipeline
        assert session is not None and pipeline is not None
        self.watchdog = Watchdog(self._on_fatal)
        self.watchdog.watch_thread("MQTT network", lambda: session.network_alive)
        self.watchdog.watch_thread("ingest writer", lambda: pipeline.writer_alive)
        self.watchdog.watch_loop(loop)
        self.watchdog.start()

    def _exit_fatal(self, problem: str) -> None:
        """End the process at once: nothing can drain without the thread that died."""
        log.critical(
            "FATAL: %s; exiting with status %d so that a supervisor restarts gridcoord "
            "(unacknowledged messages stay with the broker and are redelivered)",
            problem,
            EXIT_FATAL,
        )
        if self.broker is not None:
            with contextlib.suppress(Exception):
                self.broker.stop()
        logging.shutdown()
        os._exit(EXIT_FATAL)

    def _start_modbus(self) -> list[asyncio.Task[None]]:
        assets = [a for a in self.config.assets if a.modbus is not None]
        if not assets:
            return []
        self.modbus = ModbusPoller(assets, self.submit, self._modbus_rejected)
        return [asyncio.create_task(self.modbus.run(self._stop))]

    async def _start_ocpp(self) -> list[asyncio.Task[None]]:
        settings = self.config.ocpp
        if settings is None or not any(a.ocpp is not None for a in self.config.assets):
            return []
        self.ocpp = OcppServer(
            settings, self.config.assets, submit=self.submit, reject=self._ocpp_rejected
        )
        try:
            await self.ocpp.start()
        except CredentialsError as exc:
            raise StartupError(f"ocpp.credentials_file: {exc}") from None
        except OSError as exc:
            raise StartupError(
                f"ocpp: cannot listen on {settings.host}:{settings.port} ({exc.strerror})"
            ) from None
        return [asyncio.create_task(self.ocpp.run(self._stop))]

    async def _start_planning(self) -> None:
        if not self.config.planning.enabled:
            log.info("planning disabled (planning.enabled: false): ingest only")
            return
        assert self.session is not None and self.pipeline is not None
        assert self.store is not None
        session, pipeline = self.session, self.pipeline

        def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
            session.publish(topic, payload, qos=qos, retain=retain)

        scope = self.planning_config
        if scope.planning.roots:
            log.info(
                "planning roots %s: %d zones, %d assets of %d",
                ", ".join(scope.planning.roots),
                len(scope.zones),
                len(scope.assets),
                len(self.config.assets),
            )
        coordinator = Coordinator(scope)
        # Observing from now on: a car that reports while the warm start reads the store must
        # not be missed (its plug-in is reported once). The histories' buckets take stored and
        # live values alike (a bounded read per history).
        with self._forecast_lock:
            for early in self._early_forecasts.values():
                coordinator.observe_forecast(early)
            self._early_forecasts.clear()
            self.coordinator = coordinator
        self.warm_start = await asyncio.to_thread(
            warm_from_store, coordinator.state, self.store, scope, self.clock()
        )
        self.planning = PlanningLoop(
            scope,
            self.coordinator,
            publish=publish,
            store=pipeline.submit_points,
            sinks=setpoint_sinks(scope, publish=publish, modbus=self.modbus, ocpp=self.ocpp),
            adjust=self.overrides.apply,
            clock=self.clock,
        )
        if self._scheduled:
            self.planning.start()

    def _start_api(self) -> None:
        if not self.config.api.enabled:
            return
        from gridcoord.api.auth import TokenConfigError
        from gridcoord.api.server import ApiBindError, ApiServer

        try:
            self.api = ApiServer(self, self.instruments, self.overrides)
            self.api.start()
        except (ApiBindError, TokenConfigError) as exc:
            raise StartupError(str(exc)) from None
        print(f"gridcoord: dashboard at {self.api.url}", flush=True)

    def submit(self, reading: Reading) -> None:
        """Hand a reading from a non-MQTT adapter to the pipeline (and the planner)."""
        if self.pipeline is not None and self._accepting:
            self._observe(reading)
            self.pipeline.submit(reading)

    def _modbus_rejected(self, asset_id: str, reason: Reason, detail: str) -> None:
        if self.rejections is not None:
            self.rejections.reject(asset_id, reason, detail, f"modbus/{asset_id}")

    def _ocpp_rejected(self, asset_id: str, reason: Reason, detail: str) -> None:
        if self.rejections is not None:
            self.rejections.reject(asset_id, reason, detail, f"ocpp/{asset_id}")

    def _on_message(self, message: Message) -> None:
        """Give one message its verdict: submitted (acked once durable) or rejected and acked."""
        pipeline = self.pipeline
        assert pipeline is not None
        if not self._accepting:
            return  # not acked: the broker redelivers it to our next session
        session = self.session
        assert session is not None
        if message.topic.startswith(self._forecast_topics):
            try:
                self._on_forecast(message)
            except Exception as exc:
                self._log_internal_error(message.topic, exc)
                self._reject(
                    message, None, Reason.INTERNAL_ERROR, f"unexpected {type(exc).__name__}"
                )
            session.ack(message)
            return
        # A redelivery (broker restart, reconnect) gets its first delivery's receive time, so a
        # reading without `ts` becomes the same point again, not a second one.
        received, key = self._inflight.receive(
            message.mid,
            message.topic,
            message.payload,
            qos=message.qos,
            dup=message.dup,
            connection=session.connections,
            now=self.clock(),
        )
        try:
            decoded = self.decoder.decode_message(message.topic, message.payload, now=received)
        except Rejected as exc:
            self._reject(message, key, exc.reason, exc.detail)
            return
        except Exception as exc:
            # A bug of ours, not the device's: count it, say where, and go on with the next.
            self._log_internal_error(message.topic, exc)
            self._reject(message, key, Reason.INTERNAL_ERROR, f"unexpected {type(exc).__name__}")
            return
        rejections = self.rejections
        assert rejections is not None
        for element in decoded.rejected:
            error = element.error
            rejections.reject(element.asset_id, error.reason, error.detail, message.topic)
        if self.coordinator is not None or self._listeners:
            # Only then a `Reading` per reading: the store takes the typed decoder's rows.
            for reading in decoded.readings:
                self._observe(reading)
        if not decoded.readings:
            self._durable(message, key)
            return
        # One acknowledgement per message, once the last of its readings is durable.
        pipeline.submit_many(decoded.readings, lambda: self._durable(message, key))

    def _reject(self, message: Message, key: Token | None, reason: Reason, detail: str) -> None:
        rejections = self.rejections
        assert rejections is not None
        asset_id, _ = self.decoder.asset_for_topic(message.topic)
        rejections.reject(asset_id, reason, detail, message.topic)
        self._durable(message, key)

    def _durable(self, message: Message, key: Token | None) -> None:
        session = self.session
        if session is not None and self._inflight.durable(key, session.connections):
            session.ack(message)

    def _observe(self, reading: Reading) -> None:
        if self.coordinator is not None:
            try:
                self.coordinator.observe(reading)
            except Exception as exc:
                # The reading is valid and still stored; planning misses one observation.
                self._log_internal_error(f"planning observation of {reading.asset_id}", exc)
        for listener in self._listeners:
            try:
                listener(reading)
            except Exception as exc:  # a listener's bug must not cost the reading
                self._log_internal_error(f"reading listener for {reading.asset_id}", exc)

    def _log_internal_error(self, where: str, exc: Exception) -> None:
        """Log where it happened; the traceback once per exception type, never its message.

        Later ones of the same type are only counted (the periodic rejection summary shows
        them): a bug that hits every message must not flood the log.
        """
        name = type(exc).__name__
        if name in self._internal_errors_logged:
            return
        self._internal_errors_logged.add(name)
        # The frames only: an exception's message may quote the payload (personal data).
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("internal error (%s) on %s; counted, not fatal:\n%s", name, where[:200], frames)

    def _on_forecast(self, message: Message) -> None:
        assert self.rejections is not None
        prefix = self.config.mqtt.topic_prefix
        try:
            forecast = decode_forecast(
                message.topic,
                message.payload,
                prefix=prefix,
                now=self.clock(),
                capacity_kw=self._forecast_capacity,
            )
        except Rejected as exc:
            self.rejections.reject(UNKNOWN_ASSET, exc.reason, exc.detail, message.topic)
            return
        with self._forecast_lock:
            coordinator = self.coordinator
            if coordinator is None:
                # A retained forecast arrives with the subscription, before the planner exists.
                self._early_forecasts[forecast.kind] = forecast
            else:
                coordinator.observe_forecast(forecast)
        if coordinator is not None:
            log.info(
                "external %s forecast issued %s: %d slots from %s",
                forecast.kind.value,
                forecast.issued_at.isoformat(),
                len(forecast.values_kw),
                forecast.start.isoformat(),
            )
        for listener in self._forecast_listeners:
            try:
                listener(forecast)
            except Exception as exc:  # a listener's bug must not cost the forecast
                self._log_internal_error(f"forecast listener for {forecast.kind.value}", exc)

    async def _retention_loop(self) -> None:
        """Run the retention job now and every ``privacy.retention_interval_min``.

        A store that cannot serve it is logged and retried next time; the job is resumable,
        so an interrupted run loses nothing (docs/data-protection.md).
        """
        from gridcoord.privacy.retention import RetentionJob
        from gridcoord.storage.base import StoreRejected, StoreUnavailable

        assert self.store is not None
        job = RetentionJob(self.store, self.config, self.clock)
        while True:
            try:
                report = await asyncio.to_thread(job.run)
            except (StoreUnavailable, StoreRejected) as exc:
                log.warning("retention job not done this time: %s", exc)
            except Exception as exc:
                self._log_internal_error("the retention job", exc)
            else:
                if report.windows or report.late_assets:
                    log.info("retention: %s", report.as_dict())
            await asyncio.sleep(self.config.privacy.retention_interval_min * 60)

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(60)
            if self.pipeline is not None and self.rejections is not None:
                log.info("%s", stats_line(self.pipeline.stats.snapshot(), self.rejections.counts()))

    def _shutdown(self) -> None:
        self._accepting = False
        if self.pipeline is not None:
            self.pipeline.close()
            rejected = self.rejections.counts() if self.rejections is not None else {}
            snapshot = self.pipeline.stats.snapshot()
            log.info(
                "ingest drained: %s; rejected %s; redelivered %d",
                snapshot,
                rejected,
                self._inflight.redelivered,
            )
            log.info("at stop, %s", stats_line(snapshot, rejected))
        if self.session is not None:
            self.session.stop()
        if self.broker is not None:
            self.broker.stop()
