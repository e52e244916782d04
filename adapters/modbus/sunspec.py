"""SunSpec devices: discovery from the `SunS` marker, the model chain, and model layouts.

The layouts are not retyped: they come from SunSpec's published model definitions, the JSON
files pysunspec2 ships. A model is read in one request (at most 125 registers), so a value and
its scale-factor register always come from the same instant.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from adapters.modbus.layout import Block
from adapters.modbus.maps import MAX_READ_REGISTERS, Register, SunSpecSpec
from adapters.modbus.registers import RegisterType

# "SunS" as two registers; the chain ends with a model id of 0xFFFF.
MARKER = (0x5375, 0x6E53)
END_MODEL_ID = 0xFFFF
# A chain longer than this is a device bug (or not SunSpec at all), not something to follow.
MAX_MODELS = 64

_TYPES: dict[str, RegisterType] = {
    "uint16": RegisterType.U16,
    "enum16": RegisterType.U16,
    "bitfield16": RegisterType.U16,
    "count": RegisterType.U16,
    "int16": RegisterType.S16,
    "sunssf": RegisterType.SUNSSF,
    "uint32": RegisterType.U32,
    "acc32": RegisterType.U32,
    "enum32": RegisterType.U32,
    "bitfield32": RegisterType.U32,
    "ipaddr": RegisterType.U32,
    "int32": RegisterType.S32,
    "float32": RegisterType.F32,
    "uint64": RegisterType.U64,
    "acc64": RegisterType.U64,
    "float64": RegisterType.F64,
}

ReadFn = Callable[[int, int], Awaitable[list[int]]]


class NotSunSpec(Exception):
    """No `SunS` marker at any base address, or a broken model chain."""


@dataclass(frozen=True, slots=True)
class ModelInstance:
    """One model in a device's chain: its id, the address of its ID register, its length L."""

    model_id: int
    address: int
    length: int


@cache
def model_definition(model_id: int) -> dict[str, Any]:
    """SunSpec's definition of one model (the top group of pysunspec2's model JSON)."""
    folder = resources.files("sunspec2").joinpath("models", "json")
    resource = folder.joinpath(f"model_{model_id}.json")
    if not resource.is_file():
        raise KeyError(f"SunSpec model {model_id} is not defined")
    group: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))["group"]
    return group


def model_registers(
    model_id: int, address: int, fields: dict[str, str] | None = None
) -> list[Register]:
    """Registers of one model instance whose ID register is at `address`.

    Parameters
    ----------
    model_id : SunSpec model id
    address : protocol address of the model's ID register
    fields : SunSpec point name → reading field, for the points that feed a reading

    Names are ``<model>.<point>`` so that two models never collide. Repeating groups (not used
    by models 1, 101–103, 201–204) are not expanded.
    """
    fields = fields or {}
    group = model_definition(model_id)
    registers: list[Register] = []
    offset = address
    for point in group["points"]:
        size = int(point["size"])
        kind = point["type"]
        name = f"{model_id}.{point['name']}"
        sf = point.get("sf")
        scale, scale_register = 1.0, None
        if isinstance(sf, int) or (isinstance(sf, str) and sf.lstrip("-").isdigit()):
            scale = 10.0 ** int(sf)
        elif isinstance(sf, str):
            scale_register = f"{model_id}.{sf}"
        if kind == "string":
            registers.append(
                Register(name=name, address=offset, type=RegisterType.STR, length=size)
            )
        elif kind in _TYPES:
            registers.append(
                Register(
                    name=name,
                    address=offset,
                    type=_TYPES[kind],
                    scale=scale,
                    scale_register=scale_register,
                    unit=_unit(point.get("units")),
                    field=fields.get(point["name"]),
                )
            )
        offset += size
    return registers


def _unit(units: object) -> str:
    return {"Pct": "%"}.get(str(units), str(units)) if units else ""


async def discover(read: ReadFn, bases: Sequence[int]) -> tuple[int, list[ModelInstance]]:
    """Find the `SunS` marker at the first base that has it and walk the model chain.

    Parameters
    ----------
    read : reads `count` holding registers from an address; raises for an exception response
    bases : addresses to try, in order (SunSpec's 40000, 0, 50000)

    Returns
    -------
    The base address and the models in chain order.

    Raises
    ------
    NotSunSpec : no marker, or a chain that runs off the register space.
    Timeouts and connection errors of `read` propagate: an absent device is not "not SunSpec".
    """
    from adapters.modbus.transport import DeviceException

    for base in bases:
        try:
            words = await read(base, 2)
        except DeviceException:
            continue  # an illegal-address answer: try the next base
        if tuple(words) == MARKER:
            break
    else:
        raise NotSunSpec(f"no SunS marker at {', '.join(str(b) for b in bases)}")
    models: list[ModelInstance] = []
    address = base + 2
    for _ in range(MAX_MODELS):
        if address + 2 > 65536:
            raise NotSunSpec("model chain runs past register 65535")
        try:
            model_id, length = await read(address, 2)
        except DeviceException:
            # Some devices answer the end marker's address with an exception instead of 0xFFFF.
            break
        if model_id == END_MODEL_ID or length == 0:
            break
        models.append(ModelInstance(model_id, address, length))
        address += 2 + length
    else:
        raise NotSunSpec(f"more than {MAX_MODELS} models in the chain")
    return base, models


def sunspec_blocks(spec: SunSpecSpec, models: Sequence[ModelInstance]) -> list[Block]:
    """One read request per model the map uses, covering the whole model body."""
    blocks: list[Block] = []
    for model in models:
        fields = spec.models.get(model.model_id)
        if fields is None:
            continue
        if model.length > MAX_READ_REGISTERS:
            raise NotSunSpec(f"model {model.model_id} is longer than one request")
        registers = [
            r
            for r in model_registers(model.model_id, model.address, fields)
            if r.address >= model.address + 2
            and r.address + r.count <= model.address + 2 + model.length
        ]
        blocks.append(Block("holding", model.address + 2, model.length, tuple(registers)))
    if not blocks:
        found = ", ".join(str(m.model_id) for m in models) or "none"
        wanted = ", ".join(str(m) for m in spec.models)
        raise NotSunSpec(f"no supported model (found {found}; supported {wanted})")
    return blocks
