"""How one asset is reached over Modbus TCP (the `modbus:` block of an asset in the config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModbusSource(BaseModel):
    """A device behind a Modbus TCP server (DESIGN 3.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="Host name or address of the Modbus TCP server or gateway.")
    port: int = Field(502, ge=1, le=65535, description="TCP port.")
    unit_id: int = Field(1, ge=0, le=255, description="Unit (device) id behind the gateway.")
    register_map: str = Field(
        description="Name of a built-in register map (e.g. `sunspec`) or a path to a YAML map."
    )
    poll_interval_s: float = Field(5.0, gt=0, description="Time between polls [s].")
    timeout_s: float = Field(2.0, gt=0, description="Per-request timeout [s].")
