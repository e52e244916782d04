"""Configuration: the example city is valid, errors name field and file, env overrides win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridcoord.config import load_config
from gridcoord.config_errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "wolfsburg.yaml"


def gridcoord(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_example_city_is_valid_and_city_sized() -> None:
    config = load_config(EXAMPLE)
    kinds = {a.kind.value for a in config.assets}
    assert kinds == {"pv", "wind", "meter", "charger"}
    assert sum(a.kind.value == "charger" for a in config.assets) >= 24
    assert any(z.parent is None for z in config.zones)
    result = gridcoord("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_every_error_reported_with_path_line_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "mqtt:\n"
        "  port: 99999\n"
        "  password: s3cret-value\n"
        "zones:\n"
        "  - {id: z1, capacity_kw: -5}\n"
        "  - {id: z2, parent: nope, capacity_kw: 5}\n"
        "assets:\n"
        "  - {id: 'Erika Mustermann', kind: meter, rated_kw: 3}\n"
        "  - {id: c1, kind: charger, zone: z9, rated_kw: 11, colour: red}\n",
        encoding="utf-8",
    )
    result = gridcoord("check-config", str(bad))
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    for expected in (
        "mqtt.port (line 2)",
        "zones[0].capacity_kw (line 5)",
        "zones[1].parent (line 6): unknown zone 'nope'",
        "assets[0].id (line 8)",
        "assets[1].colour (line 9)",
        "assets[1].zone (line 9): unknown zone 'z9'",
    ):
        assert expected in err, expected
    assert str(bad) in err
    # Neither the secret nor the personal name is echoed back.
    assert "s3cret-value" not in err and "Mustermann" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zones: [\n", "not valid YAML"),
        ("- just a list\n", "top level must be a mapping"),
        (
            "zones:\n  - {id: a, parent: b, capacity_kw: 1}\n"
            "  - {id: b, parent: a, capacity_kw: 1}\n",
            "cycle",
        ),
        (
            "assets:\n  - {id: a1, kind: pv, rated_kw: 1}\n  - {id: a1, kind: pv, rated_kw: 1}\n",
            "assets[1].id (line 3): duplicate",
        ),
        ("site: {timezone: Mars/Olympus}\n", "unknown IANA time zone"),
        (
            "assets:\n  - {id: m1, kind: meter, rated_kw: 1, charger: {}}\n",
            "only for assets of kind",
        ),
    ],
)
def test_structural_errors(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert expected in caught.value.report()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = gridcoord("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read file" in result.stderr and "Traceback" not in result.stderr


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCOORD_MQTT__PORT", "1884")
    monkeypatch.setenv("GRIDCOORD_STORAGE__KIND", "influxdb")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__URL", "http://127.0.0.1:18086")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__API", "v1")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__DATABASE", "city")
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD", "from-env")
    config = load_config(EXAMPLE)
    assert config.mqtt.port == 1884
    assert config.storage.kind.value == "influxdb"
    assert config.influxdb.url == "http://127.0.0.1:18086"
    assert config.influxdb.api.value == "v1"
    assert config.influxdb.database == "city"
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(config)
    # The rest still comes from the file.
    assert config.site.name == "wolfsburg-demo"


def test_bad_environment_value_names_the_variable() -> None:
    result = gridcoord("check-config", str(EXAMPLE), env={"GRIDCOORD_MQTT__PORT": "abc"})
    assert result.returncode == 2
    assert "mqtt.port (from GRIDCOORD_MQTT__PORT)" in result.stderr


@pytest.mark.parametrize(
    "url", ["influx.example:8086", "ftp://influx.example", "http://admin:hunter2@influx:8086"]
)
def test_influxdb_url_must_be_plain_http(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__URL", url)
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE)
    report = caught.value.report()
    assert "influxdb.url (from GRIDCOORD_INFLUXDB__URL)" in report
    assert "hunter2" not in report


def test_modbus_map_must_fit_the_asset_and_units_are_unique(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    wrong_map = text.replace("register_map: generic-charger", "register_map: sunspec")
    bad = tmp_path / "wrong-map.yaml"
    bad.write_text(wrong_map, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "modbus.register_map" in caught.value.report()
    assert "not charger" in caught.value.report()
    same_unit = text.replace("port: 15021, unit_id: 1", "port: 15020, unit_id: 1")
    bad.write_text(same_unit, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "127.0.0.1:15020 unit 1 is already asset 'pv-modbus-01'" in caught.value.report()


def test_own_register_map_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "missing.yaml").write_text("not: a map\n", encoding="utf-8")
    config = tmp_path / "city.yaml"
    config.write_text(
        "assets:\n  - {id: pv-1, kind: pv, rated_kw: 10,\n"
        "     modbus: {host: 127.0.0.1, register_map: maps/missing.yaml}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    # The map was found next to the config (and then refused for its content).
    assert "maps/missing.yaml" in caught.value.report()
    assert "No such file" not in caught.value.report()
