"""The `ocpp:` section of the config and the `ocpp:` block of a charger asset (DESIGN 3.8).

Declared here, next to the code that uses them, so the adapter owns its settings; the service's
config only references these models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# OCPP identities: printable ASCII without ':' (basic auth) or '/' (a URL path segment).
STATION_ID_PATTERN = r"^[A-Za-z0-9_.*+|@-]{1,48}$"

OcppVersion = Literal["2.0.1", "1.6"]
SUBPROTOCOLS: dict[str, str] = {"2.0.1": "ocpp2.0.1", "1.6": "ocpp1.6"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OcppTls(_Section):
    """TLS for security profile 2 (TLS + basic auth)."""

    cert_file: Path = Field(description="Server certificate (PEM, may include the chain).")
    key_file: Path = Field(description="Private key of the certificate (PEM).")


class OcppServerSettings(_Section):
    """The central system's listener: `ws[s]://host:port/<station_id>`."""

    host: str = Field("127.0.0.1", description="Bind address of the OCPP websocket server.")
    port: int = Field(9000, ge=0, le=65535, description="TCP port of the OCPP server.")
    tls: OcppTls | None = Field(None, description="Serve wss:// (security profile 2) when set.")
    credentials_file: Path = Field(
        Path("var/ocpp-credentials.csv"),
        description="CSV `station_id,password`, mode 0600; created with random passwords for "
        "the configured stations when absent.",
    )
    heartbeat_interval_s: int = Field(
        300, ge=10, le=86400, description="Heartbeat interval given in BootNotification [s]."
    )
    stale_after_heartbeats: float = Field(
        2.0, gt=1, le=10, description="Silent this many heartbeat intervals means stale."
    )
    call_timeout_s: float = Field(
        10.0, gt=0, le=300, description="How long a station may take to answer our call [s]."
    )
    max_sends_in_flight: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Stations being sent a setpoint at once; the rest wait their turn, so a "
        "plan for thousands of stations does not time out in our own queue.",
    )
    max_frame_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024, description="Larger websocket frames are refused."
    )
    calls_per_s: float = Field(
        5.0,
        gt=0,
        le=10_000,
        description="Sustained calls a station may make per second (rate limit).",
    )
    call_burst: int = Field(
        50,
        ge=1,
        le=100_000,
        description="Calls a station may make in a burst above the sustained rate.",
    )


class OcppStation(_Section):
    """How a charger asset is reached over OCPP."""

    station_id: str = Field(
        pattern=STATION_ID_PATTERN,
        description="The station's OCPP identity (the last path segment and basic-auth user).",
    )
    evse_id: int = Field(1, ge=1, le=100, description="EVSE of the station (2.0.1).")
    connector_id: int = Field(1, ge=1, le=100, description="Connector (1.6; 2.0.1 status).")
    version: OcppVersion = Field("2.0.1", description='"2.0.1" or "1.6".')
    charging_rate_unit: Literal["A", "W"] = Field(
        "A", description="Unit of the charging profiles the station takes (A is universal)."
    )

    @model_validator(mode="after")
    def _plain_identity(self) -> Self:
        if self.station_id in (".", ".."):
            raise ValueError("station_id must not be '.' or '..'")
        return self


def station_problems(assets: list[dict[str, object]]) -> list[str]:
    """Clashes between assets' `ocpp:` blocks (plain mappings: runs on a file that failed).

    One station id may serve several chargers (EVSEs or connectors), all of one version, each
    outlet once.
    """
    errors: list[str] = []
    versions: dict[object, object] = {}
    outlets: dict[tuple[object, object], int] = {}
    for i, asset in enumerate(assets):
        block = asset.get("ocpp")
        if not isinstance(block, dict):
            continue
        station, version = block.get("station_id"), block.get("version", "2.0.1")
        outlet = block.get("evse_id", 1) if version == "2.0.1" else block.get("connector_id", 1)
        if versions.setdefault(station, version) != version:
            errors.append(
                f"assets[{i}].ocpp.version: station {station!r} is already {versions[station]}"
            )
        if (station, outlet) in outlets:
            errors.append(
                f"assets[{i}].ocpp: station {station!r} outlet {outlet} is already "
                f"assets[{outlets[station, outlet]}]"
            )
        outlets.setdefault((station, outlet), i)
    return errors
