"""`open_store` picks the backend the configuration names, without contacting any server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridcoord.config import Config
from gridcoord.storage.embedded import EmbeddedStore
from gridcoord.storage.factory import open_spool, open_store
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.influx_v2 import InfluxV2Store
from gridcoord.storage.spool import Spool


def test_embedded_is_the_default(tmp_path: Path) -> None:
    config = Config(storage={"path": tmp_path / "db" / "g.sqlite3"})
    store = open_store(config)
    assert isinstance(store, EmbeddedStore)
    store.close()
    assert (tmp_path / "db" / "g.sqlite3").exists()


@pytest.mark.parametrize(("api", "kind"), [("v1", InfluxV1Store), ("v2", InfluxV2Store)])
def test_influxdb_api_selects_the_client(api: str, kind: type) -> None:
    config = Config(
        storage={"kind": "influxdb"},
        influxdb={"url": "http://127.0.0.1:9", "api": api, "token": "t"},
    )
    store = open_store(config)
    assert isinstance(store, kind)
    store.close()


def test_environment_selects_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCOORD_STORAGE__KIND", "influxdb")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__API", "v1")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__DATABASE", "city")
    store = open_store(Config())
    assert isinstance(store, InfluxV1Store) and store.database == "city"
    store.close()


def test_store_refuses_a_url_that_is_not_http() -> None:
    # The configuration refuses it first; a store built directly says so too.
    with pytest.raises(ValueError, match="InfluxDB url"):
        InfluxV1Store("localhost:8086", "city")
    with pytest.raises(ValueError, match="InfluxDB url"):
        InfluxV2Store("ftp://db.example", None, "org", "bucket", "city")


def test_spool_from_config(tmp_path: Path) -> None:
    config = Config(storage={"spool_dir": tmp_path / "spool"})
    spool = open_spool(config)
    assert isinstance(spool, Spool) and spool.max_bytes == config.storage.spool_max_bytes
