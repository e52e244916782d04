"""How one asset is reached over Modbus TCP (the `modbus:` block of an asset in the config)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.contract.asset import AssetInfo, ChargerElectrics
from adapters.modbus.maps import MapError, load_map


class ModbusSource(BaseModel):
    """A device behind a Modbus TCP server (DESIGN 3.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = Field(description="Host name or address of the Modbus TCP server or gateway.")
    port: int = Field(502, ge=1, le=65535, description="TCP port.")
    unit_id: int = Field(1, ge=0, le=255, description="Unit (device) id behind the gateway.")
    register_map: str = Field(
        description="Name of a built-in register map (e.g. `sunspec`) or a path to a YAML map."
    )
    poll_interval_s: float = Field(5.0, gt=0, le=3600, description="Time between polls [s].")
    timeout_s: float = Field(2.0, gt=0, le=60, description="Per-request timeout [s].")
    retries: int = Field(
        3, ge=1, le=100, description="Failed polls in a row before the device is unavailable."
    )
    backoff_max_s: float = Field(
        60.0, gt=0, le=3600, description="Longest wait between retries of a failing device [s]."
    )
    stale_after_s: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="No good poll for this long makes the device unavailable [s] "
        "(default: three poll intervals plus the timeout).",
    )
    failsafe_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Chargers: communication timeout configured on the charger, after which it "
        "falls back to its fail-safe current; setpoints are re-written every third of it [s].",
    )

    @field_validator("register_map")
    @classmethod
    def _known_map(cls, value: str) -> str:
        # Built-in names are checked here so check-config names the asset; a path is checked
        # when the poller loads it (relative paths depend on the working directory).
        if "/" not in value and not value.endswith((".yaml", ".yml")):
            try:
                load_map(value)
            except MapError as exc:
                raise ValueError(str(exc)) from None
        return value

    def problems_for(self, kind: str) -> list[str]:
        """Why this source cannot serve an asset of `kind` (empty when it can).

        For config checks: the map must load and be meant for the asset's kind.
        """
        try:
            register_map = load_map(self.register_map)
        except MapError as exc:
            return [str(exc)]
        kinds = [k.value for k in register_map.kinds]
        if kind not in kinds:
            return [f"register map {register_map.name!r} is for {', '.join(kinds)}, not {kind}"]
        if kind == "charger" and register_map.charger is None:
            return [f"register map {register_map.name!r} has no charger controls"]
        return []

    @property
    def effective_stale_after_s(self) -> float:
        """Age of the last good poll beyond which the device is unavailable [s]."""
        if self.stale_after_s is not None:
            return self.stale_after_s
        return 3 * self.poll_interval_s + self.timeout_s


class ModbusAsset(AssetInfo, Protocol):
    """An asset as the Modbus adapter sees it (`gridcoord.config.Asset` is one)."""

    @property
    def modbus(self) -> ModbusSource | None:
        """How it is reached; None for an asset read another way."""
        ...

    @property
    def charger(self) -> ChargerElectrics | None:
        """Electrical details, for chargers."""
        ...


def check_unique_units(assets: Sequence[ModbusAsset]) -> None:
    """Refuse two Modbus-read assets on one host, port and unit id (a device answers once).

    `gridcoord check-config` reports the same for a whole file; this guards the poller and
    the simulators when they are handed assets directly.

    Raises
    ------
    ValueError
        naming both assets.
    """
    owners: dict[tuple[str, int, int], str] = {}
    for asset in assets:
        source = asset.modbus
        if source is None:
            continue
        key = (source.host, source.port, source.unit_id)
        if key in owners:
            raise ValueError(
                f"assets {owners[key]!r} and {asset.id!r} are both unit {source.unit_id} "
                f"at {source.host}:{source.port}"
            )
        owners[key] = asset.id
