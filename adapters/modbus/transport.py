"""The only module that touches pymodbus: a Modbus TCP client and a register server.

pymodbus renamed arguments within 3.x (``slave=`` → ``device_id=``) and is replacing its
datastore with ``SimDevice``/``SimData``; keeping it behind this module means one place to fix
when it moves again. Everything else in the adapter speaks in plain addresses and words, and in
the exceptions below, each of which carries the rejection reason it is counted under.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.contract.validation import Reason
from adapters.modbus.maps import Table

# pymodbus logs every timeout and refused connection at ERROR level, on every poll; the poller
# reports "unavailable" and "recovered" once each instead (STYLE: devices and protocols).
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusError(Exception):
    """A request that did not succeed; `reason` is the code it is counted under."""

    reason = Reason.DEVICE_ERROR


class DeviceException(ModbusError):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown")
        super().__init__(f"Modbus exception {code} ({name})")
        self.code = code


class DeviceTimeout(ModbusError):
    """No answer within the timeout."""

    reason = Reason.TIMEOUT


class ConnectionFailed(ModbusError):
    """The TCP connection could not be opened or was lost."""

    reason = Reason.TIMEOUT


class ModbusClient:
    """One TCP connection to a Modbus server or gateway; requests on it are serialised.

    Parameters
    ----------
    host : server host name or address
    port : TCP port
    timeout_s : longest time to wait for a connection or an answer [s]; a request may ask for
        a shorter one (each device behind a gateway has its own)
    """

    def __init__(self, host: str, port: int, *, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether the TCP connection is open."""
        return self._client is not None and bool(self._client.connected)

    async def _ensure(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        # retries=0 and no automatic reconnect: the poller owns retries and backoff.
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0
        )
        try:
            ok = await asyncio.wait_for(client.connect(), self.timeout_s + 0.5)
        except (TimeoutError, OSError, ModbusException):
            ok = False
        if not ok:
            client.close()
            raise ConnectionFailed(f"cannot connect to {self.host}:{self.port}")
        self._client = client
        return client

    def close(self) -> None:
        """Close the connection (the next request reopens it)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(
        self,
        unit_id: int,
        address: int,
        count: int,
        table: Table = "holding",
        *,
        timeout_s: float | None = None,
    ) -> list[int]:
        """Read `count` registers from `address` (protocol address, from 0) of one unit."""
        async with self._lock:
            client = await self._ensure()
            call = (
                client.read_holding_registers if table == "holding" else client.read_input_registers
            )
            response = await self._run(call(address, count=count, device_id=unit_id), timeout_s)
            registers = [int(w) for w in getattr(response, "registers", [])]
        if len(registers) != count:
            raise ModbusError(f"asked for {count} registers, got {len(registers)}")
        return registers

    async def write(
        self,
        unit_id: int,
        address: int,
        values: Sequence[int],
        *,
        single: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Write registers: function 6 when `single` (exactly one register), else 16."""
        async with self._lock:
            client = await self._ensure()
            if single:
                if len(values) != 1:
                    raise ValueError("function 6 writes exactly one register")
                request = client.write_register(address, values[0], device_id=unit_id)
            else:
                request = client.write_registers(address, list(values), device_id=unit_id)
            await self._run(request, timeout_s)

    async def _run(self, request: Awaitable[object], timeout_s: float | None) -> object:
        timeout = min(timeout_s or self.timeout_s, self.timeout_s)
        try:
            # pymodbus has its own timeout (the client's); ours may be shorter per device.
            response = await asyncio.wait_for(request, timeout if timeout_s else timeout + 0.5)
        except (TimeoutError, ModbusIOException):
            # Close: a late answer must not be taken for the next request's.
            self.close()
            raise DeviceTimeout(f"no answer within {timeout:g} s") from None
        except (ConnectionException, OSError) as exc:
            self.close()
            raise ConnectionFailed(f"connection to {self.host}:{self.port} lost") from exc
        except ModbusException as exc:
            self.close()
            raise ModbusError(f"protocol error: {exc}") from None
        is_error = getattr(response, "isError", None)
        if is_error is not None and is_error():
            raise DeviceException(int(getattr(response, "exception_code", 0) or 0))
        return response


# --- serving registers (simulated devices) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a simulated unit sees it (protocol addresses, from 0)."""

    function_code: int
    address: int
    count: int
    values: list[int] | None  # None for reads


class Registers:
    """The live register image of one served unit (shared with the server, edited in place)."""

    def __init__(self, start: int, words: list[int]) -> None:
        self._start, self._words = start, words

    def get(self, address: int, count: int = 1) -> list[int]:
        """Current words from `address`."""
        offset = address - self._start
        return list(self._words[offset : offset + count])

    def set(self, address: int, words: Sequence[int]) -> None:
        """Overwrite words from `address` (the image's extent never changes)."""
        offset = address - self._start
        if offset < 0 or offset + len(words) > len(self._words):
            raise IndexError(f"address {address} outside the served registers")
        self._words[offset : offset + len(words)] = list(words)


Handler = Callable[[Registers, Request], Awaitable[int | None]]


@dataclass(frozen=True, slots=True)
class ServedBlock:
    """Registers a unit serves from `address`; writes to a read-only block are refused."""

    address: int
    words: list[int]
    writable: bool = False


class UnitServer:
    """A Modbus TCP server with one register image per unit id (pymodbus ``SimDevice``).

    Registers outside the served blocks answer "illegal data address", as real devices do.
    The handler runs before each request is served: it may update the image (live values),
    react to the values of a write, return an exception code, or stall (a hung device).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._devices: list[SimDevice] = []
        self._server: ModbusTcpServer | None = None

    def add_unit(self, unit_id: int, blocks: Sequence[ServedBlock], handler: Handler) -> None:
        """Serve these blocks under `unit_id` (before `start`)."""
        simdata = [
            SimData(
                address=b.address,
                count=1,
                values=list(b.words),
                datatype=DataType.REGISTERS,
                readonly=not b.writable,
            )
            for b in sorted(blocks, key=lambda b: b.address)
        ]
        view: list[Registers] = []

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if not view:
                view.append(Registers(start_address, current))
            words = [int(v) for v in values] if values else None
            code = await handler(view[0], Request(function_code, address, count, words))
            return ExcCodes(code) if code else None

        self._devices.append(SimDevice(id=unit_id, simdata=simdata, action=action))

    async def start(self) -> None:
        """Listen (returns once the port accepts connections)."""
        if not self._devices:
            raise ValueError("no units to serve")
        self._server = ModbusTcpServer(self._devices, address=(self.host, self.port))
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
