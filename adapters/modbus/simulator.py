"""Simulated Modbus devices: SunSpec inverter and meter, and chargers of any shipped charger map.

They are real Modbus TCP servers (through `transport.UnitServer`), built from the same register
maps and SunSpec model definitions the poller reads, so a scale-factor or word-order mistake
shows up as a wrong value, not a passing mock. Chargers obey current setpoints and fall back to
their fail-safe current when no setpoint arrives within their communication timeout.
Faults can be injected: an exception code, or a device that stops answering.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from adapters.modbus.maps import Register, RegisterMap
from adapters.modbus.registers import RegisterType, decode, encode, register_count
from adapters.modbus.sunspec import END_MODEL_ID, MARKER, model_definition, model_registers
from adapters.modbus.transport import Registers, Request, ServedBlock, UnitServer

Clock = Callable[[], float]


class SimulatedUnit:
    """One unit id behind a simulated server: a register image built from `Register`s.

    Physical values (in each register's unit) are kept by register name and encoded into the
    served image before every request, so tests and the owner can change them at any time.
    """

    def __init__(
        self, unit_id: int, registers: Sequence[Register], *, fixed: Iterable[ServedBlock] = ()
    ) -> None:
        self.unit_id = unit_id
        self.registers = {r.name: r for r in registers}
        self.values: dict[str, float | int | str] = {}
        self.raw: dict[str, int | str] = {}  # raw codes (enum registers, scale factors)
        self._fixed = list(fixed)
        self.gap_fill = 0  # unmapped registers between two mapped ones that still answer
        self.fail_with: int | None = None  # answer every request with this exception code
        self._answering = asyncio.Event()
        self._answering.set()
        self.requests = 0

    # --- fault injection --------------------------------------------------------------------

    def stall(self) -> None:
        """Stop answering (requests hang until `resume`): the poller sees timeouts."""
        self._answering.clear()

    def resume(self) -> None:
        """Answer again."""
        self._answering.set()

    # --- image ------------------------------------------------------------------------------

    def served_blocks(self) -> list[ServedBlock]:
        """Blocks to serve: one per register, plus zero-filled gaps of at most `gap_fill`."""
        blocks = list(self._fixed)
        spans = sorted(self.registers.values(), key=lambda r: r.address)
        for register in spans:
            writable = register.access != "r"
            blocks.append(ServedBlock(register.address, self._words(register), writable))
        for first, second in itertools.pairwise(spans):
            end = first.address + first.count
            if 0 < second.address - end <= self.gap_fill:
                blocks.append(ServedBlock(end, [0] * (second.address - end)))
        return blocks

    def _words(self, register: Register) -> list[int]:
        count = register_count(register.type, register.length)
        if register.name in self.raw:
            return encode(self.raw[register.name], register.type, register.word_order, count)
        value = self.values.get(register.name)
        if value is None:
            return [0] * count
        if isinstance(value, str):
            return encode(value, register.type, register.word_order, count)
        factor = register.scale
        if register.scale_register is not None:
            sf = self.raw.get(register.scale_register, 0)
            factor *= 10.0 ** int(sf)
        return encode(value / factor, register.type, register.word_order, count)

    def refresh(self) -> None:
        """Update live values before a request (override for dynamic devices)."""

    def on_write(self, register: Register, value: float) -> int | None:
        """React to a write of a physical value; return an exception code to refuse it."""
        self.values[register.name] = value
        return None

    async def handle(self, regs: Registers, request: Request) -> int | None:
        """Serve one request (called by the server before it answers)."""
        await self._answering.wait()
        self.requests += 1
        if self.fail_with is not None:
            return self.fail_with
        self.refresh()
        for register in self.registers.values():
            if register.name in self.values or register.name in self.raw:
                regs.set(register.address, self._words(register))
        if request.values is not None:
            for register in self.registers.values():
                if register.address == request.address and register.access != "r":
                    words = request.values[: register.count]
                    raw = decode(words, register.type, register.word_order)
                    if isinstance(raw, str):
                        return 3
                    code = self.on_write(register, float(raw) * register.scale)
                    if code:
                        return code
        return None


class ChargerSimulator(SimulatedUnit):
    """An EV charger serving a charger register map.

    A vehicle (when `connected`) draws the whole current the charger allows: the setpoint
    while it is refreshed within the communication timeout, the fail-safe current after.

    Parameters
    ----------
    register_map : a map with `charger` controls
    unit_id : unit id it answers
    phases, voltage_v : electrical connection [-], [V]
    hardware_max_a : the charger's own current limit [A]
    failsafe_current_a, failsafe_timeout_s : fail-safe settings before anyone writes them [A], [s]
    clock : monotonic time source [s]
    """

    def __init__(
        self,
        register_map: RegisterMap,
        unit_id: int,
        *,
        phases: int = 3,
        voltage_v: float = 230.0,
        hardware_max_a: float = 32.0,
        failsafe_current_a: float = 6.0,
        failsafe_timeout_s: float = 60.0,
        connected: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(unit_id, register_map.registers)
        self.gap_fill = register_map.max_gap
        controls = register_map.charger
        if controls is None:
            raise ValueError(f"register map {register_map.name!r} has no charger controls")
        self.register_map, self.controls = register_map, controls
        self.phases, self.voltage_v, self.hardware_max_a = phases, voltage_v, hardware_max_a
        self.failsafe_current_a = failsafe_current_a
        self.failsafe_timeout_s = controls.fixed_failsafe_timeout_s or failsafe_timeout_s
        self.connected = connected
        self.setpoint_a: float | None = None
        self.last_setpoint_write = -float("inf")
        self.energy_wh = 1_000_000.0
        self.session_energy_wh = 0.0
        self._clock = clock
        self._last_tick = clock()
        self.writes: list[tuple[str, float]] = []
        self.refresh()

    def applied_current_a(self) -> float:
        """Current limit in force: setpoint, or fail-safe after the timeout [A]."""
        fresh = self._clock() - self.last_setpoint_write <= self.failsafe_timeout_s
        limit = self.setpoint_a if fresh and self.setpoint_a is not None else None
        if limit is None:
            limit = self.failsafe_current_a
        return min(limit, self.hardware_max_a)

    def power_w(self) -> float:
        """Power the vehicle draws now [W]."""
        if not self.connected:
            return 0.0
        return self.applied_current_a() * self.phases * self.voltage_v

    def refresh(self) -> None:
        """Integrate the energy drawn since the last refresh into the energy register."""
        now = self._clock()
        power = self.power_w()
        added = power * max(0.0, now - self._last_tick) / 3600.0
        self._last_tick = now
        self.energy_wh += added
        self.session_energy_wh = self.session_energy_wh + added if self.connected else 0.0
        current = self.applied_current_a() if self.connected else 0.0
        applied = self.applied_current_a()
        remaining = max(0.0, self.failsafe_timeout_s - (now - self.last_setpoint_write))
        setpoint_read = self.controls.setpoint.read
        for register in self.registers.values():
            name, field = register.name, register.field
            if field == "connected":
                self.raw[name] = self._code(register, self.connected)
            elif field == "power_w":
                self.values[name] = power
            elif field == "energy_wh":
                self.values[name] = self.energy_wh
            elif field == "session_energy_wh":
                self.values[name] = self.session_energy_wh
            elif field == "current_a":
                self.values[name] = current
            elif field == "voltage_v":
                self.values[name] = self.voltage_v
            elif setpoint_read is not None and name == setpoint_read:
                self.values[name] = applied  # a separate read-back shows the limit in force
            elif name in _APPLIED_NAMES:
                self.values[name] = applied
            elif name in _HARDWARE_NAMES and name != self.controls.setpoint.write:
                self.values[name] = self.hardware_max_a
            elif name == "max_current_valid_time":
                self.values[name] = int(remaining)
            elif name in ("availability", "setpoint_accounted_for"):
                self.values[name] = 1
        for control, value in (
            (self.controls.failsafe_current, self.failsafe_current_a),
            (self.controls.failsafe_timeout, self.failsafe_timeout_s),
        ):
            if control is not None:
                for control_name in (control.read, control.write):
                    if control_name is not None:
                        self.values[control_name] = value
        setpoint = self.controls.setpoint
        if (
            setpoint.write
            and self.setpoint_a is not None
            and setpoint.read in (None, setpoint.write)
        ):
            self.values[setpoint.write] = self.setpoint_a

    @staticmethod
    def _code(register: Register, connected: bool) -> int | str:
        codes = register.values or {}
        for code, meaning in codes.items():
            if bool(meaning) is connected:
                return code
        if register.type is RegisterType.STR:
            return "A"
        return next(c for c in range(256) if c not in codes)

    def on_write(self, register: Register, value: float) -> int | None:
        """Apply a client's write; a Modbus exception code for a refused value, else None."""
        controls = self.controls
        self.writes.append((register.name, value))
        if register.name == controls.setpoint.write:
            if value < 0 or value > 80:
                return 3  # illegal data value, as a real charger refuses nonsense
            self.setpoint_a = value
            self.last_setpoint_write = self._clock()
        elif controls.failsafe_current and register.name == controls.failsafe_current.write:
            self.failsafe_current_a = value
        elif controls.failsafe_timeout and register.name == controls.failsafe_timeout.write:
            self.failsafe_timeout_s = value
        self.values[register.name] = value
        return None


_APPLIED_NAMES = frozenset({"applied_current", "applied_max_current", "max_charging_current"})
_HARDWARE_NAMES = frozenset({"max_current", "max_supported_current"})


@dataclass
class SunSpecModel:
    """A model in a simulated SunSpec chain."""

    model_id: int
    address: int
    length: int


class SunSpecSimulator(SimulatedUnit):
    """A SunSpec device: the `SunS` marker at `base`, model 1, then an inverter or meter model.

    Parameters
    ----------
    unit_id : unit id it answers
    model_id : 101, 102, 103 (inverter) or 201–204 (meter)
    base : where the marker is (40000, 0 or 50000)
    """

    def __init__(self, unit_id: int, model_id: int, *, base: int = 40000) -> None:
        self.base = base
        self.models: list[SunSpecModel] = []
        registers: list[Register] = []
        address = base + 2
        for mid in (1, model_id):
            length = sum(int(p["size"]) for p in model_definition(mid)["points"]) - 2
            self.models.append(SunSpecModel(mid, address, length))
            registers += model_registers(mid, address)
            address += 2 + length
        marker = ServedBlock(base, list(MARKER))
        end = ServedBlock(address, [END_MODEL_ID, 0])
        super().__init__(unit_id, registers, fixed=[marker, end])
        self.gap_fill = 8  # `pad` points are not in the register list but must answer
        self.model_id = model_id
        for model in self.models:
            self.raw[f"{model.model_id}.ID"] = model.model_id
            self.raw[f"{model.model_id}.L"] = model.length
        self.raw["1.Mn"] = "gridcoord"
        self.raw["1.Md"] = "simulated inverter" if model_id < 200 else "simulated meter"
        self.raw["1.SN"] = f"sim-{unit_id:04d}"
        # Every other point "not implemented" until set, as SunSpec prescribes.
        for register in registers:
            if register.name not in self.raw and register.type is not RegisterType.STR:
                self.raw[register.name] = _NOT_IMPLEMENTED.get(register.type, 0)
        self.power: Callable[[], float] | None = None

    def set_scale_factor(self, name: str, factor: int) -> None:
        """Change a scale-factor point (e.g. ``W_SF``); the physical values stay the same."""
        self.raw[f"{self.model_id}.{name}"] = factor

    def set_point(self, name: str, value: float) -> None:
        """Set a point of the inverter/meter model to a physical value (in its unit)."""
        key = f"{self.model_id}.{name}"
        if key not in self.registers:
            raise KeyError(f"model {self.model_id} has no point {name!r}")
        self.raw.pop(key, None)
        self.values[key] = value

    def refresh(self) -> None:
        """Set the ``W`` point from the power curve, if one is given."""
        if self.power is not None:
            self.set_point("W", self.power())


_NOT_IMPLEMENTED = {
    RegisterType.U16: 0xFFFF,
    RegisterType.S16: -0x8000,
    RegisterType.SUNSSF: -0x8000,
    RegisterType.U32: 0,  # acc32: 0 means "not accumulated"
    RegisterType.S32: -0x80000000,
}


class SimulatedServer:
    """One simulated Modbus TCP server (a device, or a gateway with several units)."""

    def __init__(self, host: str, port: int, units: Sequence[SimulatedUnit]) -> None:
        self.host, self.port, self.units = host, port, list(units)
        self._server: UnitServer | None = None

    async def start(self) -> None:
        """Listen on host:port."""
        server = UnitServer(self.host, self.port)
        for unit in self.units:
            server.add_unit(unit.unit_id, unit.served_blocks(), unit.handle)
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop every connection (a device that disappears)."""
        for unit in self.units:
            unit.resume()  # let stalled requests finish so the server can close
        if self._server is not None:
            await self._server.stop()
            self._server = None
