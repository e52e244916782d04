"""Register maps as data (DESIGN 3.3): the YAML schema, its checks, and loading by name or path.

A device model is one YAML file: which register holds what, in which type, word order, scale
(fixed or a scale-factor register) and unit, which reading field it feeds, and whether it may
be written. Built-in maps live in `adapters/modbus/maps/`; a deployment can point at its own file.
"""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.contract.reading import AssetKind
from adapters.modbus.registers import RegisterType, WordOrder, register_count
from adapters.safe_yaml import YamlProblem, parse, read_text

# The unit a register must be scaled to for the contract field it feeds (DESIGN 3.2).
FIELD_UNITS: dict[str, str] = {
    "power_w": "W",
    "energy_wh": "Wh",
    "session_energy_wh": "Wh",
    "energy_export_wh": "Wh",
    "current_a": "A",
    "voltage_v": "V",
    "soc_pct": "%",
    "connected": "",
}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.]{0,63}$"
# Holding registers (read with function 3) or input registers (function 4).
Table = Literal["holding", "input"]
# Modbus allows at most 125 registers in one read request.
MAX_READ_REGISTERS = 125
#: Largest register map file read [bytes] (the shipped ones are under 3 KB; a device with all
#: 65,536 addresses mapped, one register a line, fits in about 4 MB: 1 MiB is ample).
MAX_MAP_BYTES = 1024 * 1024


class MapError(ValueError):
    """A register map that cannot be used; the message names the map and the offending element."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Register(_Strict):
    """One value in a device's register space."""

    name: str = Field(pattern=_NAME, description="Name unique within the map.")
    address: int = Field(
        ge=0,
        le=65535,
        description="Protocol address, counted from 0 as on the wire (`mbpoll -r` is this + 1).",
    )
    type: RegisterType = Field(description="u16, s16, u32, s32, f32, u64, f64, sunssf or str.")
    length: int = Field(1, ge=1, le=64, description="Registers of a `str` value.")
    word_order: WordOrder = Field(WordOrder.BIG, description="Register order of 32/64-bit values.")
    table: Table = Field(
        "holding", description="Holding registers (function 3) or input registers (function 4)."
    )
    scale: float = Field(1.0, description="Multiplier from the raw value to `unit`.")
    scale_register: str | None = Field(
        None, description="Name of a `sunssf` register: value × 10^sf (read in the same request)."
    )
    unit: str = Field("", description="Unit after scaling: W, Wh, A, V, s, % or empty.")
    field: str | None = Field(None, description="Reading field fed by this register, if any.")
    values: dict[str | int, bool | float] | None = Field(
        None, description="Maps a raw code to the field's value (e.g. cable state → connected)."
    )
    default: bool | float | None = Field(None, description="Value for a code not in `values`.")
    access: Literal["r", "rw", "w"] = Field(
        "r", description="Read only, read-write, or write only (not polled)."
    )
    write_function: Literal["single", "multiple"] = Field(
        "multiple", description="Write with function 6 (one register) or 16 (several)."
    )
    description: str = Field("", description="What the vendor's documentation calls it.")

    @property
    def count(self) -> int:
        """Registers this value occupies."""
        return register_count(self.type, self.length)

    @property
    def readable(self) -> bool:
        """Whether the value is polled."""
        return self.access != "w"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.address + self.count > 65536:
            raise ValueError("runs past register 65535")
        if self.type is RegisterType.STR and self.values is None and self.field is not None:
            raise ValueError("a `str` register can feed a field only through `values`")
        if self.write_function == "single" and self.count != 1:
            raise ValueError("write_function `single` writes exactly one register")
        if self.field is not None:
            expected = FIELD_UNITS.get(self.field)
            if expected is not None and self.values is None and self.unit != expected:
                raise ValueError(
                    f"feeds {self.field} in {expected or 'no unit'}, but its unit is "
                    f"{self.unit or 'empty'} (set `unit` and `scale` to convert)"
                )
        return self


class Control(_Strict):
    """A charger setting: the register it is written to and the one it is read back from."""

    write: str | None = Field(
        None, description="Register written (access w or rw); absent when only readable."
    )
    read: str | None = Field(None, description="Register read back; `write` itself when absent.")

    @model_validator(mode="after")
    def _some_register(self) -> Self:
        if self.write is None and self.read is None:
            raise ValueError("needs a `write` or a `read` register")
        return self


class ChargerControls(_Strict):
    """What a charger map offers for control; a capability it lacks is simply absent."""

    setpoint: Control = Field(description="Charging current limit [A].")
    failsafe_current: Control | None = Field(
        None, description="Current the charger falls back to when we stop refreshing [A]."
    )
    failsafe_timeout: Control | None = Field(
        None, description="Time without a write after which the charger falls back [s]."
    )
    fixed_failsafe_timeout_s: float | None = Field(
        None, gt=0, description="Fail-safe timeout when the charger does not expose it [s]."
    )
    max_current_a: float = Field(32.0, gt=0, description="Highest current the model accepts [A].")
    min_current_a: float = Field(6.0, ge=0, description="Lowest current it holds (IEC 61851) [A].")
    current_tolerance_a: float = Field(
        0.05, ge=0, description="Read-back differing by more than this is an alarm [A]."
    )


class SunSpecSpec(_Strict):
    """A SunSpec device: register addresses come from discovery and the published models."""

    bases: list[int] = Field(
        [40000, 0, 50000], description="Where to look for the `SunS` marker, in order."
    )
    models: dict[int, dict[str, str]] = Field(
        description="Model id → SunSpec point name → reading field, e.g. {103: {W: power_w}}."
    )


class RegisterMap(_Strict):
    """A device model: registers, how to read them, and (for chargers) how to control it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Map name.")
    description: str = Field(description="What device this describes.")
    source: str = Field(description="Documentation it was written from (title and version).")
    kinds: list[AssetKind] = Field(description="Asset kinds that may use this map.")
    max_read_registers: Annotated[int, Field(ge=1, le=MAX_READ_REGISTERS)] = Field(
        MAX_READ_REGISTERS, description="Most registers the device returns in one request."
    )
    max_gap: int = Field(
        0, ge=0, le=64, description="Unmapped registers a batched read may span (0: contiguous)."
    )
    registers: list[Register] = Field(default_factory=list, description="The register table.")
    charger: ChargerControls | None = Field(None, description="Charger control registers.")
    sunspec: SunSpecSpec | None = Field(None, description="SunSpec discovery instead of a table.")

    @field_validator("registers")
    @classmethod
    def _unique_names(cls, value: list[Register]) -> list[Register]:
        seen: dict[str, int] = {}
        for i, register in enumerate(value):
            if register.name in seen:
                raise ValueError(
                    f"[{i}] name {register.name!r} already used by [{seen[register.name]}]"
                )
            seen[register.name] = i
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        by_name = {r.name: r for r in self.registers}
        for i, register in enumerate(self.registers):
            ref = register.scale_register
            if ref is not None and (
                ref not in by_name or by_name[ref].type is not RegisterType.SUNSSF
            ):
                raise ValueError(f"registers[{i}].scale_register: no sunssf register {ref!r}")
        _check_overlaps(self.registers)
        if self.charger is not None:
            if AssetKind.CHARGER not in self.kinds:
                raise ValueError("charger: only for maps of kind charger")
            for label, control, unit in (
                ("setpoint", self.charger.setpoint, "A"),
                ("failsafe_current", self.charger.failsafe_current, "A"),
                ("failsafe_timeout", self.charger.failsafe_timeout, "s"),
            ):
                if control is not None:
                    _check_control(label, control, by_name, unit)
            if self.charger.min_current_a > self.charger.max_current_a:
                raise ValueError("charger: min_current_a above max_current_a")
        if self.sunspec is None and not any(r.field for r in self.registers):
            raise ValueError("registers: no register feeds a reading field")
        return self

    def register(self, name: str) -> Register:
        """The register with this name (KeyError if absent)."""
        for register in self.registers:
            if register.name == name:
                return register
        raise KeyError(name)


def _check_control(label: str, control: Control, by_name: dict[str, Register], unit: str) -> None:
    checked = []
    if control.write is not None:
        written = by_name.get(control.write)
        if written is None or written.access == "r":
            raise ValueError(f"charger.{label}.write: no writable register {control.write!r}")
        checked.append(written)
    elif label == "setpoint":
        raise ValueError("charger.setpoint.write: the setpoint must be writable")
    read_name = control.read or control.write
    read = by_name.get(read_name or "")
    if read is None or not read.readable:
        raise ValueError(f"charger.{label}.read: no readable register {read_name!r}")
    checked.append(read)
    for register in checked:
        if register.unit != unit:
            raise ValueError(f"charger.{label}: register {register.name!r} must be in {unit}")


def _check_overlaps(registers: list[Register]) -> None:
    for table in ("holding", "input"):
        spans = sorted(
            (r.address, r.address + r.count, r.name) for r in registers if r.table == table
        )
        for (_, end, name), (start, _, other) in itertools.pairwise(spans):
            if start < end:
                raise ValueError(f"registers: {other!r} overlaps {name!r}")


BUILTIN_DIR = "maps"


def builtin_map_names() -> list[str]:
    """Names of the register maps shipped with gridcoord."""
    folder = resources.files("adapters.modbus").joinpath(BUILTIN_DIR)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


_MAP_CACHE: dict[str, RegisterMap] = {}


def load_map(reference: str, *, base_dir: Path | None = None) -> RegisterMap:
    """Load a register map by built-in name (e.g. ``keba-p30``) or by path to a YAML file.

    Parameters
    ----------
    reference : built-in name, or a path ending in ``.yaml``/``.yml``
    base_dir : directory a relative path is resolved against (the config file's)

    Raises
    ------
    MapError : naming the map and each offending element.
    """
    if reference in _MAP_CACHE:
        return _MAP_CACHE[reference]
    if re.search(r"\.ya?ml$", reference) or "/" in reference:
        path = Path(reference)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            text = read_text(path, limit=MAX_MAP_BYTES)
        except YamlProblem as exc:
            raise MapError(f"register map {str(path)!r}: {exc}") from None
        label = str(path)
    else:
        resource = resources.files("adapters.modbus").joinpath(BUILTIN_DIR, f"{reference}.yaml")
        if not resource.is_file():
            known = ", ".join(builtin_map_names())
            raise MapError(f"register map {reference!r}: no such built-in map (known: {known})")
        text = resource.read_text(encoding="utf-8")
        label = reference
    register_map = parse_map(text, label=label)
    _MAP_CACHE[reference] = register_map
    return register_map


def parse_map(text: str, *, label: str) -> RegisterMap:
    """Parse and check the YAML text of one register map (MapError on any problem).

    The text is read within the bounds of `adapters.safe_yaml` (nesting depth, values after
    alias expansion, keys per mapping, plain scalar tags only) and at most `MAX_MAP_BYTES`
    long, so a hostile map is refused with the line it went wrong on.
    """
    if len(text) > MAX_MAP_BYTES:
        raise MapError(
            f"register map {label!r}: {len(text)} characters; the limit is {MAX_MAP_BYTES}"
        )
    try:
        data: Any = parse(text, number_keys=True)
    except YamlProblem as exc:
        raise MapError(f"register map {label!r}: {exc}") from None
    if not isinstance(data, dict):
        raise MapError(f"register map {label!r}: the top level must be a mapping")
    try:
        return RegisterMap(**data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _location(data, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise MapError(f"register map {label!r}: " + "; ".join(problems)) from None


def _location(data: Any, loc: tuple[int | str, ...]) -> str:
    """`registers[3] (power).unit` style path, naming the register where there is one."""
    parts: list[str] = []
    cursor: Any = data
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            if isinstance(cursor, list) and 0 <= item < len(cursor):
                cursor = cursor[item]
                if isinstance(cursor, dict) and isinstance(cursor.get("name"), str):
                    parts.append(f" ({cursor['name']})")
            else:
                cursor = None
        else:
            parts.append(f".{item}" if parts else str(item))
            cursor = cursor.get(item) if isinstance(cursor, dict) else None
    return "".join(parts)
