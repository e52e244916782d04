"""One station's connection: the `ocpp` package's ChargePoint with our handlers (both versions).

Every incoming call gets a verdict: a CALLRESULT, or a CALLERROR for a malformed frame, a
schema violation, a flood (rate limit) or a handler failure (contained and counted). The
library's own logging is silenced (it writes whole frames, idTokens included, DESIGN 6); we log
what happened without the payload. Our calls go out one at a time per station (OCPP-J allows
one outstanding call each way); a response whose id we are not waiting for is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, MessageType, unpack
from ocpp.routing import after as _after
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201

from adapters.ocpp.contract import Asset, Reading, Reason, Rejected, build_reading, parse_timestamp
from adapters.ocpp.meter_values import MeterValueError, samples
from adapters.ocpp.profiles import Electrical, ProfileKind, Target, timestamp
from adapters.ocpp.settings import OcppServerSettings, OcppStation
from adapters.sink import Setpoint

log = logging.getLogger(__name__)

# Schema validation is pure-Python work that holds the GIL in the library's executor as well;
# inline it saves two thread hops per message (bench/ocpp.py: CPU per delivery).
ocpp.messages.ASYNC_VALIDATION = False

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: str) -> Callable[[_F], _F]:
    """The ocpp package's `@on` (route an incoming call), typed."""
    return cast(Callable[[_F], _F], _on(action))


def after(action: str) -> Callable[[_F], _F]:
    """The ocpp package's `@after` (run once the response is sent), typed."""
    return cast(Callable[[_F], _F], _after(action))


# The library logs every frame at INFO and handler errors with the frame: never ours to show.
_LIBRARY_LOG = logging.getLogger("adapters.ocpp.library")
_LIBRARY_LOG.setLevel(logging.CRITICAL + 1)
_LIBRARY_LOG.propagate = False

# Connector states that mean a vehicle is plugged in.
_PLUGGED = frozenset(
    {"Occupied", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing"}
)
_UNAVAILABLE = frozenset({"Unavailable", "Faulted"})


@dataclass(slots=True)
class Outlet:
    """What we know of one configured charger (an EVSE or connector); outlives connections.

    Attributes
    ----------
    asset : Asset
        The charger asset.
    spec : OcppStation
        Its `ocpp:` block.
    electrical : Electrical
        Unit conversion and safe power.
    transaction_id : str or None
        The running transaction (never the idToken).
    energy_at_start_wh : float or None
        The meter at the transaction's start [Wh], for ``session_energy_wh``.
    last_setpoint : Setpoint or None
        The newest setpoint, re-sent on reconnect while valid.
    profile_kind : ProfileKind
        The first kind the station accepts (moves down the fallback order on rejection).
    status : str or None
        The connector status last reported.
    station_max_sent : bool
        A station-wide maximum profile of ours is on the station (cleared once not needed:
        it would cap the station at the safe power after it expires).
    """

    asset: Asset
    spec: OcppStation
    electrical: Electrical
    transaction_id: str | None = None
    energy_at_start_wh: float | None = None
    last_setpoint: Setpoint | None = None
    profile_kind: ProfileKind = ProfileKind.TX
    status: str | None = None
    station_max_sent: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def target(self) -> Target:
        """Version and outlet ids."""
        return Target(self.spec.version, self.spec.evse_id, self.spec.connector_id)


@dataclass(slots=True)
class Hub:
    """What a station connection reports to the server."""

    submit: Callable[[Reading], None]
    reject: Callable[[str, Reason, str], None]
    booted: Callable[[str], None]
    session_ended: Callable[[Outlet], None]
    counts: Counter[str] = field(default_factory=Counter)


class _TokenBucket:
    """`rate` calls per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class _Station:
    """Shared behaviour of the two versions' connections (mixed in before the library class)."""

    _ocpp_version: ClassVar[str]
    id: str
    _connection: Any
    _response_queue: asyncio.Queue[Any]

    def _setup(self, outlets: Mapping[int, Outlet], settings: OcppServerSettings, hub: Hub) -> None:
        self.outlets = dict(outlets)
        self.settings = settings
        self.hub = hub
        self.last_seen = time.monotonic()
        self._bucket = _TokenBucket(settings.calls_per_s, settings.call_burst)
        self._pending: str | None = None
        self._request_lock = asyncio.Lock()
        # Message ids need only be unique per connection: a counter (uuid4 reads urandom).
        self._ids = itertools.count(1)

    # -- incoming --------------------------------------------------------------------------

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route one frame; never raises for anything the station sent."""
        self.last_seen = time.monotonic()
        try:
            msg = unpack(raw_msg)
        except OCPPError:
            self.hub.counts["malformed"] += 1
            await self._send_error(_frame_id(raw_msg), self._format_error_code(), "malformed")
            return
        except Exception:  # e.g. a message id that is not a string
            self.hub.counts["malformed"] += 1
            await self._send_error("-1", self._format_error_code(), "malformed")
            return
        if msg.message_type_id == MessageType.Call:
            if not isinstance(msg.unique_id, str) or not isinstance(msg.action, str):
                self.hub.counts["malformed"] += 1
                await self._send_error("-1", self._format_error_code(), "malformed")
                return
            if not self._bucket.take():
                self.hub.counts["rate_limited"] += 1
                await self._send_error(msg.unique_id, "GenericError", "rate limit exceeded")
                return
            await self._handle_safely(msg)
        elif msg.unique_id == self._pending and self._pending is not None:
            self._pending = None
            self._response_queue.put_nowait(msg)
        else:
            self.hub.counts["unsolicited_response"] += 1

    async def _handle_safely(self, msg: Call) -> None:
        try:
            await self._handle_call(msg)  # type: ignore[attr-defined]
        except OCPPError as error:
            self.hub.counts[f"callerror_{error.code}"] += 1
            await self._send(msg.create_call_error(error).to_json())  # type: ignore[attr-defined]
        except Exception as exc:
            # The library turns handler exceptions into CALLERRORs; this is anything else.
            self.hub.counts["internal_error"] += 1
            log.error("station %s: %s handling failed: %s", self.id, msg.action, type(exc).__name__)
            await self._send_error(msg.unique_id, "InternalError", "internal error")

    async def _send_error(self, unique_id: str, code: str, description: str) -> None:
        frame = CallError(unique_id, code, description, {}).to_json()
        try:
            await self._send(frame)  # type: ignore[attr-defined]
        except Exception:  # the connection is gone; nothing to tell
            return

    def _format_error_code(self) -> str:
        return "RpcFrameworkError" if self._ocpp_version == "2.0.1" else "FormationViolation"

    # -- outgoing --------------------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send one call and return the result; raises OCPPError for a CALLERROR.

        Raises
        ------
        TimeoutError
            No answer within `call_timeout_s`.
        """
        async with self._request_lock:
            unique_id = f"gc-{next(self._ids)}"
            self._pending = unique_id
            try:
                return await self.call(payload, suppress=False, unique_id=unique_id)  # type: ignore[attr-defined]
            finally:
                self._pending = None

    # -- helpers for the handlers ----------------------------------------------------------

    def _outlet(self, outlet_id: int | None) -> Outlet | None:
        if outlet_id is None and len(self.outlets) == 1:
            return next(iter(self.outlets.values()))
        return self.outlets.get(outlet_id) if outlet_id is not None else None

    def _readings(self, outlet: Outlet, meter_values: object, extra: Mapping[str, object]) -> None:
        now = datetime.now(UTC)
        try:
            taken = samples(meter_values)
        except MeterValueError as exc:
            self.hub.reject(outlet.asset.id, Reason.WRONG_TYPE, str(exc))
            return
        for sample in taken:
            values: dict[str, object] = dict(sample.fields)
            energy = sample.fields.get("energy_wh")
            if outlet.transaction_id is not None and energy is not None:
                if outlet.energy_at_start_wh is None:
                    outlet.energy_at_start_wh = energy
                values["session_energy_wh"] = max(0.0, energy - outlet.energy_at_start_wh)
            values.update(extra)
            self._submit(outlet, values, sample.timestamp, now)
            extra = {}
        if extra:
            self._submit(outlet, dict(extra), None, now)

    def _submit(
        self, outlet: Outlet, values: Mapping[str, object], ts_text: str | None, now: datetime
    ) -> None:
        try:
            ts = now if ts_text is None else parse_timestamp(ts_text, now=now)
            reading = build_reading(outlet.asset, values, ts=ts, now=now)
        except Rejected as exc:
            self.hub.reject(outlet.asset.id, exc.reason, exc.detail)
            return
        self.hub.submit(reading)

    def _status(self, outlet: Outlet | None, status: str, ts_text: str) -> None:
        if outlet is None:
            return
        before, outlet.status = outlet.status, status
        if (status in _UNAVAILABLE) != (before in _UNAVAILABLE) and before is not None:
            level = logging.WARNING if status in _UNAVAILABLE else logging.INFO
            log.log(level, "charger %s: %s", outlet.asset.id, status)
        if status in _PLUGGED or status == "Available":
            self._submit(outlet, {"connected": status in _PLUGGED}, ts_text, datetime.now(UTC))

    def _started(self, outlet: Outlet, transaction_id: str, energy_wh: float | None) -> None:
        outlet.transaction_id = transaction_id
        outlet.energy_at_start_wh = energy_wh
        self.hub.counts["transactions_started"] += 1

    def _ended(self, outlet: Outlet) -> None:
        outlet.transaction_id = None
        outlet.energy_at_start_wh = None
        self.hub.counts["transactions_ended"] += 1
        self.hub.session_ended(outlet)


def _frame_id(raw: str | bytes) -> str:
    """The message id of a frame that failed to unpack, when it can be read ("-1" if not)."""
    try:
        frame = json.loads(raw)
    except (ValueError, TypeError):
        return "-1"
    if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
        return frame[1][:36]
    return "-1"


def _now_text() -> str:
    return timestamp(datetime.now(UTC))


class Station201(_Station, ChargePoint201):  # type: ignore[misc]
    """An OCPP 2.0.1 charging station."""

    def __init__(
        self,
        station_id: str,
        connection: Any,
        outlets: Mapping[int, Outlet],
        settings: OcppServerSettings,
        hub: Hub,
    ) -> None:
        ChargePoint201.__init__(
            self, station_id, connection, settings.call_timeout_s, logger=_LIBRARY_LOG
        )
        self._setup(outlets, settings, hub)

    @on("BootNotification")
    def on_boot(self, charging_station: object, reason: str, **_: object) -> Any:
        """Accept the configured station and give it the heartbeat interval."""
        return result201.BootNotification(
            current_time=_now_text(),
            interval=self.settings.heartbeat_interval_s,
            status="Accepted",
        )

    @after("BootNotification")
    def after_boot(self, **_: object) -> None:
        """Re-send the valid setpoint once the boot response is on the wire."""
        # After the response is on the wire: a station may refuse calls before it is accepted.
        self.hub.booted(self.id)

    @on("Heartbeat")
    def on_heartbeat(self, **_: object) -> Any:
        """Answer with the current time."""
        return result201.Heartbeat(current_time=_now_text())

    @on("StatusNotification")
    def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **_: object
    ) -> Any:
        """Connector status → availability and `connected`."""
        outlet = self._outlet(evse_id)
        if outlet is not None and outlet.spec.connector_id == connector_id:
            self._status(outlet, connector_status, timestamp)
        return result201.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **_: object) -> Any:
        """Accept: authorisation is the operator backend's job, not load management's."""
        # Authorisation is the operator's backend's job; gridcoord only manages the load.
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    def on_transaction(
        self,
        event_type: str,
        timestamp: str,
        transaction_info: Mapping[str, Any],
        meter_value: object = None,
        evse: Mapping[str, Any] | None = None,
        id_token: object = None,
        **_: object,
    ) -> Any:
        """Transaction started, updated or ended → session and meter readings."""
        transaction_id = str(transaction_info.get("transaction_id"))
        outlet = self._outlet(evse.get("id") if evse else None)
        if outlet is None:
            outlet = next(
                (o for o in self.outlets.values() if o.transaction_id == transaction_id), None
            )
        if outlet is not None:
            if event_type == "Started" or (
                outlet.transaction_id is None and event_type == "Updated"
            ):
                self._started(outlet, transaction_id, None)
            extra: dict[str, object] = {"connected": event_type != "Ended"}
            if meter_value is not None:
                self._readings(outlet, meter_value, extra)
            else:
                self._submit(outlet, extra, timestamp, datetime.now(UTC))
            if event_type == "Ended":
                self._ended(outlet)
        elif evse is not None:
            self.hub.reject("_unknown", Reason.UNKNOWN_ASSET, f"{self.id}: unknown EVSE")
        # The idToken is never kept; the response must carry a verdict when one was sent.
        if id_token is not None:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    @on("MeterValues")
    def on_meter_values(self, evse_id: int, meter_value: object, **_: object) -> Any:
        """Meter values → readings."""
        outlet = self._outlet(evse_id)
        if outlet is None:
            self.hub.reject("_unknown", Reason.UNKNOWN_ASSET, f"{self.id}: unknown EVSE")
        else:
            self._readings(outlet, meter_value, {})
        return result201.MeterValues()

    @on("NotifyEVChargingNeeds")
    def on_charging_needs(
        self, charging_needs: Mapping[str, Any], evse_id: int, **_: object
    ) -> Any:
        """ISO 15118 charging needs → departure and energy request."""
        outlet = self._outlet(evse_id)
        if outlet is None:
            return result201.NotifyEVChargingNeeds(status="Rejected")
        values: dict[str, object] = {}
        departure = charging_needs.get("departure_time")
        if isinstance(departure, str):
            values["departure"] = departure
        for key in ("ac_charging_parameters", "dc_charging_parameters"):
            parameters = charging_needs.get(key)
            if isinstance(parameters, Mapping) and "energy_amount" in parameters:
                values["energy_request_wh"] = parameters["energy_amount"]
        if values:
            self._submit(outlet, values, None, datetime.now(UTC))
        return result201.NotifyEVChargingNeeds(status="Accepted")


class Station16(_Station, ChargePoint16):  # type: ignore[misc]
    """An OCPP 1.6J charge point."""

    _next_transaction: ClassVar[int] = int(time.time()) % 1_000_000_000

    def __init__(
        self,
        station_id: str,
        connection: Any,
        outlets: Mapping[int, Outlet],
        settings: OcppServerSettings,
        hub: Hub,
    ) -> None:
        ChargePoint16.__init__(
            self, station_id, connection, settings.call_timeout_s, logger=_LIBRARY_LOG
        )
        self._setup(outlets, settings, hub)

    @on("BootNotification")
    def on_boot(self, **_: object) -> Any:
        """Accept the configured station and give it the heartbeat interval."""
        return result16.BootNotification(
            current_time=_now_text(),
            interval=self.settings.heartbeat_interval_s,
            status="Accepted",
        )

    @after("BootNotification")
    def after_boot(self, **_: object) -> None:
        """Re-send the valid setpoint once the boot response is on the wire."""
        self.hub.booted(self.id)

    @on("Heartbeat")
    def on_heartbeat(self, **_: object) -> Any:
        """Answer with the current time."""
        return result16.Heartbeat(current_time=_now_text())

    @on("StatusNotification")
    def on_status(
        self, connector_id: int, status: str, timestamp: str | None = None, **_: object
    ) -> Any:
        """Connector status → availability and `connected`."""
        if connector_id != 0:
            self._status(self._outlet(connector_id), status, timestamp or _now_text())
        return result16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **_: object) -> Any:
        """Accept: authorisation is the operator backend's job, not load management's."""
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def on_start(self, connector_id: int, meter_start: int, timestamp: str, **_: object) -> Any:
        """A 1.6 transaction starts: our transaction id, session open."""
        Station16._next_transaction = Station16._next_transaction % 2_000_000_000 + 1
        transaction_id = Station16._next_transaction
        outlet = self._outlet(connector_id)
        if outlet is not None:
            self._started(outlet, str(transaction_id), float(meter_start))
            self._submit(
                outlet,
                {"connected": True, "energy_wh": meter_start, "session_energy_wh": 0.0},
                timestamp,
                datetime.now(UTC),
            )
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
        )

    @on("StopTransaction")
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **_: object) -> Any:
        """A 1.6 transaction ends: session closed, its TxProfile cleared."""
        outlet = next(
            (o for o in self.outlets.values() if o.transaction_id == str(transaction_id)), None
        )
        if outlet is not None:
            values: dict[str, object] = {"connected": False, "energy_wh": meter_stop}
            if outlet.energy_at_start_wh is not None:
                values["session_energy_wh"] = max(0.0, meter_stop - outlet.energy_at_start_wh)
            self._submit(outlet, values, timestamp, datetime.now(UTC))
            self._ended(outlet)
        return result16.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, connector_id: int, meter_value: object, **_: object) -> Any:
        """Meter values → readings."""
        outlet = self._outlet(connector_id)
        if outlet is None:
            if connector_id != 0:
                self.hub.reject("_unknown", Reason.UNKNOWN_ASSET, f"{self.id}: unknown connector")
        else:
            self._readings(outlet, meter_value, {})
        return result16.MeterValues()
