"""Open the store a configuration asks for (DESIGN 3.6: ``storage.kind``, ``influxdb.api``)."""

from __future__ import annotations

from gridcoord.config import Config, InfluxApi, StorageKind
from gridcoord.storage.base import Store
from gridcoord.storage.spool import Spool


def open_store(config: Config) -> Store:
    """Return the configured store; nothing is contacted yet (a down server is not an error).

    Raises
    ------
    ValueError
        an InfluxDB url that is not ``http(s)://host[:port]``.
    StoreUnavailable
        the embedded store file cannot be opened.
    """
    if config.storage.kind is StorageKind.EMBEDDED:
        from gridcoord.storage.embedded import EmbeddedStore

        return EmbeddedStore(config.storage.path)
    influx = config.influxdb
    if influx.api is InfluxApi.V1:
        from gridcoord.storage.influx_v1 import InfluxV1Store

        return InfluxV1Store(
            influx.url,
            influx.database,
            username=influx.username,
            password=influx.password.get_secret_value() if influx.password else None,
            timeout_s=influx.timeout_s,
        )
    from gridcoord.storage.influx_v2 import InfluxV2Store

    return InfluxV2Store(
        influx.url,
        token=influx.token.get_secret_value() if influx.token else None,
        org=influx.org,
        bucket=influx.bucket,
        database=influx.database,
        timeout_s=influx.timeout_s,
    )


def open_spool(config: Config) -> Spool:
    """Return the disk spool of ``storage.spool_dir`` bounded by ``storage.spool_max_bytes``."""
    return Spool(config.storage.spool_dir, config.storage.spool_max_bytes)
