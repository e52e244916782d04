"""The MQTT adapter's settings: the broker connection and per-device topic mappings.

Composed into the deployment configuration (`gridcoord.config.Config`) as its ``mqtt``
section and an asset's ``mqtt`` source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Section(BaseModel):
    # allow_inf_nan=False: `.inf` and `.nan` are never a delay, a size or a scale.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Tls(_Section):
    """TLS to the broker."""

    enabled: bool = Field(False, description="Connect to the broker over TLS.")
    ca_file: Path | None = Field(None, description="CA bundle; the system store when absent.")
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: Path | None = Field(None, description="Private key of the client certificate.")
    insecure: bool = Field(
        False, description="Skip hostname verification (test brokers only; never in production)."
    )


class Mqtt(_Section):
    """The broker connection, topics and ingest limits."""

    host: str | None = Field(
        None,
        description="Broker host. When absent, `gridcoord run` starts a local mosquitto.",
    )
    port: int = Field(1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(None, description="Broker user; set it from the environment.")
    password: SecretStr | None = Field(
        None,
        description="Broker password: only from GRIDCOORD_MQTT__PASSWORD or `password_file`; "
        "refused in the YAML file.",
    )
    password_file: Path | None = Field(
        None,
        description="File holding the broker password (mode 0600 or 0400), e.g. a container "
        "secret; also GRIDCOORD_MQTT__PASSWORD_FILE.",
    )
    tls: Tls = Field(default_factory=Tls, description="TLS settings.")
    topic_prefix: str = Field("gridcoord", description="First topic level of every contract topic.")
    client_id: str = Field(
        "gridcoord-ingest",
        description="MQTT client id; the persistent session is keyed by it, keep it stable.",
    )
    shared_group: str | None = Field(
        None,
        description="Subscribe via `$share/<group>/...` so several instances split telemetry.",
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive [s].")
    session_expiry_s: int = Field(
        86400,
        ge=0,
        le=4_294_967_295,  # MQTT 5's largest value, which means "never expires"
        description="How long the broker keeps our session and queued QoS 1 messages [s].",
    )
    reconnect_on_id_gap: bool = Field(
        True,
        description=(
            "Reconnect when the broker's packet ids skip (Mosquitto counts those messages as "
            "sent, so they are resent only on a reconnect); at most every 5 s, ever more rarely "
            "(up to once an hour) while reconnects bring none of the skipped ids back."
        ),
    )
    reconnect_min_s: float = Field(0.5, gt=0, le=3600, description="First reconnect delay [s].")
    reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="Longest reconnect delay [s].")
    max_payload_bytes: int = Field(
        16384,
        ge=64,
        le=1_048_576,
        description="Single-reading payloads above this size are rejected [bytes].",
    )
    max_batch_bytes: int = Field(
        262144,
        ge=64,
        le=16_777_216,
        description="Batch payloads (an array, a gateway object) above this are rejected [bytes].",
    )
    max_batch_readings: int = Field(
        1000, ge=1, le=100_000, description="Most readings one batch message may carry."
    )
    rejected_per_s: float = Field(
        10.0,
        ge=0,
        le=1_000_000,  # above any ingest rate; a test of the hostile corpus reports every one
        description="At most this many rejection notices published per second.",
    )

    @model_validator(mode="after")
    def _reconnect_order(self) -> Self:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @field_validator("topic_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "#+") or value.startswith("/"):
            raise ValueError("must be a non-empty topic without wildcards or a leading '/'")
        return value.rstrip("/")


class FieldMapping(_Section):
    """Where one contract field is in a device's own JSON, and its scale."""

    path: str = Field(description="Dotted path of the value in the device's JSON, e.g. `a.b.0`.")
    scale: float = Field(
        1.0,
        ge=-1e6,
        le=1e6,
        description="Multiplier to the contract's unit (e.g. 1000 kW→W); not 0.",
    )

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("must not be 0 (every reading would read as 0)")
        return value


class MqttSource(_Section):
    """How a device with its own topic and payload shape is read (DESIGN 3.2): data, not code."""

    topic: str = Field(description="Exact topic the device publishes to (no wildcards).")
    fields: dict[str, FieldMapping] = Field(
        max_length=64,
        description="Contract field name (e.g. `power_w`) → where it is in the payload.",
    )
    ts_path: str | None = Field(None, description="Dotted path of the device's timestamp.")

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        if not value or any(c in value for c in "#+"):
            raise ValueError("must be a concrete topic without wildcards")
        return value
