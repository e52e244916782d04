"""The city's state as the coordinator knows it, and the frozen image a cycle works on.

`CityState` takes every accepted reading (thread-safe): the latest reading per asset, open
charging sessions, bounded histories of the city's PV, wind and non-EV load, external
forecasts, and what was learnt about the cars (their own power limits, and whether a car
showed it is full: a need nobody reported is a guess). A planning run and a
dispatch each call `CityState.freeze` once and then read only the `StateImage` it returns —
OpenEMS's *process image*: readings that arrive while a solve runs change the next cycle, never
the one under way.

Learning a car's limit needs the setpoint it was allowed: dispatch hands its setpoints back
through `CityState.note_setpoints`. Histories can be warmed from the store on start
(`CityState.warm`, see `gridcoord.planning.warmup`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from adapters.contract.reading import AssetKind, ChargerType, Reading
from gridcoord.config import Config
from gridcoord.forecast import ExternalForecast, ForecastKind
from gridcoord.planning.history import BucketSeries, RunningTotal
from gridcoord.planning.stays import StayLearner, stay_point
from gridcoord.sessions import ChargingSession, EventKind, SessionEvent, SessionTracker
from gridcoord.storage.points import Point
from gridcoord.timegrid import as_utc

# PV and wind are kept per minute for a day (the wind mean's window), load per slot for the
# four weeks of the same-weekday forecast plus a day.
MINUTE = timedelta(minutes=1)
GENERATION_WINDOW = timedelta(hours=25)
LOAD_WINDOW = timedelta(weeks=4, days=1)
# Below this a car's draw says nothing about its limit (idle, or a full battery) [kW].
VEHICLE_MIN_KW = 1.0
# A car drawing less than `VEHICLE_MIN_KW` while allowed at least this shows it is full [kW].
FULL_ALLOWED_KW = 2.0 * VEHICLE_MIN_KW
# A car that has not drawn at all while allowed `FULL_ALLOWED_KW` for this long is full too
# (plugged in full, or full before the service saw it draw); as long as a new car's probe.
NEVER_DREW_FULL_AFTER = timedelta(minutes=5)

History = tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class CityMeters:
    """Which meters measure what, from the configuration.

    Attributes
    ----------
    consumers
        meters that are no zone's meter: households and businesses (non-EV load).
    roots
        meters of the zones without a parent (the city's grid connection).
    """

    consumers: frozenset[str]
    roots: frozenset[str]

    @classmethod
    def of(cls, config: Config) -> CityMeters:
        """The meters of a deployment."""
        zone_meters = {z.meter for z in config.zones if z.meter is not None}
        consumers = {
            a.id for a in config.assets if a.kind is AssetKind.METER and a.id not in zone_meters
        }
        roots = {z.meter for z in config.zones if z.parent is None and z.meter}
        return cls(frozenset(consumers), frozenset(roots))


@dataclass(frozen=True, slots=True)
class StateImage:
    """The city's state frozen at one instant; nothing in it changes afterwards.

    Attributes
    ----------
    at
        the instant it was frozen [UTC].
    latest
        asset id → latest reading.
    sessions
        open charging sessions, by charger id.
    vehicle_max_kw
        session id → the car's learnt limit: the most it drew while allowed clearly more [kW].
    vehicle_full
        ids of the sessions whose car showed it is full: after drawing, it drew less than
        `VEHICLE_MIN_KW` while allowed `FULL_ALLOWED_KW` or more.
    previous_setpoints_kw
        charger id → the setpoint of the last dispatch [kW].
    pv_measured
        city PV output per minute, oldest first [UTC, kW] (empty unless frozen
        with histories).
    wind_measured
        city wind output per minute [UTC, kW] (likewise).
    load_history
        city non-EV load per slot [UTC, kW] (likewise).
    external
        the newest external forecast per kind.
    spare_kw
        measured renewable output minus non-EV load now, the city's totals of the latest
        readings [kW]; None before any non-EV load was measured (the dispatch then trusts
        the plan's forecast surplus).
    """

    at: datetime
    latest: Mapping[str, Reading]
    sessions: tuple[ChargingSession, ...]
    vehicle_max_kw: Mapping[str, float]
    previous_setpoints_kw: Mapping[str, float]
    vehicle_full: frozenset[str] = frozenset()
    pv_measured: History = ()
    wind_measured: History = ()
    load_history: History = ()
    external: Mapping[ForecastKind, ExternalForecast] = field(
        default_factory=lambda: MappingProxyType({})
    )
    spare_kw: float | None = None


class CityState:
    """Everything observed about one city, behind one lock.

    Parameters
    ----------
    config : Config
        The deployment (assets and their kinds, zones and their meters, session defaults).
    """

    def __init__(self, config: Config) -> None:
        planning = config.planning
        self._lock = threading.Lock()
        self._latest: dict[str, Reading] = {}
        chargers = [a for a in config.assets if a.kind is AssetKind.CHARGER]
        self._tracker = SessionTracker(
            {a.id: a.charger.type for a in chargers if a.charger is not None}, planning.sessions
        )
        # Readings of other assets (another instance's substation) are not this state's.
        self._known = frozenset(a.id for a in config.assets)
        meters = CityMeters.of(config)
        self._consumer_meters = meters.consumers
        self._root_meters = meters.roots
        self._totals = {kind: RunningTotal() for kind in ("pv", "wind", "load", "ev", "root")}
        self.slot = timedelta(minutes=planning.slot_minutes)
        self._history = {
            "pv": BucketSeries(MINUTE, GENERATION_WINDOW),
            "wind": BucketSeries(MINUTE, GENERATION_WINDOW),
            "load": BucketSeries(self.slot, LOAD_WINDOW),
        }
        self._external: dict[ForecastKind, ExternalForecast] = {}
        self._previous_setpoints: dict[str, float] = {}
        # Session id → most power seen; sessions seen drawing well below their setpoint.
        self._vehicle_kw: dict[str, float] = {}
        self._vehicle_limited: set[str] = set()
        self._vehicle_full: set[str] = set()
        self._idle_since: dict[str, datetime] = {}
        self._stays = StayLearner(planning.learned_departure_sessions)
        self._stay_points: list[Point] = []

    # --- observing -----------------------------------------------------------------------

    def observe(self, reading: Reading) -> list[SessionEvent]:
        """Take one accepted reading (thread-safe, O(1) apart from session bookkeeping).

        Returns the plug-ins and plug-outs it caused (the loop re-dispatches and re-plans on
        them); a completed session's stay is learnt for its charger type.
        """
        power = reading.fields.get("power_w")
        kw = (
            float(power) / 1000.0
            if isinstance(power, int | float) and not isinstance(power, bool)
            else None
        )
        events: list[SessionEvent] = []
        if reading.asset_id not in self._known:
            return events
        with self._lock:
            previous = self._latest.get(reading.asset_id)
            if previous is not None and reading.ts < previous.ts:
                return events  # a device replaying its buffer: the newer reading stays the latest
            self._latest[reading.asset_id] = reading
            if reading.kind is AssetKind.CHARGER:
                events = self._tracker.update(reading)
                for event in events:
                    if event.kind is EventKind.UNPLUGGED:
                        self._learn_stay(event.session)
                if kw is not None and math.isfinite(kw):
                    self._learn_vehicle(reading.asset_id, kw, reading.ts)
            if kw is not None and math.isfinite(kw):
                self._record(reading, kw)
        return events

    def warm_stays(self, charger_type: ChargerType, stays_h: Iterable[float]) -> int:
        """Add stored stays of one charger type [h] (start, before live readings)."""
        with self._lock:
            count = self._stays.extend(charger_type, stays_h)
            self._tracker.set_learned_stay(charger_type, self._stays.median_h(charger_type))
            return count

    def learned_stays_h(self) -> dict[str, float]:
        """Charger type → the median stay in use as its default departure [h]."""
        with self._lock:
            out = {}
            for t in ChargerType:
                median = self._stays.median_h(t)
                if median is not None:
                    out[t.value] = median
            return out

    def take_stay_points(self) -> list[Point]:
        """The completed stays since the last call, as points to store."""
        with self._lock:
            points, self._stay_points = self._stay_points, []
            return points

    def observe_forecast(self, forecast: ExternalForecast) -> None:
        """Take an external forecast (e.g. from ``<prefix>/forecast/<kind>``); the newest wins."""
        with self._lock:
            current = self._external.get(forecast.kind)
            if current is None or forecast.issued_at >= current.issued_at:
                self._external[forecast.kind] = forecast

    def note_setpoints(self, setpoints_kw: Mapping[str, float]) -> None:
        """Remember what the last dispatch allowed each charger [kW] (to learn car limits)."""
        with self._lock:
            self._previous_setpoints = dict(setpoints_kw)

    def warm(self, kind: str, series: Iterable[tuple[datetime, float]]) -> int:
        """Add stored history of one city total (``pv``, ``wind`` or ``load``) [UTC, kW].

        Meant for the start, before live readings: a bucket that already holds live values
        gets the stored ones averaged in. Returns the number of buckets filled.

        Raises
        ------
        KeyError
            an unknown kind.
        """
        history = self._history[kind]
        with self._lock:
            before = len(history)
            for ts, kw in series:
                history.add(ts, kw)
            return len(history) - before

    def history_buckets(self) -> dict[str, int]:
        """Buckets held per history (``pv``, ``wind``, ``load``)."""
        with self._lock:
            return {kind: len(series) for kind, series in self._history.items()}

    # --- freezing ------------------------------------------------------------------------

    def freeze(
        self,
        now: datetime,
        *,
        close_silent: bool = False,
        histories: bool = False,
        prune: bool = True,
    ) -> StateImage:
        """The state as of ``now``, copied once under the lock.

        Parameters
        ----------
        now : datetime
            The cycle's instant [UTC].
        close_silent : bool
            First close sessions whose charger has been silent too long (a planning run
            does, so that a dead charger's car stops being planned).
        histories : bool
            Copy the PV, wind and load histories too (a planning run's forecast needs them;
            a dispatch does not).
        prune : bool
            Forget what was learnt about cars no longer plugged in (a cycle does; a read-only
            look, e.g. from the API, passes False and changes nothing).
        """
        now = as_utc(now)
        with self._lock:
            if close_silent:
                self._tracker.close_silent(now)
            sessions = tuple(self._tracker.open_sessions())
            open_ids = {s.id for s in sessions}
            if prune:
                # Cars gone: what was learnt about them is of no further use.
                self._vehicle_kw = {k: v for k, v in self._vehicle_kw.items() if k in open_ids}
                self._vehicle_limited &= open_ids
                self._vehicle_full &= open_ids
                self._idle_since = {k: v for k, v in self._idle_since.items() if k in open_ids}
            # What each limited car drew at most, as it is: the plan counts on it (a margin
            # here made plans for slow cars fall short by it, issue 12); the dispatch adds
            # its own margin to grow (`VEHICLE_GROWTH`).
            vehicle = {
                sid: self._vehicle_kw[sid]
                for sid in self._vehicle_limited & open_ids
                if sid in self._vehicle_kw
            }
            measured = {
                kind: tuple(series.series()) if histories else ()
                for kind, series in self._history.items()
            }
            return StateImage(
                at=now,
                latest=MappingProxyType(dict(self._latest)),
                sessions=sessions,
                vehicle_max_kw=MappingProxyType(vehicle),
                previous_setpoints_kw=MappingProxyType(dict(self._previous_setpoints)),
                vehicle_full=frozenset(self._vehicle_full & open_ids),
                external=MappingProxyType(dict(self._external)),
                pv_measured=measured["pv"],
                wind_measured=measured["wind"],
                load_history=measured["load"],
                spare_kw=self._spare_kw(),
            )

    def _spare_kw(self) -> float | None:
        """Measured PV + wind − non-EV load now, from the running totals (under the lock)."""
        load = self._non_ev_load_kw()
        if load is None:
            return None
        return self._totals["pv"].total + self._totals["wind"].total - load

    # --- under the lock ------------------------------------------------------------------

    def _learn_stay(self, session: ChargingSession) -> None:
        """A completed session's stay, for its charger type's default departure."""
        if session.unplugged_at is None:
            return
        stay_h = (session.unplugged_at - session.plugged_in_at).total_seconds() / 3600.0
        if not stay_h > 0:
            return
        kind = self._tracker.charger_type(session.charger_id)
        self._stays.add(kind, stay_h)
        self._tracker.set_learned_stay(kind, self._stays.median_h(kind))
        if len(self._stay_points) < 10_000:  # bounded if nobody collects them
            self._stay_points.append(
                stay_point(session.charger_id, kind, session.unplugged_at, stay_h)
            )

    def _learn_vehicle(self, charger_id: str, kw: float, ts: datetime) -> None:
        """Learn a car's own power limit: the most it drew while allowed clearly more.

        Many cars charge slower than the charger allows (one phase, 3.7 or 7.4 kW); planning
        and reserving the charger's rating for them leaves a zone's headroom unused. And
        whether it is full: it stopped drawing while allowed clearly more, or it has not drawn
        at all for `NEVER_DREW_FULL_AFTER` while allowed clearly more (issue 12: cars plugged
        in full before the service started were allowed 22 kW each and counted as charging
        against the surplus, ~800 kW on summer, seed 1, two hours in, while they drew none).
        """
        session = self._tracker.session(charger_id)
        if session is None:
            return
        drew = self._vehicle_kw.get(session.id, 0.0)
        self._vehicle_kw[session.id] = max(drew, kw)
        allowed = self._previous_setpoints.get(charger_id)
        if allowed is None:
            return
        if VEHICLE_MIN_KW <= kw < 0.9 * allowed:
            self._vehicle_limited.add(session.id)
        if kw >= VEHICLE_MIN_KW:
            # It draws: not full, whatever it showed before.
            self._vehicle_full.discard(session.id)
            self._idle_since.pop(session.id, None)
        elif allowed < FULL_ALLOWED_KW:
            # Allowed too little to show anything: a wait for a car that never drew restarts.
            self._idle_since.pop(session.id, None)
        elif drew >= VEHICLE_MIN_KW:
            # It charged, and stops while allowed clearly more: full (a guessed need is met).
            self._vehicle_full.add(session.id)
        elif ts - self._idle_since.setdefault(session.id, ts) >= NEVER_DREW_FULL_AFTER:
            # It has not drawn at all in all that time while allowed clearly more.
            self._vehicle_full.add(session.id)

    def _non_ev_load_kw(self) -> float | None:
        """The city's non-EV load now from the running totals [kW]; None before any reading.

        The consumer meters' sum; in a city without them, what the root meters see plus the
        generation they net out, minus the charging.
        """
        totals = self._totals
        if self._consumer_meters:
            return totals["load"].total if totals["load"].members else None
        if not totals["root"].members:
            return None
        generation = totals["pv"].total + totals["wind"].total
        return max(0.0, totals["root"].total + generation - totals["ev"].total)

    def _record(self, reading: Reading, kw: float) -> None:
        """Update the city totals and their histories."""
        asset, ts = reading.asset_id, reading.ts
        if reading.kind is AssetKind.PV:
            self._history["pv"].add(ts, self._totals["pv"].update(asset, kw))
        elif reading.kind is AssetKind.WIND:
            self._history["wind"].add(ts, self._totals["wind"].update(asset, kw))
        elif reading.kind is AssetKind.CHARGER:
            self._totals["ev"].update(asset, max(0.0, kw))
        elif asset in self._consumer_meters or (
            asset in self._root_meters and not self._consumer_meters
        ):
            self._totals["load" if self._consumer_meters else "root"].update(asset, kw)
            load = self._non_ev_load_kw()
            assert load is not None  # this reading is one of its members
            self._history["load"].add(ts, load)
