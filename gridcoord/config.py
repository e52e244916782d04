"""The deployment configuration (DESIGN 3.6): one YAML file, overridable from the environment.

Settings are declared once, here, with pydantic; every field says what it is for. Environment
variables ``GRIDCOORD_<SECTION>__<FIELD>`` override the file, so secrets never need to be in it.

The sections an adapter reads (``mqtt``, an asset's ``mqtt`` or ``modbus`` source) are declared
in that adapter's package and composed here; their names are re-exported as part of the
configuration's API.
"""

from __future__ import annotations

import json
import os
import re
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
from adapters.ocpp.settings import OcppServerSettings, OcppStation, station_problems
from adapters.safe_yaml import YamlProblem, parse, read_text
from gridcoord.config_errors import ConfigError, Problems, quote
from gridcoord.config_secrets import (
    private_key_problems,
    refuse_file_secrets,
    resolve_secret_files,
)
from gridcoord.sessions import SessionDefaults

# Physical bounds (docs/configuration-limits.md): generous, but finite, so that a typo
# like `1e308` or `.inf` is refused by check-config instead of reaching the planner.
MAX_RATED_KW = 1_000_000.0  # one asset: the largest power plants are about 1 GW
MAX_CAPACITY_KW = 10_000_000.0  # one zone: the largest substations are a few GW
MAX_CHARGER_KW = 10_000.0  # megawatt charging (MCS) tops out at 3.75 MW
MAX_STALE_S = 86_400.0  # a day: anything older is not "recent telemetry"
MAX_ZONES = 10_000
MAX_ASSETS = 100_000


class _Section(BaseModel):
    # allow_inf_nan=False: `.inf` and `.nan` are never a physical value.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
        1_073_741_824,
        ge=1_048_576,
        le=1_099_511_627_776,
        description="Upper bound of the spool on disk [bytes] (1 MiB to 1 TiB).",
    )
    batch_size: int = Field(5000, ge=1, le=100_000, description="Points per write to the store.")
    flush_interval_s: float = Field(
        1.0, gt=0, le=60, description="Longest time a point waits in memory before a write [s]."
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
    token: SecretStr | None = Field(
        None,
        description="v2 API token: only from GRIDCOORD_INFLUXDB__TOKEN or `token_file`.",
    )
    token_file: Path | None = Field(
        None, description="File holding the v2 API token (mode 0600 or 0400)."
    )
    org: str = Field("gridcoord", description="v2 organisation.")
    bucket: str = Field("gridcoord", description="v2 bucket.")
    database: str = Field("gridcoord", description="v1 database (also the InfluxQL database).")
    username: str | None = Field(None, description="v1 user; from the environment.")
    password: SecretStr | None = Field(
        None,
        description="v1 password: only from GRIDCOORD_INFLUXDB__PASSWORD or `password_file`.",
    )
    password_file: Path | None = Field(
        None, description="File holding the v1 password (mode 0600 or 0400)."
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="HTTP timeout per request [s].")

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
    capacity_kw: float = Field(
        ge=0, le=MAX_CAPACITY_KW, description="Rating of the transformer or feeder [kW]."
    )
    meter: str | None = Field(None, description="Asset id of the meter measuring this zone.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)


class ChargerSpec(_Section):
    """How a charger is connected and what it must always be allowed."""

    type: ChargerType = Field(ChargerType.PUBLIC, description="Sets session defaults.")
    phases: Literal[1, 3] = Field(3, description="Connected phases.")
    voltage_v: float = Field(230.0, gt=0, le=1000, description="Phase voltage [V].")
    min_current_a: float = Field(
        6.0, ge=0, le=1000, description="Lowest current the charger can hold [A]."
    )
    safe_power_kw: float = Field(
        0.0,
        ge=0,
        le=MAX_CHARGER_KW,
        description="Power for a stale charger or expired setpoint [kW]; at most `rated_kw`.",
    )
    guaranteed_kw: float = Field(
        0.0,
        ge=0,
        le=MAX_CHARGER_KW,
        description="Minimum never cut (e.g. 4.2 kW under §14a EnWG) [kW]; at most `rated_kw`.",
    )
    stale_after_s: float = Field(
        120.0, gt=0, le=MAX_STALE_S, description="Telemetry older than this is stale [s]."
    )


class Asset(_Section):
    """One field device: PV, wind, a meter or a charger, and how it is read."""

    id: str = Field(description="Stable pseudonymous id, e.g. `meter-0412`; never a name.")
    kind: AssetKind = Field(description="pv, wind, meter or charger.")
    zone: str | None = Field(None, description="Zone the asset is connected in.")
    rated_kw: float = Field(
        gt=0, le=MAX_RATED_KW, description="Rated power [kW]; bounds accepted readings."
    )
    mqtt: MqttSource | None = Field(
        None, description="Own topic and payload mapping; the contract topic when absent."
    )
    modbus: ModbusSource | None = Field(None, description="Polled over Modbus TCP instead.")
    gateway: str | None = Field(
        None,
        description="Gateway id that may also report this asset on `<prefix>/gateway/<id>`.",
    )
    ocpp: OcppStation | None = Field(None, description="An OCPP station (chargers only).")
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
        if sum(s is not None for s in (self.mqtt, self.modbus, self.ocpp)) > 1:
            raise ValueError("an asset is read over one of MQTT, Modbus or OCPP")
        if self.ocpp is not None and self.kind is not AssetKind.CHARGER:
            raise ValueError("`ocpp` is only for assets of kind charger")
        if self.gateway is not None and any(
            s is not None for s in (self.mqtt, self.modbus, self.ocpp)
        ):
            raise ValueError("`gateway` is for assets on the contract topic (no mqtt/modbus/ocpp)")
        if self.charger is not None:
            for name in ("safe_power_kw", "guaranteed_kw"):
                if getattr(self.charger, name) > self.rated_kw:
                    # A setpoint never exceeds the charger's limit (DESIGN 4), so neither may these.
                    raise ValueError(f"charger.{name} must not exceed rated_kw")
        return self


class Planning(_Section):
    """The planning runs and setpoint dispatch."""

    enabled: bool = Field(
        True, description="Run planning and dispatch here (false: an ingest-only instance)."
    )
    interval_min: int = Field(15, ge=1, le=60, description="Planning period, quarter-hour aligned.")
    horizon_h: float = Field(24.0, gt=0, le=72, description="Planning horizon [h].")
    slot_minutes: int = Field(15, ge=1, le=60, description="Length of a schedule slot [min].")
    solver_time_limit_s: float = Field(60.0, gt=0, le=3600, description="Solver time budget [s].")
    fallback: Literal["fair_share"] = Field(
        "fair_share", description="Plan dispatched when the solve fails or overruns."
    )
    import_weights: Literal["net_load", "early"] = Field(
        "net_load",
        description="Cost of grid import per slot: `net_load` = the forecast non-EV load minus "
        "PV and wind (charging moves off the peak, into windy nights and sunny middays); "
        "`early` = flat, 10 % dearer at the horizon's end.",
    )
    import_weight_spread: float = Field(
        1.0,
        ge=0,
        le=100,
        description="With `net_load`: how much dearer the slot of the highest net load is than "
        "that of the lowest [-].",
    )
    import_now_premium: float = Field(
        0.3,
        ge=0,
        le=100,
        description="With `net_load`: how much dearer import in the next slot is than the "
        "same import hours ahead, fading with the lead time over 2 h [-]: a kWh imported now "
        "is spent, one planned later may still go to a surplus the forecast saw too weak or "
        "too late. 0: none.",
    )
    dispatch_interval_s: float = Field(
        60.0, gt=0, le=600, description="How often setpoints are re-sent to chargers [s]."
    )
    guaranteed_minimum: Literal["when_limited", "always"] = Field(
        "when_limited",
        description="When a connected charger's `guaranteed_kw` (§14a EnWG) holds: "
        "`when_limited` = under a zone whose headroom binds in the dispatch (its setpoints, "
        "with its connected cars raised to their minima, exceed it; a stale zone always "
        "binds) — a zone cut never goes below the minimum, elsewhere the plan's value stands "
        "even below it (a plan that shifts charging is not dimming); `always` = every "
        "connected charger at least at its minimum (the rule before issue 12).",
    )
    zone_meter_stale_after_s: float = Field(
        120.0,
        gt=0,
        le=MAX_STALE_S,
        description="A zone meter silent this long means the zone is at its limit [s].",
    )
    sessions: SessionDefaults = Field(
        default_factory=SessionDefaults,
        description="Energy need and departure assumed when a charger does not report them.",
    )
    roots: list[str] = Field(
        default_factory=list,
        max_length=MAX_ZONES,
        description="Root zones (substations) this instance plans and commands; empty: all. "
        "Several instances with disjoint roots plan one city between them (one per substation).",
    )
    replan_on_events: bool = Field(
        True,
        description="Re-plan out of turn on a plug-in, a plug-out or a new external forecast.",
    )
    replan_min_interval_s: float = Field(
        120.0,
        ge=1,
        le=3600,
        description="At most one event re-plan per this many seconds; events in between are "
        "coalesced into the next one [s].",
    )
    learned_departure_sessions: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Completed sessions of a charger type before their median stay replaces "
        "the configured default stay (types without `departure_local`).",
    )


class Role(StrEnum):
    """What an API token may do; each role includes the ones before it."""

    VIEWER = "viewer"  # read everything the API shows
    OPERATOR = "operator"  # also: overrides, run-now
    ADMIN = "admin"  # also: administrative writes (reserved)


class ApiToken(_Section):
    """One bearer token of the HTTP API: its holder, role and argon2 hash (never the token)."""

    name: str = Field(
        description="Who holds the token, as the audit trail names them (a role or pseudonym, "
        "not a person's name).",
        pattern=ASSET_ID_PATTERN,
    )
    role: Role = Field(description="viewer, operator or admin.")
    hash: SecretStr | None = Field(
        None,
        description="argon2 hash of the token (`gridcoord hash-token`); never the token itself.",
    )
    hash_file: Path | None = Field(
        None, description="File holding the argon2 hash instead (e.g. a container secret)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.hash is None) == (self.hash_file is None):
            raise ValueError("give exactly one of `hash` and `hash_file`")
        return self


class Api(_Section):
    """The HTTP API."""

    enabled: bool = Field(True, description="Serve the HTTP API and dashboard.")
    host: str = Field("127.0.0.1", description="Bind address of the HTTP API.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the HTTP API (0: any free).")
    tokens: list[ApiToken] = Field(
        default_factory=list,
        description="Bearer tokens (hashed) with their roles; in the environment as "
        'GRIDCOORD_API__TOKENS=\'[{"name": ..., "role": ..., "hash": ...}]\'.',
    )
    anonymous_role: Role | None = Field(
        None,
        description="Role of a request without a token (e.g. `viewer` for a wall screen on a "
        "trusted network); none: every request needs a token.",
    )
    sse_interval_s: float = Field(
        2.0, ge=0.2, le=60, description="How often the live stream sends the city's state [s]."
    )
    plans_kept: int = Field(96, ge=1, le=10_000, description="Planning runs the API lists.")
    state_dir: Path = Field(
        Path("var/api"), description="Where overrides and the audit trail are kept on disk."
    )


class OpenDataLicence(StrEnum):
    """Licence the open-data export is published under (its DCAT-AP.de metadata names it)."""

    DL_DE_BY_2_0 = "dl-de/by-2-0"
    CC_BY_4_0 = "cc-by/4.0"


class Privacy(_Section):
    """Data protection by default (docs/data-protection.md): retention and open-data groups."""

    raw_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Days raw household-meter and charger series are kept; then only per-zone "
        "15-minute aggregates remain [d].",
    )
    min_group_size: int = Field(
        10,
        ge=2,
        le=10_000,
        description="Fewest households an open-data row may be computed from; a smaller zone "
        "is merged into its parent or suppressed.",
    )
    retention_in_service: bool = Field(
        True,
        description="Run the retention job in this `gridcoord run` instance; false on all "
        "but one of several instances sharing a store.",
    )
    retention_interval_min: int = Field(
        60,
        ge=1,
        le=1440,
        description="How often the service runs the retention job [min] (`gridcoord run`).",
    )
    publisher: str = Field(
        "Stadtwerk",
        max_length=200,
        description="Publisher named in the open-data metadata (an organisation, not a person).",
    )
    licence: OpenDataLicence = Field(
        OpenDataLicence.DL_DE_BY_2_0,
        description="Licence of the open-data export: `dl-de/by-2-0` (Datenlizenz Deutschland "
        "Namensnennung 2.0) or `cc-by/4.0`.",
    )
    publish_url: str | None = Field(
        None,
        max_length=500,
        pattern=r"^https?://\S+/$",
        description="Where the export's files will be published (ending in `/`): the base of "
        "their download URLs; relative to the metadata file when absent.",
    )
    spatial_uri: str | None = Field(
        None,
        max_length=500,
        description="dct:spatial of the export, e.g. the municipality's URI in the "
        "dcat-ap.de Geo vocabulary; the site's coordinates when absent.",
    )


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
    zones: list[Zone] = Field(
        default_factory=list, max_length=MAX_ZONES, description="The zone tree."
    )
    assets: list[Asset] = Field(
        default_factory=list, max_length=MAX_ASSETS, description="Field devices."
    )
    planning: Planning = Field(default_factory=Planning, description="Planning runs.")
    api: Api = Field(default_factory=Api, description="HTTP API.")
    ocpp: OcppServerSettings | None = Field(
        None, description="OCPP central system (needed by assets with an `ocpp:` block)."
    )
    privacy: Privacy = Field(
        default_factory=Privacy, description="Retention of personal data and open-data export."
    )

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
        if any(a.ocpp is not None for a in self.assets) and self.ocpp is None:
            errors.append("ocpp: assets have an `ocpp:` block but there is no `ocpp:` section")
        parents = {z.id: z.parent for z in self.zones}
        for i, root in enumerate(self.planning.roots):
            if root not in parents:
                errors.append(f"planning.roots[{i}]: unknown zone {quote(root)}")
            elif parents[root] is not None:
                errors.append(
                    f"planning.roots[{i}]: zone {quote(root)} has a parent; a root "
                    "(substation) is a zone without one"
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
    the user sees every problem in one pass. Values of the wrong type (a list where an id
    belongs) are left to field validation; the walk is linear in the number of entries.
    """
    zone_items = [z if isinstance(z, dict) else {} for z in zones]
    asset_items = [a if isinstance(a, dict) else {} for a in assets]
    zone_ids = [_text(z.get("id")) for z in zone_items]
    asset_ids = [_text(a.get("id")) for a in asset_items]
    errors = _duplicates("zones", zone_ids) + _duplicates("assets", asset_ids)
    known_zones = {z for z in zone_ids if z is not None}
    known_assets = {a for a in asset_ids if a is not None}
    for i, zone in enumerate(zone_items):
        parent, meter = _text(zone.get("parent")), _text(zone.get("meter"))
        if parent is not None and parent not in known_zones:
            errors.append(f"zones[{i}].parent: unknown zone {quote(parent)}")
        if meter is not None and meter not in known_assets:
            errors.append(f"zones[{i}].meter: unknown asset {quote(meter)}")
    errors += _cycles(zone_ids, [_text(z.get("parent")) for z in zone_items])
    errors += station_problems(asset_items)
    topics: dict[str, int] = {}
    units: dict[tuple[object, object, object], int] = {}
    for i, asset in enumerate(asset_items):
        modbus = asset.get("modbus")
        if isinstance(modbus, dict):
            unit = (modbus.get("host"), modbus.get("port", 502), modbus.get("unit_id", 1))
            if all(isinstance(part, str | int) for part in unit):
                if unit in units:
                    other = units[unit]
                    errors.append(
                        f"assets[{i}].modbus.unit_id: {_host(unit[0])}:{unit[1]} unit "
                        f"{unit[2]} is already asset {quote(str(asset_ids[other]))} "
                        f"(assets[{other}])"
                    )
                units[unit] = i
        zone_id = _text(asset.get("zone"))
        if zone_id is not None and zone_id not in known_zones:
            errors.append(f"assets[{i}].zone: unknown zone {quote(zone_id)}")
        mqtt = asset.get("mqtt")
        topic = _text(mqtt.get("topic")) if isinstance(mqtt, dict) else None
        if topic is not None:
            if topic in topics:
                errors.append(f"assets[{i}].mqtt.topic: already used by assets[{topics[topic]}]")
            topics[topic] = i
    return errors


def _host(value: object) -> str:
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z0-9.:_-]{1,64}", text) else quote(text)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _cycles(ids: list[str | None], parents: list[str | None]) -> list[str]:
    """``zones[i].parent: cycle through zone X`` for every zone on a cycle of parents.

    Each zone is visited once (colouring), so a chain of 10,000 zones costs 10,000 steps.
    """
    index = {zone_id: i for i, zone_id in enumerate(ids) if zone_id is not None}
    state = [0] * len(ids)  # 0 unvisited, 1 on the current walk, 2 done
    errors = []
    for start in range(len(ids)):
        walk: list[int] = []
        cursor: int | None = start
        while cursor is not None and state[cursor] == 0:
            state[cursor] = 1
            walk.append(cursor)
            parent = parents[cursor]
            cursor = index.get(parent) if parent is not None else None
        if cursor is not None and state[cursor] == 1:  # closed a new cycle
            cycle = walk[walk.index(cursor) :]
            errors += [
                f"zones[{i}].parent: cycle through zone {quote(str(parents[i]))}" for i in cycle
            ]
        for i in walk:
            state[i] = 2
    return sorted(errors, key=lambda e: int(e[6 : e.index("]")]))


def _check_id(value: str) -> str:
    if not ASSET_ID_RE.match(value):
        raise ValueError(
            "must be a pseudonymous id of lowercase letters, digits, '.', '_' or '-' "
            "(at most 64), e.g. 'meter-0412'"
        )
    return value


def _duplicates(section: str, ids: list[str | None]) -> list[str]:
    first: dict[str, int] = {}
    errors = []
    for i, item in enumerate(ids):
        if item is None:
            continue
        if item in first:
            errors.append(
                f"{section}[{i}].id: duplicate of {section}[{first[item]}] ({quote(item)})"
            )
        else:
            first[item] = i
    return errors


def load_raw(path: Path) -> dict[str, Any]:
    """Read the YAML file into a mapping, within the limits of `adapters.safe_yaml`.

    Raises
    ------
    ConfigError
        For a file that is unreadable, not a regular file, too large, not YAML, beyond a
        limit, or not a mapping of sections.
    """
    return _read(path)[0]


def load_config(path: Path) -> Config:
    """Load and validate a configuration file plus GRIDCOORD_* environment overrides.

    Secrets are refused in the file and read from ``*_file`` settings (see
    `gridcoord.config_secrets`). Every failure, of the file, a value, the environment or a
    secret file, is a ConfigError; nothing else escapes.

    Raises
    ------
    ConfigError
        Listing every problem (the first `MAX_SHOWN`, the rest counted) with its path in the
        file and its line, or the environment variable that set it.
    """
    raw, text = _read(path)
    problems = Problems()
    raw = refuse_file_secrets(raw, Config, problems)
    raw = _anchor_paths(raw, path.parent)
    config = _validate(raw, problems)
    if config is None or problems:
        raise problems.error(path, text)
    config = resolve_secret_files(config, problems)
    private_key_problems(config, problems)
    for i, asset in enumerate(config.assets):
        if asset.modbus is not None:
            for problem in asset.modbus.problems_for(asset.kind.value):
                problems.add(("assets", i, "modbus", "register_map"), problem)
    if problems:
        raise problems.error(path, text)
    return config


def _read(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = read_text(path)
        data = parse(text)
    except YamlProblem as exc:
        raise ConfigError(path, [str(exc)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, ["the top level must be a mapping of sections"])
    return data, text


def _validate(raw: dict[str, Any], problems: Problems) -> Config | None:
    """Config from `raw` and the environment, or None with the problems recorded.

    Zones and assets are validated one by one first: a file of 100,000 broken entries then
    costs one entry's errors at a time, not a million error records at once.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    data = dict(raw)
    entries_failed = False
    for name, model, limit in (("zones", Zone, MAX_ZONES), ("assets", Asset, MAX_ASSETS)):
        items = raw.get(name)
        if not isinstance(items, list) or len(items) > limit or _in_environment(name):
            continue  # Config reports the wrong type or length, or validates the override
        checked: list[Any] = []
        for i, item in enumerate(items):
            try:
                checked.append(model.model_validate(item))
            except ValidationError as exc:
                problems.add_validation(exc, (name, i))
                entries_failed = True
        data[name] = checked
    if entries_failed:
        # Cross-references are checked on the raw file below, not on the entries that passed.
        data.update(zones=[], assets=[])
    try:
        config = Config(**data)
    except ValidationError as exc:
        if not problems.add_validation(exc):
            _add_references(raw, problems)  # field errors kept pydantic from checking them
        return None
    except (SettingsError, RecursionError):
        # The environment held a value that is not JSON where a section or list was expected.
        for name, message in _environment_json_problems():
            problems.add((), f"{name}: {message}")
        if not problems:
            problems.add((), "a GRIDCOORD_... environment variable could not be read")
        return None
    if entries_failed:
        _add_references(raw, problems)
        return None
    return config


def _add_references(raw: dict[str, Any], problems: Problems) -> None:
    zones, assets = raw.get("zones"), raw.get("assets")
    problems.add_text(
        reference_problems(
            zones if isinstance(zones, list) else [], assets if isinstance(assets, list) else []
        )
    )


def _in_environment(name: str) -> bool:
    variable = f"GRIDCOORD_{name}".upper()
    return any(key.upper() == variable for key in os.environ)


def _environment_json_problems() -> list[tuple[str, str]]:
    """Why GRIDCOORD_* values given as JSON do not parse (the value itself is never shown)."""
    found = []
    for key, value in sorted(os.environ.items()):
        if not key.upper().startswith("GRIDCOORD_") or not value.lstrip().startswith(("[", "{")):
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            found.append((key, f"not valid JSON ({exc.msg} at {where})"))
        except RecursionError:
            found.append((key, "JSON nested too deeply"))
    return found


def _anchor_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """A register map given as a relative file path is relative to the config file.

    Returns a new mapping: entries the file shares through YAML aliases are not changed in place.
    """
    assets = raw.get("assets")
    if not isinstance(assets, list):
        return raw
    anchored = []
    for asset in assets:
        modbus = asset.get("modbus") if isinstance(asset, dict) else None
        name = modbus.get("register_map") if isinstance(modbus, dict) else None
        if (
            isinstance(asset, dict)
            and isinstance(modbus, dict)
            and isinstance(name, str)
            and name.endswith((".yaml", ".yml"))
            and not Path(name).is_absolute()
        ):
            asset = {**asset, "modbus": {**modbus, "register_map": str(base / name)}}
        anchored.append(asset)
    return {**raw, "assets": anchored}
