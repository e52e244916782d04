"""Charging sessions derived from charger telemetry: plug-in, energy delivered, need, departure.

A session opens when a charger reports ``connected: true`` and closes when it reports ``false``.
Its energy delivered is the charger's ``session_energy_wh`` when the charger sends it, otherwise
the integral of ``power_w`` over time. The energy requested and the departure come from the
device or the user (``energy_request_wh``, ``departure``) when given, otherwise from defaults
per charger type (home overnight, workplace, public), so that the optimizer always has a need and
a deadline. Only the charger id and times are kept; a vehicle or user id never reaches this
module (validation drops it) and a session's id is made of the charger id and its plug-in time.

The tracker is pure: readings and the current time are parameters, nothing reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from adapters.contract.reading import AssetKind, ChargerType, Reading
from gridcoord.timegrid import as_utc, parse_rfc3339, to_rfc3339

# A gap in telemetry longer than this is not bridged when integrating power into energy:
# we do not know what happened in between, and overestimating delivered energy starves a car.
MAX_INTEGRATION_GAP = timedelta(minutes=10)


class SessionDefault(BaseModel):
    """What is assumed about a session when the device and user say nothing.

    Departure: the next ``departure_local`` (site time) at least ``min_dwell_h`` after plug-in
    when set, else plug-in plus ``dwell_h``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    energy_kwh: float = Field(
        gt=0, le=200, description="Energy a vehicle is assumed to want [kWh]."
    )
    departure_local: time | None = Field(
        None, description="Local wall-clock time the vehicle is assumed to leave (e.g. 07:00)."
    )
    min_dwell_h: float = Field(
        1.0, ge=0, le=48, description="Shortest stay assumed with `departure_local` [h]."
    )
    dwell_h: float = Field(2.0, gt=0, le=48, description="Assumed stay without it [h].")


def _home() -> SessionDefault:
    return SessionDefault(energy_kwh=15.0, departure_local=time(7, 0), min_dwell_h=4.0)


def _workplace() -> SessionDefault:
    return SessionDefault(energy_kwh=12.0, departure_local=time(17, 0), min_dwell_h=2.0)


def _public() -> SessionDefault:
    return SessionDefault(energy_kwh=15.0, dwell_h=2.0)


class SessionDefaults(BaseModel):
    """Session defaults per charger type; proposed as config section ``planning.sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: SessionDefault = Field(
        default_factory=_home, description="Home wallbox: overnight until 07:00, 15 kWh."
    )
    workplace: SessionDefault = Field(
        default_factory=_workplace, description="Workplace: until 17:00, 12 kWh."
    )
    public: SessionDefault = Field(
        default_factory=_public, description="Public charge point: two hours, 15 kWh."
    )
    site_timezone: str = Field(
        "Europe/Berlin", description="Zone of `departure_local` (the site's timezone)."
    )

    def for_type(self, charger_type: ChargerType) -> SessionDefault:
        """The defaults of one charger type."""
        return {
            ChargerType.HOME: self.home,
            ChargerType.WORKPLACE: self.workplace,
            ChargerType.PUBLIC: self.public,
        }[charger_type]

    def departure(self, charger_type: ChargerType, plugged_in_at: datetime) -> datetime:
        """Default departure of a session of this charger type that began at ``plugged_in_at``."""
        default = self.for_type(charger_type)
        start = as_utc(plugged_in_at)
        if default.departure_local is None:
            return start + timedelta(hours=default.dwell_h)
        zone = ZoneInfo(self.site_timezone)
        earliest = start + timedelta(hours=default.min_dwell_h)
        local_day = earliest.astimezone(zone).date()
        for offset in range(3):
            day = local_day + timedelta(days=offset)
            candidate = datetime.combine(day, default.departure_local, tzinfo=zone)
            # A local time skipped by the spring DST change resolves to the next valid instant.
            candidate_utc = candidate.astimezone(UTC)
            if candidate_utc >= earliest:
                return candidate_utc
        return earliest  # unreachable: a local time recurs within two days


class Source(StrEnum):
    """Where a session's value comes from."""

    DEVICE = "device"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """One vehicle's stay at one charger (no vehicle or user identity).

    Attributes
    ----------
    id
        ``<charger_id>@<plug-in time RFC 3339>``; stable across restarts of the tracker
        as long as the plug-in time is known.
    charger_id
        the charger.
    plugged_in_at
        plug-in instant (or first sight, when the tracker started mid-session) [UTC].
    departure
        when the vehicle is expected to leave [UTC].
    departure_source
        device/user or charger-type default.
    requested_kwh
        energy the session is to deliver in total [kWh].
    request_source
        device/user or charger-type default.
    delivered_kwh
        energy delivered so far [kWh].
    power_kw
        last measured power [kW].
    last_seen
        time of the last reading [UTC].
    unplugged_at
        plug-out instant, None while connected [UTC].
    """

    id: str
    charger_id: str
    plugged_in_at: datetime
    departure: datetime
    departure_source: Source
    requested_kwh: float
    request_source: Source
    delivered_kwh: float
    power_kw: float
    last_seen: datetime
    unplugged_at: datetime | None = None

    @property
    def remaining_kwh(self) -> float:
        """Energy still to deliver [kWh], never negative."""
        return max(0.0, self.requested_kwh - self.delivered_kwh)

    @property
    def is_open(self) -> bool:
        """Whether the vehicle is still plugged in."""
        return self.unplugged_at is None


class EventKind(StrEnum):
    """What happened to a charging session."""

    PLUGGED_IN = "plugged_in"
    UNPLUGGED = "unplugged"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A plug-in or plug-out, for logs and the store (no personal data)."""

    kind: EventKind
    session: ChargingSession


class SessionTracker:
    """Open charging sessions per charger, updated reading by reading.

    Parameters
    ----------
    charger_types
        charger id → its type (for defaults); unknown chargers count as public.
    defaults
        session defaults per charger type.
    """

    def __init__(
        self,
        charger_types: Mapping[str, ChargerType],
        defaults: SessionDefaults | None = None,
    ) -> None:
        self._types = dict(charger_types)
        self._defaults = defaults or SessionDefaults()
        self._open: dict[str, ChargingSession] = {}
        self._last_ts: dict[str, datetime] = {}
        self._learned_stay_h: dict[ChargerType, float] = {}

    def set_learned_stay(self, charger_type: ChargerType, stay_h: float | None) -> None:
        """Use ``stay_h`` [h] as the default stay of a type without a local departure time.

        None returns to the configured default. Sessions already open keep their departure.
        """
        if stay_h is None or self._defaults.for_type(charger_type).departure_local is not None:
            self._learned_stay_h.pop(charger_type, None)
        else:
            self._learned_stay_h[charger_type] = stay_h

    def charger_type(self, charger_id: str) -> ChargerType:
        """The type of a charger (public when unknown)."""
        return self._types.get(charger_id, ChargerType.PUBLIC)

    def update(self, reading: Reading) -> list[SessionEvent]:
        """Apply one charger reading; return the plug-in/plug-out events it caused.

        Readings of other kinds, and readings older than the last one of the same charger
        (a device replaying its buffer), change nothing.
        """
        if reading.kind is not AssetKind.CHARGER:
            return []
        charger, ts = reading.asset_id, reading.ts
        last = self._last_ts.get(charger)
        if last is not None and ts < last:
            return []
        self._last_ts[charger] = ts
        fields = reading.fields
        connected = fields.get("connected")
        session = self._open.get(charger)
        events: list[SessionEvent] = []

        if connected is False:
            if session is not None:
                closed = replace(self._advance(session, fields, ts), unplugged_at=ts, power_kw=0.0)
                del self._open[charger]
                events.append(SessionEvent(EventKind.UNPLUGGED, closed))
            return events
        if session is None:
            if connected is not True:
                return events  # no session known and none reported: nothing to track
            session = self._start(charger, ts, fields)
            events.append(SessionEvent(EventKind.PLUGGED_IN, session))
        elif _energy_restarted(session, fields):
            # The device's session counter went back: a new session began between two readings
            # (a plug-out we never saw). Close the old one where it was last seen.
            closed = replace(session, unplugged_at=session.last_seen, power_kw=0.0)
            events.append(SessionEvent(EventKind.UNPLUGGED, closed))
            session = self._start(charger, ts, fields)
            events.append(SessionEvent(EventKind.PLUGGED_IN, session))
        else:
            session = self._advance(session, fields, ts)
        self._open[charger] = session
        return events

    def close_silent(
        self, now: datetime, after: timedelta = timedelta(hours=12)
    ) -> list[SessionEvent]:
        """Close sessions whose charger has sent nothing for ``after``; return the events.

        A charger that went silent while connected would otherwise keep a session (and a
        planned need) forever. It is closed where it was last seen; if the charger comes back
        still connected, a new session opens.
        """
        now = as_utc(now)
        events = []
        for charger, session in list(self._open.items()):
            if now - session.last_seen > after:
                closed = replace(session, unplugged_at=session.last_seen, power_kw=0.0)
                del self._open[charger]
                events.append(SessionEvent(EventKind.UNPLUGGED, closed))
        return events

    def open_sessions(self) -> list[ChargingSession]:
        """Every open session (immutable values: a planning run's snapshot), by charger id."""
        return [self._open[c] for c in sorted(self._open)]

    def session(self, charger_id: str) -> ChargingSession | None:
        """The open session at a charger, if any."""
        return self._open.get(charger_id)

    def _start(self, charger: str, ts: datetime, fields: Mapping[str, object]) -> ChargingSession:
        charger_type = self._types.get(charger, ChargerType.PUBLIC)
        delivered = _kwh(fields.get("session_energy_wh")) or 0.0
        learned = self._learned_stay_h.get(charger_type)
        session = ChargingSession(
            id=f"{charger}@{to_rfc3339(ts)}",
            charger_id=charger,
            plugged_in_at=ts,
            departure=self._defaults.departure(charger_type, ts)
            if learned is None
            else as_utc(ts) + timedelta(hours=learned),
            departure_source=Source.DEFAULT,
            requested_kwh=self._defaults.for_type(charger_type).energy_kwh,
            request_source=Source.DEFAULT,
            delivered_kwh=delivered,
            power_kw=_kw(fields.get("power_w")) or 0.0,
            last_seen=ts,
        )
        return _apply_user_values(session, fields)

    def _advance(
        self, session: ChargingSession, fields: Mapping[str, object], ts: datetime
    ) -> ChargingSession:
        reported = _kwh(fields.get("session_energy_wh"))
        power = _kw(fields.get("power_w"))
        if reported is not None:
            delivered = max(session.delivered_kwh, reported)
        else:
            # Integrate the last known power over the gap (left rectangle: the power held
            # until this reading), unless the gap is too long to trust.
            gap = ts - session.last_seen
            hours = gap.total_seconds() / 3600.0 if gap <= MAX_INTEGRATION_GAP else 0.0
            delivered = session.delivered_kwh + max(0.0, session.power_kw) * hours
        updated = replace(
            session,
            delivered_kwh=delivered,
            power_kw=session.power_kw if power is None else power,
            last_seen=ts,
        )
        return _apply_user_values(updated, fields)


def _apply_user_values(session: ChargingSession, fields: Mapping[str, object]) -> ChargingSession:
    """Take departure and energy request from the device or user when they are given."""
    departure = fields.get("departure")
    if isinstance(departure, str):
        try:
            when = parse_rfc3339(departure)
        except ValueError:
            when = None  # validated upstream; a bad value keeps what we had
        if when is not None:
            session = replace(session, departure=when, departure_source=Source.DEVICE)
    request = _kwh(fields.get("energy_request_wh"))
    if request is not None:
        session = replace(session, requested_kwh=request, request_source=Source.DEVICE)
    return session


def _energy_restarted(session: ChargingSession, fields: Mapping[str, object]) -> bool:
    reported = _kwh(fields.get("session_energy_wh"))
    # 10 Wh of slack: some chargers report a rounded or slightly jittering counter.
    return reported is not None and reported < session.delivered_kwh - 0.01


def _kwh(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number / 1000.0 if math.isfinite(number) and number >= 0 else None


def _kw(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return max(0.0, number) / 1000.0 if math.isfinite(number) else None
