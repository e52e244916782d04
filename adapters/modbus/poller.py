"""The Modbus poller: every Modbus-read asset polled on its interval, readings into the sink.

One owner per connection: each host:port (a device or a gateway with several unit ids behind
it) has one client and one task that polls its devices in turn, so requests never interleave
on a connection and a gateway is not flooded. Charger setpoints go through the same owner.

A failing device is retried with exponential backoff; after `retries` failures in a row it is
*unavailable* (logged once), and "recovered" is logged once when it answers again. Every
failure is reported to `on_reject` with its counted reason. A stale device is unavailable,
never 0 W: no reading is invented for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.contract.reading import AssetKind, Reading
from adapters.contract.validation import Reason, Rejected, build_reading
from adapters.modbus.charger import CurrentLimits, SetpointResult, power_to_current
from adapters.modbus.layout import Block, Raw, decode_block, plan_blocks, scaled, to_fields
from adapters.modbus.maps import Control, Register, RegisterMap, load_map
from adapters.modbus.registers import RegisterType, decode, encode
from adapters.modbus.source import ModbusAsset, ModbusSource, check_unique_units
from adapters.modbus.sunspec import NotSunSpec, discover, sunspec_blocks
from adapters.modbus.transport import DeviceException, ModbusClient, ModbusError

log = logging.getLogger(__name__)

Sink = Callable[[Reading], None]
OnReject = Callable[[str, Reason, str], None]


@dataclass
class _Setpoint:
    requested_w: float
    current_a: float
    clamped: bool
    valid_until: datetime | None
    written_at: float = -math.inf  # monotonic


@dataclass
class _Device:
    asset: ModbusAsset
    source: ModbusSource
    register_map: RegisterMap
    blocks: list[Block] | None  # None: SunSpec, not yet discovered
    registers: list[Register]
    next_poll: float = 0.0
    failures: int = 0
    reported_unavailable: bool = False
    last_good: datetime | None = None
    last_good_mono: float = -math.inf
    raws: dict[str, Raw] = field(default_factory=dict)
    configured: bool = False
    setpoint: _Setpoint | None = None
    last_setpoint: SetpointResult | None = None


@dataclass
class _Gateway:
    client: ModbusClient
    devices: list[_Device]
    # Set when a new setpoint changes the schedule, so a sleeping owner recomputes it.
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class ModbusPoller:
    """Polls every asset that has a `modbus:` source and controls Modbus chargers.

    Parameters
    ----------
    assets : configured assets; those without a `modbus` block are ignored
    sink : receives every accepted reading (thread-safe, never blocks)
    on_reject : called with (asset_id, reason, detail) for every failed poll or rejected value
    map_dir : directory relative register-map paths are resolved against

    Raises
    ------
    adapters.modbus.maps.MapError : a register map cannot be loaded
    ValueError : a map does not fit its asset (naming the asset)
    """

    def __init__(
        self,
        assets: Sequence[ModbusAsset],
        sink: Sink,
        on_reject: OnReject,
        *,
        map_dir: str | None = None,
    ) -> None:
        from pathlib import Path

        self._sink, self._on_reject = sink, on_reject
        self._devices: dict[str, _Device] = {}
        self._gateways: dict[tuple[str, int], _Gateway] = {}
        self.reasons: Counter[Reason] = Counter()
        self.polls = 0
        # Duration of recent sweeps (one pass of a connection over its due devices) [s].
        self.sweep_seconds: deque[float] = deque(maxlen=10_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        base = Path(map_dir) if map_dir else None
        by_gateway: dict[tuple[str, int], list[_Device]] = {}
        check_unique_units(assets)
        for asset in assets:
            source = asset.modbus
            if source is None:
                continue
            register_map = load_map(source.register_map, base_dir=base)
            if asset.kind not in register_map.kinds:
                kinds = ", ".join(k.value for k in register_map.kinds)
                raise ValueError(
                    f"asset {asset.id!r}: register map {register_map.name!r} is for {kinds}, "
                    f"not {asset.kind.value}"
                )
            if asset.kind is AssetKind.CHARGER and register_map.charger is None:
                raise ValueError(f"asset {asset.id!r}: map {register_map.name!r} has no controls")
            blocks = (
                None
                if register_map.sunspec is not None
                else plan_blocks(
                    register_map.registers,
                    max_read=register_map.max_read_registers,
                    max_gap=register_map.max_gap,
                )
            )
            device = _Device(asset, source, register_map, blocks, list(register_map.registers))
            self._devices[asset.id] = device
            by_gateway.setdefault((source.host, source.port), []).append(device)
        for (host, port), devices in by_gateway.items():
            # The connection waits as long as its slowest device; each request its own device's.
            longest = max(d.source.timeout_s for d in devices)
            client = ModbusClient(host, port, timeout_s=longest)
            self._gateways[(host, port)] = _Gateway(client, devices)

    # --- public interface -----------------------------------------------------------------

    @property
    def asset_ids(self) -> list[str]:
        """Ids of the polled assets."""
        return list(self._devices)

    def available(self, asset_id: str) -> bool:
        """Whether the asset answered recently: a stale device is unavailable, never 0 W."""
        device = self._devices.get(asset_id)
        if device is None or device.last_good is None:
            return False
        age = time.monotonic() - device.last_good_mono
        return device.failures < device.source.retries and age <= (
            device.source.effective_stale_after_s
        )

    def last_good(self, asset_id: str) -> datetime | None:
        """Time of the asset's last accepted reading (aware UTC), None if never."""
        device = self._devices.get(asset_id)
        return device.last_good if device else None

    def last_setpoint(self, asset_id: str) -> SetpointResult | None:
        """The charger's most recent setpoint write or refresh."""
        device = self._devices.get(asset_id)
        return device.last_setpoint if device else None

    def refresh_interval_s(self, asset_id: str) -> float:
        """How often the poller re-writes a charger's setpoint: a third of its timeout [s]."""
        return self._failsafe_timeout_s(self._charger(asset_id)) / 3.0

    @property
    def charger_ids(self) -> list[str]:
        """Ids of the Modbus chargers this poller controls."""
        return [i for i, d in self._devices.items() if d.register_map.charger is not None]

    def submit_charger_power(
        self, asset_id: str, power_w: float, *, valid_until: datetime | None = None
    ) -> concurrent.futures.Future[SetpointResult]:
        """`set_charger_power` from another thread (e.g. a scheduler's): a future of its result.

        Raises
        ------
        RuntimeError : the poller is not running.
        KeyError : not a Modbus charger of this poller.
        """
        self._charger(asset_id)
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the Modbus poller is not running")
        return asyncio.run_coroutine_threadsafe(
            self.set_charger_power(asset_id, power_w, valid_until=valid_until), loop
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then close every connection."""
        self._loop = asyncio.get_running_loop()
        tasks = [
            asyncio.create_task(self._serve(gateway, stop), name=f"modbus {host}:{port}")
            for (host, port), gateway in self._gateways.items()
        ]
        try:
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for gateway in self._gateways.values():
                gateway.client.close()

    async def set_charger_power(
        self, asset_id: str, power_w: float, *, valid_until: datetime | None = None
    ) -> SetpointResult:
        """Limit a charger to a power: clamped, converted to current, written, read back.

        Parameters
        ----------
        asset_id : a Modbus charger of the configuration
        power_w : power limit [W]
        valid_until : aware UTC; the poller re-writes the setpoint well inside the charger's
            fail-safe timeout until then, and then lets the charger fall back to its
            fail-safe current. None: refreshed until replaced.

        Returns
        -------
        The result; `alarm` is set (and logged) when the write failed or the read-back differs.

        Raises
        ------
        KeyError : not a Modbus charger of this poller.

        Call it on the event loop that runs `run` (the connection's owner serialises it with
        the polls).
        """
        device = self._charger(asset_id)
        limits = self._limits(device)
        current = power_to_current(power_w, limits)
        wanted = power_w / (limits.phases * limits.voltage_v) if power_w > 0 else 0.0
        clamped = current + max(limits.step_a, 1e-6) < wanted or not math.isfinite(power_w)
        device.setpoint = _Setpoint(power_w, current, clamped, valid_until)
        result = await self._write_setpoint(device)
        self._gateway_of(device).wake.set()  # its refresh is now part of the owner's schedule
        return result

    # --- connection owner -----------------------------------------------------------------

    async def _serve(self, gateway: _Gateway, stop: asyncio.Event) -> None:
        # Spread the first polls over one interval so a gateway's devices do not all fall due
        # at the same instant every interval (a burst that makes the last ones late).
        start, count = time.monotonic(), len(gateway.devices)
        for index, device in enumerate(gateway.devices):
            device.next_poll = start + device.source.poll_interval_s * index / count
        while not stop.is_set():
            began = time.monotonic()
            polled = 0
            for device in gateway.devices:
                if stop.is_set():
                    return
                # The clock is read per device: one due during this pass is not left waiting.
                if device.next_poll <= time.monotonic():
                    await self._poll(gateway.client, device)
                    polled += 1
                await self._refresh_if_due(device)
            if polled:
                self.sweep_seconds.append(time.monotonic() - began)
            upcoming = [d.next_poll for d in gateway.devices]
            # A failing charger's refresh waits for its next poll (else this loop would spin).
            upcoming += [
                self._refresh_due(d) for d in gateway.devices if d.setpoint and not d.failures
            ]
            delay = max(0.0, min(upcoming) - time.monotonic())
            if delay > 0:
                await self._sleep(gateway, stop, delay)

    @staticmethod
    async def _sleep(gateway: _Gateway, stop: asyncio.Event, delay: float) -> None:
        """Wait `delay` seconds, or less if stopped or woken by a new setpoint."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(gateway.wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            gateway.wake.clear()

    async def _poll(self, client: ModbusClient, device: _Device) -> None:
        source = device.source
        started = time.monotonic()
        self.polls += 1
        try:
            if device.blocks is None:
                await self._discover(client, device)
            if device.asset.kind is AssetKind.CHARGER and not device.configured:
                await self._configure(client, device)
            raws: dict[str, Raw] = {}
            for block in device.blocks or []:
                words = await client.read(
                    source.unit_id,
                    block.address,
                    block.count,
                    block.table,
                    timeout_s=source.timeout_s,
                )
                raws.update(decode_block(block, words))
        except ModbusError as exc:
            if isinstance(exc, DeviceException) and exc.code == 2 and device.register_map.sunspec:
                device.blocks = None  # the model chain moved (a firmware update): rediscover
            self._failed(device, exc.reason, str(exc), started)
            return
        except NotSunSpec as exc:
            self._failed(device, Reason.DEVICE_ERROR, str(exc), started)
            return
        device.raws = raws
        ts = datetime.now(UTC)
        # Fixed rate: keep the device's slot, so a late pass does not bunch a gateway's devices
        # together for good; only a device more than an interval behind starts afresh.
        slot = device.next_poll + source.poll_interval_s
        device.next_poll = slot if slot > started else started + source.poll_interval_s
        try:
            reading = build_reading(device.asset, to_fields(device.registers, raws), ts=ts, now=ts)
        except Rejected as rejected:
            self.reasons[rejected.reason] += 1
            self._on_reject(device.asset.id, rejected.reason, rejected.detail)
            return
        if device.reported_unavailable:
            log.info("modbus %s: recovered", device.asset.id)
        device.failures, device.reported_unavailable = 0, False
        device.last_good, device.last_good_mono = ts, time.monotonic()
        self._sink(reading)

    def _failed(self, device: _Device, reason: Reason, detail: str, started: float) -> None:
        source = device.source
        device.failures += 1
        device.configured = False  # a charger that went away may have lost its settings
        self.reasons[reason] += 1
        self._on_reject(device.asset.id, reason, detail)
        # First retries come quickly (a lost frame), then back off up to backoff_max_s.
        first = min(1.0, source.poll_interval_s)
        delay = min(max(source.backoff_max_s, first), first * 2 ** (device.failures - 1))
        device.next_poll = started + delay
        if device.failures >= source.retries and not device.reported_unavailable:
            device.reported_unavailable = True
            log.warning("modbus %s: unavailable (%s: %s)", device.asset.id, reason.value, detail)

    async def _discover(self, client: ModbusClient, device: _Device) -> None:
        spec = device.register_map.sunspec
        assert spec is not None
        unit = device.source.unit_id

        async def read(address: int, count: int) -> list[int]:
            return await client.read(unit, address, count, timeout_s=device.source.timeout_s)

        base, models = await discover(read, spec.bases)
        blocks = sunspec_blocks(spec, models)
        device.blocks = blocks
        device.registers = [r for b in blocks for r in b.registers]
        # Manufacturer and model from the common model (1), for the log; not the serial number.
        make = ""
        if models and models[0].model_id == 1:
            words = await read(models[0].address + 2, 32)
            make = f"{decode(words[:16], RegisterType.STR)} {decode(words[16:], RegisterType.STR)}"
        log.info(
            "modbus %s: SunSpec %s at %d, models %s",
            device.asset.id,
            make.strip() or "device",
            base,
            ", ".join(str(m.model_id) for m in models),
        )

    # --- chargers -------------------------------------------------------------------------

    def _charger(self, asset_id: str) -> _Device:
        device = self._devices.get(asset_id)
        if device is None or device.register_map.charger is None:
            raise KeyError(f"{asset_id!r} is not a Modbus charger")
        return device

    def _limits(self, device: _Device) -> CurrentLimits:
        controls = device.register_map.charger
        spec = device.asset.charger
        assert controls is not None and spec is not None
        rated_a = device.asset.rated_kw * 1000.0 / (spec.phases * spec.voltage_v)
        setpoint = device.register_map.register(controls.setpoint.write or "")
        # Float registers take any value; 0.01 A steps keep what is written a clean number.
        floats = (RegisterType.F32, RegisterType.F64)
        step = 0.01 if setpoint.type in floats else setpoint.scale
        return CurrentLimits(
            phases=spec.phases,
            voltage_v=spec.voltage_v,
            min_current_a=max(spec.min_current_a, controls.min_current_a),
            max_current_a=min(controls.max_current_a, rated_a),
            step_a=abs(step),
        )

    def _failsafe_timeout_s(self, device: _Device) -> float:
        controls = device.register_map.charger
        assert controls is not None
        if controls.failsafe_timeout is not None and controls.failsafe_timeout.write:
            return device.source.failsafe_timeout_s
        return controls.fixed_failsafe_timeout_s or device.source.failsafe_timeout_s

    def _refresh_due(self, device: _Device) -> float:
        setpoint = device.setpoint
        if setpoint is None:
            return math.inf
        return setpoint.written_at + self._failsafe_timeout_s(device) / 3.0

    async def _refresh_if_due(self, device: _Device) -> None:
        setpoint = device.setpoint
        if setpoint is None or self._refresh_due(device) > time.monotonic():
            return
        if device.failures:
            # Not answering: writes would only stall its gateway. The setpoint is re-sent as
            # soon as it answers again (see _configure).
            return
        if setpoint.valid_until is not None and datetime.now(UTC) >= setpoint.valid_until:
            # Expired: stop refreshing, so the charger falls back to its fail-safe current.
            log.info("modbus %s: setpoint expired, left to the fail-safe", device.asset.id)
            device.setpoint = None
            return
        await self._write_setpoint(device)

    async def _write_setpoint(self, device: _Device) -> SetpointResult:
        setpoint = device.setpoint
        controls = device.register_map.charger
        assert setpoint is not None and controls is not None
        client = self._gateway_of(device).client
        ts = datetime.now(UTC)
        setpoint.written_at = time.monotonic()
        read_back: float | None = None
        try:
            read_back = await self._write_and_read(
                client, device, controls.setpoint, setpoint.current_a
            )
            tolerance = max(controls.current_tolerance_a, 1e-6)
            if read_back is None:
                alarm: str | None = "read-back returned no value"
            elif abs(read_back - setpoint.current_a) > tolerance:
                alarm = f"read-back {read_back:g} A differs from written {setpoint.current_a:g} A"
            else:
                alarm = None
        except ModbusError as exc:
            alarm = f"write failed: {exc}"
            # Retry after a few seconds rather than a full refresh interval.
            interval = self._failsafe_timeout_s(device) / 3.0
            setpoint.written_at = time.monotonic() - interval + min(interval, 2.0)
        if alarm is not None:
            log.warning("modbus %s: setpoint alarm: %s", device.asset.id, alarm)
        limits = self._limits(device)
        result = SetpointResult(
            asset_id=device.asset.id,
            requested_w=setpoint.requested_w,
            current_a=setpoint.current_a,
            power_w=limits.power_w(setpoint.current_a),
            read_back_a=read_back,
            clamped=setpoint.clamped,
            alarm=alarm,
            ts=ts,
            valid_until=setpoint.valid_until,
            read_back_w=None if read_back is None else limits.power_w(read_back),
        )
        device.last_setpoint = result
        return result

    async def _write_and_read(
        self, client: ModbusClient, device: _Device, control: Control, value: float
    ) -> float | None:
        """Write a control's value (in its unit) and return what the device reads back."""
        register_map, unit = device.register_map, device.source.unit_id
        if control.write is not None:
            target = register_map.register(control.write)
            words = encode(value / target.scale, target.type, target.word_order, target.length)
            await client.write(
                unit,
                target.address,
                words,
                single=target.write_function == "single",
                timeout_s=device.source.timeout_s,
            )
        read = register_map.register(control.read or control.write or "")
        words = await client.read(
            unit, read.address, read.count, read.table, timeout_s=device.source.timeout_s
        )
        block = Block(read.table, read.address, read.count, (read,))
        number = scaled(read, decode_block(block, words))
        return number if isinstance(number, float) else None

    async def _configure(self, client: ModbusClient, device: _Device) -> None:
        """Set the fail-safe current and timeout on a charger that (re)connected."""
        controls = device.register_map.charger
        spec = device.asset.charger
        assert controls is not None and spec is not None
        limits = self._limits(device)
        failsafe_a = power_to_current(spec.safe_power_kw * 1000.0, limits)
        wanted: list[tuple[str, Control | None, float]] = [
            ("fail-safe current", controls.failsafe_current, failsafe_a),
            ("fail-safe timeout", controls.failsafe_timeout, device.source.failsafe_timeout_s),
        ]
        for label, control, value in wanted:
            if control is None:
                continue
            try:
                got = await self._write_and_read(client, device, control, value)
            except DeviceException as exc:
                # It answered but refused: still poll it (its readings matter), and say so.
                log.warning("modbus %s: cannot set %s: %s", device.asset.id, label, exc)
                continue
            if control.write is None:
                # Not settable over Modbus: check it is at least as safe as configured.
                if label == "fail-safe current" and got is not None and got > failsafe_a + 0.01:
                    log.warning(
                        "modbus %s: charger's own fail-safe current %g A is above the "
                        "configured safe power's %g A",
                        device.asset.id,
                        got,
                        failsafe_a,
                    )
            elif got is None or abs(got - value) > max(controls.current_tolerance_a, 0.5):
                log.warning(
                    "modbus %s: %s read back as %s, wrote %g", device.asset.id, label, got, value
                )
        device.configured = True
        if device.setpoint is not None:
            # Back after an outage (maybe rebooted): re-send the setpoint on this very pass.
            device.setpoint.written_at = -math.inf

    def _gateway_of(self, device: _Device) -> _Gateway:
        return self._gateways[(device.source.host, device.source.port)]
