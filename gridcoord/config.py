"""The deployment configuration (DESIGN 3.6): one YAML file, overridable from the environment.

Settings are declared once, here, with pydantic; every field says what it is for. Environment
variables ``GRIDCOORD_<SECTION>__<FIELD>`` override the file, so secrets never need to be in it.

The sections an adapter reads (``mqtt``, an asset's ``mqtt`` or ``modbus`` source) are declared
in that adapter's package and composed here; their names are re-exported as part of the
configuration's API.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapters.contract.asset import ASSET_ID_PATTERN as ASSET_ID_PATTERN
from adapters.contract.asset import ASSET_ID_RE
from adapters.contract.reading import AssetKind
from adapters.contract.reading import ChargerType as ChargerType
from adapters.modbus.source import ModbusSource as ModbusSource
from adapters.mqtt.settings import FieldMapping as FieldMapping
from adapters.mqtt.settings import Mqtt as Mqtt
from adapters.mqtt.settings import MqttSource as MqttSource
from adapters.mqtt.settings import Tls as Tls
from gridcoord.sessions import SessionDefaults


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Section):
    """Where the grid is: location for the solar model, time zone for display."""

    name: str = Field("gridcoord", description="Display name of the deployment (not personal).")
    latitude: float = Field(52.42, ge=-90, le=90, description="Site latitude [degrees north].")
    longitude: float = Field(10.79, ge=-180, le=180, description="Site longitude [degrees east].")
    timezone: str = Field(
        "Europe/Berlin", description="IANA time zone for display and local-time edges only."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class StorageKind(StrEnum):
    """Which store readings, plans and setpoints go to."""

    EMBEDDED = "embedded"
    INFLUXDB = "influxdb"


class Storage(_Section):
    """Where data goes, and how it is batched and spooled on the way."""

    kind: StorageKind = Field(
        StorageKind.EMBEDDED, description="`embedded` (SQLite file) or `influxdb`."
    )
    path: Path = Field(
        Path("var/gridcoord.sqlite3"), description="Embedded store file (kind: embedded)."
    )
    spool_dir: Path = Field(
        Path("var/spool"), description="Where accepted readings wait while the store is away."
    )
    spool_max_bytes: int = Field(
        1_073_741_824, ge=1_048_576, description="Upper bound of the spool on disk [bytes]."
    )
    batch_size: int = Field(5000, ge=1, description="Points per write to the store.")
    flush_interval_s: float = Field(
        1.0, gt=0, description="Longest time a point waits in memory before a write [s]."
    )


class InfluxApi(StrEnum):
    """Which InfluxDB write API to speak."""

    V1 = "v1"
    V2 = "v2"


class InfluxDB(_Section):
    """The InfluxDB (or API-compatible) server, for `storage.kind: influxdb`."""

    url: str = Field("http://127.0.0.1:8086", description="Base URL of the InfluxDB server.")
    api: InfluxApi = Field(
        InfluxApi.V2, description="`v2` (InfluxDB 2.x/3.x, influxdb-client) or `v1` (`/write`)."
    )
    token: SecretStr | None = Field(None, description="v2 API token; from the environment.")
    org: str = Field("gridcoord", description="v2 organisation.")
    bucket: str = Field("gridcoord", description="v2 bucket.")
    database: str = Field("gridcoord", description="v1 database (also the InfluxQL database).")
    username: str | None = Field(None, description="v1 user; from the environment.")
    password: SecretStr | None = Field(None, description="v1 password; from the environment.")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per request [s].")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://host:8086")
        if parts.username or parts.password:
            # The URL is logged and shown in errors; credentials belong in the environment.
            raise ValueError(
                "must not contain credentials; set GRIDCOORD_INFLUXDB__USERNAME/__PASSWORD "
                "or GRIDCOORD_INFLUXDB__TOKEN"
            )
        return value.rstrip("/")


class Zone(_Section):
    """One node of the grid tree (a transformer or feeder) with its rating."""

    id: str = Field(description="Stable zone id (a transformer or feeder).")
    parent: str | None = Field(None, description="Zone this one hangs below, if any.")
    capacity_kw: float = Field(ge=0, description="Rating of the transformer or feeder [kW].")
    meter: str | None = Field(None, description="Asset id of the meter measuring this zone.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)


class ChargerSpec(_Section):
    """How a charger is connected and what it must always be allowed."""

    type: ChargerType = Field(ChargerType.PUBLIC, description="Sets session defaults.")
    phases: Literal[1, 3] = Field(3, description="Connected phases.")
    voltage_v: float = Field(230.0, gt=0, description="Phase voltage [V].")
    min_current_a: float = Field(6.0, ge=0, description="Lowest current the charger can hold [A].")
    safe_power_kw: float = Field(
        0.0, ge=0, description="Power for a stale charger or expired setpoint [kW]."
    )
    guaranteed_kw: float = Field(
        0.0, ge=0, description="Minimum never cut (e.g. 4.2 kW under §14a EnWG) [kW]."
    )
    stale_after_s: float = Field(120.0, gt=0, description="Telemetry older than this is stale [s].")


class Asset(_Section):
    """One field device: PV, wind, a meter or a charger, and how it is read."""

    id: str = Field(description="Stable pseudonymous id, e.g. `meter-0412`; never a name.")
    kind: AssetKind = Field(description="pv, wind, meter or charger.")
    zone: str | None = Field(None, description="Zone the asset is connected in.")
    rated_kw: float = Field(gt=0, description="Rated power [kW]; bounds accepted readings.")
    mqtt: MqttSource | None = Field(
        None, description="Own topic and payload mapping; the contract topic when absent."
    )
    modbus: ModbusSource | None = Field(None, description="Polled over Modbus TCP instead.")
    gateway: str | None = Field(
        None,
        description="Gateway id that may also report this asset on `<prefix>/gateway/<id>`.",
    )
    charger: ChargerSpec | None = Field(None, description="Charger details (kind: charger).")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)

    @field_validator("gateway")
    @classmethod
    def _gateway_id(cls, value: str | None) -> str | None:
        return None if value is None else _check_id(value)

    @model_validator(mode="after")
    def _charger_details(self) -> Self:
        if self.kind is AssetKind.CHARGER and self.charger is None:
            object.__setattr__(self, "charger", ChargerSpec())  # defaults for a public charger
        if self.kind is not AssetKind.CHARGER and self.charger is not None:
            raise ValueError("`charger` is only for assets of kind charger")
        if self.mqtt is not None and self.modbus is not None:
            raise ValueError("an asset is read over MQTT or Modbus, not both")
        if self.gateway is not None and (self.mqtt is not None or self.modbus is not None):
            raise ValueError("`gateway` is for assets on the contract topic (no mqtt/modbus)")
        return self


class Planning(_Section):
    """The planning runs and setpoint dispatch."""

    enabled: bool = Field(
        True, description="Run planning and dispatch here (false: an ingest-only instance)."
    )
    interval_min: int = Field(15, ge=1, le=60, description="Planning period, quarter-hour aligned.")
    horizon_h: float = Field(24.0, gt=0, le=72, description="Planning horizon [h].")
    slot_minutes: int = Field(15, ge=1, le=60, description="Length of a schedule slot [min].")
    solver_time_limit_s: float = Field(60.0, gt=0, description="Solver time budget [s].")
    fallback: Literal["fair_share"] = Field(
        "fair_share", description="Plan dispatched when the solve fails or overruns."
    )
    dispatch_interval_s: float = Field(
        60.0, gt=0, le=600, description="How often setpoints are re-sent to chargers [s]."
    )
    zone_meter_stale_after_s: float = Field(
        120.0, gt=0, description="A zone meter silent this long means the zone is at its limit [s]."
    )
    sessions: SessionDefaults = Field(
        default_factory=SessionDefaults,
        description="Energy need and departure assumed when a charger does not report them.",
    )


class Api(_Section):
    """The HTTP API."""

    host: str = Field("127.0.0.1", description="Bind address of the HTTP API.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the HTTP API.")


class Config(BaseSettings):
    """A whole deployment."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDCOORD_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    site: Site = Field(default_factory=Site, description="Where the grid is.")
    mqtt: Mqtt = Field(default_factory=Mqtt, description="Broker connection.")
    storage: Storage = Field(default_factory=Storage, description="Where data goes.")
    influxdb: InfluxDB = Field(default_factory=InfluxDB, description="InfluxDB connection.")
    zones: list[Zone] = Field(default_factory=list, description="The zone tree.")
    assets: list[Asset] = Field(default_factory=list, description="Field devices.")
    planning: Planning = Field(default_factory=Planning, description="Planning runs.")
    api: Api = Field(default_factory=Api, description="HTTP API.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read the environment before the file, so ``GRIDCOORD_*`` overrides it."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _references(self) -> Self:
        errors = reference_problems(
            [z.model_dump() for z in self.zones], [a.model_dump() for a in self.assets]
        )
        if errors:
            # One ValueError carrying every problem; config_errors splits them back out.
            raise ValueError("; ".join(errors))
        return self

    def asset(self, asset_id: str) -> Asset | None:
        """Return the asset with this id, if configured."""
        return self._assets_by_id.get(asset_id)

    @property
    def _assets_by_id(self) -> dict[str, Asset]:
        cached: dict[str, Asset] | None = self.__dict__.get("_asset_index")
        if cached is None:
            cached = {a.id: a for a in self.assets}
            self.__dict__["_asset_index"] = cached
        return cached


def reference_problems(zones: list[Any], assets: list[Any]) -> list[str]:
    """Cross-references between entries: duplicates, unknown zones/meters, zone cycles, topics.

    Works on plain mappings so it can also run on a file whose entries failed validation, and
    the user sees every problem in one pass.
    """
    zone_items = [z for z in zones if isinstance(z, dict)]
    asset_items = [a for a in assets if isinstance(a, dict)]
    zone_ids = [str(z.get("id")) for z in zone_items]
    asset_ids = [str(a.get("id")) for a in asset_items]
    errors = _duplicates("zones", zone_ids) + _duplicates("assets", asset_ids)
    known_zones, known_assets = set(zone_ids), set(asset_ids)
    parents = {str(z.get("id")): z.get("parent") for z in zone_items}
    for i, zone in enumerate(zones):
        if not isinstance(zone, dict):
            continue
        parent, meter = zone.get("parent"), zone.get("meter")
        if parent is not None and parent not in known_zones:
            errors.append(f"zones[{i}].parent: unknown zone {parent!r}")
        if meter is not None and meter not in known_assets:
            errors.append(f"zones[{i}].meter: unknown asset {meter!r}")
        seen, cursor = {zone.get("id")}, parent
        while cursor is not None and cursor in parents:
            if cursor in seen:
                errors.append(f"zones[{i}].parent: cycle through zone {cursor!r}")
                break
            seen.add(cursor)
            cursor = parents[cursor]
    topics: dict[str, int] = {}
    units: dict[tuple[object, object, object], int] = {}
    for i, asset in enumerate(assets):
        if not isinstance(asset, dict):
            continue
        modbus = asset.get("modbus")
        if isinstance(modbus, dict):
            unit = (modbus.get("host"), modbus.get("port", 502), modbus.get("unit_id", 1))
            if unit in units:
                other = units[unit]
                errors.append(
                    f"assets[{i}].modbus.unit_id: {unit[0]}:{unit[1]} unit {unit[2]} is already "
                    f"asset {assets[other].get('id')!r} (assets[{other}])"
                )
            units[unit] = i
        zone_id = asset.get("zone")
        if zone_id is not None and zone_id not in known_zones:
            errors.append(f"assets[{i}].zone: unknown zone {zone_id!r}")
        mqtt = asset.get("mqtt")
        topic = mqtt.get("topic") if isinstance(mqtt, dict) else None
        if isinstance(topic, str):
            if topic in topics:
                errors.append(f"assets[{i}].mqtt.topic: already used by assets[{topics[topic]}]")
            topics[topic] = i
    return errors


def _check_id(value: str) -> str:
    if not ASSET_ID_RE.match(value):
        raise ValueError(
            "must be a pseudonymous id of lowercase letters, digits, '.', '_' or '-' "
            "(at most 64), e.g. 'meter-0412'"
        )
    return value


def _duplicates(section: str, ids: list[str]) -> list[str]:
    first: dict[str, int] = {}
    errors = []
    for i, item in enumerate(ids):
        if item in first:
            errors.append(f"{section}[{i}].id: duplicate of {section}[{first[item]}] ({item!r})")
        else:
            first.setdefault(item, i)
    return errors


def load_raw(path: Path) -> dict[str, Any]:
    """Read the YAML file into a mapping (raises ConfigError for unreadable files)."""
    import yaml

    from gridcoord.config_errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["file is not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}not valid YAML ({problem})"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, ["the top level must be a mapping of sections"])
    return data


def load_config(path: Path) -> Config:
    """Load and validate a configuration file plus GRIDCOORD_* environment overrides.

    Raises
    ------
    ConfigError
        listing every problem with its path in the file (and line, where known).
    """
    from pydantic import ValidationError

    from gridcoord.config_errors import ConfigError, describe_errors, describe_errors_text

    raw = load_raw(path)
    _anchor_map_paths(raw, path.parent)
    try:
        config = Config(**raw)
    except ValidationError as exc:
        problems = describe_errors(exc, path)
        if all(error["loc"] for error in exc.errors()):
            # Field errors stop pydantic before the cross-reference check; run it on the raw file.
            zones, assets = raw.get("zones"), raw.get("assets")
            extra = reference_problems(
                zones if isinstance(zones, list) else [], assets if isinstance(assets, list) else []
            )
            problems += describe_errors_text(extra, path)
        raise ConfigError(path, problems) from None
    problems = [
        f"assets[{i}].modbus.register_map: {problem}"
        for i, asset in enumerate(config.assets)
        if asset.modbus is not None
        for problem in asset.modbus.problems_for(asset.kind.value)
    ]
    if problems:
        raise ConfigError(path, describe_errors_text(problems, path))
    return config


def _anchor_map_paths(raw: dict[str, Any], base: Path) -> None:
    """A register map given as a relative file path is relative to the config file."""
    assets = raw.get("assets")
    for asset in assets if isinstance(assets, list) else []:
        modbus = asset.get("modbus") if isinstance(asset, dict) else None
        if not isinstance(modbus, dict):
            continue
        name = modbus.get("register_map")
        if (
            isinstance(name, str)
            and name.endswith((".yaml", ".yml"))
            and not Path(name).is_absolute()
        ):
            modbus["register_map"] = str(base / name)
