"""The OCPP central system inside `gridcoord run`: a websockets server, one connection per station.

Handshake (DESIGN 3.8): the station connects to `ws[s]://host:port/<station_id>` with HTTP basic
auth (user = station id); an unknown station or a wrong password gets HTTP 401, a station that
does not offer its configured version's subprotocol (`ocpp2.0.1`, `ocpp1.6`) HTTP 400. Frames
larger than `max_frame_bytes` close the connection (1009). A station reconnecting replaces its
old connection and keeps what we knew (transaction, last setpoint), and gets the setpoint again.

As a `SetpointSink` the server sends each setpoint as charging profiles (see `profiles`), reads
the composite schedule back and compares it. Stations are served concurrently: one outstanding
call per station, every station at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHeader, NegotiationError
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from adapters.ocpp.contract import Asset, Reading, Reason
from adapters.ocpp.credentials import Credentials, load_credentials
from adapters.ocpp.profiles import (
    FALLBACK_ORDER,
    Electrical,
    ProfileKind,
    charging_profile,
    composite_limit,
    expected_limit_w,
    profile_id,
    purpose,
)
from adapters.ocpp.settings import SUBPROTOCOLS, OcppServerSettings
from adapters.ocpp.station import Hub, Outlet, Station16, Station201
from adapters.sink import Delivery, Setpoint

log = logging.getLogger(__name__)

Station = Station16 | Station201
Clock = Callable[[], datetime]


class _Undelivered(Exception):
    """The station did not answer (timeout, connection lost)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OcppServer:
    """The central system for the configured OCPP chargers; a `SetpointSink`.

    Parameters
    ----------
    settings : OcppServerSettings
        The `ocpp:` section.
    assets : sequence of Asset
        Every asset; those with an `ocpp:` block are served.
    submit : callable
        Takes each accepted `Reading` (the service's ingest and planner).
    reject : callable
        ``(asset_id, reason, detail)`` for every rejected value.
    clock : callable
        Aware UTC now.
    """

    def __init__(
        self,
        settings: OcppServerSettings,
        assets: Sequence[Asset],
        *,
        submit: Callable[[Reading], None],
        reject: Callable[[str, Reason, str], None],
        clock: Clock = _utc_now,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._outlets: dict[str, dict[int, Outlet]] = {}
        self._versions: dict[str, str] = {}
        self._by_charger: dict[str, tuple[str, Outlet]] = {}
        for asset in assets:
            spec = asset.ocpp
            if spec is None or asset.charger is None:
                continue
            electrical = Electrical(
                spec.charging_rate_unit,
                asset.charger.voltage_v,
                asset.charger.phases,
                asset.charger.safe_power_kw * 1000.0,
            )
            outlet = Outlet(asset, spec, electrical)
            self._outlets.setdefault(spec.station_id, {})[outlet.target.outlet] = outlet
            self._versions[spec.station_id] = spec.version
            self._by_charger[asset.id] = (spec.station_id, outlet)
        self.hub = Hub(submit, reject, self._booted, self._session_ended)
        self.connections: dict[str, Station] = {}
        self._ever_connected: set[str] = set()
        self._stale: set[str] = set()
        self._credentials: Credentials | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Condition()
        # The call timeout runs from the moment a call is sent; with thousands of calls out
        # at once, answers would wait in our own loop past it (bench/ocpp.py).
        self._in_flight = asyncio.Semaphore(settings.max_sends_in_flight)

    # -- SetpointSink ----------------------------------------------------------------------

    @property
    def charger_ids(self) -> frozenset[str]:
        """The chargers configured with an `ocpp:` block."""
        return frozenset(self._by_charger)

    async def send(self, setpoint: Setpoint) -> Delivery:
        """Send one setpoint as charging profiles and read the composite schedule back."""
        entry = self._by_charger.get(setpoint.charger_id)
        if entry is None:
            return Delivery(setpoint.charger_id, "failed", "not an OCPP charger")
        station_id, outlet = entry
        outlet.last_setpoint = setpoint
        station = self.connections.get(station_id)
        if station is None:
            return Delivery(setpoint.charger_id, "failed", "station not connected")
        if station_id in self._stale:
            return Delivery(setpoint.charger_id, "failed", "station stale")
        async with outlet.lock, self._in_flight:
            try:
                return await self._deliver(station, outlet, setpoint)
            except _Undelivered as exc:
                self.hub.counts["undelivered"] += 1
                return Delivery(setpoint.charger_id, "failed", str(exc))

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        assert self._server is not None, "start() first"
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Load the credentials and listen.

        Raises
        ------
        CredentialsError
            The credentials file cannot be used.
        OSError
            The port cannot be bound.
        """
        self._credentials = load_credentials(self.settings.credentials_file, self._outlets)
        missing = sorted(set(self._outlets) - self._credentials.station_ids())
        if missing:
            log.warning(
                "OCPP stations without a password in %s (they are refused): %s",
                self.settings.credentials_file,
                ", ".join(missing),
            )
        context = None
        if self.settings.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.settings.tls.cert_file, self.settings.tls.key_file)
        self._server = await serve(
            self._serve_station,
            self.settings.host,
            self.settings.port,
            ssl=context,
            process_request=self._authenticate,
            select_subprotocol=self._select_subprotocol,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS.values()],
            max_size=self.settings.max_frame_bytes,
            max_queue=4,
            compression=None,
            logger=logging.getLogger("adapters.ocpp.websockets"),
        )
        # websockets logs a failed handshake (a port probe, a TLS mismatch) with a traceback;
        # our own refusals are logged and counted above.
        logging.getLogger("adapters.ocpp.websockets").setLevel(logging.CRITICAL)
        log.info(
            "OCPP central system on %s://%s:%d for %d stations",
            "wss" if context else "ws",
            self.settings.host,
            self.port,
            len(self._outlets),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, watching for stale stations, then close."""
        if self._server is None:
            await self.start()
        period = max(1.0, self.settings.heartbeat_interval_s / 4.0)
        try:
            while not stop.is_set():
                self.check_stale(time.monotonic())
                try:
                    async with asyncio.timeout(period):
                        await stop.wait()
                except TimeoutError:
                    continue
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every connection and the listener."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def check_stale(self, now_monotonic: float) -> set[str]:
        """Mark stations silent for `stale_after_heartbeats` intervals stale (logged once)."""
        limit = self.settings.heartbeat_interval_s * self.settings.stale_after_heartbeats
        for station_id, station in self.connections.items():
            silent = now_monotonic - station.last_seen > limit
            if silent and station_id not in self._stale:
                self._stale.add(station_id)
                self.hub.counts["stale"] += 1
                log.warning("OCPP station %s silent past its heartbeat: stale", station_id)
            elif not silent and station_id in self._stale:
                self._stale.discard(station_id)
                log.info("OCPP station %s: recovered", station_id)
        return set(self._stale)

    async def wait_connected(self, station_id: str, *, timeout: float = 10.0) -> None:
        """Wait until the station has a connection (tests and benchmarks)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: station_id in self.connections)

    async def wait_disconnected(self, station_id: str, *, timeout: float = 10.0) -> None:
        """Wait until the station has no connection."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: station_id not in self.connections)

    # -- handshake -------------------------------------------------------------------------

    def _station_id(self, path: str) -> str:
        segment = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
        return unquote(segment)

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = self._station_id(request.path)
        assert self._credentials is not None
        try:
            username, password = parse_authorization_basic(request.headers["Authorization"])
        except (KeyError, InvalidHeader):
            return self._refuse(connection, "missing or unsupported credentials")
        if (
            station_id not in self._outlets
            or username != station_id
            or not self._credentials.check(station_id, password)
        ):
            # One answer for unknown station and wrong password: nothing to probe ids with.
            return self._refuse(connection, "invalid credentials")
        return None

    def _refuse(self, connection: ServerConnection, why: str) -> Response:
        self.hub.counts["refused_auth"] += 1
        response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        response.headers = Headers(response.headers)
        response.headers["WWW-Authenticate"] = build_www_authenticate_basic("gridcoord OCPP")
        log.info("OCPP handshake refused: %s", why)
        return response

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        station_id = self._station_id(connection.request.path if connection.request else "")
        wanted = SUBPROTOCOLS.get(self._versions.get(station_id, ""), "")
        if wanted not in offered:
            self.hub.counts["refused_subprotocol"] += 1
            raise NegotiationError(f"station is configured for subprotocol {wanted}")
        return Subprotocol(wanted)

    # -- connections -----------------------------------------------------------------------

    async def _serve_station(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        station_id = self._station_id(connection.request.path)
        outlets = self._outlets[station_id]
        cls = Station201 if self._versions[station_id] == "2.0.1" else Station16
        station = cls(station_id, connection, outlets, self.settings, self.hub)
        old = self.connections.get(station_id)
        if old is not None:
            log.info("OCPP station %s reconnected: closing its old connection", station_id)
            self._spawn(old._connection.close(1000, "replaced by a new connection"))
        reconnect = station_id in self._ever_connected
        self._ever_connected.add(station_id)
        await self._set_connection(station_id, station)
        self.hub.counts["connections"] += 1
        if reconnect:
            self._resend(station_id)
        try:
            await station.start()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:
                self.hub.counts["oversized"] += 1
                log.warning(
                    "OCPP station %s sent a frame above %d bytes: closed",
                    station_id,
                    self.settings.max_frame_bytes,
                )
        finally:
            if self.connections.get(station_id) is station:
                await self._set_connection(station_id, None)
                self._stale.discard(station_id)

    async def _set_connection(self, station_id: str, station: Station | None) -> None:
        async with self._changed:
            if station is None:
                self.connections.pop(station_id, None)
            else:
                self.connections[station_id] = station
            self._changed.notify_all()

    def _booted(self, station_id: str) -> None:
        for outlet in self._outlets.get(station_id, {}).values():
            outlet.profile_kind = ProfileKind.TX  # a rebooted station may accept it again
        self._resend(station_id)

    def _resend(self, station_id: str) -> None:
        now = self._clock()
        for outlet in self._outlets.get(station_id, {}).values():
            setpoint = outlet.last_setpoint
            if setpoint is not None and setpoint.valid_until > now:
                self._spawn(self.send(setpoint))

    def _session_ended(self, outlet: Outlet) -> None:
        self._spawn(self._clear(outlet))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- delivery --------------------------------------------------------------------------

    async def _deliver(self, station: Station, outlet: Outlet, setpoint: Setpoint) -> Delivery:
        now = self._clock()
        charger = setpoint.charger_id
        if setpoint.valid_until <= now:
            return Delivery(charger, "failed", "setpoint already expired")
        in_tx = outlet.transaction_id is not None
        start = FALLBACK_ORDER.index(outlet.profile_kind)
        kinds = [k for k in FALLBACK_ORDER[start:] if in_tx or k is not ProfileKind.TX]
        carrier: ProfileKind | None = None
        for kind in kinds:
            status = await self._set(station, outlet, kind, setpoint, now, in_tx=in_tx)
            if status == "Accepted":
                carrier = kind
                break
            self.hub.counts["profile_rejected"] += 1
            log.error(
                "charger %s (OCPP %s) answered %s to a %s: falling back",
                charger,
                station.id,
                status,
                purpose(kind, outlet.target),
            )
            if in_tx and kind is not ProfileKind.STATION_MAX:
                outlet.profile_kind = FALLBACK_ORDER[FALLBACK_ORDER.index(kind) + 1]
        if carrier is None:
            return Delivery(charger, "failed", "every charging profile kind was rejected")
        if carrier is ProfileKind.STATION_MAX:
            outlet.station_max_sent = True
        elif outlet.station_max_sent:
            # Left from an earlier fallback, it would end on the safe power for the station.
            await self._clear_profile(station, outlet, ProfileKind.STATION_MAX)
        detail = ""
        if carrier is not ProfileKind.TX and in_tx:
            detail = f"fell back to {purpose(carrier, outlet.target)}"
        if carrier is ProfileKind.TX:
            # The fail-safe: what holds once the TxProfile expires or the connection is lost.
            status = await self._set(
                station, outlet, ProfileKind.TX_DEFAULT, setpoint, now, in_tx=False
            )
            if status != "Accepted":
                self.hub.counts["failsafe_rejected"] += 1
                log.error(
                    "charger %s rejected its fail-safe TxDefaultProfile (%s)", charger, status
                )
                detail = "fail-safe TxDefaultProfile rejected"
        expected_w = expected_limit_w(
            carrier, outlet.electrical, setpoint.max_power_w, in_transaction=in_tx
        )
        read_w = await self._read_back(station, outlet, setpoint, now)
        if read_w is None:
            return Delivery(charger, "acknowledged", detail or "no composite schedule")
        tolerance_w = outlet.electrical.power_w(0.1) + 1e-6
        if abs(read_w - expected_w) > tolerance_w:
            self.hub.counts["read_back_mismatch"] += 1
            log.error(
                "charger %s: composite schedule %.0f W, expected %.0f W",
                charger,
                read_w,
                expected_w,
            )
            return Delivery(charger, "mismatch", "composite schedule differs", read_w)
        return Delivery(charger, "read_back", detail, read_w)

    async def _set(
        self,
        station: Station,
        outlet: Outlet,
        kind: ProfileKind,
        setpoint: Setpoint,
        now: datetime,
        *,
        in_tx: bool,
    ) -> str:
        target = outlet.target
        payload = charging_profile(
            kind,
            target,
            outlet.electrical,
            setpoint_w=setpoint.max_power_w,
            periods=setpoint.periods,
            start=now,
            valid_until=setpoint.valid_until,
            transaction_id=outlet.transaction_id,
            carries_setpoint=in_tx or kind is ProfileKind.STATION_MAX,
        )
        message = (
            call201.SetChargingProfile(**payload)
            if target.version == "2.0.1"
            else call16.SetChargingProfile(**payload)
        )
        try:
            result = await self._call(station, message)
        except OCPPError as error:
            return str(error.code)
        return str(result.status)

    async def _read_back(
        self, station: Station, outlet: Outlet, setpoint: Setpoint, now: datetime
    ) -> float | None:
        target = outlet.target
        duration = max(60, int((setpoint.valid_until - now).total_seconds()))
        unit = outlet.electrical.rate_unit
        message = (
            call201.GetCompositeSchedule(
                duration=duration, evse_id=target.outlet, charging_rate_unit=unit
            )
            if target.version == "2.0.1"
            else call16.GetCompositeSchedule(
                connector_id=target.outlet, duration=duration, charging_rate_unit=unit
            )
        )
        try:
            result = await self._call(station, message)
        except OCPPError:
            return None
        if str(result.status) != "Accepted":
            return None
        limit = composite_limit(_as_dict(result), target.version)
        return None if limit is None else outlet.electrical.power_w(limit)

    async def _clear(self, outlet: Outlet) -> None:
        """Session end: the TxProfile goes."""
        station = self.connections.get(outlet.spec.station_id)
        if station is None:
            return
        async with outlet.lock:
            try:
                await self._clear_profile(station, outlet, ProfileKind.TX)
            except _Undelivered:
                self.hub.counts["clear_failed"] += 1

    async def _clear_profile(self, station: Station, outlet: Outlet, kind: ProfileKind) -> None:
        profile = profile_id(kind, outlet.target)
        message = (
            call201.ClearChargingProfile(charging_profile_id=profile)
            if outlet.spec.version == "2.0.1"
            else call16.ClearChargingProfile(id=profile)
        )
        try:
            result = await self._call(station, message)
        except OCPPError:
            self.hub.counts["clear_failed"] += 1
            return
        self.hub.counts["profiles_cleared"] += 1
        if kind is ProfileKind.STATION_MAX and str(result.status) in ("Accepted", "Unknown"):
            outlet.station_max_sent = False

    async def _call(self, station: Station, message: Any) -> Any:
        try:
            return await station.request(message)
        except TimeoutError:
            raise _Undelivered("no answer within the call timeout") from None
        except ConnectionClosed:
            raise _Undelivered("connection lost") from None


def _as_dict(result: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return {}
