"""`CityView` over today's service: the one place that knows `Service`'s insides.

It reads the coordinator through its public accessors (a frozen `StateImage`, the kept plans,
the last forecast), and `track` polls the planning loop's latest outcomes once a second to keep
the history the API lists (plans, chart).

The frame (the image, assets, zones, totals) is computed at most once per `FRAME_TTL_S`,
whatever the number of clients: a city of 10,000 chargers costs one freeze and one pass over
the latest readings per second, not one per request. Sessions and setpoints read the same
frame's image, so everything one frame shows comes from one instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.contract.reading import AssetKind, Reading
from gridcoord.api.overrides import OverrideBook
from gridcoord.api.view import (
    AssetState,
    ChargerState,
    ChartSeries,
    ForecastView,
    Health,
    LeadError,
    PlanSummary,
    SessionState,
    SetpointState,
    Totals,
    ZoneStatus,
)
from gridcoord.dispatch.inputs import zone_state
from gridcoord.outcomes import KpiAccumulator
from gridcoord.timegrid import floor_slot, local_date, slot_starts

if TYPE_CHECKING:
    from gridcoord.planning.coordinator import DispatchOutcome, PlanOutcome
    from gridcoord.planning.state import StateImage
    from gridcoord.service import Service

FRAME_TTL_S = 1.0
_T = TypeVar("_T")
CHART_HOURS_BACK = 12
CHART_HOURS_AHEAD = 12
_HISTORY_SLOTS = 200  # a bit more than the chart's 96 slots


@dataclass(frozen=True)
class _Frame:
    at: datetime
    image: StateImage | None  # one freeze per frame: sessions and setpoints read it too
    assets: list[AssetState]
    zones: list[ZoneStatus]
    totals: Totals


class PlanningEvents:
    """Callbacks the tracker fires for what the metrics count (each at most once per outcome)."""

    def __init__(self) -> None:
        self.on_plan: list[Callable[[PlanOutcome], None]] = []
        self.on_dispatch: list[Callable[[DispatchOutcome, int], None]] = []


class ServiceView:
    """`CityView` for a running `Service`.

    Parameters
    ----------
    service
        the started service (its coordinator and planning loop may be None).
    overrides
        operator caps, shown in zone limits.
    clock
        aware UTC now.
    """

    def __init__(
        self,
        service: Service,
        overrides: OverrideBook,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._service = service
        self._config = service.config
        self._overrides = overrides
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._frame: _Frame | None = None
        self._frame_mono = -math.inf
        self._cache: dict[str, tuple[float, list[Any]]] = {}
        self._building: dict[str, threading.Lock] = {}
        self._asset_states: dict[str, tuple[Reading | None, bool, AssetState]] = {}
        self._plans: deque[PlanSummary] = deque(maxlen=self._config.api.plans_kept)
        self._last_plan: object | None = None
        self._last_dispatch: object | None = None
        self._seen_setpoints: dict[str, datetime] = {}
        self.events = PlanningEvents()
        slot = self._config.planning.slot_minutes
        self._slot = slot
        # Slot start → value, for the chart: what was forecast/planned when it was still ahead,
        # and the mean of what was measured while it ran.
        self._forecast: dict[datetime, float] = {}
        self._planned: dict[datetime, float] = {}
        self._baseline: dict[datetime, float] = {}  # uncontrolled EV power of the same sessions
        self._actual: dict[datetime, list[float]] = {}  # [renewable sum, ev sum, samples]
        # Today's EV energy and its renewable part (for the header), by the outcome KPIs'
        # one definition (docs/coordination.md, "Outcome KPIs").
        self._day: object = None
        self._today = KpiAccumulator({})
        self._last_sample: datetime | None = None
        self._zone_meters = {z.meter for z in self._config.zones if z.meter is not None}
        stale_meter = self._config.planning.zone_meter_stale_after_s
        self._stale_after = {
            a.id: (
                a.charger.stale_after_s
                if a.charger is not None
                else (a.modbus.effective_stale_after_s if a.modbus is not None else stale_meter)
            )
            for a in self._config.assets
        }

    # --- the CityView ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def assets(self) -> list[AssetState]:
        return self._current().assets

    def zones(self) -> list[ZoneStatus]:
        return self._current().zones

    def totals(self) -> Totals:
        return self._current().totals

    def sessions(self) -> list[SessionState]:
        return self._cached("sessions", self._build_sessions)

    def _cached(self, key: str, build: Callable[[], list[_T]]) -> list[_T]:
        """``build()``'s result, rebuilt at most once per `FRAME_TTL_S` (many clients, one pass)."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < FRAME_TTL_S:
                return hit[1]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one build at a time; the others take its result
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and time.monotonic() - hit[0] < FRAME_TTL_S:
                    return hit[1]
            value = build()
            with self._lock:
                self._cache[key] = (time.monotonic(), value)
            return value

    def _build_sessions(self) -> list[SessionState]:
        image = self._current().image
        if image is None:
            return []
        sessions = image.sessions
        return [
            SessionState.model_construct(
                id=s.id,
                charger_id=s.charger_id,
                plugged_in_at=s.plugged_in_at,
                departure=s.departure,
                departure_source=s.departure_source.value,
                requested_kwh=s.requested_kwh,
                request_source=s.request_source.value,
                delivered_kwh=s.delivered_kwh,
                power_kw=s.power_kw,
            )
            for s in sorted(sessions, key=lambda s: s.charger_id)
        ]

    def plans(self) -> list[PlanSummary]:
        self._poll_planning()
        with self._lock:
            return list(self._plans)

    def setpoints(self) -> list[SetpointState]:
        return self._cached("setpoints", self._build_setpoints)

    def _build_setpoints(self) -> list[SetpointState]:
        planning = self._service.planning
        outcome = planning.last_dispatch if planning is not None else None
        if outcome is None:
            return []
        image = self._current().image
        latest = image.latest if image is not None else {}
        modbus = self._service.modbus
        modbus_ids = set(modbus.charger_ids) if modbus is not None else set()
        out = []
        for charger_id in sorted(outcome.setpoints_kw):
            read_back: float | None = None
            alarm: str | None = None
            protocol: str = "mqtt"
            if modbus is not None and charger_id in modbus_ids:
                protocol = "modbus"
                result = modbus.last_setpoint(charger_id)
                if result is None:
                    alarm = "not written yet"
                else:
                    alarm = result.alarm
                    if result.read_back_a is not None and result.current_a > 0:
                        read_back = result.power_w * result.read_back_a / result.current_a / 1000
                    elif result.read_back_a is not None:
                        read_back = 0.0
            out.append(
                SetpointState.model_construct(
                    charger_id=charger_id,
                    schedule_id=outcome.schedule_id,
                    sent_at=outcome.at,
                    max_power_kw=outcome.setpoints_kw[charger_id],
                    valid_until=outcome.valid_until,
                    limited_by=outcome.limited.get(charger_id, "plan"),
                    protocol="modbus" if protocol == "modbus" else "mqtt",
                    read_back_kw=read_back,
                    alarm=alarm,
                    actual_kw=_power_kw(latest.get(charger_id)),
                )
            )
        return out

    def chargers(self) -> list[ChargerState]:
        return self._cached("chargers", self._build_chargers)

    def _build_chargers(self) -> list[ChargerState]:
        setpoints = {s.charger_id: s for s in self.setpoints()}
        sessions = {s.charger_id: s for s in self.sessions()}
        out = []
        for a in sorted(self.assets(), key=lambda a: a.id):
            if a.kind != AssetKind.CHARGER.value:
                continue
            sp, session = setpoints.get(a.id), sessions.get(a.id)
            out.append(
                ChargerState.model_construct(
                    id=a.id,
                    zone=a.zone,
                    state="stale" if not a.available else "charging" if session else "idle",
                    power_kw=a.power_kw,
                    setpoint_kw=sp.max_power_kw if sp is not None else None,
                    limited_by=sp.limited_by if sp is not None else None,
                    valid_until=sp.valid_until if sp is not None else None,
                    alarm=sp.alarm if sp is not None else None,
                    delivered_kwh=session.delivered_kwh if session is not None else None,
                    requested_kwh=session.requested_kwh if session is not None else None,
                    departure=session.departure if session is not None else None,
                )
            )
        return out

    def rejections(self) -> dict[str, int]:
        rejections = self._service.rejections
        return rejections.counts() if rejections is not None else {}

    def ingest(self) -> dict[str, int]:
        pipeline = self._service.pipeline
        return pipeline.stats.snapshot() if pipeline is not None else {}

    def health(self) -> Health:
        service = self._service
        session, pipeline = service.session, service.pipeline
        spool = pipeline._spool if pipeline is not None else None
        spool_bytes = spool.bytes_used if spool is not None else 0
        max_bytes = self._config.storage.spool_max_bytes
        planning = service.planning
        last = planning.last_plan if planning is not None else None
        alive = pipeline is not None and pipeline._worker.is_alive()
        return Health(
            broker_connected=session is not None and session.connected,
            store_writable=alive and pipeline is not None and pipeline.store_available,
            spooling=alive and pipeline is not None and not pipeline.store_available,
            spool_full=spool_bytes >= max_bytes,
            spool_bytes=spool_bytes,
            planning_enabled=planning is not None,
            last_plan_at=last.made_at if last is not None else None,
            plan_interval_s=self._config.planning.interval_min * 60.0,
            started_at=self._started,
        )

    def chart(self) -> ChartSeries:
        self._poll_planning()
        now = self._clock()
        first = floor_slot(now, self._slot) - timedelta(hours=CHART_HOURS_BACK)
        count = (CHART_HOURS_BACK + CHART_HOURS_AHEAD) * 60 // self._slot
        starts = slot_starts(first, count, self._slot)
        with self._lock:
            actual = {k: (v[0] / v[2], v[1] / v[2]) for k, v in self._actual.items() if v[2]}
            forecast = dict(self._forecast)
            planned = dict(self._planned)
            baseline = dict(self._baseline)
        return ChartSeries(
            starts=list(starts),
            renewable_forecast_kw=[forecast.get(s) for s in starts],
            renewable_actual_kw=[actual[s][0] if s in actual else None for s in starts],
            ev_planned_kw=[planned.get(s) for s in starts],
            ev_actual_kw=[actual[s][1] if s in actual else None for s in starts],
            ev_baseline_kw=[baseline.get(s) for s in starts],
        )

    def forecast(self) -> ForecastView | None:
        coordinator = self._service.coordinator
        if coordinator is None:
            return None
        forecast = coordinator.last_forecast
        if forecast is None:
            return None
        plans = self.plans()
        return ForecastView(
            starts=list(forecast.starts),
            pv_kw=[float(v) for v in forecast.pv_kw],
            wind_kw=[float(v) for v in forecast.wind_kw],
            load_kw=[float(v) for v in forecast.load_kw],
            sources={k.value: v for k, v in forecast.sources.items()},
            day_ahead_kw={
                kind: [float(v) if math.isfinite(v) else None for v in values]
                for kind, values in forecast.day_ahead.items()
            },
            mae_kw=plans[0].forecast_mae if plans else {},
            error_by_lead={
                kind: {
                    source: {bucket: LeadError(**cell) for bucket, cell in buckets.items()}
                    for source, buckets in by_source.items()
                }
                for kind, by_source in coordinator.forecast_error().items()
            },
        )

    def renewable_share_today(self) -> float | None:
        """Share of today's (Europe/Berlin) EV energy covered by renewable surplus [-]."""
        with self._lock:
            if self._today.ev_kwh <= 0:
                return None
            return float(self._today.result()["renewable_share"])

    def series(
        self, measurement: str, field: str, tags: dict[str, str], start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        pipeline = self._service.pipeline
        if pipeline is None:
            return []
        return pipeline._store.series(measurement, field, tags, start, end)

    def run_now(self) -> bool:
        planning = self._service.planning
        if planning is None:
            return False
        planning.run_now()
        return True

    def dispatch_now(self) -> None:
        planning = self._service.planning
        if planning is not None:
            planning.dispatch_soon()

    # --- tracking -------------------------------------------------------------------------

    async def track(self, stop: asyncio.Event, period_s: float = 1.0) -> None:
        """Poll the planning loop's outcomes and sample the city totals until ``stop``."""
        while not stop.is_set():
            await asyncio.to_thread(self._tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period_s)

    def _tick(self) -> None:
        self._poll_planning()
        self._sample(self._current().totals)

    def _poll_planning(self) -> None:
        planning = self._service.planning
        if planning is None:
            return
        plan, dispatch = planning.last_plan, planning.last_dispatch
        with self._lock:
            new_plan = plan is not None and plan is not self._last_plan
            new_dispatch = dispatch is not None and dispatch is not self._last_dispatch
            if new_plan:
                self._last_plan = plan
            if new_dispatch:
                self._last_dispatch = dispatch
        if new_plan and plan is not None:
            self._record_plan(plan)
            for plan_hook in self.events.on_plan:
                plan_hook(plan)
        if new_dispatch and dispatch is not None:
            mismatches = self._new_modbus_alarms()
            for dispatch_hook in self.events.on_dispatch:
                dispatch_hook(dispatch, mismatches)

    def _new_modbus_alarms(self) -> int:
        modbus = self._service.modbus
        if modbus is None:
            return 0
        count = 0
        for charger_id in modbus.charger_ids:
            result = modbus.last_setpoint(charger_id)
            if result is None or self._seen_setpoints.get(charger_id) == result.ts:
                continue
            self._seen_setpoints[charger_id] = result.ts
            count += result.alarm is not None
        return count

    def _record_plan(self, plan: PlanOutcome) -> None:
        summary = PlanSummary(
            schedule_id=plan.schedule_id,
            made_at=plan.made_at,
            slot_start=plan.slot_start,
            status=plan.status,
            failure=plan.failure,
            solve_s=plan.solve_s,
            budget_s=plan.budget_s,
            sessions=plan.sessions,
            kpis={k: v for k, v in plan.kpis.items() if math.isfinite(v)},
            baseline={k: v for k, v in plan.baseline.items() if math.isfinite(v)},
            binding=plan.binding,
            forecast_mae=plan.forecast_mae,
            forecast_sources=plan.forecast_sources,
        )
        forecast: dict[datetime, float] = {}
        planned: dict[datetime, float] = {}
        baseline = {
            s: float(v)
            for s, v in zip(
                slot_starts(plan.slot_start, len(plan.baseline_ev_kw), self._slot),
                plan.baseline_ev_kw,
                strict=True,
            )
        }
        coordinator = self._service.coordinator
        if coordinator is not None:
            previous = coordinator.last_forecast
            kept = coordinator.plans()
            active = kept[-1] if kept else None
            if previous is not None:
                values = previous.renewable_kw
                forecast = {s: float(values[i]) for i, s in enumerate(previous.starts)}
            if active is not None and active.schedule_id == plan.schedule_id and active.slots:
                starts = slot_starts(active.start, active.slots, self._slot)
                planned = {
                    s: math.fsum(v[i] for v in active.chargers_kw.values() if i < len(v))
                    for i, s in enumerate(starts)
                }
        with self._lock:
            self._plans.appendleft(summary)
            # Only slots still ahead: what was expected of a slot is kept once it has begun.
            self._forecast.update({s: v for s, v in forecast.items() if s >= plan.slot_start})
            self._planned.update({s: v for s, v in planned.items() if s >= plan.slot_start})
            self._baseline.update(baseline)
            _prune(self._forecast, _HISTORY_SLOTS)
            _prune(self._planned, _HISTORY_SLOTS)
            _prune(self._baseline, _HISTORY_SLOTS)

    def _sample(self, totals: Totals) -> None:
        now = self._clock()
        slot = floor_slot(now, self._slot)
        with self._lock:
            bucket = self._actual.setdefault(slot, [0.0, 0.0, 0])
            bucket[0] += totals.renewable_kw
            bucket[1] += totals.ev_kw
            bucket[2] += 1
            _prune(self._actual, _HISTORY_SLOTS)
            day = local_date(now, self._config.site.timezone)
            if day != self._day:
                self._day, self._today = day, KpiAccumulator({})
            elif self._last_sample is not None:
                hours = max(0.0, min((now - self._last_sample).total_seconds(), 300.0)) / 3600
                self._today.add(hours, totals.ev_kw, totals.load_kw, totals.renewable_kw, {})
            self._last_sample = now

    # --- the frame ------------------------------------------------------------------------

    def _current(self) -> _Frame:
        with self._lock:
            if self._frame is not None and time.monotonic() - self._frame_mono < FRAME_TTL_S:
                return self._frame
            building = self._building.setdefault("frame", threading.Lock())
        with building:  # one build at a time; the others take its result
            with self._lock:
                frame = self._frame
                if frame is not None and time.monotonic() - self._frame_mono < FRAME_TTL_S:
                    return frame
            frame = self._build_frame()
            with self._lock:
                self._frame, self._frame_mono = frame, time.monotonic()
            return frame

    def _build_frame(self) -> _Frame:
        now = self._clock()
        coordinator = self._service.coordinator
        image = coordinator.image(now) if coordinator is not None else None
        latest: Mapping[str, Reading] = image.latest if image is not None else {}
        config = self._config
        assets: list[AssetState] = []
        previous = self._asset_states
        reused: dict[str, tuple[Reading | None, bool, AssetState]] = {}
        renewable = ev = consumers = root_kw = 0.0
        online = roots = 0
        for a in config.assets:
            reading = latest.get(a.id)
            fresh = (
                reading is not None
                and (now - reading.ts).total_seconds() <= self._stale_after[a.id]
            )
            kw = _power_kw(reading) if fresh else None
            online += fresh
            if kw is not None:
                if a.kind in (AssetKind.PV, AssetKind.WIND):
                    renewable += max(0.0, kw)
                elif a.kind is AssetKind.CHARGER:
                    ev += max(0.0, kw)
                elif a.id not in self._zone_meters:
                    consumers += kw
            # Most devices report every few tens of seconds: the frame before's state is reused
            # unless the reading or its freshness changed (10,000 models a second cost 0.25 s).
            known = previous.get(a.id)
            if known is not None and known[0] is reading and known[1] == fresh:
                state_of = known[2]
            else:
                state_of = AssetState.model_construct(
                    id=a.id,
                    kind=a.kind.value,
                    zone=a.zone,
                    rated_kw=a.rated_kw,
                    available=fresh,
                    last_seen=reading.ts if reading is not None else None,
                    power_kw=kw,
                    fields=_numeric(reading.fields) if reading is not None else {},
                )
            reused[a.id] = (reading, fresh, state_of)
            assets.append(state_of)
        self._asset_states = reused
        state = zone_state(
            config, latest, now, timedelta(seconds=config.planning.zone_meter_stale_after_s)
        )
        headroom = {z.id: z.headroom_kw for z in state.limits}
        planning = self._service.planning
        dispatch = planning.last_dispatch if planning is not None else None
        short = {o.zone: o.shortfall_kw for o in dispatch.shortfalls} if dispatch else {}
        caps = self._overrides.zone_caps(now)
        zones = []
        for z in config.zones:
            meter = latest.get(z.meter) if z.meter is not None else None
            meter_kw = _power_kw(meter) if z.id not in state.stale_zones else None
            non_ev = state.non_ev_kw.get(z.id)
            zone_ev = (
                max(0.0, meter_kw - non_ev) if meter_kw is not None and non_ev is not None else 0.0
            )
            if z.parent is None and meter_kw is not None:
                root_kw += meter_kw
                roots += 1
            cap = caps.get(z.id)
            room = headroom.get(z.id, 0.0)
            zones.append(
                ZoneStatus.model_construct(
                    id=z.id,
                    parent=z.parent,
                    capacity_kw=z.capacity_kw,
                    limit_kw=min(room, cap[0]) if cap is not None else room,
                    load_kw=meter_kw,
                    ev_kw=zone_ev,
                    headroom_kw=room,
                    meter_stale=z.id in state.stale_zones,
                    override_until=cap[1] if cap is not None else None,
                    shortfall_kw=short.get(z.id),
                )
            )
        # Root meters see the city's net exchange; without them, consumers + EV − generation.
        net = root_kw if roots else consumers + ev - renewable
        totals = Totals(
            renewable_kw=renewable,
            ev_kw=ev,
            load_kw=max(0.0, net + renewable - ev),
            net_import_kw=net,
            online=online,
            stale=len(config.assets) - online,
        )
        return _Frame(now, image, assets, zones, totals)


def _prune(values: Mapping[datetime, object], keep: int) -> None:
    """Drop the oldest keys beyond ``keep`` (dicts keep insertion order, not time order)."""
    assert isinstance(values, dict)
    if len(values) > keep:
        for key in sorted(values)[: len(values) - keep]:
            del values[key]


def _power_kw(reading: Reading | None) -> float | None:
    value = reading.fields.get("power_w") if reading is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) / 1000.0


def _numeric(fields: Mapping[str, object]) -> dict[str, float | bool]:
    return {
        k: v
        for k, v in fields.items()
        if isinstance(v, bool) or (isinstance(v, int | float) and math.isfinite(v))
    }
