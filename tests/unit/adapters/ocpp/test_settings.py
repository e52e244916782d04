"""The `ocpp:` config: where it may appear, clashes between stations, staleness."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from adapters.ocpp.server import OcppServer
from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _charger(i: int, **ocpp: Any) -> dict[str, Any]:
    return {
        "id": f"charger-{i}",
        "kind": "charger",
        "rated_kw": 11,
        "ocpp": {"station_id": "cs-1", **ocpp},
    }


def test_problems_name_the_field(tmp_path: Path) -> None:
    cases = [
        ({"assets": [_charger(1)]}, "no `ocpp:` section"),
        (
            {
                "ocpp": {},
                "assets": [
                    {"id": "pv-1", "kind": "pv", "rated_kw": 5, "ocpp": {"station_id": "cs-1"}}
                ],
            },
            "only for assets of kind charger",
        ),
        (
            {"ocpp": {}, "assets": [_charger(1), _charger(2)]},
            "station 'cs-1' outlet 1 is already assets[0]",
        ),
        (
            {"ocpp": {}, "assets": [_charger(1), _charger(2, evse_id=2, version="1.6")]},
            "assets[1].ocpp.version",
        ),
        ({"ocpp": {}, "assets": [_charger(1, station_id="cs/1")]}, "station_id"),
        ({"ocpp": {"port": 70000}}, "ocpp.port"),
    ]
    for data, problem in cases:
        with pytest.raises(ConfigError) as refused:
            load_config(_write(tmp_path, data))
        assert problem in refused.value.report(), refused.value.report()


def test_environment_overrides_and_two_evses_of_one_station(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDCOORD_OCPP__PORT", "9100")
    config = load_config(
        _write(tmp_path, {"ocpp": {"port": 9000}, "assets": [_charger(1), _charger(2, evse_id=2)]})
    )
    assert config.ocpp is not None and config.ocpp.port == 9100


def test_a_station_silent_past_two_heartbeats_is_stale_then_recovers() -> None:
    config = Config(ocpp={"heartbeat_interval_s": 60}, assets=[_charger(1)])
    assert config.ocpp is not None
    server = OcppServer(config.ocpp, config.assets, submit=print, reject=print)
    station = SimpleNamespace(last_seen=1000.0)
    server.connections["cs-1"] = station  # type: ignore[assignment]
    assert server.check_stale(1119.0) == set()
    assert server.check_stale(1121.0) == {"cs-1"}
    station.last_seen = 1200.0
    assert server.check_stale(1201.0) == set()
    assert server.hub.counts["stale"] == 1
